"""Webhooks from the outbox to a real receiver on loopback, verified with `standardwebhooks`."""

from __future__ import annotations

import json

import httpx
from standardwebhooks.webhooks import Webhook

from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.webhooks import delivery
from tests.fixtures import factories
from tests.fixtures.http import order
from tests.fixtures.receiver import Receiver


def test_an_order_is_announced_by_signed_webhooks(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    with Receiver() as receiver:
        created = hook_client.post(
            "/api/v1/webhook-endpoints",
            json={"url": receiver.url, "event_types": ["order.fulfilled", "order.created"]},
            headers=shop.a.headers,
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        placed = order(hook_client, shop.a.headers).json()
        with httpx.Client() as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 2
        assert len(receiver.received) == 2
        verified = [Webhook(secret).verify(r.body, r.headers) for r in receiver.received]
    assert [event["event"] for event in verified] == ["order.created", "order.fulfilled"]
    assert {event["order_id"] for event in verified} == {placed["id"]}
    assert verified[1]["status"] == "delivered"
    feed = hook_client.get("/api/v1/events", headers=shop.a.headers).json()
    assert [e["type"] for e in feed["data"]] == ["order.created", "order.paid", "order.fulfilled"]
    assert feed["data"][2]["payload"] == json.loads(receiver.received[1].body)
