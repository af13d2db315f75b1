"""examples/reseller_sync.py, run with the environment a reseller gives it, against a live
server on a sandbox key: the webhook path with the worker running, the events-feed fallback
without it, a difference in the books reported, and a second run that replays the order
instead of buying it again."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.worker import loop
from tests.fixtures.factories import Shop
from tests.fixtures.http import order_count
from tests.fixtures.sandbox import issue_sandbox_key
from tests.fixtures.servers import LIVE_SERVERS

EXAMPLE = Path(__file__).parents[2] / "examples" / "reseller_sync.py"


@contextlib.contextmanager
def worker(settings: Settings, db: Database, vault: Vault) -> Iterator[None]:
    """The real worker loop (it sends the webhooks) in a thread."""
    stop = threading.Event()
    thread = threading.Thread(
        target=loop.run, args=(settings, db, vault), kwargs={"stopping": stop.is_set}
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reseller_sync", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


EXAMPLE_MODULE = _load_example()


def run_example(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, dict[str, Any], str]:
    """The script's ``main`` (in this process: a new interpreter costs seconds on a busy
    machine), with the environment a reseller gives it."""
    capsys.readouterr()
    code: int = EXAMPLE_MODULE.main(list(args))
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


@pytest.mark.live
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # about the client, not the db
def test_the_reseller_sync_example_does_seed_003s_checklist(
    hook_settings: Settings,
    db: Database,
    vault: Vault,
    shop: Shop,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = hook_settings.model_copy(update={"worker_poll_seconds": 0.05})
    sandbox = issue_sandbox_key(db, shop.a.id)
    first_state, second_state = tmp_path / "shop", tmp_path / "other-shop"
    with LIVE_SERVERS.serving(settings) as server:
        monkeypatch.setenv("CODESHELF_API_KEY", sandbox.key)
        monkeypatch.setenv("CODESHELF_BASE_URL", server.url)
        run = functools.partial(run_example, capsys, monkeypatch)
        with worker(settings, db, vault):
            code, summary, log = run("--state", str(first_state))
        assert code == 0, log
        assert summary["confirmed_by"] == "webhook" and summary["outcome"] == "order.fulfilled"
        assert summary["differences"] == [] and summary["webhooks_rejected"] == 0
        assert "mapped STORE-PSN-US-50 -> psn-us-50" in log
        assert "no codeshelf product for STORE-PSN-US-25" in log
        first_order = summary["order_id"]

        # No worker: no webhook comes, the events feed says how the order ended. These records
        # lack the first order, and the reconciliation says so.
        code, summary, log = run(
            *("--state", str(second_state), "--reference", "SYNC-2", "--webhook-wait", "0.5")
        )
        assert code == 1, log
        assert summary["confirmed_by"] == "events" and summary["outcome"] == "order.fulfilled"
        assert summary["differences"] == [
            {"order_id": first_order, "kind": "missing_here", "theirs": "46.50 USD", "ours": None}
        ]

        # The first shop runs again with its stored key: the order is replayed, not bought.
        code, summary, log = run("--state", str(first_state))
        assert summary["order_id"] == first_order and "(replayed)" in log
        assert summary["confirmed_by"] == "events"
    assert order_count(db) == 2
