"""Imports at the same time: a code in two files racing each other is stored once, by one of
them, and reported by the other as already in stock; every batch counts what it stored.

An import writes its chunks straight into ``codes``; on PostgreSQL the unique index on the
fingerprint makes a chunk wait for a concurrent import holding one of its codes uncommitted,
and fail if that one commits: then only the chunk is undone and written the careful way. On
SQLite the second import waits for the first at BEGIN IMMEDIATE.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from codeshelf.invariants import check_all
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.stock import service as stock
from codeshelf.stock.models import Batch, Code
from tests.fixtures import factories
from tests.fixtures.http import second_while_first_is_open, wait_until_blocked
from tests.fixtures.processes import StartImport, import_processes
from tests.stock.test_import import (
    SKU,
    canonical,
    numbered_codes,
    stored_codes,
    write_lines,
)


@pytest.fixture
def product(db: Database) -> str:
    return factories.add_product(db, SKU)


def load(session: Session, vault: Vault, batch: str, codes: list[str]) -> stock.ImportReport:
    return stock.import_codes(
        session, vault, sku=SKU, batch_reference=batch, lines=enumerate(codes, start=1)
    )


def code_counts(db: Database) -> dict[str, int]:
    """Each batch's recorded count, and "stored": the codes in the table."""
    with db.read_session() as session:
        rows = session.execute(select(Batch.reference, Batch.code_count))
        counts = {reference: count for reference, count in rows}
        counts["stored"] = session.scalar(select(func.count()).select_from(Code)) or 0
        return counts


def assert_consistent(db: Database, vault: Vault, codes: list[str]) -> None:
    """Exactly these codes are stored, each once, and every invariant holds."""
    assert sorted(stored_codes(db, vault)) == sorted(canonical(code) for code in codes)
    with db.read_session() as session:
        assert check_all(session) == []


# Two files: FIRST's 25,000 codes, and SECOND's 17,000 others with 3,000 of FIRST's (its lines
# 12,001-15,000) in its second chunk: the first chunk is written at once, the second runs into
# FIRST's uncommitted rows.
FIRST = numbered_codes(25_000, prefix="ONE")
FRESH = numbered_codes(17_000, prefix="TWO")
SHARED = FIRST[5_000:8_000]
SECOND = [*FRESH[:12_000], *SHARED, *FRESH[12_000:]]
SHARED_LINES = list(range(12_001, 15_001))


@pytest.mark.live  # concurrent transactions: real commits
def test_an_import_racing_an_uncommitted_one_reports_their_common_codes_once_it_commits(
    db: Database, vault: Vault, product: str
) -> None:
    def second() -> stock.ImportReport:
        with db.session() as session:
            return load(session, vault, "SECOND", SECOND)

    report = second_while_first_is_open(
        db, lambda session: load(session, vault, "FIRST", FIRST), second
    )

    assert report.imported == len(FRESH)
    assert report.duplicates_in_stock.count == len(SHARED)
    listed = [issue.line for issue in report.duplicates_in_stock.examples]
    assert len(listed) == len(set(listed)) == 1_000  # examples; the count is whole
    assert set(listed) <= set(SHARED_LINES)
    assert report.duplicates_in_file.count == 0
    assert code_counts(db) == {"FIRST": 25_000, "SECOND": 17_000, "stored": 42_000}
    assert_consistent(db, vault, FIRST + FRESH)


class AbandonedError(Exception):
    """The first import fails after its rows are written: its transaction rolls back."""


@pytest.mark.live  # concurrent transactions: real commits
def test_an_import_racing_one_that_rolls_back_stores_every_one_of_its_codes(
    db: Database, vault: Vault, product: str
) -> None:
    def second() -> stock.ImportReport:
        with db.session() as session:
            return load(session, vault, "SECOND", SECOND)

    with ThreadPoolExecutor(1) as pool:
        with contextlib.suppress(AbandonedError), db.session() as session:
            load(session, vault, "FIRST", FIRST)
            session.flush()
            future = pool.submit(second)
            wait_until_blocked(db, future)
            raise AbandonedError
        report = future.result(timeout=60)

    assert report.imported == len(SECOND)
    assert report.problem_count == 0
    assert code_counts(db) == {"SECOND": len(SECOND), "stored": len(SECOND)}
    assert_consistent(db, vault, SECOND)


# Two real `codeshelf stock import` processes started together, on files sharing 15,000 codes.


@pytest.fixture
def start_import(tmp_path: Path) -> Iterator[StartImport]:
    with import_processes(tmp_path, SKU) as start:
        yield start


def finished_report(process: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr
    report: dict[str, Any] = json.loads(stdout)
    return report


@pytest.mark.slow
@pytest.mark.live  # two processes, real commits
def test_two_imports_of_overlapping_files_at_once_store_every_code_exactly_once(
    database_url: str,
    db: Database,
    vault: Vault,
    product: str,
    tmp_path: Path,
    start_import: StartImport,
) -> None:
    codes = numbered_codes(45_000, prefix="RCE")
    a = write_lines(tmp_path / "a.txt", codes[:30_000])
    b = write_lines(tmp_path / "b.txt", codes[15_000:])

    processes = [
        start_import(database_url, a, "A", "--json"),
        start_import(database_url, b, "B", "--json"),
    ]
    reports = [finished_report(process) for process in processes]

    for report in reports:
        assert report["lines_read"] == 30_000
        assert report["imported"] + report["duplicates_in_stock"]["count"] == 30_000
        assert report["duplicates_in_file"]["count"] == report["malformed"]["count"] == 0
    assert sum(report["imported"] for report in reports) == 45_000
    assert sum(report["duplicates_in_stock"]["count"] for report in reports) == 15_000
    imported_a, imported_b = (report["imported"] for report in reports)
    assert code_counts(db) == {"A": imported_a, "B": imported_b, "stored": 45_000}
    assert_consistent(db, vault, codes)
