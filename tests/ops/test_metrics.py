"""Prometheus metrics from a real `codeshelf serve --workers 2 --metrics-port` and a real
`codeshelf worker --metrics-port`, after some traffic: the series, their labels (route templates,
never ids) and their values, added up across the server's processes."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from tests.fixtures import factories, import_jobs
from tests.fixtures.backorders import CHEAP, add_empty_products, backorder, placed
from tests.fixtures.factories import SECRET, Shop
from tests.fixtures.http import order
from tests.fixtures.receiver import Receiver
from tests.fixtures.scrape import free_port, running, scrape, value, wait_for
from tests.fixtures.servers import in_process_client

HOOKS = "/api/v1/webhook-endpoints"
IMPORT_DONE = "codeshelf_import_jobs_total"
pytestmark = pytest.mark.slow  # real server processes: started first, beside the rest


@pytest.fixture
def database(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    """A database of its own with real commits (the processes under test must see them)."""
    path = tmp_path / "metrics.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


@pytest.fixture
def shop(database: Database) -> Shop:
    return factories.make_shop(database, Vault(SECRET))


def _metrics_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("codeshelf-metrics-*"))


def test_serve_with_two_processes_counts_every_request_and_reads_the_state(
    database: Database, shop: Shop, tmp_path: Path
) -> None:
    port, metrics = free_port(), free_port()
    before = _metrics_dirs()
    hook = {"url": "http://127.0.0.1:9/hooks", "event_types": []}
    with running(
        tmp_path, database.url, "serve", "--workers", "2", "--port", str(port),
        "--metrics-port", str(metrics), CODESHELF_WEBHOOK_ALLOW_PRIVATE="true",
    ):  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/healthz")
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.post(HOOKS, json=hook, headers=shop.a.headers).status_code == 201
            placed = order(http, shop.a.headers, {"product_id": shop.sku, "quantity": 2})
            assert placed.status_code == 201, placed.text
            marker = {"X-Request-Id": f"metrics-{time.monotonic_ns()}"}
            missing = http.get(
                "/api/v1/orders/ord_00000000000000000000", headers={**shop.a.headers, **marker}
            )
            assert missing.status_code == 404

            def inventory(_: int) -> int:
                with httpx.Client(base_url=url, timeout=30) as own:  # a connection each
                    return own.get("/api/v1/inventory", headers=shop.b.headers).status_code

            with ThreadPoolExecutor(4) as pool:
                assert set(pool.map(inventory, range(20))) == {200}
        wait_for(f"http://127.0.0.1:{metrics}/metrics")
        samples = scrape(metrics)
    requests = "codeshelf_http_requests_total"
    assert value(samples, requests, method="GET", route="/api/v1/inventory", status="200") == 20
    assert value(samples, requests, method="POST", route="/api/v1/orders", status="201") == 1
    route = "/api/v1/orders/{order_id}"
    assert value(samples, requests, method="GET", route=route, status="404") == 1
    seconds = "codeshelf_http_request_duration_seconds_count"
    assert value(samples, seconds, method="GET", route="/api/v1/inventory") == 20
    labels = {v for _, pairs in samples for _, v in pairs}
    assert not [v for v in labels if v.startswith(("ord_", "ptr_"))]  # no ids in labels
    # The state, read from the database at the scrape:
    assert value(samples, "codeshelf_state_up") == 1
    assert value(samples, "codeshelf_codes_available", sku=shop.sku) == 18
    assert value(samples, "codeshelf_orders", state="delivered") == 1
    assert value(samples, "codeshelf_backorders_waiting") == 0
    assert value(samples, "codeshelf_claims", status="submitted") == 0
    assert value(samples, "codeshelf_claims_overdue") == 0
    assert value(samples, "codeshelf_webhook_queue_depth") >= 1  # no worker runs here
    assert value(samples, "codeshelf_webhook_oldest_undelivered_seconds") >= 0
    assert _metrics_dirs() == before  # the processes' counter files went with serve
    # Its lines also went to CODESHELF_LOG_FILE, which the suite's last check reads for secrets.
    kept = Path(os.environ["CODESHELF_LOG_FILE"]).read_text()
    assert marker["X-Request-Id"] in kept


def test_the_worker_counts_deliveries_and_backorders_and_logs_each(
    database: Database, shop: Shop, tmp_path: Path
) -> None:
    add_empty_products(database)
    local = Settings(
        database_url=database.url,
        secret_key=SECRET,  # type: ignore[arg-type]
        evidence_dir=tmp_path / "evidence",
        webhook_allow_private=True,
        _env_file=None,  # type: ignore[call-arg]
    )
    with Receiver() as receiver, in_process_client(local, database) as api:
        body = {"url": receiver.url, "event_types": ["order.fulfilled"]}
        created = api.post(HOOKS, json=body, headers=shop.a.headers)
        assert created.status_code == 201, created.text
        endpoint = created.json()["id"]
        waiting = placed(backorder(api, shop.a.headers, 1), "pending")["id"]
        factories.load_codes(database, Vault(SECRET), CHEAP, 1)  # the worker fills it
        job, _ = import_jobs.queue(database, tmp_path / "imports", import_jobs.code_lines(5))
        metrics = free_port()
        with running(
            tmp_path, database.url, "worker", "--metrics-port", str(metrics),
            CODESHELF_WEBHOOK_ALLOW_PRIVATE="true",
        ) as log:  # fmt: skip
            wait_for(f"http://127.0.0.1:{metrics}/metrics")
            deadline = time.monotonic() + 120
            samples = scrape(metrics)
            # The receiver has the webhook before the worker records (and counts) the attempt.
            delivered = "codeshelf_webhook_deliveries_total"
            while not (
                value(samples, delivered, outcome="delivered")
                and value(samples, IMPORT_DONE, outcome="done")
            ):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
                samples = scrape(metrics)
    assert value(samples, "codeshelf_backorders_total", outcome="filled") == 1
    assert value(samples, "codeshelf_webhook_deliveries_total", outcome="delivered") == 1
    assert value(samples, "codeshelf_webhook_deliveries_total", outcome="retry") == 0
    assert value(samples, "process_resident_memory_bytes") > 0  # the process's own
    assert value(samples, "codeshelf_imported_codes_total") == 5
    assert value(samples, "codeshelf_import_lines_total") == 5
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # every one JSON
    events = {line.get("event"): line for line in lines}
    assert events["backorder.filled"]["order"] == waiting
    finished = events["import.finished"]
    assert (finished["job"], finished["outcome"], finished["imported"]) == (job, "done", 5)
    delivery = events["webhook.delivery"]
    assert (delivery["endpoint"], delivery["outcome"], delivery["attempt"]) == (
        endpoint, "delivered", 1,
    )  # fmt: skip
    assert delivery["webhook_id"] == receiver.received[0].headers["webhook-id"]
    assert receiver.url.split("//")[1] not in log.read_text()  # nor the endpoint's URL
