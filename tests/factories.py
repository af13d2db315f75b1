"""Test data built through the real services, the way the operator's CLI builds it."""

from __future__ import annotations

import contextlib
import secrets
import string
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from typer.testing import CliRunner, Result

from codeshelf.catalog import service as catalog
from codeshelf.cli.main import app as cli_app
from codeshelf.kit.db import Database
from codeshelf.kit.money import Money
from codeshelf.kit.settings import get_settings
from codeshelf.kit.vault import Vault
from codeshelf.partners import service as partners
from codeshelf.stock import service as stock
from codeshelf.wallet import service as wallet

ALPHABET = string.ascii_uppercase + string.digits


def random_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


@dataclass
class PartnerHandle:
    id: str
    key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def add_product(
    db: Database,
    sku: str = "psn-us-50",
    region: str = "US",
    face: str = "50",
    currency: str = "USD",
    price: str = "46.50",
    price_currency: str | None = None,
) -> str:
    with db.session() as session:
        catalog.add_product(
            session,
            sku=sku,
            platform="psn",
            region=region,
            face_value=face,
            currency=currency,
            price=price,
            price_currency=price_currency,
        )
    return sku


def add_partner(
    db: Database, name: str = "Acme Games", rate_limit: int | None = None
) -> PartnerHandle:
    with db.session() as session:
        issued = partners.create_partner(session, name, rate_limit)
    return PartnerHandle(issued.partner.public_id, issued.secret, issued.api_key.public_id)


def deposit(db: Database, partner_id: str, amount: str, currency: str = "USD") -> None:
    with db.session() as session:
        partner = partners.get_partner(session, partner_id)
        wallet.deposit(
            session, partner, Money.parse(amount, currency), f"dep-{secrets.token_hex(6)}"
        )


def load_codes(db: Database, vault: Vault, sku: str, count: int) -> list[str]:
    codes = [random_code() for _ in range(count)]
    with db.session() as session:
        stock.import_codes(
            session,
            vault,
            sku=sku,
            batch_reference=f"batch-{secrets.token_hex(6)}",
            lines=enumerate(codes, start=1),
            supplier="Test Supply",
        )
    return codes


@dataclass
class Shop:
    """Two partners with 1000.00 USD each, and psn-us-50 (46.50) with 20 codes in stock."""

    a: PartnerHandle
    b: PartnerHandle
    codes: list[str] = field(default_factory=list)
    sku: str = "psn-us-50"


def make_shop(db: Database, vault: Vault, stock_count: int = 20) -> Shop:
    sku = add_product(db)
    a = add_partner(db, "Acme Games")
    b = add_partner(db, "Bolt Keys")
    deposit(db, a.id, "1000.00")
    deposit(db, b.id, "1000.00")
    return Shop(a, b, load_codes(db, vault, sku, stock_count), sku)


def run_cli(database_url: str, *args: str, env: Mapping[str, str | None] | None = None) -> Result:
    """Run the operator's ``codeshelf`` command in-process against ``database_url``.

    The settings are read afresh from the environment (get_settings is cached), in an empty
    working directory so that no ``.env`` file is picked up. stdout and stderr are kept apart.
    """
    from tests.conftest import SECRET

    environment: dict[str, str | None] = {
        "CODESHELF_DATABASE_URL": database_url,
        "CODESHELF_SECRET_KEY": SECRET,
        "CODESHELF_PREVIOUS_SECRET_KEYS": None,
        "CODESHELF_DEMO": None,
        "CODESHELF_EVIDENCE_DIR": str(Path(tempfile.gettempdir()) / "codeshelf-test-evidence"),
        "COLUMNS": "200",  # rich wraps lines at the terminal width
        **(env or {}),
    }
    get_settings.cache_clear()
    try:
        with tempfile.TemporaryDirectory() as empty, contextlib.chdir(empty):
            return CliRunner().invoke(cli_app, list(args), env=environment)
    finally:
        get_settings.cache_clear()
