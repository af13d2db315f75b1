"""The webhook endpoints API: registration, secrets and their rotation, URL rules (SSRF),
partners kept apart; signatures checked with the `standardwebhooks` reference verifier."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.webhooks import delivery, signing, urls
from codeshelf.webhooks.models import EVENT_TYPES, WebhookEndpoint
from tests.fixtures import factories
from tests.fixtures.http import assert_problem, order
from tests.fixtures.receiver import Receiver

HOOKS = "/api/v1/webhook-endpoints"


def register(
    client: httpx.Client, headers: dict[str, str], url: str, types: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if types is not None:
        body["event_types"] = types
    response = client.post(HOOKS, json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def test_create_list_get_rotate_delete(hook_client: httpx.Client, shop: factories.Shop) -> None:
    url = "http://127.0.0.1:9/hooks"
    response = hook_client.post(HOOKS, json={"url": url}, headers=shop.a.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"{HOOKS}/{created['id']}"
    assert created["id"].startswith("whe_")
    assert created["url"] == url
    assert created["status"] == "active" and created["disabled_reason"] is None
    assert created["secret"].startswith("whsec_")
    assert sorted(created["event_types"]) == sorted(EVENT_TYPES)  # none named: every event

    got = hook_client.get(f"{HOOKS}/{created['id']}", headers=shop.a.headers)
    assert got.status_code == 200
    assert got.json().get("secret") is None
    assert got.json()["id"] == created["id"]
    listed = hook_client.get(HOOKS, headers=shop.a.headers).json()["data"]
    assert [e["id"] for e in listed] == [created["id"]]
    assert all(e.get("secret") is None for e in listed)
    assert created["secret"] not in json.dumps(listed)

    rotated = hook_client.post(f"{HOOKS}/{created['id']}/rotate-secret", headers=shop.a.headers)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != created["secret"]
    again = hook_client.get(f"{HOOKS}/{created['id']}", headers=shop.a.headers).json()
    assert again.get("secret") is None

    deleted = hook_client.delete(f"{HOOKS}/{created['id']}", headers=shop.a.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(
        hook_client.get(f"{HOOKS}/{created['id']}", headers=shop.a.headers),
        404,
        "webhook-endpoint-not-found",
    )
    assert hook_client.get(HOOKS, headers=shop.a.headers).json()["data"] == []
    assert_problem(
        hook_client.delete(f"{HOOKS}/{created['id']}", headers=shop.a.headers),
        404,
        "webhook-endpoint-not-found",
    )


def test_deleting_an_endpoint_stops_its_pending_deliveries(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    with Receiver() as receiver:
        endpoint = register(hook_client, shop.a.headers, receiver.url)
        assert order(hook_client, shop.a.headers).status_code == 201
        gone = hook_client.delete(f"{HOOKS}/{endpoint['id']}", headers=shop.a.headers)
        assert gone.status_code == 204
        with httpx.Client() as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 0
        assert receiver.received == []


def test_event_types_filter(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    unknown = hook_client.post(
        HOOKS,
        json={"url": "http://127.0.0.1:9/", "event_types": ["order.paid", "order.shipped"]},
        headers=shop.a.headers,
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert hook_client.get(HOOKS, headers=shop.a.headers).json()["data"] == []

    everything = register(hook_client, shop.a.headers, "http://127.0.0.1:9/", [])
    assert sorted(everything["event_types"]) == sorted(EVENT_TYPES)
    hook_client.delete(f"{HOOKS}/{everything['id']}", headers=shop.a.headers)

    with Receiver() as receiver:
        paid_only = register(hook_client, shop.a.headers, receiver.url, ["order.paid"])
        assert paid_only["event_types"] == ["order.paid"]
        placed = order(hook_client, shop.a.headers).json()
        with httpx.Client() as sender:
            assert delivery.run_once(db, vault, sender, allow_private=True) == 1
        [got] = receiver.received
    body = Webhook(paid_only["secret"]).verify(got.body, got.headers)
    assert body["event"] == "order.paid" and body["order_id"] == placed["id"]


def test_at_most_ten_endpoints(hook_client: httpx.Client, shop: factories.Shop) -> None:
    ids = [
        register(hook_client, shop.a.headers, f"http://127.0.0.1:9/{n}")["id"] for n in range(10)
    ]
    eleventh = hook_client.post(HOOKS, json={"url": "http://127.0.0.1:9/x"}, headers=shop.a.headers)
    assert_problem(eleventh, 422, "validation-error")
    assert len(hook_client.get(HOOKS, headers=shop.a.headers).json()["data"]) == 10
    # Another partner has a quota of its own; a deleted endpoint frees a place.
    register(hook_client, shop.b.headers, "http://127.0.0.1:9/b")
    assert hook_client.delete(f"{HOOKS}/{ids[0]}", headers=shop.a.headers).status_code == 204
    register(hook_client, shop.a.headers, "http://127.0.0.1:9/again")


def test_another_partners_endpoint_is_not_found_everywhere(
    hook_client: httpx.Client, shop: factories.Shop
) -> None:
    mine = register(hook_client, shop.a.headers, "http://127.0.0.1:9/a")
    base = f"{HOOKS}/{mine['id']}"
    slug = "webhook-endpoint-not-found"
    assert_problem(hook_client.get(base, headers=shop.b.headers), 404, slug)
    assert_problem(hook_client.delete(base, headers=shop.b.headers), 404, slug)
    assert_problem(hook_client.post(f"{base}/rotate-secret", headers=shop.b.headers), 404, slug)
    assert_problem(hook_client.get(f"{base}/deliveries", headers=shop.b.headers), 404, slug)
    assert hook_client.get(HOOKS, headers=shop.b.headers).json()["data"] == []
    # Untouched for its owner: still there, secret not rotated.
    assert hook_client.get(base, headers=shop.a.headers).status_code == 200
    assert hook_client.get(f"{base}/deliveries", headers=shop.a.headers).json()["data"] == []


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hooks",
        "https://127.0.0.1/",
        "https://10.0.0.1/",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/",
        "https://[::127.0.0.1]/",  # IPv4-compatible IPv6: loopback inside
        "https://[::ffff:10.0.0.1]/",  # IPv4-mapped
        "https://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "https://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
        "https://[fe80::1%25eth0]/",
        "https://192.0.0.8/",  # IETF protocol assignments
        "https://100.64.0.1/",  # carrier-grade NAT
        "https://localhost/",
        "https://user:pass@example.com/",
        "ftp://example.com/",
    ],
)
def test_private_or_unsafe_urls_are_refused(
    client: httpx.Client, shop: factories.Shop, url: str
) -> None:
    response = client.post(HOOKS, json={"url": url}, headers=shop.a.headers)
    assert_problem(response, 422, "webhook-url-refused")
    assert client.get(HOOKS, headers=shop.a.headers).json()["data"] == []


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "1.1.1.1"])
def test_public_addresses_pass_the_filter(address: str) -> None:
    assert not urls._is_internal(address)


def test_allow_private_accepts_loopback_http_but_never_credentials(
    hook_client: httpx.Client, shop: factories.Shop
) -> None:
    register(hook_client, shop.a.headers, "http://127.0.0.1:8080/hooks")
    register(hook_client, shop.a.headers, "http://localhost:8080/hooks")
    refused = hook_client.post(
        HOOKS, json={"url": "http://user:pass@127.0.0.1/"}, headers=shop.a.headers
    )
    assert_problem(refused, 422, "webhook-url-refused")


# Signing and rotation


def _deliver_one(db: Database, vault: Vault, receiver: Receiver, **kwargs: Any) -> Any:
    before = len(receiver.received)
    with httpx.Client() as sender:
        assert delivery.run_once(db, vault, sender, allow_private=True, **kwargs) == 1
    assert len(receiver.received) == before + 1
    return receiver.received[-1]


def test_rotation_signs_with_both_secrets_for_24_hours(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    with Receiver() as receiver:
        endpoint = register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        old = endpoint["secret"]
        order(hook_client, shop.a.headers)
        before = _deliver_one(db, vault, receiver)
        assert len(before.headers["webhook-signature"].split(" ")) == 1
        Webhook(old).verify(before.body, before.headers)

        new = hook_client.post(
            f"{HOOKS}/{endpoint['id']}/rotate-secret", headers=shop.a.headers
        ).json()["secret"]
        with db.read_session() as session:
            row = session.scalar(
                select(WebhookEndpoint).where(WebhookEndpoint.public_id == endpoint["id"])
            )
            assert row is not None and row.previous_secret_expires_at is not None
            overlap = row.previous_secret_expires_at - utcnow()
        assert timedelta(hours=23, minutes=59) < overlap <= timedelta(hours=24)

        order(hook_client, shop.a.headers)
        during = _deliver_one(db, vault, receiver)
        signatures = during.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
        assert Webhook(old).verify(during.body, during.headers)["event"] == "order.fulfilled"
        assert Webhook(new).verify(during.body, during.headers)["event"] == "order.fulfilled"

        # 25 hours on, the worker signs with the new secret alone.
        order(hook_client, shop.a.headers)
        later = _deliver_one(db, vault, receiver, now=utcnow() + timedelta(hours=25))
        assert len(later.headers["webhook-signature"].split(" ")) == 1

        with db.session() as session:
            session.execute(
                text(
                    "UPDATE webhook_endpoints SET previous_secret_expires_at = :past "
                    "WHERE public_id = :id"
                ),
                {"past": utcnow() - timedelta(minutes=1), "id": endpoint["id"]},
            )
        order(hook_client, shop.a.headers)
        after = _deliver_one(db, vault, receiver)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


def test_tampered_or_stale_webhooks_are_rejected(
    hook_client: httpx.Client, db: Database, vault: Vault, shop: factories.Shop
) -> None:
    with Receiver() as receiver:
        endpoint = register(hook_client, shop.a.headers, receiver.url, ["order.fulfilled"])
        secret = endpoint["secret"]
        order(hook_client, shop.a.headers)
        got = _deliver_one(db, vault, receiver)
    verifier = Webhook(secret)
    payload = verifier.verify(got.body, got.headers)
    assert payload["id"] == got.headers["webhook-id"]

    tampered = got.body.replace(b'"delivered"', b'"refunded"')
    assert tampered != got.body
    with pytest.raises(WebhookVerificationError):
        verifier.verify(tampered, got.headers)
    with pytest.raises(WebhookVerificationError):
        verifier.verify(got.body, {**got.headers, "webhook-id": "evt_" + "0" * 20})
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(got.body, got.headers)

    stale = int(got.headers["webhook-timestamp"]) - 6 * 60
    with pytest.raises(WebhookVerificationError):  # altered header: stale and no longer signed
        verifier.verify(got.body, {**got.headers, "webhook-timestamp": str(stale)})
    resigned = signing.headers([secret], got.headers["webhook-id"], stale, got.body)
    with pytest.raises(WebhookVerificationError, match="too old"):  # correctly signed, but old
        verifier.verify(got.body, resigned)
    fresh = signing.headers([secret], got.headers["webhook-id"], stale + 120, got.body)
    assert verifier.verify(got.body, fresh) == payload  # within the 5 minutes: accepted
