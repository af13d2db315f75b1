"""`codeshelf stock import`: what gets in, what is reported (masked), and that an import is
all-or-nothing even when it is refused, crashes, or is killed halfway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from typer.testing import Result

from codeshelf.audit.models import AuditEvent
from codeshelf.invariants import check_all
from codeshelf.kit.db import Base, Database
from codeshelf.kit.vault import Vault
from codeshelf.stock.models import Batch, Code, CodeState
from tests.fixtures import factories
from tests.fixtures.factories import SECRET
from tests.fixtures.processes import StartImport, import_processes

SKU = "psn-us-50"
# Twelve letters and digits each; the canonical forms are ABCD-EFGH-IJKL and so on.
GOOD = ["ABCDEFGHIJKL", "MNOPQRSTUVWX", "2345ABCD6789"]


@pytest.fixture
def product(db: Database) -> str:
    return factories.add_product(db, SKU)


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def canonical(code: str) -> str:
    compact = code.replace("-", "").replace(" ", "").upper()
    return f"{compact[:4]}-{compact[4:8]}-{compact[8:]}"


def import_file(database_url: str, path: Path, batch: str, *options: str) -> Result:
    return factories.run_cli(
        database_url, "stock", "import", str(path), "--sku", SKU, "--batch", batch, *options
    )


def json_report(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


PROBLEMS = ("duplicates_in_file", "duplicates_in_stock", "malformed")


def issue_lines(report: dict[str, Any], kind: str) -> list[int]:
    return [issue["line"] for issue in report[kind]["lines"]]


def stored_codes(db: Database, vault: Vault) -> list[str]:
    """Every code in stock, decrypted, in import order."""
    with db.read_session() as session:
        rows = session.execute(select(Code.sealed, Code.fingerprint, Code.key_id).order_by(Code.id))
        return [vault.open(sealed, fingerprint, key_id) for sealed, fingerprint, key_id in rows]


def batch_row(db: Database, reference: str) -> Batch | None:
    with db.read_session() as session:
        return session.scalar(select(Batch).where(Batch.reference == reference))


def assert_nothing_imported(db: Database, reference: str) -> None:
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Code)) == 0
        assert session.scalar(select(func.count()).select_from(Batch)) == 0
        audited = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "stock.import", AuditEvent.subject == reference)
        )
        assert audited == 0


def assert_no_plaintext(result: Result, codes: Iterable[str]) -> None:
    """No more than the last four characters of any code reach the terminal."""
    printed = result.stdout + result.stderr
    for code in codes:
        compact = code.replace("-", "").replace(" ", "")
        for form in {compact, compact.upper(), compact.lower(), code}:
            if len(form) > 4:
                assert form[:-4] not in printed, f"{form[:-4]!r} was printed"
        if len(compact) == 12:
            assert canonical(compact)[:9] not in printed


def test_valid_lines_are_imported_and_every_bad_line_is_reported_masked(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path
) -> None:
    [in_stock] = factories.load_codes(db, vault, SKU, 1)
    lines = [
        "ABCD-EFGH-IJKL",  # 1
        "",  # 2: blank lines are skipped, but still counted for line numbers
        "mnop qrst uvwx",  # 3
        "abcd-efgh-ijkl",  # 4: the code of line 1 again
        in_stock.lower(),  # 5: already in stock
        "ZZZZ-YYYY-XXX",  # 6: 11 characters
        "ZZZZ-YYYY-XXXWV",  # 7: 13 characters
        "2345 ABCD 6789",  # 8
    ]
    path = write_lines(tmp_path / "codes.txt", lines)

    result = import_file(database_url, path, "SUP-2024-001", "--json")

    report = json_report(result)
    assert report["batch"] == "SUP-2024-001"
    assert report["sku"] == SKU
    assert report["lines_read"] == 7
    assert report["imported"] == 3
    assert report["duplicates_in_file"] == {
        "count": 1,
        "lines": [{"line": 4, "code": "****-****-IJKL", "reason": ""}],
    }
    assert report["duplicates_in_stock"]["count"] == 1
    assert report["duplicates_in_stock"]["lines"][0]["line"] == 5
    assert report["duplicates_in_stock"]["lines"][0]["code"] == "****-****-" + in_stock[-4:]
    assert report["malformed"]["count"] == 2
    assert issue_lines(report, "malformed") == [6, 7]
    assert [issue["code"] for issue in report["malformed"]["lines"]] == [
        "****-****-YXXX",
        "****-****-XXWV",
    ]
    assert all(issue["reason"] for issue in report["malformed"]["lines"])
    assert_no_plaintext(result, [*lines, in_stock])

    assert stored_codes(db, vault) == [
        in_stock,
        "ABCD-EFGH-IJKL",
        "MNOP-QRST-UVWX",
        "2345-ABCD-6789",
    ]
    batch = batch_row(db, "SUP-2024-001")
    assert batch is not None
    assert batch.code_count == 3


def test_the_human_readable_report_names_lines_and_masks_codes(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path
) -> None:
    [in_stock] = factories.load_codes(db, vault, SKU, 1)
    lines = ["ABCD-EFGH-IJKL", "ABCDEFGHIJKL", in_stock, "QRST-UVWX-YZ2", "MNOP-QRST-UVWX"]
    path = write_lines(tmp_path / "codes.txt", lines)

    result = import_file(database_url, path, "b-1")

    assert result.exit_code == 0, (result.stdout, result.stderr)
    out = result.stdout
    summary = " ".join(out.split())  # rich may wrap the first line at the terminal's width
    assert "2 imported of 5 lines" in summary
    assert "1 duplicate(s) within the file, 1 already in stock, 1 malformed" in summary
    assert "line 2: duplicate in file: ****-****-IJKL" in out
    assert f"line 3: already in stock: ****-****-{in_stock[-4:]}" in out
    assert "line 4: malformed: ****-****-XYZ2" in out
    assert_no_plaintext(result, [*lines, in_stock])


# {a} and {b} stand for two codes; {b_loose} is the second in lower case with spaces.
FILE_FORMATS = [
    ("codes.csv", "serial,code,pin\n1,{a},0001\n2,{b_loose},0002\n"),  # the `code` column
    ("codes.csv", "\ufeffCode ,Serial\r\n{a},1\r\n{b},2\r\n"),  # BOM, CRLF, header case
    ("codes.csv", "{a},serial 1\n{b_loose},serial 2\n"),  # no header: the first column
    ("codes.csv", '"{a}","x,y"\n\n"{b}","z"\n'),  # quoted cells, a blank line
    ("CODES.CSV", "code\n{a}\n{b}\n"),
    ("codes.txt", "{a}\r\n\r\n  {b_loose}  \r\n"),  # one code a line
    ("codes", "{a}\n{b}"),  # no extension, no final newline
]


def test_csv_and_text_files_are_read(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path
) -> None:
    for index, (name, template) in enumerate(FILE_FORMATS):
        a, b = f"FMT{index:02d}AAAAAAA", f"FMT{index:02d}BBBBBBB"
        loose = " ".join([b[:4], b[4:8], b[8:]]).lower()
        path = tmp_path / str(index) / name
        path.parent.mkdir()
        path.write_bytes(template.format(a=canonical(a), b=b, b_loose=loose).encode())

        report = json_report(import_file(database_url, path, f"b-{index}", "--json"))

        assert (report["imported"], report["malformed"]["count"]) == (2, 0), (name, template)
        assert stored_codes(db, vault)[-2:] == [canonical(a), canonical(b)], (name, template)


def test_a_csv_row_without_the_code_column_is_malformed(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path
) -> None:
    path = tmp_path / "codes.csv"
    path.write_text("serial,code\n1,ABCD-EFGH-IJKL\n2\n3,MNOP-QRST-UVWX\n")

    report = json_report(import_file(database_url, path, "b-1", "--json"))

    assert report["imported"] == 2
    assert issue_lines(report, "malformed") == [3]


def test_undecodable_lines_are_reported_and_the_rest_imported(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path
) -> None:
    path = tmp_path / "codes.txt"
    path.write_bytes(b"ABCD-EFGH-IJKL\n\xff\xfe\x00garbage\nMNOP-QRST-UVWX\n")

    report = json_report(import_file(database_url, path, "b-1", "--json"))

    assert report["imported"] == 2
    assert issue_lines(report, "malformed") == [2]
    assert stored_codes(db, vault) == ["ABCD-EFGH-IJKL", "MNOP-QRST-UVWX"]


def test_case_spaces_and_hyphens_do_not_make_a_new_code(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path
) -> None:
    first = write_lines(tmp_path / "a.txt", ["abcd efgh ijkl", "ABCD-EFGH-IJKL", "AbCdEfGhIjKl"])
    report = json_report(import_file(database_url, first, "b-1", "--json"))
    assert report["imported"] == 1
    assert issue_lines(report, "duplicates_in_file") == [2, 3]

    second = write_lines(tmp_path / "b.txt", ["a-b-c-d-e-f-g-h-i-j-k-l", "MNOP-QRST-UVWX"])
    report = json_report(import_file(database_url, second, "b-2", "--json"))
    assert report["imported"] == 1
    assert issue_lines(report, "duplicates_in_stock") == [1]

    assert stored_codes(db, vault) == ["ABCD-EFGH-IJKL", "MNOP-QRST-UVWX"]


def test_codes_are_stored_canonical_encrypted_and_fingerprinted(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "codes.txt", ["abcd efgh ijkl"])
    json_report(import_file(database_url, path, "b-1", "--json"))

    with db.read_session() as session:
        [code] = session.scalars(select(Code)).all()
        assert code.state == CodeState.AVAILABLE
        assert code.order_item_id is None
        assert code.last4 == "IJKL"
        assert code.key_id == vault.key_id
        assert code.fingerprint == vault.fingerprint("ABCD-EFGH-IJKL")
        assert vault.open(code.sealed, code.fingerprint, code.key_id) == "ABCD-EFGH-IJKL"
        for form in (b"ABCD-EFGH-IJKL", b"ABCDEFGHIJKL", b"abcdefghijkl", b"ABCD", b"EFGH"):
            assert form not in code.sealed
            assert form not in code.fingerprint
        # No column of any table holds the code in clear (the audit log included).
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                text = repr(tuple(row))
                assert "ABCD-EFGH" not in text and "ABCDEFGH" not in text, table.name


def test_supplier_and_unit_cost_are_recorded_on_the_batch(
    database_url: str, db: Database, product: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "codes.txt", GOOD)
    options = ("--supplier", "Nordic Codes AB", "--unit-cost", "45.00", "--json")

    json_report(import_file(database_url, path, "NC-77", *options))

    batch = batch_row(db, "NC-77")
    assert batch is not None
    assert batch.supplier == "Nordic Codes AB"
    assert (batch.unit_cost_minor, batch.unit_cost_currency) == (4500, "USD")
    assert batch.code_count == 3


def test_invalid_options_import_nothing(
    database_url: str, db: Database, product: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "codes.txt", GOOD)

    for options in [("--unit-cost", "45.001"), ("--unit-cost", "forty-five"), ("--batch", "  ")]:
        result = import_file(database_url, path, "b-1", *options)

        assert result.exit_code != 0, options
        assert "error:" in result.stderr
        assert result.stdout == ""
        assert_nothing_imported(db, "b-1")


def test_an_unknown_sku_imports_nothing(
    database_url: str, db: Database, product: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "codes.txt", GOOD)

    result = factories.run_cli(
        database_url, "stock", "import", str(path), "--sku", "psn-xx-1", "--batch", "b-1"
    )

    assert result.exit_code != 0
    assert "psn-xx-1" in result.stderr
    assert_nothing_imported(db, "b-1")


def test_a_missing_file_is_an_error(database_url: str, product: str, tmp_path: Path) -> None:
    result = import_file(database_url, tmp_path / "nope.csv", "b-1")

    assert result.exit_code == 2  # a usage error
    unwrapped = "".join(c for c in result.stderr if not c.isspace() and c != "\u2502")
    assert "nope.csvdoesnotexist" in unwrapped.replace("'", "")


def test_importing_a_batch_reference_again_is_refused(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path
) -> None:
    first = write_lines(tmp_path / "a.txt", GOOD[:2])
    json_report(import_file(database_url, first, "b-1", "--json"))
    other = write_lines(tmp_path / "b.txt", GOOD[2:])

    for reference in ("b-1", "  b-1  "):
        result = import_file(database_url, other, reference, "--json")
        assert result.exit_code != 0
        assert "b-1 was already imported" in result.stderr
        assert result.stdout == ""

    assert stored_codes(db, vault) == [canonical(code) for code in GOOD[:2]]


@pytest.mark.parametrize(
    "bad_line",
    ["ABCD-EFGH-IJK", "mnop qrst uvwx", "2345-ABCD-6789"],
    ids=["malformed", "duplicate-in-file", "duplicate-in-stock"],
)
def test_strict_refuses_the_whole_file_for_one_bad_line(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path, bad_line: str
) -> None:
    if bad_line == "2345-ABCD-6789":
        old = write_lines(tmp_path / "old.txt", GOOD[2:])
        json_report(import_file(database_url, old, "old", "--json"))
    lines = [*GOOD[:2], bad_line]
    path = write_lines(tmp_path / "codes.txt", lines)
    before = stored_codes(db, vault)

    result = import_file(database_url, path, "b-1", "--strict", "--json")

    assert result.exit_code != 0
    assert result.stdout == ""
    report_text, _, error = result.stderr.partition("error:")
    assert "--strict: 1 bad line(s); nothing was imported" in error
    report = json.loads(report_text)  # the report goes with the refusal, to fix the file
    bad = [issue for kind in PROBLEMS for issue in report[kind]["lines"]]
    assert [issue["line"] for issue in bad] == [3]
    assert_no_plaintext(result, lines)
    assert stored_codes(db, vault) == before
    assert batch_row(db, "b-1") is None

    # The refused import did not use up the batch reference.
    report = json_report(import_file(database_url, path, "b-1", "--json"))
    assert report["imported"] == 2


def test_a_strict_refusal_reports_nothing_imported(
    database_url: str, product: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "codes.txt", [*GOOD[:2], "ABCD-EFGH-IJK"])

    result = import_file(database_url, path, "b-1", "--strict", "--json")

    assert result.exit_code != 0
    report = json.loads(result.stderr.partition("error:")[0])
    assert report["imported"] == 0


def test_strict_imports_a_clean_file(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "codes.txt", GOOD)

    report = json_report(import_file(database_url, path, "b-1", "--strict", "--json"))

    assert report["imported"] == 3
    assert stored_codes(db, vault) == [canonical(code) for code in GOOD]


def numbered_codes(count: int, prefix: str = "TST") -> list[str]:
    return [f"{prefix}{index:09d}" for index in range(count)]


def test_strict_refusal_at_the_end_of_a_large_file_leaves_nothing_behind(
    database_url: str, db: Database, product: str, tmp_path: Path
) -> None:
    """Several chunks are written before the bad last line is read; all are rolled back."""
    path = write_lines(tmp_path / "codes.txt", [*numbered_codes(12_000), "NOT A CODE"])

    result = import_file(database_url, path, "big-1", "--strict")

    assert result.exit_code != 0
    assert "--strict: 1 bad line(s); nothing was imported" in result.stderr
    assert_nothing_imported(db, "big-1")


def test_a_crash_halfway_through_an_import_leaves_nothing_behind(
    database_url: str,
    db: Database,
    vault: Vault,
    product: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_lines(tmp_path / "codes.txt", numbered_codes(8_000))
    real_seal = Vault.seal
    sealed = 0

    def failing_seal(self: Vault, canonical_code: str, fingerprint: bytes) -> bytes:
        nonlocal sealed
        sealed += 1
        if sealed > 6_000:  # the first chunk of 5,000 codes is already inserted
            raise OSError("the disk is on fire")
        return real_seal(self, canonical_code, fingerprint)

    monkeypatch.setattr(Vault, "seal", failing_seal)
    result = import_file(database_url, path, "big-1")
    assert result.exit_code != 0
    assert isinstance(result.exception, OSError)
    assert_nothing_imported(db, "big-1")

    monkeypatch.setattr(Vault, "seal", real_seal)
    report = json_report(import_file(database_url, path, "big-1", "--strict", "--json"))
    assert report["imported"] == 8_000


# Chunks: an import writes up to 10,000 distinct codes at a time straight into the table, in a
# savepoint; a chunk holding a code already stored is undone alone and written the careful way.


def test_duplicates_spread_over_many_chunks_are_each_reported_and_the_rest_stored(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path
) -> None:
    old = numbered_codes(3_000, prefix="OLD")
    json_report(import_file(database_url, write_lines(tmp_path / "old.txt", old), "old", "--json"))
    new = numbered_codes(24_000, prefix="NEW")
    lines: list[str] = []
    in_stock: list[int] = []  # line numbers
    in_file: list[int] = []
    for index, code in enumerate(new):
        lines.append(code)
        if index > 11_000 and index % 1_000 == 0:  # a code of the old batch, from chunk 2 on
            lines.append(old[index // 1_000])
            in_stock.append(len(lines))
        if index > 11_000 and index % 1_500 == 0:  # a code of this file's first chunk
            lines.append(canonical(new[index // 1_500]).lower())
            in_file.append(len(lines))
        if index % 2_500 == 1:  # the code of the line before, again
            lines.append(new[index - 1])
            in_file.append(len(lines))
    path = write_lines(tmp_path / "new.txt", lines)

    refused = import_file(database_url, path, "new", "--strict", "--json")
    assert refused.exit_code != 0
    assert f"--strict: {len(in_stock) + len(in_file)} bad line(s)" in refused.stderr
    assert batch_row(db, "new") is None
    assert len(stored_codes(db, vault)) == len(old)

    report = json_report(import_file(database_url, path, "new", "--json"))

    assert report["lines_read"] == len(lines)
    assert report["imported"] == len(new)
    assert sorted(issue_lines(report, "duplicates_in_stock")) == in_stock
    assert sorted(issue_lines(report, "duplicates_in_file")) == sorted(in_file)
    assert report["duplicates_in_stock"]["count"] == len(in_stock)
    assert report["duplicates_in_file"]["count"] == len(in_file)
    assert sorted(stored_codes(db, vault)) == sorted(canonical(code) for code in old + new)
    for reference, count in (("old", len(old)), ("new", len(new))):
        batch = batch_row(db, reference)
        assert batch is not None and batch.code_count == count
    with db.read_session() as session:
        assert check_all(session) == []


def test_a_file_imported_again_is_refused_code_by_code_and_adds_nothing(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path
) -> None:
    codes = numbered_codes(21_000, prefix="AGN")
    path = write_lines(tmp_path / "codes.txt", codes)
    assert json_report(import_file(database_url, path, "first", "--json"))["imported"] == 21_000

    again = json_report(import_file(database_url, path, "again", "--json"))

    assert again["imported"] == 0
    assert again["duplicates_in_stock"]["count"] == 21_000
    assert len(again["duplicates_in_stock"]["lines"]) == 1_000  # examples; the count is whole
    assert again["duplicates_in_file"]["count"] == 0
    batch = batch_row(db, "again")
    assert batch is not None and batch.code_count == 0
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Code)) == 21_000
        assert check_all(session) == []


def test_stock_summary_counts_the_imported_codes(
    database_url: str, product: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "a.txt", GOOD)
    json_report(import_file(database_url, path, "b-1", "--json"))

    result = factories.run_cli(database_url, "stock", "summary", "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "sku": SKU,
            "available": 3,
            "reserved": 0,
            "delivered": 0,
            "quarantined": 0,
            "voided": 0,
            "total": 3,
        }
    ]


def test_after_a_secret_rotation_codes_in_stock_are_still_duplicates(
    database_url: str, db: Database, product: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "codes.txt", GOOD)
    json_report(import_file(database_url, path, "before-rotation", "--json"))
    rotated = {
        "CODESHELF_SECRET_KEY": "a-brand-new-secret",
        "CODESHELF_PREVIOUS_SECRET_KEYS": SECRET,
    }

    result = factories.run_cli(
        database_url,
        *("stock", "import", str(path), "--sku", SKU, "--batch", "after-rotation", "--json"),
        env=rotated,
    )

    report = json_report(result)
    assert report["imported"] == 0
    assert report["duplicates_in_stock"]["count"] == 3
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Code)) == 3


def test_a_malformed_line_that_looks_like_markup_is_reported(
    database_url: str, db: Database, vault: Vault, product: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "codes.txt", ["ABCD-EFGH-IJKL", "AAAA[/b]"])

    result = import_file(database_url, path, "b-1")

    assert result.exit_code == 0, result.exception
    assert "line 2: malformed: ****-****-[/b]" in result.stdout


# An interrupted import: a real process, killed while it is inserting.

BIG_IMPORT = 60_000  # codes; an import inserts them 5,000 to a statement
LINE_BYTES = len("BIG000000000\n")


@pytest.fixture
def start_import(tmp_path: Path) -> Iterator[StartImport]:
    """Start `codeshelf stock import` in a process of its own; killed at teardown if need be."""
    with import_processes(tmp_path, SKU) as start:
        yield start


def read_position(pid: int, path: Path) -> int | None:
    """How far process ``pid`` has read into ``path`` (Linux: /proc/PID/fdinfo)."""
    target = str(path.resolve())
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            if os.readlink(fd) == target:
                info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
                return int(info.split("pos:")[1].split()[0])
    except OSError:  # the process is gone, or the file is not open (yet)
        return None
    return None


def wait_until_inserting(process: subprocess.Popen[str], path: Path) -> None:
    """Return once the import has read 12,000 lines: two chunks of 5,000 are inserted."""
    threshold = 12_000 * LINE_BYTES
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the import ended before it could be interrupted: {process.communicate()}")
        position = read_position(process.pid, path)
        if position is not None and position >= threshold:
            return
        time.sleep(0.005)
    pytest.fail("the import made no progress")


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/fdinfo").is_dir(), reason="needs Linux /proc to watch the import"
)


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "big.txt", numbered_codes(BIG_IMPORT, prefix="BIG"))


def assert_reimport_succeeds(database_url: str, path: Path, batch: str) -> None:
    """--strict: not one code of the interrupted run is left to count as a duplicate."""
    report = json_report(import_file(database_url, path, batch, "--strict", "--json"))
    assert report["imported"] == BIG_IMPORT


@pytest.mark.slow
@pytest.mark.live  # a real process is killed mid-import
@needs_proc
def test_a_killed_import_leaves_nothing_half_imported(
    database_url: str,
    db: Database,
    product: str,
    big_file: Path,
    start_import: Callable[[str, Path, str], subprocess.Popen[str]],
) -> None:
    process = start_import(database_url, big_file, "big-1")
    wait_until_inserting(process, big_file)

    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)

    assert process.returncode == -signal.SIGKILL
    assert_nothing_imported(db, "big-1")
    assert_reimport_succeeds(database_url, big_file, "big-1")


@pytest.mark.slow
@pytest.mark.live  # a real process is killed mid-import
@needs_proc
def test_an_interrupted_import_rolls_back_and_says_so(
    database_url: str,
    db: Database,
    product: str,
    big_file: Path,
    start_import: Callable[[str, Path, str], subprocess.Popen[str]],
) -> None:
    process = start_import(database_url, big_file, "big-1")
    wait_until_inserting(process, big_file)

    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "interrupted: nothing was imported" in stderr
    assert "Traceback" not in stderr
    assert stdout == ""
    assert_nothing_imported(db, "big-1")
    assert_reimport_succeeds(database_url, big_file, "big-1")


@pytest.mark.slow
@pytest.mark.live  # the import's own database connection is cut while it writes
@needs_proc
def test_a_database_failure_halfway_through_an_import_leaves_nothing_behind(
    database_url: str,
    db: Database,
    product: str,
    big_file: Path,
    start_import: Callable[[str, Path, str], subprocess.Popen[str]],
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL: the import's server process is terminated")
    process = start_import(database_url, big_file, "big-1")
    wait_until_inserting(process, big_file)

    with db.engine.connect() as connection:  # the one session that has written: the import's
        terminated = connection.scalars(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_xid IS NOT NULL"
            )
        ).all()
    stdout, _ = process.communicate(timeout=60)

    assert terminated == [True]
    assert process.returncode not in (0, None)
    assert stdout == ""
    assert_nothing_imported(db, "big-1")
    assert_reimport_succeeds(database_url, big_file, "big-1")
