"""The webhook figures: how fast one ``codeshelf worker`` delivers, and how late a webhook is.

The receiver is ``bench/receiver.py``, a process of its own on loopback that answers 204 at
once; a webhook endpoint of the bench partner (order.created, .paid and .fulfilled) points at it.

1. Throughput: with no worker running, 1-code orders over HTTP queue ``webhook_events``
   deliveries (3 per order); then one ``codeshelf worker`` starts. The rate is the deliveries
   over the time from the receiver's first arrival to its last, so the worker's start-up is
   left out (the time from its start until the database shows every delivery succeeded is
   recorded too).
2. Delay: with that worker still running, at its default poll interval, ``latency_orders``
   orders one at a time at WEBHOOK_LATENCY_RATE per second; each delay is the receiver's arrival
   time of the order's ``order.fulfilled`` minus the moment the POST /orders answer came back.
   On PostgreSQL the order's commit wakes the worker (NOTIFY); on SQLite the worker sees the
   database's data_version change, then finds a delivery due.
3. Reference, the worker stopped: the same receiver, sent as many POSTs as there were
   deliveries, each a real delivery's body signed afresh, one after another by one httpx client
   in this process — what one sender could do at best.

CPU is accounted over each window per process (worker or client, receiver), for the database
backends and for the rest of the machine, in cores.
"""

from __future__ import annotations

import base64
import hmac
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from bench import config
from bench.procs import (
    background,
    codeshelf_executable,
    free_port,
    log_tail,
    machine_busy_s,
    process_cpu_s,
    stop,
)
from bench.stack import Server, Shop, Target

ORDER_EVENTS = ["order.created", "order.paid", "order.fulfilled"]
PLACERS = 8  # concurrent clients placing the orders that queue the events
POLL_S = 0.05  # how often the receiver (or the database) is asked whether it is done yet
MAX_DELAY_S = 30.0  # wait this long for the last order.fulfilled (a failed send retries at 5 s)

_STATES = text(
    "SELECT d.state, count(*) FROM webhook_deliveries d"
    " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
    " WHERE e.public_id = :endpoint GROUP BY d.state"
)


@dataclass(frozen=True)
class Process:
    """A running background process, what to call it, and its log."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def wait_for(
        self, done: Callable[[], bool], timeout_s: float, what: str, *, required: bool = True
    ) -> bool:
        """Poll ``done`` until it holds; raise if the process exits, or (if ``required``) on
        time-out. Returns whether it held."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"waiting for {what}: the {self.name} exited "
                    f"{self.proc.returncode}:\n{log_tail(self.log)}"
                )
            if time.monotonic() > deadline:
                if not required:
                    return False
                raise RuntimeError(f"no {what} within {timeout_s:.0f} s:\n{log_tail(self.log)}")
            time.sleep(POLL_S)
        return True


@dataclass(frozen=True)
class Receiver(Process):
    url: str

    def get(self, path: str) -> Any:
        answer = httpx.get(f"{self.url}{path}", timeout=30)
        answer.raise_for_status()
        return answer.json()

    def listening(self) -> bool:
        try:
            self.get("/stats")
        except httpx.TransportError:
            return False
        return True


@contextmanager
def receiver(workdir: Path) -> Iterator[Receiver]:
    """``bench/receiver.py`` on a free loopback port, stopped however we leave."""
    port = free_port()
    log = workdir / f"receiver-{port}.log"
    argv = [sys.executable, str(Path(__file__).with_name("receiver.py")), str(port)]
    with background(argv, env=os.environ, cwd=workdir, log=log) as proc:
        found = Receiver("receiver", proc, log, f"http://127.0.0.1:{port}")
        found.wait_for(found.listening, 30, "receiver listening")
        yield found


@contextmanager
def worker(target: Target) -> Iterator[Process]:
    """One ``codeshelf worker`` at the default poll interval, stopped however we leave."""
    env = target.env()  # no CODESHELF_WORKER_POLL_SECONDS: the production default
    log = target.workdir / f"worker-{uuid.uuid4().hex[:8]}.log"
    with background([codeshelf_executable(), "worker"], env=env, cwd=target.workdir, log=log) as p:
        yield Process("worker", p, log)


class CpuMeter:
    """CPU time from now on of named processes, of the database backends and of the machine."""

    def __init__(self, target: Target, processes: dict[str, int]) -> None:
        self.target = target
        self.processes = processes
        self.started = time.perf_counter()
        self.busy = machine_busy_s()
        self.before = self._backends() | {pid: process_cpu_s(pid) for pid in processes.values()}

    def _backends(self) -> dict[int, float]:
        return {pid: process_cpu_s(pid) for pid in self.target.backend_pids()}

    def cores(self) -> dict[str, float]:
        """Each one's CPU since then in cores (1.0: one core kept busy all along); ``others``
        is the rest of the machine."""
        wall = time.perf_counter() - self.started
        machine = (machine_busy_s() - self.busy) / wall
        shares = {
            name: (process_cpu_s(pid) - self.before[pid]) / wall
            for name, pid in self.processes.items()
        }
        backends = self._backends().items()
        shares["database"] = sum(cpu - self.before.get(pid, 0.0) for pid, cpu in backends) / wall
        shares["others"] = max(0.0, machine - sum(shares.values()))
        shares["machine"] = machine
        return shares


@dataclass(frozen=True)
class Endpoint:
    id: str
    secret: str


def register(client: httpx.Client, url: str) -> Endpoint:
    """POST /webhook-endpoints for the order events; the answer is the only sight of the secret."""
    answer = client.post(
        "/api/v1/webhook-endpoints", json={"url": url, "event_types": ORDER_EVENTS}
    )
    if answer.status_code != 201:
        raise RuntimeError(
            f"registering the webhook endpoint got {answer.status_code}: {answer.text}"
        )
    data = answer.json()
    return Endpoint(data["id"], data["secret"])


def _order(client: httpx.Client) -> str | None:
    """Place a 1-code order: its id if it was delivered, None if refused for want of stock."""
    answer = client.post(
        "/api/v1/orders",
        json={"product_id": config.SKU, "quantity": 1},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    if answer.status_code == 409 and answer.json()["type"].endswith("/insufficient-stock"):
        return None
    if answer.status_code != 201 or answer.json()["status"] != "delivered":
        raise RuntimeError(f"an order got {answer.status_code}: {answer.text[:500]}")
    return str(answer.json()["id"])


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """A Standard Webhooks v1 signature, written here apart from codeshelf's own."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.digest(key, f"{message_id}.{timestamp}.".encode() + body, "sha256")
    return "v1," + base64.b64encode(digest).decode()


def _signature_ok(secret: str, request: dict[str, Any]) -> bool:
    headers = request["headers"]
    expected = sign(
        secret, headers["webhook-id"], int(headers["webhook-timestamp"]), request["body"].encode()
    )
    return expected in headers.get("webhook-signature", "").split()


def _states(engine: Engine, endpoint: Endpoint) -> dict[str, int]:
    """The endpoint's deliveries by state, read straight from the database."""
    with engine.connect() as conn:
        rows = conn.execute(_STATES, {"endpoint": endpoint.id})
        return {str(state): int(count) for state, count in rows}


@dataclass(frozen=True)
class DeliveryRun:
    orders: int  # 1-code orders placed to queue the events
    refused: int  # of them, refused for want of stock (they queue nothing)
    # Pending deliveries when the worker started: 3 per order placed, and 3 per order of the
    # load run the server was still committing when the endpoint was registered (SQLite).
    queued: int
    posts: int  # POSTs the receiver got
    distinct: int  # distinct webhook-ids among them
    states: dict[str, int]  # the endpoint's deliveries by state once all had arrived
    window_s: float  # from the first arrival to the last
    start_to_done_s: float  # from the worker's start until all had succeeded in the database
    body_bytes: int
    signature_ok: bool  # the last request's signature, checked with the endpoint's secret
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return (self.distinct - 1) / self.window_s if self.window_s > 0 else 0.0

    @property
    def complete(self) -> bool:
        return self.posts == self.distinct == self.queued == self.states.get("succeeded")

    def as_json(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "refused_orders": self.refused,
            "queued": self.queued,
            "receiver_posts": self.posts,
            "receiver_distinct_ids": self.distinct,
            "delivery_states": self.states,
            "first_to_last_arrival_s": self.window_s,
            "worker_start_to_all_succeeded_s": self.start_to_done_s,
            "events_per_s": self.rate,
            "body_bytes": self.body_bytes,
            "signature_ok": self.signature_ok,
            "complete": self.complete,
            "cpu_cores": self.cpu,
        }


@dataclass(frozen=True)
class Queued:
    orders: int  # 1-code orders placed to queue the events
    refused: int  # of them, refused for want of stock (they queue nothing)
    deliveries: int  # pending deliveries once they were placed


def queue_events(client: httpx.Client, engine: Engine, endpoint: Endpoint, events: int) -> Queued:
    """Place enough 1-code orders for ``events`` events (3 each), PLACERS at a time."""
    orders = math.ceil(events / len(ORDER_EVENTS))
    with ThreadPoolExecutor(PLACERS) as pool:
        placed = list(pool.map(lambda _: _order(client), range(orders)))
    if placed.count(None) == orders:
        raise RuntimeError("every order to queue webhook events was refused: no stock left")
    return Queued(orders, placed.count(None), _states(engine, endpoint).get("pending", 0))


def deliveries(
    target: Target,
    hooks: Receiver,
    worker_: Process,
    engine: Engine,
    endpoint: Endpoint,
    queued: Queued,
) -> DeliveryRun:
    """Wait (the worker just started) for every queued delivery to arrive and to be recorded
    as succeeded; CPU is measured from the first arrival to the last."""
    started = time.monotonic()
    worker_.wait_for(lambda: hooks.get("/stats")["posts"] > 0, 120, "first webhook delivery")
    meter = CpuMeter(target, {"worker": worker_.proc.pid, "receiver": hooks.proc.pid})
    timeout = 60 + queued.deliveries / 10  # at least 10 deliveries a second
    worker_.wait_for(
        lambda: hooks.get("/stats")["distinct"] >= queued.deliveries,
        timeout,
        f"{queued.deliveries:,} webhook deliveries",
    )
    cpu = meter.cores()
    worker_.wait_for(
        lambda: _states(engine, endpoint).get("succeeded", 0) >= queued.deliveries,
        60,
        "deliveries recorded as succeeded",
    )
    done = time.monotonic()
    stats, last = hooks.get("/stats"), hooks.get("/last")
    return DeliveryRun(
        orders=queued.orders,
        refused=queued.refused,
        queued=queued.deliveries,
        posts=stats["posts"],
        distinct=stats["distinct"],
        states=_states(engine, endpoint),
        window_s=stats["last"] - stats["first"],
        start_to_done_s=done - started,
        body_bytes=len(last["body"].encode()),
        signature_ok=_signature_ok(endpoint.secret, last),
        cpu=cpu,
    )


@dataclass(frozen=True)
class DelayRun:
    rate: float  # orders per second asked for
    orders: int
    refused: int
    placing_s: float  # from the first order sent to the last answer
    delays_ms: list[float]  # of the orders whose order.fulfilled arrived

    @property
    def matched(self) -> int:
        return len(self.delays_ms)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.delays_ms) if self.delays_ms else math.nan

    @property
    def p99_ms(self) -> float:
        """Nearest rank: with fewer than 100 delays, the longest."""
        ordered = sorted(self.delays_ms)
        return ordered[math.ceil(0.99 * len(ordered)) - 1] if ordered else math.nan

    def as_json(self) -> dict[str, Any]:
        return {
            "orders_per_s_asked": self.rate,
            "orders": self.orders,
            "refused_orders": self.refused,
            "placing_s": self.placing_s,
            "worker_poll_s": config.WORKER_POLL_S,
            "matched": self.matched,
            "median_ms": self.median_ms,
            "p99_ms": self.p99_ms,
            "max_ms": max(self.delays_ms, default=math.nan),
            "delays_ms": self.delays_ms,
        }


def delays(client: httpx.Client, hooks: Receiver, worker_: Process, count: int) -> DelayRun:
    """``count`` orders at WEBHOOK_LATENCY_RATE, one at a time; then wait for their webhooks."""
    rate = config.WEBHOOK_LATENCY_RATE
    answered: dict[str, float] = {}  # order id -> when its answer came back
    started = time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, started + i / rate - time.monotonic()))
        order_id = _order(client)
        if order_id is not None:
            answered[order_id] = time.monotonic()
    placing_s = time.monotonic() - started
    worker_.wait_for(
        lambda: answered.keys() <= hooks.get("/fulfilled").keys(),
        MAX_DELAY_S,
        "order.fulfilled webhooks",
        required=False,
    )
    arrived: dict[str, float] = hooks.get("/fulfilled")
    found = [(arrived[order] - at) * 1000 for order, at in answered.items() if order in arrived]
    return DelayRun(rate, count, count - len(answered), placing_s, found)


@dataclass(frozen=True)
class ReferenceRun:
    posts: int
    received: int  # distinct webhook-ids the receiver counted meanwhile
    wall_s: float
    body_bytes: int
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.posts / self.wall_s

    def as_json(self) -> dict[str, Any]:
        return {
            "posts": self.posts,
            "received": self.received,
            "wall_s": self.wall_s,
            "posts_per_s": self.rate,
            "body_bytes": self.body_bytes,
            "cpu_cores": self.cpu,
        }


def reference(target: Target, hooks: Receiver, endpoint: Endpoint, count: int) -> ReferenceRun:
    """``count`` POSTs of a real delivery's body, each signed with a fresh webhook-id, one
    after another from one httpx client (as the worker's: no redirects, 15-second time-out)."""
    body = hooks.get("/last")["body"].encode()
    before = hooks.get("/stats")["distinct"]
    url = f"{hooks.url}/webhooks"
    with httpx.Client(timeout=15, follow_redirects=False) as client:
        meter = CpuMeter(target, {"client": os.getpid(), "receiver": hooks.proc.pid})
        started = time.perf_counter()
        for i in range(count):
            message_id, timestamp = f"msg_reference_{i}", int(time.time())
            headers = {
                "webhook-id": message_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(endpoint.secret, message_id, timestamp, body),
                "content-type": "application/json",
            }
            answer = client.post(url, content=body, headers=headers)
            if answer.status_code != 204:
                raise RuntimeError(f"the receiver answered {answer.status_code}")
        wall = time.perf_counter() - started
        cpu = meter.cores()
    received = hooks.get("/stats")["distinct"] - before
    return ReferenceRun(count, received, wall, len(body), cpu)


@dataclass(frozen=True)
class WebhookResults:
    delivery: DeliveryRun
    delay: DelayRun
    reference: ReferenceRun

    @property
    def ratio(self) -> float:
        return self.delivery.rate / self.reference.rate

    def as_json(self) -> dict[str, Any]:
        return {
            "delivery": self.delivery.as_json(),
            "delay": self.delay.as_json(),
            "reference": self.reference.as_json(),
            "worker_per_reference": self.ratio,
        }


def measure(
    target: Target,
    server: Server,
    shop: Shop,
    cfg: config.BenchConfig,
    log: Callable[[str], None],
) -> WebhookResults:
    """Receiver, endpoint and queued events; then one worker: throughput, then delays; then,
    the worker stopped, the reference. Every process started here is stopped on the way out."""
    name = target.name
    auth = {"Authorization": f"Bearer {shop.api_key}"}
    engine = create_engine(target.url, poolclass=NullPool)  # a connection only when asked
    with (
        ExitStack() as running,
        httpx.Client(base_url=server.url, headers=auth, timeout=60) as client,
    ):
        hooks = running.enter_context(receiver(target.workdir))
        endpoint = register(client, f"{hooks.url}/webhooks")
        log(f"{name}: queueing {cfg.webhook_events:,} webhook events (1-code orders), no worker")
        queued = queue_events(client, engine, endpoint, cfg.webhook_events)
        log(f"{name}: one codeshelf worker delivering {queued.deliveries:,} webhooks")
        worker_ = running.enter_context(worker(target))
        delivery = deliveries(target, hooks, worker_, engine, endpoint, queued)
        rate = config.WEBHOOK_LATENCY_RATE
        log(f"{name}: {cfg.latency_orders} orders at {rate:g}/s, each timed to its webhook")
        delay = delays(client, hooks, worker_, cfg.latency_orders)
        stop(worker_.proc)
        log(f"{name}: the receiver's reference, {delivery.queued:,} POSTs from one httpx client")
        ref = reference(target, hooks, endpoint, delivery.queued)
    return WebhookResults(delivery, delay, ref)
