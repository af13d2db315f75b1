"""Import jobs run by the worker, with real commits: a 200,000-code upload end to end, progress
a page can read while the import runs, webhooks that keep going meanwhile, workers racing for
jobs, a worker killed mid-import, and one told to stop.

A named pipe stands in for the uploaded file where a test must hold the import halfway: the
worker reads what the test has written and waits for the rest."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

import codeshelf
from codeshelf import worker
from codeshelf.invariants import check_all
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.stock.models import ImportJob
from codeshelf.stock.service import jobs
from codeshelf.worker import imports
from tests.fixtures import factories
from tests.fixtures.backorders import backorder
from tests.fixtures.claims import issue_operator_key
from tests.fixtures.factories import SECRET
from tests.fixtures.http import order
from tests.fixtures.import_jobs import (
    SKU,
    code_lines,
    pipe_writer,
    queue,
    stored,
    swap_for_pipe,
    view,
    wait_drained,
    wait_for,
)
from tests.fixtures.processes import codeshelf_command
from tests.fixtures.receiver import Receiver
from tests.fixtures.servers import serve

pytestmark = pytest.mark.live  # the worker's threads and processes see only what is committed

IMPORTS = "/api/v1/admin/stock/imports"


@pytest.fixture
def import_dir(tmp_path: Path) -> Path:
    return tmp_path / "imports"


@pytest.fixture
def job_settings(settings: Settings, import_dir: Path) -> Settings:
    return settings.model_copy(update={"import_dir": import_dir, "webhook_allow_private": True})


@pytest.fixture
def lines() -> list[str]:
    return code_lines(30_000)


@pytest.fixture
def runner(job_settings: Settings, db: Database, vault: Vault) -> Iterator[imports.ImportRunner]:
    started = imports.ImportRunner(job_settings, db, vault, lambda _line: None)
    yield started
    started.stop()


def consistent(db: Database) -> None:
    with db.read_session() as session:
        assert check_all(session) == []


def test_a_200000_code_upload_goes_through_the_worker_end_to_end(
    job_settings: Settings, db: Database, vault: Vault, import_dir: Path, database_url: str
) -> None:
    shop = factories.make_shop(db, vault, stock_count=0)
    alice = issue_operator_key(db)
    body = "".join(code_lines(200_000)).encode()  # 2.6 MB
    started = time.monotonic()
    with serve(job_settings, db) as client:
        waiting = backorder(client, shop.a.headers, 3, sku=SKU)
        assert waiting.json()["status"] == "pending"
        queued = client.post(
            IMPORTS,
            params={"product": SKU, "reference": "SUP-200K", "supplier": "Upstream Ltd"},
            content=body,
            headers={**alice.headers, "Content-Type": "text/plain"},
        )
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["id"]

        result = factories.run_cli(database_url, "worker", "--once")

        assert result.exit_code == 0, result.stderr
        done = client.get(f"{IMPORTS}/{job_id}", headers=alice.headers).json()
        filled = client.get(f"/api/v1/orders/{waiting.json()['id']}", headers=shop.a.headers)
    took = time.monotonic() - started
    assert done["status"] == "done", done
    assert (done["progress_percent"], done["bytes_done"], done["lines_done"]) == (
        100.0,
        len(body),
        200_000,
    )
    assert done["report"]["imported"] == 200_000 and done["report"]["lines_read"] == 200_000
    assert filled.json()["status"] == "delivered"  # after the import: what waited for stock
    assert stored(db, "SUP-200K") == (1, 200_000)
    assert list(import_dir.iterdir()) == []
    consistent(db)
    assert took < 60, f"a 200,000-code job took {took:.1f} s"  # measured: 4-6 s


def test_progress_is_visible_while_the_job_runs(
    runner: imports.ImportRunner, db: Database, vault: Vault, import_dir: Path, lines: list[str]
) -> None:
    factories.make_shop(db, vault, stock_count=0)
    job_id, path = queue(db, import_dir, lines)
    total = sum(len(line) for line in lines)
    swap_for_pipe(path)

    assert runner.step()
    with pipe_writer(path) as pipe:
        pipe.write("".join(lines[:5_000]).encode())
        pipe.flush()
        wait_for(lambda: view(db, job_id).bytes_done > 0, "progress")
        halfway = view(db, job_id)
        assert halfway.status == "running"
        assert 0 < halfway.bytes_done < total and halfway.lines_done >= 1_000
        assert 0 < halfway.percent < 100
        assert stored(db, "SUP-1") == (0, 0)  # nothing is committed before the end
        pipe.write("".join(lines[5_000:]).encode())
    wait_for(lambda: not runner.busy, "the import's end")

    done = view(db, job_id)
    assert (done.status, done.percent, done.lines_done) == ("done", 100.0, 30_000)
    assert done.report is not None and done.report["imported"] == 30_000
    assert not path.exists() and not jobs.progress_path(path).exists()


def test_webhooks_are_delivered_while_a_long_import_runs(
    job_settings: Settings, db: Database, vault: Vault, import_dir: Path, lines: list[str]
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite: every write waits for the import's one write lock (see the docs)")
    shop = factories.make_shop(db, vault, stock_count=1)
    job_id, path = queue(db, import_dir, lines)
    swap_for_pipe(path)
    stop = threading.Event()
    loop = threading.Thread(
        target=worker.run,
        args=(job_settings, db, vault),
        kwargs={"stopping": stop.is_set},
        daemon=True,
    )
    with Receiver() as receiver, serve(job_settings, db) as client:
        hook = client.post(
            "/api/v1/webhook-endpoints",
            json={"url": receiver.url, "event_types": ["order.fulfilled"]},
            headers=shop.a.headers,
        )
        assert hook.status_code == 201, hook.text
        loop.start()
        try:
            with pipe_writer(path) as pipe:  # the worker's import thread is reading it
                pipe.write("".join(lines[:5_000]).encode())
                pipe.flush()
                wait_for(lambda: view(db, job_id).bytes_done > 0, "the import under way")
                assert order(client, shop.a.headers).status_code == 201
                wait_for(lambda: len(receiver.received) == 1, "the webhook")
                assert view(db, job_id).status == "running"  # still waiting for the rest
                pipe.write("".join(lines[5_000:]).encode())
            wait_for(lambda: view(db, job_id).status == "done", "the import's end")
        finally:
            stop.set()
            loop.join(timeout=30)
    assert not loop.is_alive()
    assert stored(db, "SUP-1") == (1, 30_000 + 1)


def test_workers_racing_for_jobs_take_each_one_once(
    db: Database, vault: Vault, import_dir: Path, job_settings: Settings
) -> None:
    factories.make_shop(db, vault, stock_count=0)
    queued = [queue(db, import_dir, code_lines(1, start=n), f"SUP-{n}")[0] for n in range(8)]
    start = threading.Barrier(4)

    def one_worker(_: int) -> list[str]:
        taken = []
        start.wait()
        while (job := imports.claim(db, job_settings, lambda _line: None)) is not None:
            taken.append(job.public_id)
        return taken

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one_worker, range(4)))

    everything = [job for taken in results for job in taken]
    assert sorted(everything) == sorted(queued)  # every job taken, none twice


def test_postgresql_hands_a_racing_worker_the_next_job_instead_of_waiting(
    db: Database, vault: Vault, import_dir: Path
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite runs one write transaction at a time: the second simply waits")
    factories.make_shop(db, vault, stock_count=0)
    first, _ = queue(db, import_dir, code_lines(1), "SUP-A")
    second, _ = queue(db, import_dir, code_lines(1, start=1), "SUP-B")
    with db.session() as holding:
        mine = jobs.claim_next(holding, utcnow())  # uncommitted: its row stays locked
        assert mine is not None and mine.public_id == first
        with ThreadPoolExecutor(1) as pool:
            other = pool.submit(lambda: _claim(db)).result(timeout=10)
    assert other == second


def _claim(db: Database) -> str | None:
    with db.session() as session:
        job = jobs.claim_next(session, utcnow())
        return None if job is None else job.public_id


def test_a_job_left_running_by_a_killed_worker_is_queued_again_and_imported_once(
    db: Database,
    vault: Vault,
    import_dir: Path,
    lines: list[str],
    database_url: str,
    tmp_path: Path,
) -> None:
    factories.make_shop(db, vault, stock_count=0)
    job_id, path = queue(db, import_dir, lines)
    swap_for_pipe(path)
    env = {
        **os.environ,
        "CODESHELF_DATABASE_URL": database_url,
        "CODESHELF_SECRET_KEY": SECRET,
        # This checkout's code, whatever the environment's PYTHONPATH is relative to.
        "PYTHONPATH": str(Path(codeshelf.__file__).resolve().parents[1]),
    }
    env.pop("CODESHELF_PREVIOUS_SECRET_KEYS", None)
    process = subprocess.Popen(
        [*codeshelf_command(), "worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with pipe_writer(path) as pipe:
            pipe.write("".join(lines[:15_000]).encode())
            pipe.flush()
            wait_drained(pipe)  # read: a first chunk of 10,000 is being written, uncommitted
            wait_for(lambda: view(db, job_id).bytes_done > 0, "the import under way")
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
    except BrokenPipeError:
        pass  # the reader died with the worker
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert view(db, job_id).status == "running"  # its worker is gone; the job says nothing yet
    assert stored(db, "SUP-1") == (0, 0)
    path.unlink()
    path.write_text("".join(lines))

    # Another worker leaves it alone while it may still be alive, then takes it over.
    assert factories.run_cli(database_url, "worker", "--once").exit_code == 0
    assert view(db, job_id).status == "running"
    with db.session() as session:
        session.execute(update(ImportJob).values(heartbeat_at=utcnow() - timedelta(seconds=601)))
    result = factories.run_cli(database_url, "worker", "--once")

    assert result.exit_code == 0, result.stderr
    done = view(db, job_id)
    assert (done.status, done.attempts) == ("done", 2)
    assert stored(db, "SUP-1") == (1, 30_000)
    consistent(db)


def test_a_worker_told_to_stop_rolls_its_import_back_and_queues_the_job_again(
    runner: imports.ImportRunner, db: Database, vault: Vault, import_dir: Path, lines: list[str]
) -> None:
    factories.make_shop(db, vault, stock_count=0)
    job_id, path = queue(db, import_dir, lines)
    swap_for_pipe(path)
    assert runner.step()
    with pipe_writer(path) as pipe, ThreadPoolExecutor(1) as pool:
        pipe.write("".join(lines[:12_000]).encode())
        pipe.flush()
        wait_drained(pipe)
        wait_for(lambda: view(db, job_id).bytes_done > 0, "the import under way")
        stopping = pool.submit(runner.stop)  # it stops at its next progress call
        with contextlib.suppress(BrokenPipeError):
            pipe.write("".join(lines[12_000:14_000]).encode())
        stopping.result(timeout=30)

    back = view(db, job_id)
    assert (back.status, back.attempts, back.bytes_done) == ("queued", 0, 0)
    assert stored(db, "SUP-1") == (0, 0)
    assert path.exists()  # kept for the next worker
