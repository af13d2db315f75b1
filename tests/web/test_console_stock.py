"""The console's stock pages in a real browser: products (add, the default price, retire and
unretire), batches with the bad one standing out, quarantine and release (never a delivered
code back on sale), and an import of 200,000 codes by upload, its progress bar running to
100 % and the worker's report shown."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.worker import imports
from tests.fixtures.browser import Portal, add_staff
from tests.fixtures.claims import claim_body
from tests.fixtures.factories import Shop, run_cli
from tests.fixtures.http import order
from tests.fixtures.import_jobs import code_lines, write_file


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    settings.import_dir = tmp_path / "imports"
    return settings


def _inventory(client: httpx.Client, shop: Shop) -> dict[str, str]:
    data = client.get("/api/v1/inventory", headers=shop.a.headers).json()["data"]
    return {line["product_id"]: line["price"]["amount"] for line in data}


def _available(db: Database, sku: str) -> int:
    summary = json.loads(run_cli(db.url, "stock", "summary", "--json").stdout)
    return int(next(row for row in summary if row["sku"] == sku)["available"])


def test_stock_adds_a_product_changes_its_price_and_retires_it(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client
) -> None:
    portal.enter_as(db, vault, add_staff(db, vault, "stock", "stu@wholesale.example"))
    page = portal.go("/ops/stock")
    page.get_by_label("SKU").fill("psn-de-25")
    page.get_by_label("Region").fill("DE")
    page.get_by_label("Face value", exact=True).fill("25")
    page.get_by_label("Face value currency").fill("EUR")
    page.get_by_label("Wholesale price").fill("23.40")
    page.get_by_role("button", name="Add product").click()
    expect(page.get_by_role("status")).to_contain_text("Added psn-de-25")

    page.get_by_label("Default price of psn-us-50 (USD)").fill("47.25")
    page.get_by_role("button", name="Change the default price of psn-us-50").click()
    expect(page.get_by_role("status")).to_contain_text("46.50 USD → 47.25 USD")
    assert _inventory(client, shop)["psn-us-50"] == "47.25"

    page.get_by_role("button", name="Retire psn-us-50").click()
    expect(page.get_by_role("status")).to_contain_text("psn-us-50 is retired")
    assert "psn-us-50" not in _inventory(client, shop)
    refused = order(client, shop.a.headers)
    assert refused.status_code == 422 and refused.json()["type"].endswith("/product-retired")
    page.get_by_role("button", name="Put psn-us-50 on sale again").click()
    expect(page.get_by_role("status")).to_contain_text("on sale again")
    assert order(client, shop.a.headers).status_code == 201


def test_a_bad_batch_stands_out_and_a_release_never_resells_a_delivered_code(
    portal: Portal, shop: Shop, db: Database, vault: Vault, client: httpx.Client, tmp_path: Path
) -> None:
    second = write_file(tmp_path / "b.txt", code_lines(5, prefix="BB"))
    run_cli(db.url, "stock", "import", str(second), "--sku", "psn-us-50", "--batch", "SUP-B",
            "--supplier", "Shady Ltd")  # fmt: skip
    bought = order(client, shop.a.headers, {"product_id": "psn-us-50", "quantity": 21}).json()
    codes = [c["code"] for c in client.get(
        f"/api/v1/orders/{bought['id']}/codes", headers=shop.a.headers
    ).json()["codes"]]  # fmt: skip
    from_b = [c for c in codes if c.replace("-", "").startswith("BB")]
    assert len(from_b) == 1  # 20 from the shop's batch, then SUP-B's first
    filed = client.post(
        "/api/v1/claims", json=claim_body(bought["id"], *from_b), headers=shop.a.headers
    )
    assert filed.status_code == 201, filed.text

    portal.enter_as(db, vault, add_staff(db, vault, "stock", "stu@wholesale.example"))
    page = portal.go("/ops/stock/batches")
    expect(page.locator("svg.rates rect.bad")).to_have_count(1)
    expect(page.locator("tr.mismatch")).to_contain_text("SUP-B")
    expect(page.locator("tr.mismatch")).to_contain_text("100.0 %")
    portal.shot("console-batches")

    before = _available(db, "psn-us-50")
    assert before == 4
    page.get_by_role("button", name="Quarantine SUP-B").click()
    expect(page.get_by_role("status")).to_contain_text("Quarantined 4 available codes of SUP-B")
    assert _available(db, "psn-us-50") == 0
    page.get_by_role("button", name="Release the quarantine of SUP-B").click()
    expect(page.get_by_role("status")).to_contain_text("Released 4 codes of SUP-B")
    assert _available(db, "psn-us-50") == 4  # the delivered (claimed) code stayed out


@pytest.fixture
def runner(settings: Settings, db: Database, vault: Vault) -> Iterator[imports.ImportRunner]:
    started = imports.ImportRunner(settings, db, vault, lambda _line: None)
    yield started
    started.stop()


@pytest.mark.both_backends  # SQLite's import holds the write lock: the page must still poll
def test_an_upload_of_200000_codes_runs_to_100_percent_and_shows_the_report(
    portal: Portal,
    shop: Shop,
    db: Database,
    vault: Vault,
    tmp_path: Path,
    runner: imports.ImportRunner,
) -> None:
    lines = code_lines(200_000, prefix="UP")
    lines[7] = "not a code\n"
    upload = write_file(tmp_path / "upload" / "supplier-2026-12-01.txt", lines)
    portal.enter_as(db, vault, add_staff(db, vault, "stock", "stu@wholesale.example"))
    page = portal.go("/ops/stock/imports")
    page.get_by_label("Product").select_option("psn-us-50")
    page.get_by_label("Batch reference (the supplier's)").fill("SUP-2026-12-01")
    page.get_by_label("Supplier", exact=True).fill("Upstream Ltd")
    page.get_by_label("Unit cost (what one code cost)").fill("45.00")
    page.get_by_label("File", exact=True).set_input_files(upload)
    page.get_by_role("button", name="Upload and import").click()
    expect(page.get_by_role("heading", name="Waiting for the worker")).to_be_visible()
    assert re.search(r"/ops/stock/imports/imp_[0-9a-f]{20}$", page.url)
    assert list((tmp_path / "imports").glob("upload-*.txt"))  # streamed to the import dir

    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runner.step()
        seen.add(page.locator("#job-progress").get_attribute("value") or "")
        if page.get_by_role("heading", name="Imported").is_visible():
            break
        page.wait_for_timeout(200)
    expect(page.get_by_role("heading", name="Imported")).to_be_visible()  # htmx swapped it in
    expect(page.locator("#job-progress")).to_have_attribute("value", "100.0")
    expect(page.locator("#job-report")).to_contain_text("199,999")
    expect(page.get_by_role("table")).to_contain_text("****-****-")  # the bad line, masked
    portal.shot("console-import-done")
    assert "0.0" in seen  # the bar moved: it started at zero and ended at 100
    assert _available(db, "psn-us-50") == 20 + 199_999


def test_an_upload_without_a_length_or_with_a_control_character_stores_nothing(
    portal: Portal, shop: Shop, db: Database, vault: Vault, settings: Settings, tmp_path: Path
) -> None:
    upload = write_file(tmp_path / "codes.txt", code_lines(10, prefix="CC"))
    portal.enter_as(db, vault, add_staff(db, vault, "stock", "stu@wholesale.example"))
    session = portal.page.context.cookies()[0]
    chunked = httpx.post(  # no Content-Length: its size would be known only once read
        portal.url + "/ops/stock/imports", content=iter([b"--x\r\n", b"A" * 100_000]),
        headers={"Content-Type": "multipart/form-data; boundary=x",
                 "Cookie": f"{session['name']}={session['value']}"},
    )  # fmt: skip
    assert chunked.status_code == 411 and "Content-Length" in chunked.text
    page = portal.go("/ops/stock/imports")
    page.get_by_label("Batch reference (the supplier's)").fill("SUP\u001b[31m-1")
    page.get_by_label("File", exact=True).set_input_files(upload)
    page.get_by_role("button", name="Upload and import").click()
    expect(page.get_by_role("alert")).to_contain_text("printable characters")
    assert not settings.import_dir.exists() or not any(settings.import_dir.iterdir())
