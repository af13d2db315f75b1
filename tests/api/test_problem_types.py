"""Every problem type the code can answer with has an entry in the catalog, a page at
/problems/<slug>, and a row in the README's table; the entries' statuses are the ones the
doors send."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import codeshelf
from codeshelf.api.problems import SLUG_BY_HTTP_STATUS, HTTPProblemError
from codeshelf.kit.errors import STATUS_BY_SLUG, DomainError, http_status
from codeshelf.kit.problem_types import CATALOG, QUOTA_EXCEEDED
from tests.fixtures.factories import Shop
from tests.fixtures.http import assert_problem

SRC = Path(codeshelf.__file__).parent
ROOT = SRC.parent.parent
SLUG = re.compile(r"^[a-z]+(-[a-z]+)+$|^[a-z]+$")
RAISERS = {"HTTPProblemError", "problem_body", "send_problem"}  # calls that name a slug
HTTP_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # no database here
TABLE_START, TABLE_END = "<!-- problem-types:start -->", "<!-- problem-types:end -->"


def _error_classes() -> Iterator[type[DomainError]]:
    for module in pkgutil.walk_packages(codeshelf.__path__, "codeshelf."):
        if not module.name.startswith("codeshelf.migrations"):
            importlib.import_module(module.name)
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("codeshelf."):  # not the tests' own probes
            yield cls
        pending.extend(cls.__subclasses__())


def _named_in_calls() -> dict[str, str]:
    """Slug -> where: string literals passed to the calls that raise or send a problem."""
    found: dict[str, str] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name not in RAISERS:
                continue
            args = [*node.args[:3], *(k.value for k in node.keywords if k.arg == "slug")]
            for arg in args:
                literal = arg.value if isinstance(arg, ast.Constant) else None
                if isinstance(literal, str) and SLUG.match(literal):
                    found[literal] = f"{path.relative_to(SRC)}:{node.lineno}"
                    break
    return found


def test_the_scan_finds_the_slugs_named_in_calls() -> None:
    # The scan itself must see the three kinds of call, or the next test proves nothing.
    named = _named_in_calls()
    assert {"rate-limited", "payload-too-large", "evidence-unavailable"} <= set(named)


def test_every_slug_the_code_can_send_has_an_entry_with_its_status() -> None:
    expected: dict[str, int] = {}
    for cls in _error_classes():
        expected[cls.slug] = http_status(cls.__new__(cls))
    for slug in _named_in_calls():
        expected.setdefault(slug, http_status(HTTPProblemError(slug, "x")))
    for slug, status in STATUS_BY_SLUG.items():
        expected.setdefault(slug, status)
    for status, slug in SLUG_BY_HTTP_STATUS.items():
        expected.setdefault(slug, status)
    expected.setdefault("http-error", 400)
    missing = sorted(set(expected) - set(CATALOG))
    assert not missing, f"no catalog entry (kit/problem_types.py) for {missing}"
    wrong = {s: (CATALOG[s].status, st) for s, st in expected.items() if CATALOG[s].status != st}
    assert not wrong, f"catalog status differs from the one sent (catalog, sent): {wrong}"
    stale = sorted(set(CATALOG) - set(expected))
    assert not stale, f"catalog entries nothing can send: {stale}"


def test_entries_say_what_it_means_and_what_to_do() -> None:
    for problem in CATALOG.values():
        assert problem.title and problem.means.endswith(".") and problem.do, problem.slug
    assert CATALOG["rate-limited"].type_uri == QUOTA_EXCEEDED
    assert CATALOG["order-not-found"].type_uri == "https://codeshelf.dev/problems/order-not-found"


@HTTP_ONLY
def test_every_type_has_a_page(client: httpx.Client) -> None:
    listing = client.get("/problems/")
    assert listing.status_code == 200
    assert "script-src 'self'" in listing.headers["content-security-policy"]
    for slug, problem in CATALOG.items():
        assert f'href="/problems/{slug}"' in listing.text
        page = client.get(f"/problems/{slug}")
        assert page.status_code == 200, slug
        assert page.headers["content-type"].startswith("text/html")
        assert problem.title.replace("'", "&#39;") in page.text, slug
        data = client.get(f"/problems/{slug}", headers={"Accept": "application/json"}).json()
        assert (data["type"], data["status"], data["do"]) == (
            problem.type_uri,
            problem.status,
            problem.do,
        )
    assert client.get("/problems/no-such-thing").status_code == 404


@HTTP_ONLY
def test_a_problem_document_leads_to_its_page(client: httpx.Client, shop: Shop) -> None:
    body = assert_problem(
        client.get("/api/v1/orders/ord_nope", headers=shop.a.headers), 404, "order-not-found"
    )
    assert body["title"] == CATALOG["order-not-found"].title
    page = client.get(httpx.URL(body["type"]).path)
    assert page.status_code == 200
    assert CATALOG["order-not-found"].do in page.text


def _readme_table() -> tuple[str, str]:
    """The README's problem table (or, before the lead merges it there, docs/docs.md's)."""
    for name in ("README.md", "docs/docs.md"):
        text = (ROOT / name).read_text()
        if TABLE_START in text:
            return name, text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    pytest.fail(f"README.md has no problem table between {TABLE_START} and {TABLE_END}")


def test_the_readme_table_lists_every_type() -> None:
    name, table = _readme_table()
    listed = set(re.findall(r"\[`([a-z-]+)`\]", table))
    assert sorted(set(CATALOG) - listed) == [], f"missing from {name}'s problem table"
    assert sorted(listed - set(CATALOG)) == [], f"in {name}'s problem table, not in the catalog"
