"""openapi-python-client (a tool nobody here wrote) generates a client from the partner document,
and that client, unchanged, does a reseller's day against the real server on loopback: the
inventory, an order with an Idempotency-Key (and its replay), a 402 read as a typed problem,
the codes, and the events feed paged to its end.

The generator runs in a venv of its own (its pins: openapi-python-client.txt beside this file),
built with uv once and kept in the temp directory; the client is generated once a session."""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from codeshelf.api.app import create_app
from codeshelf.kit.settings import Settings
from tests.fixtures import factories
from tests.fixtures.factories import SECRET, Shop
from tests.fixtures.servers import LiveServer

REQUIREMENTS = Path(__file__).with_name("openapi-python-client.txt")
PACKAGE = "codeshelf_partner_client"


def _generator() -> Path:
    """The generator's venv, keyed by its requirements (built once, then renamed into place:
    run it as ``python -m``, as a renamed venv's scripts name the old path)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    venv = Path(tempfile.gettempdir()) / f"codeshelf-openapi-python-client-{digest}"
    if not (venv / "bin" / "python").exists():
        uv = str(Path(sys.executable).with_name("uv"))
        building = venv.with_name(venv.name + f".{uuid.uuid4().hex[:8]}")
        subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(building)], check=True)
        subprocess.run(
            [uv, "pip", "install", "-q", "--no-deps", "-p", str(building / "bin" / "python"),
             "-r", str(REQUIREMENTS)],
            check=True,
        )  # fmt: skip
        try:
            building.rename(venv)
        except OSError:  # another worker got there first: theirs is as good
            shutil.rmtree(building)
    return venv / "bin"


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    here = tmp_path_factory.mktemp("generated")
    settings = Settings(
        database_url=f"sqlite:///{here / 'unused.db'}",
        secret_key=SECRET,  # type: ignore[arg-type]
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings)
    document = here / "partner.json"
    document.write_text(json.dumps(app.openapi()))
    app.state.services.db.dispose()
    tools = _generator()
    run = subprocess.run(
        [str(tools / "python"), "-m", "openapi_python_client", "generate",
         "--path", str(document), "--meta", "none", "--output-path", str(here / PACKAGE)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": str(tools), "HOME": str(here)},  # its ruff formats the client
    )  # fmt: skip
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "Warning" not in report, report  # nothing of the document was left out
    sys.path.insert(0, str(here))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(here))


def _api(generated: ModuleType, module: str) -> Any:
    return importlib.import_module(f"{generated.__name__}.api.{module}")


def _model(generated: ModuleType, name: str) -> Any:
    return getattr(importlib.import_module(f"{generated.__name__}.models"), name)


@pytest.mark.live
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the HTTP contract
def test_a_generated_client_does_a_resellers_day(
    generated: ModuleType, live_server: LiveServer, shop: Shop, db: Any
) -> None:
    client = generated.AuthenticatedClient(base_url=live_server.url, token=shop.a.key)
    inventory = _api(generated, "catalog.get_inventory").sync(client=client)
    assert [(item.product_id, item.quantity_available) for item in inventory.data] == [
        (shop.sku, 20)
    ]

    order_create = _model(generated, "OrderCreate")
    body = order_create(product_id=shop.sku, quantity=2, client_order_id="ORDER-1042")
    create = _api(generated, "orders.create_order")
    key = str(uuid.uuid4())
    placed = create.sync_detailed(client=client, body=body, idempotency_key=key)
    assert placed.status_code == 201
    order = placed.parsed
    assert order.status == "delivered" and order.total.amount == "93.00"
    assert placed.headers["Location"] == f"/api/v1/orders/{order.id}"
    again = create.sync_detailed(client=client, body=body, idempotency_key=key)
    assert again.headers["Idempotent-Replayed"] == "true" and again.parsed.id == order.id

    broke = factories.add_partner(db, "Broke Games")
    poor = generated.AuthenticatedClient(base_url=live_server.url, token=broke.key)
    refused = create.sync(client=poor, body=body, idempotency_key=str(uuid.uuid4()))
    assert isinstance(refused, _model(generated, "Problem"))
    assert refused.type_ == "https://codeshelf.dev/problems/insufficient-funds"
    assert (refused.status, refused.required.amount, refused.balance.amount) == (
        402,
        "93.00",
        "0.00",
    )

    # A 422 is a problem like any other (the generated parser used to raise on it).
    invalid = _api(generated, "orders.list_orders").sync(client=client, limit=0)
    assert isinstance(invalid, _model(generated, "Problem"))
    assert invalid.errors[0].parameter == "limit"

    codes = _api(generated, "orders.get_order_codes").sync(order_id=order.id, client=client)
    assert codes.count == 2 and {code.code for code in codes.codes} <= set(shop.codes)

    list_events = _api(generated, "webhooks_and_events.list_events")
    seen: list[str] = []
    after: Any = generated.types.UNSET
    for _ in range(10):
        page = list_events.sync(client=client, after=after, limit=2)
        if not page.data:
            break
        seen += [event.type_ for event in page.data]
        if not page.next_cursor:  # null on the last page
            break
        after = page.next_cursor
    assert seen == ["order.created", "order.paid", "order.fulfilled"]
