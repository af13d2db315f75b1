"""The client's README (and the main README's "A partner session in Python") runs as pasted:
every ``python`` block, each on its own, against the live server with a sandbox key in
``CODESHELF_API_KEY`` and a live key in ``CODESHELF_LIVE_KEY``, as `make run`'s demo gives."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from codeshelf.kit.db import Database
from tests.fixtures.factories import Shop
from tests.fixtures.sandbox import issue_sandbox_key
from tests.fixtures.servers import LiveServer

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CLIENT_README = ROOT / "clients" / "python" / "README.md"
SECTION = "## A partner session in Python"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
pytestmark = pytest.mark.live


def _blocks() -> list[tuple[str, str]]:
    main = README.read_text(encoding="utf-8").split(SECTION, 1)[1].split("\n## ", 1)[0]
    documents = [("README.md", main), ("clients/python/README.md", CLIENT_README.read_text())]
    found = []
    for name, text in documents:
        for number, block in enumerate(BLOCK.findall(text)):
            found.append((f"{name}#{number + 1}", block))
    return found


def test_the_documents_have_python_examples() -> None:
    assert len(_blocks()) >= 7


def test_every_python_example_runs_as_pasted(
    live_server: LiveServer,
    db: Database,
    shop: Shop,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CODESHELF_API_KEY", issue_sandbox_key(db, shop.a.id).key)
    monkeypatch.setenv("CODESHELF_LIVE_KEY", shop.a.key)
    monkeypatch.setenv("CODESHELF_BASE_URL", live_server.url)
    monkeypatch.chdir(tmp_path)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "PNG")
    (tmp_path / "psn-error.png").write_bytes(buffer.getvalue())
    for name, block in _blocks():
        try:
            exec(compile(block, name, "exec"), {"__name__": "__readme__"})
        except Exception as exc:
            pytest.fail(f"{name} does not run: {type(exc).__name__}: {exc}")
    printed = capsys.readouterr().out
    assert "delivered 93.00 USD" in printed  # the quick start's order
    assert "missing_there ord_only_in_our_books None 46.50 USD" in printed
