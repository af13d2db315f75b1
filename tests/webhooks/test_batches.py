"""The worker's batches and its wake-up, against real receivers on loopback: a commit wakes a
worker that would otherwise sleep a minute (PostgreSQL NOTIFY), a worker killed between claiming
and recording loses nothing and only sends again, and one batch records every kind of outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import func, select

from codeshelf import worker
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.kit.wakeup import Listener
from codeshelf.partners.models import Partner
from codeshelf.webhooks import delivery
from codeshelf.webhooks.models import Delivery, DeliveryAttempt, Event
from tests.fixtures import factories
from tests.fixtures.http import order
from tests.fixtures.processes import codeshelf_command
from tests.fixtures.receiver import Received, Receiver, webhook_ids

pytestmark = pytest.mark.live  # workers, threads, processes and receivers: real commits

HOOKS = "/api/v1/webhook-endpoints"
ARRIVAL_S = 30.0  # how long a webhook may take to arrive: half the worker's poll below
LONG_POLL_S = 60.0


def register(
    client: httpx.Client, headers: dict[str, str], url: str, types: list[str] | None = None
) -> str:
    body: dict[str, Any] = {"url": url, "event_types": types or []}
    response = client.post(HOOKS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def deliveries(db: Database) -> list[Delivery]:
    with db.read_session() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def attempts(db: Database) -> list[DeliveryAttempt]:
    with db.read_session() as session:
        return list(session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)))


def event_ids(db: Database, event_type: str | None = None) -> list[str]:
    with db.read_session() as session:
        query = select(Event.public_id).order_by(Event.id)
        if event_type:
            query = query.where(Event.type == event_type)
        return list(session.scalars(query))


def wait_until(done: Callable[[], bool], what: str, timeout: float = ARRIVAL_S) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s")
        time.sleep(0.01)


def libpq(db: Database) -> str:
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def notify(db: Database) -> None:
    """What the 0006 trigger does, by hand: wake whoever listens."""
    with psycopg.connect(libpq(db), autocommit=True) as conn:
        conn.execute(f"NOTIFY {delivery.CHANNEL}")


def require_postgres(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has no LISTEN/NOTIFY: its worker polls")


# Wake-up


def old_event(db: Database, shop: factories.Shop) -> str:
    """An event past its retention, settled (it has no deliveries): the first pass's purge,
    which follows its sending, deletes it."""
    with db.session() as session:
        partner = session.scalar(select(Partner.id).where(Partner.public_id == shop.a.id))
        assert partner is not None
        event = Event(
            public_id="evt_" + "0" * 20,
            partner_id=partner,
            type="order.created",
            payload={},
            created_at=utcnow() - timedelta(days=400),
        )
        session.add(event)
    return event.public_id


def event_gone(db: Database, public_id: str) -> bool:
    with db.read_session() as session:
        found = session.scalar(select(func.count()).where(Event.public_id == public_id))
        return not found


def test_a_commit_wakes_a_worker_that_polls_once_a_minute(
    hook_client: httpx.Client,
    hook_settings: Settings,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
) -> None:
    """The worker's first pass ends with its purge; only then is the order placed, so nothing
    but the order's own commit (NOTIFY on PostgreSQL, a changed data_version on SQLite) can
    bring its webhook before the minute is up."""
    settings = hook_settings.model_copy(update={"worker_poll_seconds": LONG_POLL_S})
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run(settings, db, vault, stopping=stop.is_set)
        except BaseException as exc:  # reported below
            errors.append(exc)

    with Receiver() as receiver:
        register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        marker = old_event(db, shop)
        loop = threading.Thread(target=run)
        loop.start()
        try:
            wait_until(lambda: event_gone(db, marker), "first pass")
            placed = order(hook_client, shop.a.headers)
            assert placed.status_code == 201, placed.text
            wait_until(lambda: len(receiver.received) == 1, "webhook while the worker sleeps")
            [fulfilled] = event_ids(db, "order.fulfilled")
        finally:
            stop.set()  # and wake it, so that it sees it now, not in a minute:
            if db.is_sqlite:
                order(hook_client, shop.a.headers)  # (its webhook is not sent: it stops first)
            else:
                notify(db)
            loop.join(timeout=ARRIVAL_S)
        assert not loop.is_alive() and errors == []
    assert webhook_ids(receiver) == [fulfilled]
    assert deliveries(db)[0].state == "succeeded"


def test_a_listener_wakes_on_commit_and_again_after_losing_its_connection(
    hook_client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    """A commit that queues a delivery wakes it; a dropped connection is reopened and reported
    as a wake-up (what committed meanwhile may be due), and commits wake it again after."""
    require_postgres(db)
    with Receiver() as receiver:
        register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        listener = Listener(db, delivery.CHANNEL)
        try:
            assert order(hook_client, shop.a.headers).status_code == 201
            assert listener.wait(LONG_POLL_S)
            with psycopg.connect(libpq(db), autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            assert listener.wait(LONG_POLL_S)  # the broken connection: look now
            assert listener.wait(LONG_POLL_S)  # listening again
            assert order(hook_client, shop.a.headers).status_code == 201
            assert listener.wait(LONG_POLL_S)
        finally:
            listener.close()


# A worker killed between claim and record


def start_worker(database_url: str, cwd: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CODESHELF_DATABASE_URL": database_url,
        "CODESHELF_SECRET_KEY": factories.SECRET,
        "CODESHELF_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    env.pop("CODESHELF_PREVIOUS_SECRET_KEYS", None)
    return subprocess.Popen(
        [*codeshelf_command(), "worker"],
        env=env,
        cwd=cwd,  # no .env file here
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_worker_killed_between_claim_and_record_sends_again_and_loses_nothing(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    database_url: str,
    tmp_path: Path,
) -> None:
    """The first webhook is answered 200, the second never: the worker holds six, has sent two
    and recorded nothing of the second when it is killed. Once its holds expire the six are all
    delivered, the second (and maybe the first) twice: at least once, never lost."""
    second_arrived, release = threading.Event(), threading.Event()

    def answer(_got: Received) -> tuple[int, dict[str, str]]:
        if len(receiver.received) == 2:
            second_arrived.set()
            release.wait(timeout=ARRIVAL_S)  # the dead worker never reads this answer
        return 200, {}

    with Receiver(answer) as receiver:
        register(hook_client, shop.a.headers, receiver.url)  # 3 events per order
        for _ in range(2):
            assert order(hook_client, shop.a.headers).status_code == 201
        expected = event_ids(db)
        process = start_worker(database_url, tmp_path)
        try:
            assert second_arrived.wait(timeout=ARRIVAL_S), "the worker sent nothing"
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=ARRIVAL_S)
        finally:
            if process.poll() is None:
                process.kill()
            release.set()
        before = webhook_ids(receiver)
        assert len(before) == 2
        recorded = attempts(db)
        assert [a.delivery_id for a in recorded] in ([], [deliveries(db)[0].id])
        assert all(d.state == "pending" for d in deliveries(db)[len(recorded) :])
        with httpx.Client(timeout=10) as sender:
            later = utcnow() + delivery.LOCK + timedelta(seconds=1)
            assert delivery.run_once(db, vault, sender, allow_private=True, now=later) == 6 - len(
                recorded
            )
        got = webhook_ids(receiver)
    assert sorted(set(got)) == sorted(expected)  # nothing lost
    assert got.count(before[1]) == 2  # the unanswered one was sent again
    assert len(got) == 8 - len(recorded)  # and nothing else twice but the unrecorded
    assert [(d.state, d.attempts) for d in deliveries(db)] == [("succeeded", 1)] * 6
    assert len(attempts(db)) == 6
    assert all(d.lock_token is None and d.locked_until is None for d in deliveries(db))


# One batch, every kind of outcome


def test_one_batch_records_each_outcome_and_a_410_ends_only_its_own_queue(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    """A's receiver answers 200, 500, then 429 with Retry-After, in turn; B's answers 410. One
    pass: A's three are recorded each as it went, B's first fails and disables B, which is
    sent nothing more, and its other two fail with it. Every hold is released."""
    answers = iter([(200, {}), (500, {}), (429, {"Retry-After": "3600"})])
    lock = threading.Lock()

    def a_answer(_got: Received) -> tuple[int, dict[str, str]]:
        with lock:
            return next(answers)

    with Receiver(a_answer) as a_receiver, Receiver(lambda _: (410, {})) as b_receiver:
        a_endpoint = register(hook_client, shop.a.headers, a_receiver.url)
        b_endpoint = register(hook_client, shop.b.headers, b_receiver.url)
        assert order(hook_client, shop.a.headers).status_code == 201
        assert order(hook_client, shop.b.headers).status_code == 201
        t0 = utcnow()
        with httpx.Client(timeout=10) as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True, now=t0) == 6
            assert delivery.run_once(db, vault, sender, allow_private=True, now=t0) == 0
        assert len(a_receiver.received) == 3 and len(b_receiver.received) == 1
    rows = deliveries(db)
    a_rows, b_rows = rows[:3], rows[3:]
    assert [(d.state, d.attempts) for d in a_rows] == [
        ("succeeded", 1),
        ("pending", 1),
        ("pending", 1),
    ]
    assert a_rows[0].completed_at == t0
    assert t0 + timedelta(seconds=4) <= a_rows[1].next_attempt_at <= t0 + timedelta(seconds=6)
    assert a_rows[2].next_attempt_at >= t0 + timedelta(seconds=3600)
    assert [(d.state, d.attempts) for d in b_rows] == [("failed", 1), ("failed", 0), ("failed", 0)]
    assert all(d.completed_at == t0 for d in b_rows)
    assert all(d.lock_token is None and d.locked_until is None for d in rows)
    log = attempts(db)
    assert [
        (a.delivery_id, a.number, a.status_code)
        for a in log
        if a.delivery_id in {d.id for d in a_rows}
    ] == [(a_rows[0].id, 1, 200), (a_rows[1].id, 1, 500), (a_rows[2].id, 1, 429)]
    assert [(a.delivery_id, a.status_code) for a in log if a.delivery_id == b_rows[0].id] == [
        (b_rows[0].id, 410)
    ]
    assert len(log) == 4
    assert all(a.started_at == t0 and a.response_excerpt == "ok" for a in log)
    shown = {
        endpoint: hook_client.get(f"{HOOKS}/{endpoint}", headers=headers).json()["status"]
        for endpoint, headers in ((a_endpoint, shop.a.headers), (b_endpoint, shop.b.headers))
    }
    assert shown == {a_endpoint: "active", b_endpoint: "disabled"}


def test_a_long_queue_checks_its_holds_as_it_goes(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    """The partner deletes its endpoint while its first webhook is being answered, slowly: the
    queue, checking its holds before going on, sends nothing more. As before batching, an
    attempt whose delivery failed meanwhile (here, with its endpoint) is not recorded."""

    def answer(_got: Received) -> tuple[int, dict[str, str]]:
        deleted = hook_client.delete(f"{HOOKS}/{endpoint}", headers=shop.a.headers)
        assert deleted.status_code == 204
        time.sleep(delivery.CHECKPOINT * 1.2)  # longer than a queue goes without checking
        return 200, {}

    with Receiver(answer) as receiver:
        endpoint = register(hook_client, shop.a.headers, receiver.url)  # 3 events per order
        assert order(hook_client, shop.a.headers).status_code == 201
        with httpx.Client(timeout=10) as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 3
        assert len(receiver.received) == 1
    rows = deliveries(db)
    assert [(d.state, d.attempts) for d in rows] == [("failed", 0)] * 3
    assert attempts(db) == []


def test_the_loop_sends_batch_after_batch_and_nothing_after_a_410(
    hook_client: httpx.Client,
    hook_settings: Settings,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
) -> None:
    """The worker's loop, two deliveries a batch: every one of A's nine webhooks arrives once
    and is recorded once; B's receiver answers 410, and B is sent nothing more in the passes
    that follow."""
    settings = hook_settings.model_copy(update={"worker_poll_seconds": 0.05})
    passes = [0]
    stop = threading.Event()

    def stopping() -> bool:
        passes[0] += 1
        return stop.is_set()

    with Receiver() as a_receiver, Receiver(lambda _: (410, {})) as b_receiver:
        register(hook_client, shop.a.headers, a_receiver.url)
        b_endpoint = register(hook_client, shop.b.headers, b_receiver.url)
        for headers in (shop.a.headers, shop.b.headers, shop.a.headers, shop.a.headers):
            assert order(hook_client, headers).status_code == 201
        loop = threading.Thread(
            target=worker.run, args=(settings, db, vault), kwargs={"batch": 2, "stopping": stopping}
        )
        loop.start()
        try:

            def settled() -> bool:
                return all(d.state != "pending" for d in deliveries(db))

            wait_until(settled, "every delivery settled")
            seen = passes[0]
            wait_until(lambda: passes[0] >= seen + 3, "three more passes")
        finally:
            stop.set()
            loop.join(timeout=ARRIVAL_S)
        assert not loop.is_alive()
        a_ids = webhook_ids(a_receiver)
    assert len(a_ids) == len(set(a_ids)) == 9
    assert len(b_receiver.received) == 1
    rows = deliveries(db)
    assert sorted((d.state, d.attempts) for d in rows) == sorted(
        [("succeeded", 1)] * 9 + [("failed", 1)] + [("failed", 0)] * 2
    )
    assert len(attempts(db)) == 10
    assert all(d.lock_token is None and d.locked_until is None for d in rows)
    shown = hook_client.get(f"{HOOKS}/{b_endpoint}", headers=shop.b.headers).json()
    assert shown["status"] == "disabled"
