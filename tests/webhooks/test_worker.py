"""The delivery worker against a real receiver on loopback: retries and their schedule, failures,
Retry-After, 410, disabling, killed and concurrent workers, replay and the CLI. Time is moved by
passing ``now`` explicitly."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.webhooks import delivery
from codeshelf.webhooks.models import Delivery, DeliveryAttempt, Event
from tests.fixtures import factories
from tests.fixtures.http import order
from tests.fixtures.receiver import Received, Receiver, scripted, webhook_ids

# The worker's own transactions, threads and receivers are the point: real commits.
pytestmark = pytest.mark.live

HOOKS = "/api/v1/webhook-endpoints"


@pytest.fixture
def sender() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


def register(
    client: httpx.Client, headers: dict[str, str], url: str, types: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "event_types": types or []}
    response = client.post(HOOKS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def log_of(client: httpx.Client, headers: dict[str, str], endpoint_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{HOOKS}/{endpoint_id}/deliveries", headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def only_delivery(db: Database) -> Delivery:
    with db.read_session() as session:
        [row] = session.scalars(select(Delivery)).all()
        return row


def event_ids(db: Database, event_type: str | None = None) -> list[str]:
    with db.read_session() as session:
        query = select(Event.public_id).order_by(Event.id)
        if event_type:
            query = query.where(Event.type == event_type)
        return list(session.scalars(query))


def attempts_in_db(db: Database) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).select_from(DeliveryAttempt)) or 0


def run(db: Database, vault: Vault, client: httpx.Client, now: datetime, batch: int = 50) -> int:
    return delivery.run_once(db, vault, client, allow_private=True, batch=batch, now=now)


def test_a_failing_receiver_gets_it_on_the_third_attempt(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    sender: httpx.Client,
) -> None:
    answer = scripted((500, {}), (500, {}), (200, {}))
    with Receiver(answer) as receiver:
        endpoint = register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        order(hook_client, shop.a.headers)
        t0 = utcnow()
        assert run(db, vault, sender, t0) == 1
        assert run(db, vault, sender, t0 + timedelta(seconds=1)) == 0  # not due yet: backoff
        assert run(db, vault, sender, t0 + timedelta(hours=1)) == 1
        assert run(db, vault, sender, t0 + timedelta(hours=2)) == 1
        assert run(db, vault, sender, t0 + timedelta(hours=3)) == 0  # delivered: done
    [event_id] = event_ids(db, "order.fulfilled")
    assert webhook_ids(receiver) == [event_id] * 3  # stable across retries
    log = log_of(hook_client, shop.a.headers, endpoint["id"])
    assert [a["attempt"] for a in log] == [3, 2, 1]
    assert [a["status_code"] for a in log] == [200, 500, 500]
    assert {a["event_id"] for a in log} == {event_id}
    assert {a["event_type"] for a in log} == {"order.fulfilled"}
    assert all(isinstance(a["latency_ms"], int) and a["latency_ms"] >= 0 for a in log)
    assert all(a["response_excerpt"] == "ok" and a["error"] is None for a in log)
    assert {a["delivery_state"] for a in log} == {"succeeded"}
    row = only_delivery(db)
    assert row.state == "succeeded" and row.attempts == 3
    assert hook_client.get(f"{HOOKS}/{endpoint['id']}", headers=shop.a.headers).json()[
        "status"
    ] == ("active")


def test_non_2xx_and_timeouts_are_failures(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    slow = threading.Event()

    def answer(_: Received) -> tuple[int, dict[str, str]]:
        if slow.is_set():
            time.sleep(1.0)
            return 200, {}
        return 302, {"Location": "https://example.com/"}

    with Receiver(answer) as receiver, httpx.Client(timeout=0.2) as impatient:
        endpoint = register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        order(hook_client, shop.a.headers)
        t0 = utcnow()
        assert run(db, vault, impatient, t0) == 1  # a redirect is not followed, not a success
        slow.set()
        assert run(db, vault, impatient, t0 + timedelta(minutes=1)) == 1  # too slow: timed out
        assert len(receiver.received) == 2
    log = log_of(hook_client, shop.a.headers, endpoint["id"])
    assert [(a["attempt"], a["status_code"]) for a in log] == [(2, None), (1, 302)]
    assert log[0]["error"] == "timed out"
    row = only_delivery(db)
    assert row.state == "pending" and row.attempts == 2
    assert row.next_attempt_at > t0 + timedelta(minutes=1)


def test_retry_after_is_honoured(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    sender: httpx.Client,
) -> None:
    answer = scripted((429, {"Retry-After": "120"}), (200, {}))
    with Receiver(answer) as receiver:
        register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        order(hook_client, shop.a.headers)
        t0 = utcnow()
        assert run(db, vault, sender, t0) == 1
        assert only_delivery(db).next_attempt_at >= t0 + timedelta(seconds=120)
        assert run(db, vault, sender, t0 + timedelta(seconds=60)) == 0
        assert run(db, vault, sender, t0 + timedelta(seconds=119)) == 0
        assert run(db, vault, sender, t0 + timedelta(seconds=121)) == 1
    assert len(receiver.received) == 2
    assert only_delivery(db).state == "succeeded"


def test_410_fails_the_delivery_at_once_and_disables_the_endpoint(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    sender: httpx.Client,
) -> None:
    with Receiver(lambda _: (410, {})) as receiver:
        endpoint = register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        order(hook_client, shop.a.headers)
        t0 = utcnow()
        assert run(db, vault, sender, t0) == 1
        row = only_delivery(db)
        assert row.state == "failed" and row.attempts == 1 and row.completed_at is not None
        seen = hook_client.get(f"{HOOKS}/{endpoint['id']}", headers=shop.a.headers).json()
        assert seen["status"] == "disabled"
        assert "410" in seen["disabled_reason"]
        # Nothing more for it: no retry, and new events are not queued to a disabled endpoint.
        order(hook_client, shop.a.headers)
        assert run(db, vault, sender, t0 + timedelta(days=4)) == 0
        assert len(receiver.received) == 1
    log = log_of(hook_client, shop.a.headers, endpoint["id"])
    assert [(a["attempt"], a["status_code"], a["delivery_state"]) for a in log] == [
        (1, 410, "failed")
    ]


def test_after_410_the_rest_of_the_queue_is_not_sent(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    sender: httpx.Client,
) -> None:
    """ "On 410 stop": once the receiver said Gone, its other queued events are not sent."""
    with Receiver(lambda _: (410, {})) as receiver:
        endpoint = register(hook_client, shop.a.headers, receiver.url)  # 3 events per order
        order(hook_client, shop.a.headers)
        t0 = utcnow()
        assert run(db, vault, sender, t0, batch=1) == 1
        seen = hook_client.get(f"{HOOKS}/{endpoint['id']}", headers=shop.a.headers).json()
        assert seen["status"] == "disabled"
        for minutes in range(1, 4):
            run(db, vault, sender, t0 + timedelta(minutes=minutes), batch=1)
        assert len(receiver.received) == 1, "requests kept going to a disabled endpoint"


def test_exhausting_the_schedule_fails_it_and_disables_the_endpoint(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    sender: httpx.Client,
) -> None:
    with Receiver(lambda _: (503, {})) as receiver:
        endpoint = register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        order(hook_client, shop.a.headers)
        now = utcnow()
        first = now
        waits: list[timedelta] = []
        for number in range(1, 11):
            assert run(db, vault, sender, now) == 1, f"attempt {number} not due"
            row = only_delivery(db)
            assert row.attempts == number
            if number < 10:
                assert row.state == "pending"
                waits.append(row.next_attempt_at - now)
                assert run(db, vault, sender, row.next_attempt_at - timedelta(seconds=1)) == 0
                now = row.next_attempt_at
        assert run(db, vault, sender, now + timedelta(days=7)) == 0
        assert len(receiver.received) == 10
    for wait, nominal in zip(waits, delivery.RETRY_DELAYS, strict=True):
        assert nominal * 0.89 <= wait <= nominal * 1.11  # the schedule, with jitter
    assert now - first >= timedelta(days=1)  # it spans at least a day
    row = only_delivery(db)
    assert row.state == "failed" and row.completed_at is not None
    seen = hook_client.get(f"{HOOKS}/{endpoint['id']}", headers=shop.a.headers).json()
    assert seen["status"] == "disabled"
    assert seen["disabled_reason"]
    log = log_of(hook_client, shop.a.headers, endpoint["id"])
    assert [a["attempt"] for a in log] == list(range(10, 0, -1))
    assert {a["status_code"] for a in log} == {503}
    assert {a["delivery_state"] for a in log} == {"failed"}


def test_a_worker_killed_mid_delivery_is_taken_over_after_the_lock(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    sender: httpx.Client,
) -> None:
    with Receiver() as receiver:
        register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        order(hook_client, shop.a.headers)
        t0 = utcnow()
        [(delivery_id, dead_token)] = delivery.claim_due(db, t0, 10)  # then "killed"
        assert run(db, vault, sender, t0 + timedelta(seconds=30)) == 0  # still held
        assert receiver.received == []
        assert run(db, vault, sender, t0 + timedelta(seconds=61)) == 1
        [event_id] = event_ids(db, "order.fulfilled")
        assert webhook_ids(receiver) == [event_id]
        # The dead worker's hold is gone: were it to wake up, it sends and records nothing.
        late = delivery.attempt(
            db,
            vault,
            sender,
            delivery_id,
            dead_token,
            allow_private=True,
            now=t0 + timedelta(seconds=62),
        )
        assert late is None
        assert len(receiver.received) == 1
    assert attempts_in_db(db) == 1
    row = only_delivery(db)
    assert row.state == "succeeded" and row.attempts == 1


def test_a_hold_is_renewed_before_each_send_so_no_second_worker_sends_it_at_once(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    sender: httpx.Client,
) -> None:
    # A worker reaches a batch's delivery 59 s after claiming it (slow receivers before it).
    # While that send is in flight, its first hold runs out; another worker must not take it.
    taken_by_other: list[list[tuple[int, str]]] = []
    t0 = utcnow()

    def answer(_got: Received) -> tuple[int, dict[str, str]]:
        taken_by_other.append(delivery.claim_due(db, t0 + timedelta(seconds=61), 10))
        return 200, {}

    with Receiver(answer) as receiver:
        register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        order(hook_client, shop.a.headers)
        t0 = utcnow()
        [(delivery_id, token)] = delivery.claim_due(db, t0, 10)
        sent = delivery.attempt(
            db,
            vault,
            sender,
            delivery_id,
            token,
            allow_private=True,
            now=t0 + timedelta(seconds=59),
        )
        assert sent is not None and sent.delivered
    assert taken_by_other == [[]]
    assert len(receiver.received) == 1
    assert only_delivery(db).state == "succeeded"


def test_a_slow_receiver_does_not_hold_up_another_partners_webhooks(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    sender: httpx.Client,
) -> None:
    # A's receiver answers only once B's has received its webhook (or gives up after 20 s):
    # a worker sending one endpoint after the other would make B wait behind A.
    b_received = threading.Event()
    b_was_served_meanwhile: list[bool] = []

    def slow(_got: Received) -> tuple[int, dict[str, str]]:
        b_was_served_meanwhile.append(b_received.wait(timeout=20))
        return 200, {}

    def fast(_got: Received) -> tuple[int, dict[str, str]]:
        b_received.set()
        return 200, {}

    with Receiver(slow) as receiver_a, Receiver(fast) as receiver_b:
        register(hook_client, shop.a.headers, receiver_a.url, ["order.fulfilled"])
        register(hook_client, shop.b.headers, receiver_b.url, ["order.fulfilled"])
        order(hook_client, shop.a.headers)
        order(hook_client, shop.b.headers)
        assert run(db, vault, sender, utcnow() + timedelta(seconds=1)) == 2
    assert b_was_served_meanwhile == [True]
    assert len(receiver_b.received) == 1


def test_a_lost_hold_records_nothing_even_mid_send(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    sender: httpx.Client,
) -> None:
    with Receiver(lambda _: (500, {})) as receiver:
        register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        order(hook_client, shop.a.headers)
        t0 = utcnow()
        [(delivery_id, stale)] = delivery.claim_due(db, t0, 10)
        [(same_id, fresh)] = delivery.claim_due(db, t0 + timedelta(seconds=61), 10)
        assert same_id == delivery_id and fresh != stale
        assert delivery.attempt(db, vault, sender, delivery_id, stale, allow_private=True) is None
        assert receiver.received == []
        assert attempts_in_db(db) == 0
        outcome = delivery.attempt(
            db,
            vault,
            sender,
            delivery_id,
            fresh,
            allow_private=True,
            now=t0 + timedelta(seconds=61),
        )
        assert outcome is not None and outcome.status_code == 500
    assert attempts_in_db(db) == 1
    assert only_delivery(db).attempts == 1


def test_concurrent_workers_deliver_each_event_exactly_once(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    with Receiver() as receiver:
        register(hook_client, shop.a.headers, receiver.url)
        for _ in range(4):
            assert order(hook_client, shop.a.headers).status_code == 201
        expected = event_ids(db)
        assert len(expected) == 12
        start = threading.Barrier(4)
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                with httpx.Client(timeout=10) as http:
                    start.wait()
                    while delivery.run_once(db, vault, http, allow_private=True, batch=2):
                        pass
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        got = webhook_ids(receiver)
    assert len(got) == len(set(got)), "an event was delivered twice"
    assert sorted(got) == sorted(expected)
    assert attempts_in_db(db) == 12
    with db.read_session() as session:
        states = session.scalars(select(Delivery.state)).all()
    assert states == ["succeeded"] * 12


# Replay and the CLI


def test_replay_log_and_unknown_ids(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    sender: httpx.Client,
    database_url: str,
) -> None:
    with Receiver() as receiver:
        endpoint = register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        order(hook_client, shop.a.headers)
        [event_id] = event_ids(db, "order.fulfilled")
        assert run(db, vault, sender, utcnow()) == 1

        replayed = factories.run_cli(database_url, "webhooks", "replay", event_id, "--json")
        assert replayed.exit_code == 0, replayed.stderr
        assert json.loads(replayed.stdout) == {"event_id": event_id, "endpoints": [endpoint["id"]]}
        assert run(db, vault, sender, utcnow()) == 1
        assert run(db, vault, sender, utcnow()) == 0
        assert webhook_ids(receiver) == [event_id, event_id]
        assert receiver.received[0].body == receiver.received[1].body

    logged = factories.run_cli(database_url, "webhooks", "log", endpoint["id"], "--json")
    assert logged.exit_code == 0, logged.stderr
    data = json.loads(logged.stdout)
    assert data["endpoint_id"] == endpoint["id"] and data["partner_id"] == shop.a.id
    assert data["status"] == "active"
    assert [(a["event_id"], a["attempt"], a["status_code"]) for a in data["attempts"]] == [
        (event_id, 1, 200),
        (event_id, 1, 200),
    ]
    assert all(a["delivery_state"] == "succeeded" for a in data["attempts"])
    human = factories.run_cli(database_url, "webhooks", "log", endpoint["id"])
    assert human.exit_code == 0 and endpoint["id"] in human.stdout

    for args in (
        ("webhooks", "replay", "evt_" + "0" * 20),
        ("webhooks", "replay", "nonsense"),
        ("webhooks", "log", "whe_" + "0" * 20),
    ):
        result = factories.run_cli(database_url, *args)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr + result.stdout


def test_worker_once_delivers_what_is_due(
    hook_client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with Receiver() as receiver:
        endpoint = register(hook_client, shop.a.headers, receiver.url)
        order(hook_client, shop.a.headers)
        try:
            result = factories.run_cli(
                database_url, "worker", "--once", env={"CODESHELF_WEBHOOK_ALLOW_PRIVATE": "true"}
            )
        finally:
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])
        assert result.exit_code == 0, result.stderr
        assert sorted(webhook_ids(receiver)) == sorted(event_ids(db))
        assert len(receiver.received) == 3
    log = log_of(hook_client, shop.a.headers, endpoint["id"])
    assert {a["delivery_state"] for a in log} == {"succeeded"}


def test_worker_refuses_a_private_address_without_the_setting(
    hook_client: httpx.Client, db: Database, shop: factories.Shop, database_url: str
) -> None:
    """An endpoint registered while private addresses were allowed is not sent to once they
    are not: the check is made again at send time (DNS may have changed too)."""
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with Receiver() as receiver:
        endpoint = register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        order(hook_client, shop.a.headers)
        try:
            result = factories.run_cli(database_url, "worker", "--once")
        finally:
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])
        assert result.exit_code == 0, result.stderr
        assert receiver.received == []
    [attempt] = log_of(hook_client, shop.a.headers, endpoint["id"])
    assert attempt["status_code"] is None and attempt["error"].startswith("refused")


def test_a_disabled_endpoint_can_be_enabled_and_sent_a_replay(
    hook_client: httpx.Client,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
    database_url: str,
) -> None:
    with Receiver(lambda _: (410, {})) as gone:
        endpoint = register(hook_client, shop.a.headers, gone.url, ["order.fulfilled"])
        order(hook_client, shop.a.headers)
        with httpx.Client() as sender:
            assert run(db, vault, sender, utcnow()) == 1
    shown = hook_client.get(f"{HOOKS}/{endpoint['id']}", headers=shop.a.headers).json()
    assert shown["status"] == "disabled"
    enabled = hook_client.post(f"{HOOKS}/{endpoint['id']}/enable", headers=shop.a.headers)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["status"] == "active" and enabled.json()["disabled_reason"] is None
    events = hook_client.get("/api/v1/events?type=order.fulfilled", headers=shop.a.headers).json()
    event_id = events["data"][0]["id"]
    with Receiver() as back:
        moved = hook_client.delete(f"{HOOKS}/{endpoint['id']}", headers=shop.a.headers)
        assert moved.status_code == 204
        register(hook_client, shop.a.headers, back.url, ["order.fulfilled"])
        replayed = factories.run_cli(database_url, "webhooks", "replay", event_id, "--json")
        assert replayed.exit_code == 0, replayed.stderr
        with httpx.Client() as sender:
            assert run(db, vault, sender, utcnow()) == 1
        assert [r.headers["webhook-id"] for r in back.received] == [event_id]
