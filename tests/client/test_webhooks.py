"""verify_webhook on what the server really sends (a loopback receiver), on the reference
library's signatures, and on tampered, stale and wrongly signed webhooks."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.webhooks import delivery
from codeshelf_client import Codeshelf, WebhookVerificationError, verify_webhook
from tests.fixtures.factories import Shop
from tests.fixtures.receiver import Received, Receiver
from tests.fixtures.servers import LIVE_SERVERS

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()


@pytest.fixture
def hooked(hook_settings: Settings, shop: Shop) -> Iterator[Codeshelf]:
    """Partner A's client of a live server that accepts loopback webhook URLs."""
    with (
        LIVE_SERVERS.serving(hook_settings) as server,
        Codeshelf(shop.a.key, base_url=server.url) as shelf,
    ):
        yield shelf


def _deliver(db: Database, vault: Vault) -> None:
    with httpx.Client(timeout=5) as sender:
        while delivery.run_once(db, vault, sender, allow_private=True):
            pass


def _headers(got: Received) -> dict[str, str]:
    return {k: v for k, v in got.headers.items() if k.startswith("webhook-")}


@pytest.mark.live
def test_the_servers_webhooks_verify_and_tampered_or_stale_ones_do_not(
    hooked: Codeshelf, db: Database, vault: Vault
) -> None:
    with Receiver() as receiver:
        endpoint = hooked.webhook_endpoints.create(receiver.url, ["order.fulfilled"])
        assert endpoint.secret is not None and endpoint.secret.startswith("whsec_")
        order = hooked.orders.create(product_id="psn-us-50", quantity=1)
        _deliver(db, vault)
        [got] = receiver.received
        payload = verify_webhook(got.body, got.headers, endpoint.secret)
        assert payload["event"] == "order.fulfilled" and payload["order_id"] == order.id
        assert got.headers["webhook-id"] == payload["id"]

        tampered = got.body.replace(order.id.encode(), b"ord_someoneelse")
        with pytest.raises(WebhookVerificationError):
            verify_webhook(tampered, got.headers, endpoint.secret)
        with pytest.raises(WebhookVerificationError):
            verify_webhook(got.body, got.headers, OTHER)
        with pytest.raises(WebhookVerificationError):  # replayed ten minutes later
            verify_webhook(got.body, got.headers, endpoint.secret, now=time.time() + 600)
        for missing in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            partial = {k: v for k, v in got.headers.items() if k != missing}
            with pytest.raises(WebhookVerificationError):
                verify_webhook(got.body, partial, endpoint.secret)

        # During a rotation each webhook carries both signatures: either secret verifies it.
        rotated = hooked.webhook_endpoints.rotate_secret(endpoint.id)
        assert rotated.secret is not None and rotated.secret != endpoint.secret
        hooked.orders.create(product_id="psn-us-50", quantity=1)
        _deliver(db, vault)
        latest = receiver.received[-1]
        assert len(latest.headers["webhook-signature"].split()) == 2
        for secrets in ([rotated.secret], [endpoint.secret], [OTHER, rotated.secret]):
            verify_webhook(latest.body, latest.headers, secrets)
        with pytest.raises(WebhookVerificationError):
            verify_webhook(latest.body, latest.headers, [OTHER])
        # The delivery log shows what was sent.
        assert {a.status_code for a in hooked.webhook_endpoints.deliveries(endpoint.id)} == {200}


def test_the_reference_librarys_signatures_verify_and_hostile_ones_do_not() -> None:
    body = json.dumps({"id": "evt_1", "event": "order.paid"}).encode()
    now = int(time.time())
    signature = Webhook(SECRET).sign("evt_1", _at(now), body.decode())
    headers = {"Webhook-Id": "evt_1", "Webhook-Timestamp": str(now), "Webhook-Signature": signature}
    assert verify_webhook(body, headers, SECRET) == {"id": "evt_1", "event": "order.paid"}
    assert verify_webhook(body.decode(), headers, SECRET)["event"] == "order.paid"

    # Signed as the reference library signs, at a time a little within or beyond the
    # tolerance, in the past and in the future: only the signature's time decides.
    for offset, accepted in ((-299, True), (299, True), (-301, False), (301, False)):
        stamp = str(now + offset)
        signed = Webhook(SECRET).sign("evt_1", _at(now + offset), body.decode())
        at = {**headers, "Webhook-Timestamp": stamp, "Webhook-Signature": signed}
        if accepted:
            assert verify_webhook(body, at, SECRET, now=now)["id"] == "evt_1"
        else:
            with pytest.raises(WebhookVerificationError, match="tolerance"):
                verify_webhook(body, at, SECRET, now=now)
    # The secret with or without its whsec_ prefix; one good signature among others.
    assert verify_webhook(body, headers, SECRET.removeprefix("whsec_"))["id"] == "evt_1"
    several = {**headers, "Webhook-Signature": f"v1,bm9wZQ== v1a,xyz {signature}"}
    assert verify_webhook(body, several, SECRET)["id"] == "evt_1"

    hostile = [
        {**headers, "Webhook-Timestamp": str(now - 301)},  # too old
        {**headers, "Webhook-Timestamp": str(now + 301)},  # from the future
        {**headers, "Webhook-Timestamp": "1e9"},
        {**headers, "Webhook-Signature": "v2," + signature.split(",", 1)[1]},  # unknown scheme
        {**headers, "Webhook-Signature": "v1,"},
        {**headers, "Webhook-Id": "evt_2"},  # the signature covers the id
    ]
    for case in hostile:
        with pytest.raises(WebhookVerificationError):
            verify_webhook(body, case, SECRET)
    # The reference library agrees with what we accept.
    Webhook(SECRET).verify(body, {k.lower(): v for k, v in headers.items()})


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
