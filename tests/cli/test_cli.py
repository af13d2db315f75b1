"""The operator's `codeshelf` command: each command's effect, its --json document (exactly one
on stdout), and its refusals (a message on stderr and a non-zero exit code)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from typer.testing import Result

from codeshelf.catalog.models import Product
from codeshelf.kit.db import Database
from codeshelf.partners import service as partners
from codeshelf.partners.models import ApiKey, Partner
from codeshelf.stock.models import Code
from codeshelf.wallet import service as wallet
from codeshelf.wallet.models import LedgerTransaction
from tests.fixtures.factories import Shop, run_cli

SKU = "psn-us-50"
PRODUCT_ARGS = ("--platform", "psn", "--region", "US", "--face-value", "50", "--currency", "USD")


def ok(result: Result) -> Any:
    """The one JSON document a successful --json command printed on stdout."""
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def refused(result: Result, *fragments: str) -> None:
    """A refusal: non-zero exit, nothing on stdout, an error naming the problem on stderr."""
    assert result.exit_code != 0, result.stdout
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    assert "error:" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def count(db: Database, model: type[Any]) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def add_product(database_url: str, sku: str = SKU, price: str = "46.50") -> Any:
    return ok(
        run_cli(database_url, "product", "add", sku, *PRODUCT_ARGS, "--price", price, "--json")
    )


def create_partner(database_url: str, name: str = "Acme Games", *options: str) -> Any:
    return ok(run_cli(database_url, "partner", "create", name, *options, "--json"))


def inventory_price(client: httpx.Client, api_key: str, sku: str = SKU) -> dict[str, str]:
    response = client.get("/api/v1/inventory", headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 200, response.text
    [item] = [item for item in response.json()["data"] if item["product_id"] == sku]
    price: dict[str, str] = item["price"]
    return price


def inventory_status(client: httpx.Client, api_key: str) -> int:
    response = client.get("/api/v1/inventory", headers={"Authorization": f"Bearer {api_key}"})
    return response.status_code


# migrate


def test_commands_refuse_to_run_on_a_database_that_is_not_migrated(
    empty_database_url: str,
) -> None:
    refused(run_cli(empty_database_url, "product", "list", "--json"), "codeshelf migrate")


def test_migrate_creates_the_schema_and_can_run_again(empty_database_url: str) -> None:
    for _ in range(2):
        result = run_cli(empty_database_url, "migrate")
        assert result.exit_code == 0, (result.stderr, result.exception)

    assert ok(run_cli(empty_database_url, "product", "list", "--json")) == []
    add_product(empty_database_url)


# demo


def test_demo_loads_a_ready_to_use_shop_and_loading_it_again_changes_nothing(
    empty_database_url: str,
) -> None:
    first = ok(run_cli(empty_database_url, "demo", "--json"))
    db = Database(empty_database_url)
    try:
        counts = {
            model: count(db, model) for model in (Product, Partner, ApiKey, Code, LedgerTransaction)
        }
        second = ok(run_cli(empty_database_url, "demo", "--json"))

        assert second == first
        assert first["api_key"].startswith("cs_live_")
        assert first["operator_key"].startswith("cs_op_")
        assert first["sandbox_key"].startswith("cs_test_")
        assert first["products"] == ["psn-us-50", "psn-tr-250"]
        assert {model: count(db, model) for model in counts} == counts
        assert counts[Product] == 2
        assert counts[Partner] == 2  # the demo partner and its sandbox twin
        assert counts[Code] == 200
        assert counts[LedgerTransaction] == 1  # the deposit, credited once
        with db.read_session() as session:
            found = partners.authenticate(session, first["api_key"])
            assert found is not None
            partner, _ = found
            assert partner.public_id == first["partner_id"]
            assert [str(money) for money in wallet.balances(session, partner.id)] == ["1000.00 USD"]
            sandbox = partners.authenticate(session, first["sandbox_key"])
            assert sandbox is not None and sandbox[0].sandbox_of_id == partner.id
            assert sandbox[1].mode == "test"
    finally:
        db.dispose()
    assert ok(run_cli(empty_database_url, "ledger", "check", "--json"))["ok"] is True


def test_the_demo_key_works_against_the_api(
    database_url: str, client: httpx.Client, db: Database
) -> None:
    demo = ok(run_cli(database_url, "demo", "--json"))

    assert inventory_price(client, demo["api_key"]) == {"amount": "46.50", "currency": "USD"}
    operator = {"Authorization": f"Bearer {demo['operator_key']}"}
    assert client.get("/api/v1/admin/claims", headers=operator).json() == {"data": []}
    partner = {"Authorization": f"Bearer {demo['api_key']}"}
    assert client.get("/api/v1/admin/claims", headers=partner).status_code == 404


# product


def test_product_add_and_list(database_url: str) -> None:
    added = add_product(database_url)
    other = ok(
        run_cli(
            database_url,
            *("product", "add", "psn-tr-250", "--region", "tr", "--face-value", "250"),
            *("--currency", "TRY", "--price", "6.90", "--price-currency", "USD", "--json"),
        )
    )

    assert added == {
        "sku": SKU,
        "platform": "psn",
        "region": "US",
        "face_value": {"amount": "50.00", "currency": "USD"},
        "price": {"amount": "46.50", "currency": "USD"},
        "retired_at": None,
    }
    assert other["region"] == "TR"
    assert other["face_value"] == {"amount": "250.00", "currency": "TRY"}
    assert other["price"] == {"amount": "6.90", "currency": "USD"}
    assert ok(run_cli(database_url, "product", "list", "--json")) == [other, added]
    table = run_cli(database_url, "product", "list")
    assert table.exit_code == 0
    assert SKU in table.stdout and "46.50 USD" in table.stdout


def new_product(
    sku: str = "psn-us-100",
    region: str = "US",
    currency: str = "USD",
    price: str = "90",
    platform: str = "psn",
) -> tuple[str, ...]:
    """`product add` arguments for a 100-unit product, with one field changed."""
    face = ("--face-value", "100", "--currency", currency)
    return (sku, "--platform", platform, "--region", region, *face, "--price", price)


PRODUCT_REFUSALS = [
    ((SKU, *PRODUCT_ARGS, "--price", "40.00"), "already exists"),
    (("psn-us-50-b", *PRODUCT_ARGS, "--price", "40.00"), "already sells"),
    (new_product(sku="PSN-US-100"), "SKU"),
    (new_product(price="90.001"), "decimal places"),
    (new_product(currency="XXQ"), "currency"),
    (new_product(region="U1"), "region"),
    (new_product(price="0"), "positive"),
    (new_product(sku="xbox-us-100", platform="xbox"), "platform"),
]


def test_product_add_refuses_invalid_products(database_url: str, db: Database) -> None:
    add_product(database_url)

    for args, message in PRODUCT_REFUSALS:
        refused(run_cli(database_url, "product", "add", *args, "--json"), message)
    assert count(db, Product) == 1


# partner and keys


def test_partner_create_shows_the_key_once_and_stores_only_its_hash(
    database_url: str, db: Database
) -> None:
    created = create_partner(database_url, "Acme Games", "--rate-limit", "120")

    key = created["api_key"]
    assert created["name"] == "Acme Games"
    assert created["partner_id"].startswith("ptr_")
    assert key.startswith("cs_live_") and len(key) >= 40
    with db.read_session() as session:
        partner = partners.get_partner(session, created["partner_id"])
        assert partner.rate_limit_per_minute == 120
        [stored] = session.scalars(select(ApiKey)).all()
        assert stored.public_id == created["key_id"]
        assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
        # No column of api_keys, nor of the audit log, holds the key.
        for table in ("api_keys", "audit_events", "partners"):
            for row in session.execute(text(f"SELECT * FROM {table}")):
                assert key[8:] not in repr(tuple(row)), table
        assert partners.authenticate(session, key) is not None

    listed = run_cli(database_url, "partner", "key", "list", created["partner_id"], "--json")
    assert key[8:] not in listed.stdout
    assert [k["key_id"] for k in ok(listed)] == [created["key_id"]]


def test_partner_create_prints_the_key_for_a_human(database_url: str, db: Database) -> None:
    result = run_cli(database_url, "partner", "create", "Bolt Keys")

    assert result.exit_code == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "cs_live_" in line]
    key = line.split()[1]
    with db.read_session() as session:
        found = partners.authenticate(session, key)
        assert found is not None
        assert found[0].name == "Bolt Keys"


def test_partner_create_refuses_bad_input(database_url: str, db: Database) -> None:
    for args, exit_code in [(("",), 1), (("x" * 201,), 1), (("Acme", "--rate-limit", "0"), 2)]:
        result = run_cli(database_url, "partner", "create", *args, "--json")
        assert result.exit_code == exit_code, args
        assert result.stdout == ""
    assert count(db, Partner) == 0


def test_several_keys_work_and_a_revoked_key_gets_401(
    database_url: str, client: httpx.Client
) -> None:
    add_product(database_url)
    partner = create_partner(database_url)
    pid = partner["partner_id"]
    second = ok(run_cli(database_url, "partner", "key", "create", pid, "--json"))
    assert second["api_key"].startswith("cs_live_")
    assert second["api_key"] != partner["api_key"]
    assert inventory_status(client, partner["api_key"]) == 200
    assert inventory_status(client, second["api_key"]) == 200

    revoked = ok(
        run_cli(database_url, "partner", "key", "revoke", pid, partner["key_id"], "--json")
    )

    assert revoked["key_id"] == partner["key_id"]
    assert revoked["revoked_at"]
    assert inventory_status(client, partner["api_key"]) == 401
    assert inventory_status(client, second["api_key"]) == 200
    keys = {
        k["key_id"]: k for k in ok(run_cli(database_url, "partner", "key", "list", pid, "--json"))
    }
    assert keys[partner["key_id"]]["revoked_at"] is not None
    assert keys[second["key_id"]]["revoked_at"] is None


def test_a_key_can_only_be_revoked_through_its_own_partner(database_url: str, db: Database) -> None:
    acme = create_partner(database_url, "Acme Games")
    bolt = create_partner(database_url, "Bolt Keys")

    refused(
        run_cli(database_url, "partner", "key", "revoke", bolt["partner_id"], acme["key_id"]),
        acme["key_id"],
    )
    refused(run_cli(database_url, "partner", "key", "revoke", acme["partner_id"], "key_nope"))
    with db.read_session() as session:
        assert partners.authenticate(session, acme["api_key"]) is not None


def test_commands_naming_an_unknown_partner_are_refused(database_url: str) -> None:
    add_product(database_url)

    for args in [
        ("partner", "key", "create", "ptr_nope"),
        ("partner", "key", "list", "ptr_nope"),
        ("partner", "key", "revoke", "ptr_nope", "key_nope"),
        ("price", "set", "ptr_nope", SKU, "40.00"),
        ("wallet", "deposit", "ptr_nope", "10.00", "--currency", "USD", "--reference", "r-1"),
    ]:
        refused(run_cli(database_url, *args, "--json"), "ptr_nope")


# prices


def test_a_partner_price_applies_to_that_partner_only(
    database_url: str, client: httpx.Client
) -> None:
    add_product(database_url)
    acme = create_partner(database_url, "Acme Games")
    bolt = create_partner(database_url, "Bolt Keys")

    result = ok(run_cli(database_url, "price", "set", acme["partner_id"], SKU, "44.25", "--json"))

    assert result == {
        "partner_id": acme["partner_id"],
        "sku": SKU,
        "price": {"amount": "44.25", "currency": "USD"},
    }
    assert inventory_price(client, acme["api_key"]) == {"amount": "44.25", "currency": "USD"}
    assert inventory_price(client, bolt["api_key"]) == {"amount": "46.50", "currency": "USD"}

    ok(run_cli(database_url, "price", "set", acme["partner_id"], SKU, "45", "--json"))
    assert inventory_price(client, acme["api_key"]) == {"amount": "45.00", "currency": "USD"}


def test_price_set_refuses_bad_prices(database_url: str, client: httpx.Client) -> None:
    add_product(database_url)
    acme = create_partner(database_url)

    for sku, price, message in [
        (SKU, "44.255", "decimal places"),
        (SKU, "0", "positive"),
        ("psn-xx-1", "1", "psn-xx-1"),
    ]:
        refused(run_cli(database_url, "price", "set", acme["partner_id"], sku, price), message)
    assert inventory_price(client, acme["api_key"]) == {"amount": "46.50", "currency": "USD"}


# wallet


def deposit(database_url: str, partner_id: str, amount: str, reference: str) -> Result:
    return run_cli(
        database_url,
        *("wallet", "deposit", partner_id, amount, "--currency", "USD"),
        *("--reference", reference, "--json"),
    )


def balance(db: Database, partner_id: str) -> list[str]:
    with db.read_session() as session:
        partner = partners.get_partner(session, partner_id)
        return [str(money) for money in wallet.balances(session, partner.id)]


def test_a_deposit_is_credited_once_per_reference(database_url: str, db: Database) -> None:
    pid = create_partner(database_url)["partner_id"]

    first = ok(deposit(database_url, pid, "250.00", "BANK-2024-0001"))
    again = ok(deposit(database_url, pid, "250", "BANK-2024-0001"))
    other = ok(deposit(database_url, pid, "0.05", "BANK-2024-0002"))

    assert first["created"] is True
    assert first["amount"] == {"amount": "250.00", "currency": "USD"}
    assert first["balance"] == {"amount": "250.00", "currency": "USD"}
    assert again["created"] is False
    assert again["transaction_id"] == first["transaction_id"]
    assert again["balance"] == {"amount": "250.00", "currency": "USD"}
    assert other["balance"] == {"amount": "250.05", "currency": "USD"}
    assert balance(db, pid) == ["250.05 USD"]
    assert count(db, LedgerTransaction) == 2


def test_a_reference_reused_for_another_amount_is_refused(database_url: str, db: Database) -> None:
    pid = create_partner(database_url)["partner_id"]
    ok(deposit(database_url, pid, "250.00", "BANK-2024-0001"))

    refused(deposit(database_url, pid, "260.00", "BANK-2024-0001"), "BANK-2024-0001")
    assert balance(db, pid) == ["250.00 USD"]


def test_a_reference_reused_for_another_partner_is_refused(database_url: str, db: Database) -> None:
    acme = create_partner(database_url, "Acme Games")["partner_id"]
    bolt = create_partner(database_url, "Bolt Keys")["partner_id"]
    ok(deposit(database_url, acme, "250.00", "BANK-2024-0001"))

    refused(deposit(database_url, bolt, "250.00", "BANK-2024-0001"), "BANK-2024-0001")
    assert balance(db, bolt) in ([], ["0.00 USD"])
    assert balance(db, acme) == ["250.00 USD"]


def test_invalid_deposits_credit_nothing(database_url: str, db: Database) -> None:
    pid = create_partner(database_url)["partner_id"]

    for amount, currency, message in [
        ("1.234", "USD", "decimal places"),
        ("10.5", "JPY", "decimal places"),
        ("0.00", "USD", "positive"),
        ("ten", "USD", "ten"),
        ("10.00", "XXQ", "XXQ"),
    ]:
        result = run_cli(
            database_url,
            *("wallet", "deposit", pid, amount, "--currency", currency, "--reference", "r-1"),
        )
        refused(result, message)
    assert count(db, LedgerTransaction) == 0


def test_large_deposits_are_credited(database_url: str, db: Database) -> None:
    pid = create_partner(database_url)["partner_id"]

    vnd = run_cli(
        database_url,
        *("wallet", "deposit", pid, "3000000000", "--currency", "VND", "--reference", "r-1"),
        "--json",
    )
    assert ok(vnd)["balance"] == {"amount": "3000000000", "currency": "VND"}
    ok(deposit(database_url, pid, "15000000.00", "r-2"))
    assert ok(deposit(database_url, pid, "15000000.00", "r-3"))["balance"]["amount"] == (
        "30000000.00"
    )


def test_absurd_deposits_are_refused_with_a_message(database_url: str, db: Database) -> None:
    pid = create_partner(database_url)["partner_id"]

    refused(deposit(database_url, pid, "1e30", "r-1"))
    assert count(db, LedgerTransaction) == 0


# stock summary and the ledger check


def test_stock_summary_lists_every_product_and_state(database_url: str, shop: Shop) -> None:
    summary = ok(run_cli(database_url, "stock", "summary", "--json"))

    assert summary == [
        {
            "sku": SKU,
            "available": 20,
            "reserved": 0,
            "delivered": 0,
            "quarantined": 0,
            "voided": 0,
            "total": 20,
        }
    ]


@pytest.fixture
def order(shop: Shop, client: httpx.Client) -> str:
    """Acme's order of 3 codes, placed through the API."""
    response = client.post(
        "/api/v1/orders",
        json={"product_id": shop.sku, "quantity": 3},
        headers={**shop.a.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    order_id: str = response.json()["id"]
    return order_id


def test_the_ledger_check_passes_on_a_consistent_database(database_url: str, order: str) -> None:
    result = run_cli(database_url, "ledger", "check", "--json")

    assert ok(result) == {"ok": True, "violations": []}
    human = run_cli(database_url, "ledger", "check")
    assert human.exit_code == 0
    assert "every invariant holds" in human.stdout


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        (
            "UPDATE ledger_accounts SET balance_minor = balance_minor + 1 WHERE code = :wallet",
            "{wallet}",
        ),
        (
            "UPDATE codes SET state = 'available', order_item_id = NULL, delivered_at = NULL "
            "WHERE id = (SELECT MIN(id) FROM codes WHERE state = 'delivered')",
            "{order}",
        ),
        ("UPDATE orders SET total_minor = total_minor + 100 WHERE public_id = :order", "{order}"),
        ("UPDATE stock_batches SET code_count = code_count + 1", "batch "),
        (
            "UPDATE ledger_postings SET amount_minor = amount_minor - 1 WHERE id = "
            "(SELECT MIN(id) FROM ledger_postings WHERE balance_after_minor IS NULL)",
            "sums to",
        ),
        (
            "DELETE FROM codes WHERE id = (SELECT MAX(id) FROM codes WHERE state = 'available')",
            "batch ",
        ),
    ],
    ids=["wallet-balance", "undelivered", "order-total", "batch-count", "unbalanced", "code-lost"],
)
def test_the_ledger_check_names_each_violation(
    database_url: str, db: Database, shop: Shop, order: str, sql: str, named: str
) -> None:
    wallet_code = f"wallet:{shop.a.id}:USD"
    with db.session() as session:
        changed = session.execute(text(sql), {"wallet": wallet_code, "order": order}).rowcount
    assert changed == 1

    result = run_cli(database_url, "ledger", "check", "--json")

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    expected = named.format(wallet=wallet_code, order=order)
    assert any(expected in violation for violation in report["violations"]), report
    human = run_cli(database_url, "ledger", "check")
    assert human.exit_code == 1
    assert "violation: " in human.stderr and expected in human.stderr


# every data command prints exactly one JSON document


def test_json_output_is_exactly_one_document(database_url: str, shop: Shop) -> None:
    for args in [
        ("product", "list"),
        ("stock", "summary"),
        ("ledger", "check"),
        ("partner", "key", "list", shop.a.id),
        ("partner", "key", "create", shop.a.id),
        ("partner", "create", "Cobalt Cards"),
        ("price", "set", shop.a.id, SKU, "45.00"),
        ("wallet", "deposit", shop.a.id, "1.00", "--currency", "USD", "--reference", "x-1"),
        ("product", "add", *new_product(sku="psn-us-10")),
        ("demo",),
    ]:
        result = run_cli(database_url, *args, "--json")

        assert result.exit_code == 0, (args, result.stderr, result.exception)
        document = json.loads(result.stdout)  # raises on anything but exactly one document
        assert isinstance(document, dict | list), args


def test_error_messages_print_operator_input_verbatim(database_url: str) -> None:
    pid = create_partner(database_url)["partner_id"]
    ok(deposit(database_url, pid, "5.00", "[/i]"))

    refused(deposit(database_url, pid, "6.00", "[/i]"), "reference [/i] was already used")
