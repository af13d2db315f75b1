"""Import jobs in the worker: one at a time per worker, each in a thread of its own beside the
loop's passes.

Why a thread: a million codes take about 20 seconds to import (longer on a busy database); run
inside the loop, that would hold back webhook deliveries, the stock pass and the floors for as
long. The thread imports in database sessions of its own, so on PostgreSQL the loop's passes go
on in theirs meanwhile. On SQLite the import holds the database's one write lock from start to
end: the loop goes on, but whatever it writes waits for the import's commit (as with
``codeshelf stock import``: SQLite runs one writer at a time).

The import is the CLI's (``stock.import_file``) in one transaction, the job marked done in that
same transaction; then, in transactions of their own, what waits for stock is served and the file
is removed. Progress is written at most once a second, in short transactions of its own
(PostgreSQL) or to a file beside the upload (SQLite, whose write lock the import holds). A worker
told to stop stops its import within PROGRESS_EVERY lines, rolls it back and queues the job again.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from codeshelf.audit import service as audit
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.errors import DomainError
from codeshelf.kit.logs import event
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.stock import service as stock
from codeshelf.stock.service import jobs
from codeshelf.worker.passes import Report, after_stock_arrives

log = logging.getLogger("codeshelf.worker")
PROGRESS_SECONDS = 1.0  # at most one progress write a second


class _StoppingError(Exception):
    """The worker is stopping: the import is abandoned (rolled back) and its job queued again."""


class _Progress:
    """The import's progress callback: remembers how far it got, writes it at most once a
    second, and stops the import when the worker stops or the job was taken from it."""

    def __init__(self, db: Database, job: jobs.Claimed, stop: threading.Event) -> None:
        self.db = db
        self.job = job
        self.stop = stop
        self.bytes_done = 0
        self.lines_done = 0
        self._written_at: float | None = None

    def __call__(self, bytes_done: int, lines_done: int) -> None:
        self.bytes_done, self.lines_done = bytes_done, lines_done
        if self.stop.is_set():
            raise _StoppingError
        now = time.monotonic()
        if self._written_at is not None and now - self._written_at < PROGRESS_SECONDS:
            return
        self._written_at = now
        event(log, "import.progress", job=self.job.public_id, lines=lines_done, bytes=bytes_done)
        # SQLite: the import holds the one write lock. A database made ``within`` one
        # connection (the test suite's) may not be used from the thread reading the file.
        if self.db.is_sqlite or not self.db.owns_connections:
            jobs.write_progress_file(self.job.path, bytes_done, lines_done)
            return
        try:
            with self.db.session() as session:
                held = jobs.note_progress(session, self.job, bytes_done, lines_done, utcnow())
        except Exception:  # progress is for show: a failed write must not fail the import
            log.warning("writing the progress of %s failed", self.job.public_id, exc_info=True)
            return
        if not held:
            raise jobs.ImportJobLostError(f"job {self.job.public_id} was taken from this worker")


def readable(exc: BaseException) -> str:
    """What went wrong, for the operator: a refusal's own words, else the error's first line."""
    if isinstance(exc, DomainError):
        return exc.detail
    if isinstance(exc, FileNotFoundError):
        return f"the uploaded file is no longer there ({exc.filename}); nothing was imported"
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"the import failed ({type(exc).__name__}: {first}); nothing was imported"


def claim(db: Database, settings: Settings, report: Report) -> jobs.Claimed | None:
    """Recover jobs orphaned by a crashed worker, then take the oldest queued one (or None).
    An idle worker only reads: it writes when there is something to take."""
    now = utcnow()
    stall = timedelta(seconds=settings.import_stall_seconds)
    try:
        with db.read_session() as session:
            if not jobs.any_to_claim(session, now, stall):
                return None
        with db.session() as session:
            for job_id in jobs.requeue_stalled(session, now, stall):
                report(f"import job {job_id} lost its worker: queued again (or failed)")
            return jobs.claim_next(session, now)
    except Exception:
        log.exception("taking an import job failed; retrying next pass")
        return None


def run_job(
    db: Database,
    vault: Vault,
    job: jobs.Claimed,
    report: Report,
    stop: threading.Event | None = None,
) -> str:
    """Import the job's file; returns the job's status afterwards (``lost``: another worker
    has it now). Never raises: whatever fails is logged and the job says so."""
    progress = _Progress(db, job, stop or threading.Event())
    try:
        with db.session() as session:
            result = stock.import_file(
                session,
                vault,
                job.path,
                sku=job.sku,
                batch_reference=job.reference,
                supplier=job.supplier,
                unit_cost=job.unit_cost,
                csv_format=job.csv_format,
                on_progress=progress,
                actor=job.created_by,
            )
            jobs.finish_job(session, job, result, progress.lines_done, utcnow())
    except _StoppingError:
        return _finished(job, _put_back(db, job, report), progress)
    except jobs.ImportJobLostError:
        log.warning("import job %s was taken from this worker; it stopped", job.public_id)
        return "lost"
    except Exception as exc:
        return _finished(job, _fail(db, job, exc, report), progress)
    _finished(job, "done", progress, result.imported, result.problem_count)
    report(
        f"import job {job.public_id}: {result.imported} codes imported into batch "
        f"{job.reference} ({result.problem_count} line(s) refused)"
    )
    _serve_waiting(db, report)
    jobs.remove_files(job.path)
    return "done"


def _finished(
    job: jobs.Claimed, outcome: str, progress: _Progress, imported: int = 0, refused: int = 0
) -> str:
    """The ``import.finished`` event (outcome: done, failed, queued again); returns outcome."""
    event(
        log, "import.finished", job=job.public_id, outcome=outcome, lines=progress.lines_done,
        imported=imported, refused=refused,
    )  # fmt: skip
    return outcome


def _put_back(db: Database, job: jobs.Claimed, report: Report) -> str:
    try:
        with db.session() as session:
            jobs.put_back(session, job)
    except Exception:
        log.exception("queueing import job %s again failed; it is recovered later", job.public_id)
    report(f"import job {job.public_id}: stopped with the worker, queued again")
    return "queued"


def _fail(db: Database, job: jobs.Claimed, exc: Exception, report: Report) -> str:
    if not isinstance(exc, DomainError):
        log.error("import job %s failed", job.public_id, exc_info=exc)
    error = readable(exc)
    try:
        with db.session() as session:
            failed = jobs.fail_job(session, job, error, utcnow())
    except Exception:
        log.exception("marking import job %s failed failed; it is recovered later", job.public_id)
        return "running"
    if not failed:
        return "lost"
    jobs.remove_files(job.path)
    report(f"import job {job.public_id} failed: {error}")
    return "failed"


def _serve_waiting(db: Database, report: Report) -> None:
    """The new stock may be what approved claims and backorders wait for (as after the CLI's
    import); a failure here is the worker's stock pass's to retry."""
    try:
        with db.session() as session:
            served = after_stock_arrives(session, audit.WORKER)
    except Exception:
        log.exception("serving what waits for stock after an import failed; retrying next pass")
        return
    served.log()
    for line in served.lines():
        report(line)


def run_next(db: Database, vault: Vault, settings: Settings, report: Report) -> str | None:
    """Take the next job and run it here, to its end (``codeshelf worker --once``)."""
    job = claim(db, settings, report)
    return None if job is None else run_job(db, vault, job, report)


class ImportRunner:
    """The loop's import jobs: at most one at a time, in a thread."""

    def __init__(self, settings: Settings, db: Database, vault: Vault, report: Report) -> None:
        self.settings = settings
        self.db = db
        self.vault = vault
        self.report = report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def step(self) -> bool:
        """Start the next queued job unless one runs here already; whether one was started."""
        if self.busy:
            return False
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        job = claim(self.db, self.settings, self.report)
        if job is None:
            return False
        self._thread = threading.Thread(
            target=run_job,
            args=(self.db, self.vault, job, self.report, self._stop),
            name=f"codeshelf-{job.public_id}",
            daemon=True,
        )
        self._thread.start()
        return True

    def stop(self) -> None:
        """Stop a running import (rolled back, its job queued again) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
