"""The soak's clients: partners ordering (with retries that reuse their Idempotency-Key),
backordering, revealing codes and filing claims with screenshots; an operator approving claims.

Every request goes to a random server of the fleet and is retried, on another, when the
connection fails (a server killed mid-request): what a careful integration does (seed 003:
"retry network timeouts with the same idempotency key"). What each client saw is kept for the
final checks: the order every key produced, the codes every order revealed, the claims filed.
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from PIL import Image

RETRY_FOR_S = 120.0  # how long a client keeps retrying one request before it gives up
TIMEOUT = httpx.Timeout(10.0, connect=2.0)


def screenshot_png(rng: random.Random) -> bytes:
    image = Image.new("RGB", (320, 180), (rng.randrange(256), 40, 90))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@dataclass
class Tally:
    """Counts shared by every client thread."""

    ops: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # 5xx answers: always a failure
    surprises: list[str] = field(default_factory=list)  # answers no rule explains
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.ops[what] += n

    def surprise(self, what: str) -> None:
        with self.lock:
            self.surprises.append(what)


@dataclass
class KeyOutcome:
    """Every answer one Idempotency-Key got: the order ids of its 201s, its final status."""

    key: str
    client_order_id: str
    order_ids: set[str] = field(default_factory=set)
    final: int | None = None  # None: no definitive answer before giving up
    attempts: int = 0


class Api:
    """Requests to random servers, retried on connection failures and on 5xx (recorded)."""

    def __init__(self, urls: list[str], secret: str, rng: random.Random, tally: Tally) -> None:
        self.urls = urls
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.rng = rng
        self.tally = tally
        self.clients = {url: httpx.Client(base_url=url, timeout=TIMEOUT) for url in urls}
        self.down: dict[str, float] = {}  # a server that failed, until when it is avoided

    def _pick(self) -> str:
        now = time.monotonic()
        up = [url for url in self.urls if self.down.get(url, 0) < now]
        return self.rng.choice(up or self.urls)

    def once(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        url = self._pick()
        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            response = self.clients[url].request(method, path, headers=headers, **kwargs)
        except httpx.TransportError:
            self.tally.count("connection failures (retried)")
            self.down[url] = time.monotonic() + 2.0
            return None
        if response.status_code >= 500:
            with self.tally.lock:
                self.tally.server_errors.append(f"{method} {path}: {response.status_code}")
        if response.status_code == 429:
            time.sleep(float(response.headers.get("retry-after", "1")))
        return response

    def call(
        self,
        method: str,
        path: str,
        *,
        again: Callable[[httpx.Response], bool] = lambda r: False,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """Until an answer that is neither a lost connection, a 5xx, a 429, nor ``again``."""
        deadline = time.monotonic() + RETRY_FOR_S
        while time.monotonic() < deadline:
            response = self.once(method, path, **dict(kwargs))
            if response is None or response.status_code >= 500 or response.status_code == 429:
                time.sleep(0.2)
                continue
            if again(response):
                time.sleep(float(response.headers.get("retry-after", "0.5")))
                continue
            return response
        self.tally.count("requests given up")
        return None

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def _key_in_use(response: httpx.Response) -> bool:
    return response.status_code == 409 and response.json().get("type", "").endswith(
        "/idempotency-key-in-use"
    )


@dataclass
class Partner:
    """One reseller's integration, run by one thread."""

    name: str
    partner_id: str
    api: Api
    skus: list[str]
    tally: Tally
    rng: random.Random
    keys: list[KeyOutcome] = field(default_factory=list)
    revealed: dict[str, list[str]] = field(default_factory=dict)  # order id -> codes
    pending: set[str] = field(default_factory=set)  # orders that were not delivered at once
    claimed: set[str] = field(default_factory=set)
    claims: set[str] = field(default_factory=set)
    png: bytes = b""

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.55:
            self.order(backorder=False)
        elif roll < 0.70:
            self.order(backorder=True)
        elif roll < 0.80:
            self.parallel_retries()
        elif roll < 0.92:
            self.claim()
        else:
            self.api.call("GET", "/api/v1/events", params={"limit": 50})
            self.tally.count("event feed reads")

    def _body(self, backorder: bool) -> tuple[KeyOutcome, bytes]:
        key = str(uuid.uuid4())
        outcome = KeyOutcome(key, f"soak-{key}")
        quantity = self.rng.choice([1, 1, 1, 2, 3]) if not backorder else self.rng.randint(2, 40)
        body = {
            "product_id": self.rng.choice(self.skus),
            "quantity": quantity,
            "client_order_id": outcome.client_order_id,
            "allow_backorder": backorder,
        }
        with self.tally.lock:
            self.keys.append(outcome)
        return outcome, json.dumps(body).encode()

    def _send(self, outcome: KeyOutcome, body: bytes) -> httpx.Response | None:
        headers = {"Idempotency-Key": outcome.key, "Content-Type": "application/json"}
        outcome.attempts += 1
        response = self.api.call(
            "POST", "/api/v1/orders", content=body, headers=headers, again=_key_in_use
        )
        if response is None:
            return None
        with self.tally.lock:
            if response.status_code == 201:
                outcome.order_ids.add(response.json()["id"])
            outcome.final = response.status_code
        return response

    def order(self, *, backorder: bool) -> None:
        outcome, body = self._body(backorder)
        response = self._send(outcome, body)
        self.tally.count("backorders placed" if backorder else "orders placed")
        if response is None:
            return
        if response.status_code not in (201, 402, 409):
            self.tally.surprise(f"POST /orders: {response.status_code} {response.text[:200]}")
            return
        if response.status_code != 201:
            slug = response.json().get("type", "").rsplit("/", 1)[-1]
            self.tally.count(f"orders refused {response.status_code} {slug}")
            return
        if self.rng.random() < 0.25:  # the client did not see the answer: it retries
            replay = self._send(outcome, body)
            self.tally.count("orders retried with the same key")
            if replay is not None and replay.headers.get("idempotent-replayed") != "true":
                self.tally.surprise(f"retry of {outcome.key} not replayed: {replay.status_code}")
        self._follow(response.json())

    def parallel_retries(self) -> None:
        """The same key sent 3 times at once (a client retrying before its first try ended)."""
        outcome, body = self._body(backorder=False)
        threads = [threading.Thread(target=self._send, args=(outcome, body)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.tally.count("orders sent 3 times at once")
        if outcome.order_ids:
            self._follow({"id": next(iter(outcome.order_ids)), "status": "unknown"})

    def _follow(self, order: dict[str, Any]) -> None:
        if order["status"] == "pending":
            self.pending.add(order["id"])
            return
        self.reveal(order["id"])

    def reveal(self, order_id: str) -> bool:
        """GET the order's codes; True when it was delivered."""
        response = self.api.call("GET", f"/api/v1/orders/{order_id}/codes")
        if response is None or response.status_code != 200:
            self.pending.add(order_id)
            return False
        codes = [row["code"].replace("-", "") for row in response.json()["codes"]]
        if not codes:
            self.pending.add(order_id)
            return False
        self.revealed[order_id] = codes
        self.pending.discard(order_id)
        self.tally.count("codes revealed", len(codes))
        return True

    def claim(self) -> None:
        """Claim one code of a delivered order, with a screenshot of the error."""
        choices = [
            (order_id, code)
            for order_id, codes in self.revealed.items()
            for code in codes
            if code not in self.claimed
        ]
        if not choices:
            return
        order_id, code = self.rng.choice(choices)
        self.claimed.add(code)
        claim = {
            "order_id": order_id,
            "codes": [code],
            "problem": "invalid",
            "redemption": {"account_region": "US", "attempted_at": datetime.now(UTC).isoformat()},
        }
        self.png = self.png or screenshot_png(self.rng)
        response = self.api.call(
            "POST",
            "/api/v1/claims",
            data={"claim": json.dumps(claim)},
            files=[("screenshot", ("error.png", self.png, "image/png"))],
        )
        self.tally.count("claims filed")
        if response is None:
            return
        if response.status_code == 201:
            self.claims.add(response.json()["id"])
        elif response.status_code == 409:  # an earlier try got through before its answer was lost
            self.tally.count("claims answered 409 (already claimed)")
        else:
            self.tally.surprise(f"POST /claims: {response.status_code} {response.text[:200]}")


def operator_pass(api: Api, tally: Tally) -> None:
    """Approve every submitted claim (the partner's replacement remedy)."""
    queue = api.call("GET", "/api/v1/admin/claims", params={"status": "submitted"})
    if queue is None or queue.status_code != 200:
        return
    for claim in queue.json()["data"]:
        response = api.call(
            "POST", f"/api/v1/admin/claims/{claim['id']}/approve", json={"reason": "soak"}
        )
        tally.count("claims approved")
        if response is not None and response.status_code not in (200, 409):
            tally.surprise(f"approve {claim['id']}: {response.status_code} {response.text[:200]}")
