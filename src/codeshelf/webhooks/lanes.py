"""The worker loop's deliveries: each endpoint in a lane of its own, so no endpoint holds up
another's.

A lane is a thread that sends one endpoint's queue (``delivery.send_queue``: in order, one
attempt at a time, each under its deadline), then claims that endpoint's next due deliveries
and goes on, until none is due; then it ends. A pass (``Lanes.run_pass``) claims what is due
for the endpoints that have no lane here, starts a lane for each, and returns at once: it never
waits for a lane. A receiver that hangs until every attempt's deadline costs its own lane and
its own queue's time, nothing else; the next pass serves everyone else's webhooks meanwhile.

Ordering and delivery as before: an endpoint's deliveries leave one worker in the order they
fell due, one at a time (a worker claims nothing for an endpoint it has a lane for), each is
held while it is sent and recorded under that hold, and the retry schedule is the delivery's.
At most ``MAX_LANES`` lanes run at once (a pass starts none while they are all busy).

Stopping (``stop``): no lane starts another attempt; the attempts under way end by their
deadline and are recorded, the rest of each lane's claim is released, due at once for the
next worker; ``stop`` waits for that, up to ``wait`` seconds (a lane still running after that
lets its holds expire: the deliveries are sent again after ``LOCK``).
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.webhooks import delivery

log = logging.getLogger("codeshelf.worker")
MAX_LANES = 32  # endpoints one worker sends to at once


class Lanes:
    """The lanes of one worker, by endpoint id."""

    def __init__(
        self,
        db: Database,
        vault: Vault,
        client: httpx.Client,
        *,
        allow_private: bool,
        batch: int = 50,
        max_lanes: int = MAX_LANES,
    ) -> None:
        self.db = db
        self.vault = vault
        self.client = client
        self.allow_private = allow_private
        self.batch = batch
        self.max_lanes = max_lanes
        self._lanes: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def busy(self) -> frozenset[int]:
        """The endpoints a lane is sending to now."""
        with self._lock:
            return frozenset(self._lanes)

    def others(self) -> delivery.Among:
        """The endpoints a pass may claim for: those without a lane here."""
        return delivery.Among(skip=self.busy())

    def run_pass(self) -> int:
        """Claim what is due for endpoints without a lane, start their lanes, return at once;
        how many deliveries were claimed."""
        if self._stop.is_set() or len(self.busy()) >= self.max_lanes:
            return 0
        claimed = delivery.claim_batch(self.db, utcnow(), self.batch, self.others())
        if claimed is None:
            return 0
        for endpoint_id, queue in delivery.queues(claimed).items():
            self._start(endpoint_id, claimed, queue)
        return len(claimed.held)

    def _start(
        self, endpoint_id: int, claimed: delivery.Claimed, queue: list[delivery.Held]
    ) -> None:
        lane = threading.Thread(
            target=self._lane,
            args=(endpoint_id, claimed, queue),
            name=f"codeshelf-lane-{endpoint_id}",
            daemon=True,
        )
        with self._lock:
            self._lanes[endpoint_id] = lane
        lane.start()

    def _lane(
        self, endpoint_id: int, claimed: delivery.Claimed, queue: list[delivery.Held]
    ) -> None:
        """Send the endpoint's queue, then its next due deliveries, until none is due (or the
        worker stops). Whatever fails is logged: the holds expire and the deliveries are sent
        again; the worker goes on."""
        try:
            while True:
                delivery.send_queue(
                    self.db,
                    self.vault,
                    self.client,
                    claimed,
                    queue,
                    allow_private=self.allow_private,
                    stop=self._stop,
                )
                if self._stop.is_set():
                    return
                more = delivery.claim_batch(
                    self.db, utcnow(), self.batch, delivery.Among(only=endpoint_id)
                )
                if more is None:
                    return
                claimed, queue = more, more.held
        except Exception:
            log.exception("a webhook lane failed; its deliveries are sent again later")
        finally:
            with self._lock:
                self._lanes.pop(endpoint_id, None)

    def stop(self, wait: float) -> bool:
        """Start no more attempts, let those under way finish and be recorded, release the
        rest; whether every lane ended within ``wait`` seconds."""
        self._stop.set()
        deadline = time.monotonic() + wait
        with self._lock:
            running = list(self._lanes.values())
        for lane in running:
            lane.join(max(deadline - time.monotonic(), 0))
        left = [lane.name for lane in running if lane.is_alive()]
        if left:
            log.warning("stopping with deliveries still in flight (%s): sent again later", left)
        return not left
