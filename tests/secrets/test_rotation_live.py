"""`codeshelf secrets rotate` as a real process on real commits: killed with SIGKILL halfway
and run again, and running while partners order (PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from typer.testing import Result

import codeshelf
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.stock.models import Code, CodeState
from tests.fixtures import factories
from tests.fixtures.claims import reveal
from tests.fixtures.factories import SECRET
from tests.fixtures.http import order
from tests.fixtures.processes import launched
from tests.fixtures.servers import LIVE_SERVERS

NEW_SECRET = "the-secret-after-rotation-0123456789"
OLD, NEW = Vault(SECRET), Vault(NEW_SECRET)
ROTATING = Vault(NEW_SECRET, [SECRET])
SKU = "psn-us-50"
StartRotation = Callable[..., subprocess.Popen[str]]
ROTATING_ENV: dict[str, str | None] = {
    "CODESHELF_SECRET_KEY": NEW_SECRET,
    "CODESHELF_PREVIOUS_SECRET_KEYS": SECRET,
}


def ok(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture
def start_rotation(tmp_path: Path) -> Iterator[StartRotation]:
    """``start(database_url, *options)``: `codeshelf secrets rotate --json` in a process of its
    own, the new secret current and the old one previous; killed at teardown if need be."""

    def start(database_url: str, *options: str) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "CODESHELF_DATABASE_URL": database_url,
            "CODESHELF_SECRET_KEY": NEW_SECRET,
            "CODESHELF_PREVIOUS_SECRET_KEYS": SECRET,
            "CODESHELF_EVIDENCE_DIR": str(tmp_path / "evidence"),
            # This tree's code, whichever checkout the command was installed from.
            "PYTHONPATH": str(Path(codeshelf.__file__).parents[1]),
        }
        return launch(["secrets", "rotate", "--json", *options], env)

    with launched(tmp_path) as launch:
        yield start


def under_new_key(db: Database) -> int:
    with db.read_session() as session:
        return (
            session.scalar(select(func.count()).select_from(Code).where(Code.key_id == NEW.key_id))
            or 0
        )


def wait_for(db: Database, process: subprocess.Popen[str], resealed: int) -> None:
    """Return once ``resealed`` codes are under the new key (the process still running)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the rotation ended before it was interrupted: {process.communicate()}")
        if under_new_key(db) >= resealed:
            return
        time.sleep(0.005)
    pytest.fail("the rotation made no progress")


def stored_codes(db: Database, vault: Vault) -> list[str]:
    """Every code opened with ``vault``, each checked against its fingerprint under its key."""
    by_key = {OLD.key_id: OLD, NEW.key_id: NEW}
    codes = []
    with db.read_session() as session:
        for sealed, fingerprint, key_id in session.execute(
            select(Code.sealed, Code.fingerprint, Code.key_id).order_by(Code.id)
        ):
            code = vault.open(sealed, fingerprint, key_id)
            assert fingerprint == by_key[key_id].fingerprint(code)
            codes.append(code)
    return codes


@pytest.mark.slow
@pytest.mark.live  # a real process is killed halfway through its batches
def test_a_rotation_killed_halfway_loses_nothing_and_a_rerun_finishes(
    db: Database, database_url: str, start_rotation: StartRotation
) -> None:
    factories.add_product(db)
    loaded = factories.load_codes(db, OLD, SKU, 600)
    process = start_rotation(database_url, "--batch-size", "10", "--pause", "0.02")
    wait_for(db, process, 100)

    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)

    assert process.returncode == -signal.SIGKILL
    halfway = under_new_key(db)
    assert 100 <= halfway < 600
    # Every code opens, under the key its row names, and fingerprints under that key's secret.
    assert sorted(stored_codes(db, ROTATING)) == sorted(loaded)

    report = ok(factories.run_cli(database_url, "secrets", "rotate", "--json", env=ROTATING_ENV))

    assert report["resealed"]["codes"] == 600 - halfway
    assert report["previous"] == 0 and report["previous_keys_needed"] is False
    assert under_new_key(db) == 600
    assert sorted(stored_codes(db, NEW)) == sorted(loaded)  # the old secret is not needed


@pytest.mark.slow
@pytest.mark.live  # orders through a real server while a real rotation process runs
def test_orders_placed_during_a_rotation_deliver_readable_codes(
    db: Database, database_url: str, settings: Settings, start_rotation: StartRotation
) -> None:
    if db.is_sqlite:
        pytest.skip("PostgreSQL: orders and the rotation write at the same time")
    factories.add_product(db)
    partners = [factories.add_partner(db, name) for name in ("Acme Games", "Bolt Keys")]
    for partner in partners:
        factories.deposit(db, partner.id, "10000.00")
    loaded = set(factories.load_codes(db, OLD, SKU, 200))
    rotated = settings.model_copy(
        update={"secret_key": SecretStr(NEW_SECRET), "previous_secret_keys": SecretStr(SECRET)}
    )
    process = start_rotation(database_url, "--batch-size", "5", "--pause", "0.03")
    wait_for(db, process, 5)

    with LIVE_SERVERS.serving(rotated) as server:

        def buy(partner: factories.PartnerHandle) -> list[str]:
            codes: list[str] = []
            with httpx.Client(base_url=server.url, timeout=60) as http:
                for _ in range(10):
                    placed = order(http, partner.headers, {"product_id": SKU, "quantity": 3})
                    assert placed.status_code == 201, placed.text
                    codes += reveal(http, partner.headers, placed.json()["id"])
            return codes

        with ThreadPoolExecutor(len(partners)) as pool:
            delivered = [code for codes in pool.map(buy, partners) for code in codes]
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 0, stderr
    assert len(delivered) == len(set(delivered)) == 60
    assert set(delivered) <= loaded
    with db.read_session() as session:
        rows = session.execute(
            select(Code.sealed, Code.fingerprint, Code.key_id).where(
                Code.state == CodeState.DELIVERED
            )
        ).all()
    assert sorted(NEW.open(*row) for row in rows) == sorted(delivered)
