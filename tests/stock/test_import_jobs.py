"""Imports as background jobs, up to the worker: the upload (streamed to disk, refused before a
byte is stored when it cannot be imported, its larger size limit on that one route only), the
CLI's --background and `stock jobs`, a job run by `codeshelf worker --once`, what a failure
leaves (nothing), and the rules that keep one job with one worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.stock.models import ImportJob
from codeshelf.stock.service import jobs
from tests.fixtures import factories
from tests.fixtures.claims import OperatorKeyHandle, audit_events, issue_operator_key
from tests.fixtures.http import assert_problem
from tests.fixtures.import_jobs import SKU, code_lines, queue, row, stored, view, write_file
from tests.fixtures.servers import serve

IMPORTS = "/api/v1/admin/stock/imports"


@pytest.fixture
def import_dir(tmp_path: Path) -> Path:
    return tmp_path / "imports"


@pytest.fixture
def job_settings(settings: Settings, import_dir: Path) -> Settings:
    return settings.model_copy(update={"import_dir": import_dir})


@pytest.fixture
def admin(job_settings: Settings, db: Database) -> Iterator[httpx.Client]:
    with serve(job_settings, db) as http:
        yield http


@pytest.fixture
def alice(db: Database) -> OperatorKeyHandle:
    return issue_operator_key(db, "alice")


@pytest.fixture
def product(db: Database) -> str:
    return factories.add_product(db, SKU)


def upload(
    client: httpx.Client,
    headers: dict[str, str],
    body: bytes,
    content_type: str = "text/plain",
    **params: str,
) -> httpx.Response:
    query = {"product": SKU, "reference": "SUP-1", **params}
    return client.post(
        IMPORTS, params=query, content=body, headers={**headers, "Content-Type": content_type}
    )


def files_in(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.exists() else []


def worker_once(database_url: str, **env: str) -> Any:
    result = factories.run_cli(database_url, "worker", "--once", env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def test_an_upload_is_queued_then_imported_by_the_worker_with_the_clis_report(
    admin: httpx.Client,
    alice: OperatorKeyHandle,
    db: Database,
    product: str,
    import_dir: Path,
    database_url: str,
) -> None:
    body = "code\n" + "".join(code_lines(3)) + "not-a-code\n" + code_lines(1)[0]
    queued = upload(
        admin, alice.headers, body.encode(), "text/csv; charset=utf-8", unit_cost="45.00"
    )

    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert queued.headers["location"] == f"{IMPORTS}/{job['id']}"
    assert job["status"] == "queued" and job["progress_percent"] == 0
    assert (job["product_id"], job["reference"], job["format"]) == (SKU, "SUP-1", "csv")
    assert job["unit_cost"] == {"amount": "45.00", "currency": "USD"}
    assert job["size_bytes"] == len(body) and job["created_by"] == "operator:alice"
    [waiting] = files_in(import_dir)
    assert waiting.read_text() == body
    assert stored(db, "SUP-1") == (0, 0)

    result = worker_once(database_url)

    assert job["id"] in result.stderr
    done = admin.get(f"{IMPORTS}/{job['id']}", headers=alice.headers).json()
    assert done["status"] == "done" and done["progress_percent"] == 100
    assert done["error"] is None and done["attempts"] == 1
    report = done["report"]
    assert (report["batch"], report["lines_read"], report["imported"]) == ("SUP-1", 5, 3)
    assert report["duplicates_in_file"]["count"] == 1
    assert report["malformed"] == {
        "count": 1,
        "lines": [
            {"line": 5, "code": "****-****-code", "reason": "expected 12 letters and digits"}
        ],
    }
    assert stored(db, "SUP-1") == (1, 3)
    assert files_in(import_dir) == []  # the upload is removed once imported
    [imported] = audit_events(db, "SUP-1", "stock.import")
    assert imported.actor == "operator:alice" and imported.count == 3
    listed = admin.get(IMPORTS, headers=alice.headers).json()["data"]
    assert [j["id"] for j in listed] == [job["id"]]


def test_an_upload_that_cannot_be_imported_is_refused_before_anything_is_stored(
    admin: httpx.Client,
    alice: OperatorKeyHandle,
    db: Database,
    vault: Vault,
    product: str,
    import_dir: Path,
) -> None:
    body = "".join(code_lines(2)).encode()
    queue(db, import_dir / "elsewhere", code_lines(1), "SUP-WAITING")
    before = files_in(import_dir)
    cases: list[tuple[dict[str, str], bytes, int, str]] = [
        ({"product": "psn-xx-1"}, body, 404, "product-not-found"),
        ({"reference": "SUP-WAITING"}, body, 409, "batch-exists"),  # a job waits for it
        ({"reference": "  "}, body, 422, "validation-error"),
        ({"reference": "x" * 129}, body, 422, "validation-error"),
        ({"unit_cost": "4.5.0"}, body, 422, "validation-error"),
        ({"unit_cost": "45.001"}, body, 422, "validation-error"),
        ({"format": "xml"}, body, 422, "validation-error"),
        ({}, b"", 422, "validation-error"),  # an empty file
    ]
    for params, content, status, slug in cases:
        response = upload(admin, alice.headers, content, **params)
        assert_problem(response, status, slug)
        assert files_in(import_dir) == before, params
    # A partner key (or none) finds no such route, and stores nothing.
    for headers in ({}, {"Authorization": "Bearer cs_live_x"}):
        assert_problem(upload(admin, headers, body), 404, "not-found")
    assert files_in(import_dir) == before
    with db.read_session() as session:
        assert [j.reference for j in jobs.list_jobs(session)] == ["SUP-WAITING"]


def test_a_batch_already_imported_is_refused(
    admin: httpx.Client,
    alice: OperatorKeyHandle,
    database_url: str,
    product: str,
    tmp_path: Path,
) -> None:
    path = write_file(tmp_path / "first.txt", code_lines(2))
    result = factories.run_cli(
        database_url, "stock", "import", str(path), "--sku", SKU, "--batch", "SUP-1"
    )
    assert result.exit_code == 0, result.stderr
    problem = upload(admin, alice.headers, b"ABCDABCDABCD\n")
    assert "already imported" in assert_problem(problem, 409, "batch-exists")["detail"]


def test_uploads_far_above_the_request_limit_are_taken_on_this_route_only(
    admin: httpx.Client,
    alice: OperatorKeyHandle,
    product: str,
    job_settings: Settings,
    import_dir: Path,
) -> None:
    assert job_settings.max_request_bytes == 1_048_576
    big = "".join(code_lines(250_000)).encode()  # 3.25 MB, streamed to disk
    accepted = upload(admin, alice.headers, big)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["size_bytes"] == len(big)
    [waiting] = files_in(import_dir)
    assert waiting.stat().st_size == len(big)

    # Sent in chunks, without a Content-Length: streamed just the same.
    chunked = upload(admin, alice.headers, iter([big[:100_000], big[100_000:]]), reference="SUP-2")  # type: ignore[arg-type]
    assert chunked.status_code == 202, chunked.text
    # Every other route keeps the ordinary limit, the import route's neighbours included.
    for path in (f"{IMPORTS}/", f"{IMPORTS}x", "/api/v1/admin/products/psn-us-50/price"):
        response = admin.post(path, content=big, headers=alice.headers)
        assert_problem(response, 413, "payload-too-large")
    # A GET cannot take a large body either.
    assert_problem(
        admin.request("GET", IMPORTS, content=big, headers=alice.headers), 413, "payload-too-large"
    )


def test_an_upload_over_the_import_limit_is_refused_and_leaves_no_file(
    settings: Settings, db: Database, alice: OperatorKeyHandle, product: str, import_dir: Path
) -> None:
    small = settings.model_copy(update={"import_dir": import_dir, "max_import_bytes": 65_536})
    body = "".join(code_lines(10_000)).encode()  # 130 kB
    with serve(small, db) as client:
        declared = upload(client, alice.headers, body)
        assert_problem(declared, 413, "payload-too-large")
        chunks = iter([body[i : i + 16_384] for i in range(0, len(body), 16_384)])
        streamed = upload(client, alice.headers, chunks)  # type: ignore[arg-type]
        assert_problem(streamed, 413, "payload-too-large")
    assert files_in(import_dir) == []
    with db.read_session() as session:
        assert jobs.list_jobs(session) == []


def test_an_unknown_job_is_not_found(admin: httpx.Client, alice: OperatorKeyHandle) -> None:
    for job_id in ("imp_00000000000000000000", "imp_x", "1", "../../etc/passwd"):
        response = admin.get(f"{IMPORTS}/{job_id}", headers=alice.headers)
        assert response.status_code == 404, job_id


def test_the_cli_queues_a_copy_in_the_background_and_lists_jobs(
    database_url: str, db: Database, product: str, tmp_path: Path, import_dir: Path
) -> None:
    original = write_file(tmp_path / "codes.txt", code_lines(5))
    env = {"CODESHELF_IMPORT_DIR": str(import_dir)}
    args = ("stock", "import", str(original), "--sku", SKU, "--batch", "SUP-9")

    queued = factories.run_cli(database_url, *args, "--background", "--json", env=env)

    assert queued.exit_code == 0, (queued.stdout, queued.stderr)
    job = json.loads(queued.stdout)
    assert job["status"] == "queued" and job["format"] == "lines"
    assert original.exists() and len(files_in(import_dir)) == 1
    listed = factories.run_cli(database_url, "stock", "jobs", "--json")
    assert [(j["id"], j["status"], j["percent"]) for j in json.loads(listed.stdout)] == [
        (job["id"], "queued", 0.0)
    ]
    strict = factories.run_cli(database_url, *args, "--background", "--strict", env=env)
    assert strict.exit_code == 1 and "--strict is not available" in strict.stderr
    again = factories.run_cli(database_url, *args, "--background", env=env)
    assert again.exit_code == 1 and "already being imported" in again.stderr
    assert len(files_in(import_dir)) == 1  # a refused job copies nothing

    worker_once(database_url)

    table = factories.run_cli(database_url, "stock", "jobs")
    assert job["id"] in table.stdout and "done" in table.stdout and "100.0 %" in table.stdout
    assert original.exists() and files_in(import_dir) == []
    assert stored(db, "SUP-9") == (1, 5)


def test_a_failure_halfway_fails_the_job_and_imports_nothing(
    database_url: str,
    db: Database,
    product: str,
    import_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id, path = queue(db, import_dir, code_lines(25_000))
    real_seal = Vault.seal
    sealed = 0

    def failing_seal(self: Vault, canonical_code: str, fingerprint: bytes) -> bytes:
        nonlocal sealed
        sealed += 1
        if sealed > 15_000:  # the first chunk of 10,000 codes is already written
            raise OSError("the disk is on fire")
        return real_seal(self, canonical_code, fingerprint)

    monkeypatch.setattr(Vault, "seal", failing_seal)
    worker_once(database_url)
    monkeypatch.setattr(Vault, "seal", real_seal)

    failed = view(db, job_id)
    assert failed.status == "failed" and failed.report is None
    assert failed.error == "the import failed (OSError: the disk is on fire); nothing was imported"
    assert stored(db, "SUP-1") == (0, 0)
    assert audit_events(db, "SUP-1", "stock.import") == []
    [audited] = audit_events(db, "SUP-1", "stock.import_failed")
    assert audited.details is not None and audited.details["job"] == job_id
    assert not path.exists()
    # The reference is free again: the same file can be queued once more, and imports.
    retry, _ = queue(db, import_dir, code_lines(25_000))
    worker_once(database_url)
    assert view(db, retry).status == "done" and stored(db, "SUP-1") == (1, 25_000)


def test_a_job_whose_batch_arrived_meanwhile_or_whose_file_is_gone_fails_and_says_why(
    database_url: str, db: Database, vault: Vault, product: str, import_dir: Path, tmp_path: Path
) -> None:
    job_id, _ = queue(db, import_dir, code_lines(3), "SUP-1")
    cli_file = write_file(tmp_path / "codes.txt", code_lines(2, start=100))
    args = ("stock", "import", str(cli_file), "--sku", SKU, "--batch", "SUP-1")
    assert factories.run_cli(database_url, *args).exit_code == 0  # the CLI got there first
    gone_id, gone_path = queue(db, import_dir, code_lines(3, start=200), "SUP-2")
    gone_path.unlink()

    worker_once(database_url)
    worker_once(database_url)

    assert (view(db, job_id).status, view(db, job_id).error) == (
        "failed",
        "batch SUP-1 was already imported",
    )
    gone = view(db, gone_id)
    assert gone.status == "failed" and gone.error is not None
    assert gone.error.startswith("the uploaded file is no longer there")
    assert stored(db, "SUP-1") == (1, 2) and stored(db, "SUP-2")[0] == 0


# ---------------------------------------------------------------------------------------------
# One job, one worker: claims, attempts, and a worker that went silent


def test_a_job_is_claimed_once_and_an_attempt_that_lost_it_can_neither_finish_nor_fail_it(
    db: Database, product: str, import_dir: Path
) -> None:
    job_id, _ = queue(db, import_dir, code_lines(3))
    now = utcnow()
    with db.session() as session:
        first = jobs.claim_next(session, now)
        assert first is not None and first.public_id == job_id and first.attempt == 1
        assert jobs.claim_next(session, now) is None  # running: nobody else takes it
    assert view(db, job_id).status == "running"

    later = now + timedelta(minutes=11)
    with db.session() as session:
        assert (
            jobs.requeue_stalled(session, now + timedelta(minutes=9), timedelta(minutes=10)) == []
        )
        assert jobs.requeue_stalled(session, later, timedelta(minutes=10)) == [job_id]
        second = jobs.claim_next(session, later)
        assert second is not None and second.attempt == 2

    report = jobs.ImportReport(batch="SUP-1", sku=SKU)
    with db.session() as session:
        assert not jobs.note_progress(session, first, 10, 1, later)
        with pytest.raises(jobs.ImportJobLostError):
            jobs.finish_job(session, first, report, 1, later)
        assert not jobs.fail_job(session, first, "boom", later)
        assert jobs.note_progress(session, second, 10, 1, later)
    assert (view(db, job_id).status, view(db, job_id).bytes_done) == ("running", 10)
    [requeued] = audit_events(db, "SUP-1", "stock.import_requeued")
    assert requeued.actor == "system:worker"


def test_a_job_that_keeps_stopping_its_worker_fails_after_three_starts(
    db: Database, product: str, import_dir: Path
) -> None:
    job_id, _ = queue(db, import_dir, code_lines(3))
    now = utcnow()
    stall = timedelta(minutes=10)
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        with db.session() as session:
            claimed = jobs.claim_next(session, now)
            assert claimed is not None and claimed.attempt == attempt
            now += timedelta(minutes=11)
            assert jobs.requeue_stalled(session, now, stall) == [job_id]
    failed = view(db, job_id)
    assert failed.status == "failed" and failed.attempts == jobs.MAX_ATTEMPTS
    assert (
        failed.error == "the worker stopped 3 times while importing this file; nothing was imported"
    )
    with db.session() as session:
        assert jobs.claim_next(session, now) is None


def test_the_worker_requeues_a_silent_job_and_runs_it(
    database_url: str, db: Database, product: str, import_dir: Path
) -> None:
    job_id, path = queue(db, import_dir, code_lines(4))
    with db.session() as session:
        assert jobs.claim_next(session, utcnow()) is not None  # then its worker died
    worker_once(database_url)  # silent for less than the stall limit: left alone
    assert view(db, job_id).status == "running" and path.exists()
    with db.session() as session:
        session.execute(update(ImportJob).values(heartbeat_at=utcnow() - timedelta(seconds=601)))

    result = worker_once(database_url)

    assert "queued again" in result.stderr
    done = view(db, job_id)
    assert (done.status, done.attempts) == ("done", 2)
    assert stored(db, "SUP-1") == (1, 4)
    assert row(db, job_id).heartbeat_at is not None


def test_hostile_input_to_the_stock_and_catalog_operator_api_is_refused_never_a_500(
    admin: httpx.Client, alice: OperatorKeyHandle, db: Database, product: str, import_dir: Path
) -> None:
    body = b"ABCDABCDABCD\n"
    for params in (
        {"product": "psn\x00us"},
        {"reference": "SUP\x00-1"},
        {"supplier": "Upstream\x00"},
        {"unit_cost": "4\x005"},
        {"product": "x" * 65},
        {"supplier": "s" * 201},
        {"unit_cost": "1e999999"},
    ):
        response = upload(admin, alice.headers, body, **params)
        assert response.status_code in (404, 422), (params, response.text)
    for path in (
        "/api/v1/admin/stock/batches/SUP%00/release",
        "/api/v1/admin/stock/batches/SUP%00/quarantine",
        "/api/v1/admin/products/psn%00us/retire",
        "/api/v1/admin/products/PSN-US-50/unretire",
    ):
        assert admin.post(path, headers=alice.headers).status_code == 404, path
    price = admin.post(
        "/api/v1/admin/products/psn%00us/price", json={"price": "1"}, headers=alice.headers
    )
    assert price.status_code == 404
    assert files_in(import_dir) == []
