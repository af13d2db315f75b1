"""No endpoint holds up another's deliveries: the worker loop sends each endpoint in a lane of
its own and never waits for a slow one. The real loop in a thread, real receivers on loopback;
the assertions are on the order of events, not on speed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import select

from codeshelf import worker
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.webhooks.models import Delivery, WebhookEndpoint
from tests.fixtures import factories
from tests.fixtures.http import order
from tests.fixtures.receiver import Received, Receiver

pytestmark = pytest.mark.live


def _register(client: httpx.Client, headers: dict[str, str], url: str) -> None:
    body = {"url": url, "event_types": ["order.fulfilled"]}
    created = client.post("/api/v1/webhook-endpoints", json=body, headers=headers)
    assert created.status_code == 201, created.text


def _states(db: Database, url: str) -> list[str]:
    with db.read_session() as session:
        query = (
            select(Delivery.state)
            .join(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
            .where(WebhookEndpoint.url == url)
        )
        return list(session.scalars(query))


def _until(condition: Callable[[], bool], seconds: float = 10) -> bool:
    """Liveness, with a generous deadline: whether ``condition`` came true in time."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@contextmanager
def running_worker(settings: Settings, db: Database, vault: Vault) -> Iterator[None]:
    stop = threading.Event()
    quick = settings.model_copy(update={"worker_poll_seconds": 0.05})
    loop = threading.Thread(
        target=worker.run, args=(quick, db, vault), kwargs={"stopping": stop.is_set}
    )
    loop.start()
    try:
        yield
    finally:
        stop.set()
        loop.join(timeout=60)
        assert not loop.is_alive()


def test_partner_b_is_delivered_while_partner_as_receiver_hangs(
    hook_client: httpx.Client,
    hook_settings: Settings,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
) -> None:
    events: list[str] = []
    release_a = threading.Event()

    def hang(_got: Received) -> tuple[int, dict[str, str]]:
        events.append("A received")
        release_a.wait(timeout=12)  # within the attempt's deadline: a slow success at the end
        events.append("A answered")
        return 200, {}

    def fast(_got: Received) -> tuple[int, dict[str, str]]:
        events.append("B received")
        return 200, {}

    with (
        Receiver(hang) as receiver_a,
        Receiver(fast) as receiver_b,
        running_worker(hook_settings, db, vault),
    ):
        _register(hook_client, shop.a.headers, receiver_a.url)
        _register(hook_client, shop.b.headers, receiver_b.url)
        order(hook_client, shop.a.headers)
        assert _until(lambda: "A received" in events)  # A's receiver now holds its attempt
        order(hook_client, shop.b.headers)
        b_recorded = _until(lambda: _states(db, receiver_b.url) == ["succeeded"])
        a_meanwhile = _states(db, receiver_a.url)
        release_a.set()
        assert b_recorded, events
        assert a_meanwhile == ["pending"]  # B went out and was recorded while A still hung
        assert _until(lambda: _states(db, receiver_a.url) == ["succeeded"])
    assert events == ["A received", "B received", "A answered"]


def _all_succeeded(db: Database) -> bool:
    with db.read_session() as session:
        return set(session.scalars(select(Delivery.state))) == {"succeeded"}


def test_two_workers_with_lanes_deliver_every_webhook_exactly_once(
    hook_client: httpx.Client,
    hook_settings: Settings,
    db: Database,
    vault: Vault,
    shop: factories.Shop,
) -> None:
    # Small batches: lanes go on claiming their endpoint's next ones while both workers' passes
    # claim for the others, on one database.
    small = hook_settings.model_copy(update={"worker_poll_seconds": 0.05})
    with (
        Receiver() as a1,
        Receiver() as a2,
        Receiver() as a3,
        Receiver() as b1,
        Receiver() as b2,
    ):
        receivers = [(a1, shop.a), (a2, shop.a), (a3, shop.a), (b1, shop.b), (b2, shop.b)]
        for receiver, partner in receivers:
            created = hook_client.post(
                "/api/v1/webhook-endpoints", json={"url": receiver.url}, headers=partner.headers
            )
            assert created.status_code == 201, created.text
        for _ in range(3):
            order(hook_client, shop.a.headers)
            order(hook_client, shop.b.headers)
        with running_batches(small, db, vault, workers=2, batch=4):
            assert _until(lambda: _all_succeeded(db), seconds=60)
        feed = {
            partner.id: sorted(
                e["id"]
                for e in hook_client.get(
                    "/api/v1/events?limit=100", headers=partner.headers
                ).json()["data"]
            )
            for partner in (shop.a, shop.b)
        }
    for receiver, partner in receivers:
        got = sorted(r.headers["webhook-id"] for r in receiver.received)
        assert got == feed[partner.id]  # every event of its partner, each exactly once
    with db.read_session() as session:
        assert set(session.scalars(select(Delivery.attempts))) == {1}


@contextmanager
def running_batches(
    settings: Settings, db: Database, vault: Vault, *, workers: int, batch: int
) -> Iterator[None]:
    """``workers`` worker loops on one database, each in a thread, claiming ``batch`` at a time."""
    stop = threading.Event()
    loops = [
        threading.Thread(
            target=worker.run,
            args=(settings, db, vault),
            kwargs={"stopping": stop.is_set, "batch": batch},
        )
        for _ in range(workers)
    ]
    for loop in loops:
        loop.start()
    try:
        yield
    finally:
        stop.set()
        for loop in loops:
            loop.join(timeout=60)
        assert not any(loop.is_alive() for loop in loops)
