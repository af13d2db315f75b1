"""Importing codes from an upstream batch: streamed, encrypted at rest, deduplicated by keyed
fingerprint (within the file and against all stock), in the caller's transaction.

The file is read in chunks of up to CHUNK distinct codes, each parsed, fingerprinted and sealed
(on PostgreSQL in a thread, ahead of the database's work on the chunk before), then written
straight into ``codes`` in a savepoint of its own: the unique index on the fingerprint is what
finds codes already in stock (``_insert_new_codes``).
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Full, Queue
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from codeshelf.audit import service as audit
from codeshelf.catalog.codes import CodeFormat, MalformedCodeError, format_for, mask, mask_raw
from codeshelf.catalog.models import Product
from codeshelf.catalog.service import get_product
from codeshelf.kit.errors import ConflictError, InvalidInputError
from codeshelf.kit.money import InvalidMoneyError, Money
from codeshelf.kit.vault import Vault
from codeshelf.stock.models import Batch, CodeState
from codeshelf.stock.service import floors, promises

CHUNK = 10_000  # codes per bulk insert (SQLite allows 32,766 parameters per statement)


ANALYZE_AFTER = 10_000  # imports at least this big refresh the planner's statistics


REPORT_EXAMPLES = 1_000  # lines listed per kind of problem; the counts are always complete


AVAILABLE = CodeState.AVAILABLE.value  # a new code's state, as plain text (COPY writes it)


class BatchExistsError(ConflictError):
    slug = "batch-exists"


class StrictImportRefusedError(InvalidInputError):
    slug = "import-refused"

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"--strict: {report.problem_count} bad line(s); nothing was imported")
        self.report = report


@dataclass
class LineIssue:
    line: int
    code: str  # always masked
    reason: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "reason": self.reason}


@dataclass
class IssueList:
    count: int = 0
    examples: list[LineIssue] = field(default_factory=list)

    def add(self, issue: LineIssue) -> None:
        self.count += 1
        if len(self.examples) < REPORT_EXAMPLES:
            self.examples.append(issue)

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "lines": [issue.as_json() for issue in self.examples]}


@dataclass
class ImportReport:
    batch: str
    sku: str
    lines_read: int = 0
    imported: int = 0
    duplicates_in_file: IssueList = field(default_factory=IssueList)
    duplicates_in_stock: IssueList = field(default_factory=IssueList)
    malformed: IssueList = field(default_factory=IssueList)

    @property
    def problem_count(self) -> int:
        return self.duplicates_in_file.count + self.duplicates_in_stock.count + self.malformed.count

    def as_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "sku": self.sku,
            "lines_read": self.lines_read,
            "imported": self.imported,
            "duplicates_in_file": self.duplicates_in_file.as_json(),
            "duplicates_in_stock": self.duplicates_in_stock.as_json(),
            "malformed": self.malformed.as_json(),
        }


def read_code_lines(stream: BinaryIO, *, csv_format: bool) -> Iterator[tuple[int, str, int]]:
    """Yield (line number, code text, bytes read so far), streaming; blank lines are skipped.

    CSV: the column headed ``code`` when the first row has one, else the first column.
    """
    column: int | None = 0 if csv_format else None
    position = 0
    for number, raw in enumerate(stream, start=1):
        position += len(raw)
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace").strip()
        if not text:
            continue
        if column is None:
            yield number, text, position
            continue
        cells = next(csv.reader([text]), [])
        if number == 1:
            lowered = [cell.strip().lower() for cell in cells]
            if "code" in lowered:
                column = lowered.index("code")
                continue
        yield number, (cells[column] if column < len(cells) else ""), position


def is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def parse_unit_cost(amount: str | None, currency: str) -> Money | None:
    if amount is None:
        return None
    try:
        return Money.parse(amount, currency)
    except InvalidMoneyError as exc:
        raise InvalidInputError(f"unit cost: {exc}") from exc


@dataclass
class _Chunk:
    """Up to CHUNK distinct codes, sealed and ready to insert, with the lines refused so far."""

    lines_read: int = 0
    malformed: list[LineIssue] = field(default_factory=list)
    duplicates: list[LineIssue] = field(default_factory=list)
    codes: dict[bytes, tuple[int, str]] = field(default_factory=dict)  # fingerprint -> line, code
    rows: list[tuple[Any, ...]] = field(default_factory=list)


def _prepare(
    lines: Iterable[tuple[int, str]],
    vault: Vault,
    code_format: CodeFormat,
    product_id: int,
    batch_id: int,
) -> Iterator[_Chunk]:
    """The CPU half of an import (parse, fingerprint, encrypt): plain values, no database."""
    key_id, seal = vault.key_id, vault.seal
    chunk = _Chunk()
    for number, raw in lines:
        chunk.lines_read += 1
        try:
            canonical = code_format.normalize(raw)
        except MalformedCodeError as exc:
            chunk.malformed.append(LineIssue(number, mask_raw(raw), str(exc)))
            continue
        fingerprint = vault.fingerprint(canonical)
        if fingerprint in chunk.codes:
            chunk.duplicates.append(LineIssue(number, mask(canonical)))
            continue
        chunk.codes[fingerprint] = (number, canonical)
        sealed = seal(canonical, fingerprint)
        chunk.rows.append(
            (product_id, batch_id, fingerprint, sealed, key_id, canonical[-4:], AVAILABLE)
        )
        if len(chunk.codes) >= CHUNK:
            yield chunk
            chunk = _Chunk()
    yield chunk


def _in_background(items: Iterator[_Chunk], depth: int = 2) -> Iterator[_Chunk]:
    """Run a generator in a thread, ``depth`` items ahead of its consumer.

    An import's CPU work (hashing, encryption) then overlaps the database's work on the
    previous chunk. Errors in the thread are raised here; closing this generator stops it.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put(("item", item), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(("done", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            queue.put(("error", exc))

    worker = threading.Thread(target=produce, name="codeshelf-import", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()


def _overlapped(session: Session, chunks: Iterator[_Chunk]) -> Iterator[_Chunk]:
    """PostgreSQL works in a process of its own: the chunks are prepared in a thread meanwhile.

    SQLite works inside this one, giving up and taking back the GIL around every row it
    inserts; a second thread would only fight it for the GIL (an import measured a third
    slower so), so there the chunks are prepared in line.
    """
    if session.get_bind().dialect.name == "postgresql":
        return _in_background(chunks)
    return chunks


NOT_THIS_BATCH = -1


class _Importer:
    """Stores prepared chunks and keeps the report.

    Memory stays flat whatever the file's size: duplicates within a chunk are caught while
    preparing it, and the database catches the rest (rows of earlier chunks are visible in
    this transaction, and a duplicate whose stored twin belongs to this batch is a duplicate
    within the file).
    """

    def __init__(self, session: Session, vault: Vault, product: Product, batch: Batch) -> None:
        self.session = session
        self.vault = vault
        self.batch_id = batch.id
        self.report = ImportReport(batch=batch.reference, sku=product.sku)

    def store(self, chunk: _Chunk) -> None:
        report = self.report
        report.lines_read += chunk.lines_read
        for issue in chunk.malformed:
            report.malformed.add(issue)
        for issue in chunk.duplicates:
            report.duplicates_in_file.add(issue)
        stocked_before_rotation = self._stocked_under_earlier_secrets(chunk)
        rows = [row for row in chunk.rows if row[2] not in stocked_before_rotation]
        refused = _insert_new_codes(self.session, rows)
        refused.update(dict.fromkeys(stocked_before_rotation, NOT_THIS_BATCH))
        for fingerprint, stored_batch in refused.items():
            number, canonical = chunk.codes[fingerprint]
            issues = (
                report.duplicates_in_file
                if stored_batch == self.batch_id
                else report.duplicates_in_stock
            )
            issues.add(LineIssue(number, mask(canonical)))
        report.imported += len(chunk.rows) - len(refused)

    def _stocked_under_earlier_secrets(self, chunk: _Chunk) -> set[bytes]:
        """Codes of the chunk already in stock under a fingerprint of an earlier secret."""
        if not self.vault.rotated:  # the common case: no code need be hashed again
            return set()
        earlier = {
            old: fingerprint
            for fingerprint, (_, canonical) in chunk.codes.items()
            for old in self.vault.earlier_fingerprints(canonical)
        }
        if not earlier:
            return set()
        found = _stored_batches(self.session, list(earlier))
        return {earlier[old] for old in found}


# Bulk paths below the ORM: an import of a million codes spends its time here.
_CODE_COLUMNS = "product_id, batch_id, fingerprint, sealed, key_id, last4, state"


def _stored_batches(session: Session, fingerprints: list[bytes]) -> dict[bytes, int]:
    """The batch of each of these fingerprints that is already stored."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        result = connection.exec_driver_sql(
            "SELECT fingerprint, batch_id FROM codes WHERE fingerprint = ANY(%s)", (fingerprints,)
        )
    else:
        marks = ",".join("?" * len(fingerprints))
        result = connection.exec_driver_sql(
            f"SELECT fingerprint, batch_id FROM codes WHERE fingerprint IN ({marks})",  # noqa: S608
            tuple(fingerprints),
        )
    return {bytes(fingerprint): batch_id for fingerprint, batch_id in result}


def _insert_new_codes(session: Session, rows: list[tuple[Any, ...]]) -> dict[bytes, int]:
    """Insert the rows whose fingerprint is new; returns the others with their stored batch.

    The unique index on fingerprint is the probe. Most chunks hold no code stored already: they
    are written straight into codes (binary COPY on PostgreSQL) and nothing else is asked. A
    chunk that does hold one (stored by an earlier import, by an earlier chunk of this one, or by
    a concurrent import, whose commit the index waits for) fails as a whole; it was written in a
    savepoint, so only it is undone, and it is written again the careful way.
    """
    if not rows:
        return {}
    try:
        with session.begin_nested():
            _write_codes(session, rows)
    except Exception as exc:
        if not _refused(exc):
            raise
        return _insert_carefully(session, rows)
    return {}


def _refused(exc: Exception) -> bool:
    """Did the write fail on a code already stored (PostgreSQL: or wait for another import's rows
    while that one waited for its own, a deadlock, where only the chunk needs undoing)?"""
    cause = getattr(exc, "orig", exc)  # SQLAlchemy wraps the driver's errors; COPY's are bare
    if getattr(cause, "sqlstate", None) in {"23505", "40P01"}:  # unique violation, deadlock
        return True
    return getattr(cause, "sqlite_errorname", None) == "SQLITE_CONSTRAINT_UNIQUE"


# The binary COPY types of _CODE_COLUMNS in the codes table.
_CODE_COPY_TYPES = ["int8", "int8", "bytea", "bytea", "varchar", "varchar", "varchar"]


def _write_codes(session: Session, rows: list[tuple[Any, ...]]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        _copy_rows(session, "codes", rows, binary=True)
        return
    session.connection().exec_driver_sql(
        f"INSERT INTO codes ({_CODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        rows,
    )


def _copy_rows(session: Session, table: str, rows: list[tuple[Any, ...]], *, binary: bool) -> None:
    driver = session.connection().connection.driver_connection
    assert driver is not None
    statement = f"COPY {table} ({_CODE_COLUMNS}) FROM STDIN" + (" (FORMAT BINARY)" * binary)
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        if binary:
            copy.set_types(_CODE_COPY_TYPES)
        for row in rows:
            copy.write_row(row)


def _insert_carefully(session: Session, rows: list[tuple[Any, ...]]) -> dict[bytes, int]:
    """Insert the new rows of a chunk known to hold a stored code; returns the others."""
    if session.get_bind().dialect.name == "postgresql":
        return _insert_new_codes_postgresql(session, rows)
    stored = _stored_batches(session, [row[2] for row in rows])
    new = [row for row in rows if row[2] not in stored]
    if new:
        _write_codes(session, new)
    return stored


def _insert_new_codes_postgresql(session: Session, rows: list[tuple[Any, ...]]) -> dict[bytes, int]:
    """COPY into a temporary table, then one INSERT … ON CONFLICT DO NOTHING into codes.

    Only when some rows were refused does a second query find which: a refused row's stored
    twin carries another ciphertext (every seal has its own random nonce). A row a concurrent
    import holds uncommitted makes the INSERT wait for that import's end, then skip the code or
    store it: two imports never both store one.
    """
    connection = session.connection()
    connection.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS codes_import (product_id bigint, batch_id bigint, "
        "fingerprint bytea, sealed bytea, key_id text, last4 text, state text) ON COMMIT DROP"
    )
    connection.exec_driver_sql("TRUNCATE codes_import")
    _copy_rows(session, "codes_import", rows, binary=False)
    inserted = connection.exec_driver_sql(
        f"INSERT INTO codes ({_CODE_COLUMNS}) SELECT {_CODE_COLUMNS} FROM codes_import "  # noqa: S608
        "ON CONFLICT (fingerprint) DO NOTHING"
    ).rowcount
    if inserted == len(rows):
        return {}
    refused = connection.exec_driver_sql(
        "SELECT i.fingerprint, c.batch_id FROM codes_import i "
        "JOIN codes c ON c.fingerprint = i.fingerprint WHERE c.sealed <> i.sealed"
    )
    return {bytes(fingerprint): batch_id for fingerprint, batch_id in refused}


def batch_exists(session: Session, reference: str) -> bool:
    return session.scalar(select(Batch.id).where(Batch.reference == reference)) is not None


def import_codes(
    session: Session,
    vault: Vault,
    *,
    sku: str,
    batch_reference: str,
    lines: Iterable[tuple[int, str]],
    supplier: str | None = None,
    unit_cost: str | None = None,
    strict: bool = False,
    actor: str = audit.OPERATOR_CLI,
) -> ImportReport:
    """Import codes in the caller's transaction: if anything raises, nothing is kept."""
    product = get_product(session, sku)
    batch_reference = batch_reference.strip()
    if not batch_reference:
        raise InvalidInputError("a batch reference is required")
    if batch_exists(session, batch_reference):
        raise BatchExistsError(f"batch {batch_reference} was already imported")
    cost = parse_unit_cost(unit_cost, product.price_currency)
    batch = Batch(
        reference=batch_reference,
        product_id=product.id,
        supplier=supplier,
        unit_cost_minor=None if cost is None else cost.minor,
        unit_cost_currency=None if cost is None else cost.currency,
    )
    session.add(batch)
    session.flush()
    importer = _Importer(session, vault, product, batch)
    chunks = _prepare(lines, vault, format_for(product.platform), product.id, batch.id)
    for chunk in _overlapped(session, chunks):
        importer.store(chunk)
    report = importer.report
    if strict and report.problem_count:
        report.imported = 0  # the caller rolls back: nothing of this file is kept
        raise StrictImportRefusedError(report)
    batch.code_count = report.imported
    floors.include_batch(session, product.id, batch.id)
    promises.arrived(session, product.id, report.imported)
    if report.imported >= ANALYZE_AFTER and session.get_bind().dialect.name == "postgresql":
        # Fresh statistics keep the allocation query on its index right after a big import.
        session.connection().exec_driver_sql("ANALYZE codes")
    audit.record(
        session,
        actor=actor,
        action="stock.import",
        subject=batch_reference,
        count=report.imported,
        details={"sku": sku, "problems": report.problem_count, "supplier": supplier},
    )
    return report


Progress = Callable[[int, int], None]  # (bytes read, lines read) so far
PROGRESS_EVERY = 1000  # lines between two progress calls


def import_file(
    session: Session,
    vault: Vault,
    path: Path,
    *,
    sku: str,
    batch_reference: str,
    supplier: str | None = None,
    unit_cost: str | None = None,
    strict: bool = False,
    csv_format: bool | None = None,
    on_progress: Progress | None = None,
    actor: str = audit.OPERATOR_CLI,
) -> ImportReport:
    """Import a file (CSV when ``csv_format``, by default when it is named .csv), in the
    caller's transaction. ``on_progress`` is called every PROGRESS_EVERY lines and once the
    file is read (on PostgreSQL from the thread that reads it); whatever it raises stops the
    import, and the caller rolls it back."""
    as_csv = is_csv(path) if csv_format is None else csv_format
    with path.open("rb") as stream:

        def lines() -> Iterator[tuple[int, str]]:
            number = position = 0
            for number, text, position in read_code_lines(stream, csv_format=as_csv):
                if on_progress is not None and number % PROGRESS_EVERY == 0:
                    on_progress(position, number)
                yield number, text
            if on_progress is not None:
                on_progress(position, number)

        return import_codes(
            session,
            vault,
            sku=sku,
            batch_reference=batch_reference,
            lines=lines(),
            supplier=supplier,
            unit_cost=unit_cost,
            strict=strict,
            actor=actor,
        )
