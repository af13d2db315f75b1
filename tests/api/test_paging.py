"""Every paginated list of the partner API ends with ``next_cursor: null``, also when its last
page is exactly full, and paging through it with any page size shows each row once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.vault import Vault
from codeshelf.members.service import signin
from codeshelf.web.pages.orders import PAGE_SIZE as PORTAL_PAGE
from codeshelf.web.security import SESSION_COOKIE
from tests.fixtures import factories
from tests.fixtures.browser import LIFETIMES, add_member
from tests.fixtures.claims import claim_body, file_claim, place
from tests.fixtures.factories import Shop
from tests.fixtures.http import order

# path, the query parameter that takes next_cursor back
LISTS = [
    ("/api/v1/orders", "cursor"),
    ("/api/v1/claims", "cursor"),
    ("/api/v1/ledger", "cursor"),
    ("/api/v1/events", "after"),
]


def _pages(client: httpx.Client, headers: dict[str, str], path: str, param: str, limit: int):  # type: ignore[no-untyped-def]
    cursor: str | None = None
    pages: list[dict[str, Any]] = []
    while len(pages) < 50:
        params: dict[str, str | int] = {"limit": limit, **({param: cursor} if cursor else {})}
        response = client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            return pages
    pytest.fail(f"{path} never ended")


def _ids(page: dict[str, Any]) -> list[str]:
    return [str(row["id"]) for row in page["data"]]


@pytest.mark.parametrize(("path", "param"), LISTS)
def test_the_last_page_says_it_is_the_last(
    client: httpx.Client, shop: Shop, path: str, param: str
) -> None:
    for _ in range(4):
        order_id, codes = place(client, shop.a.headers)
        file_claim(client, shop.a.headers, claim_body(order_id, codes[0]))
    everything = _ids(_pages(client, shop.a.headers, path, param, 200)[0])
    assert len(everything) >= 4
    count = len(everything)
    # 1 and count fill every page exactly; the others end on a part page.
    for limit in sorted({1, 2, 3, count // 2, count - 1, count} - {0}):
        pages = _pages(client, shop.a.headers, path, param, limit)
        seen = [row for page in pages for row in _ids(page)]
        assert seen == everything, (path, limit)
        assert len(pages) == -(-count // limit), (path, limit)  # no empty last page
        assert all(len(page["data"]) == limit for page in pages[:-1])
    # A list with nothing in it (another partner's view) is one page, and the last.
    empty = _pages(client, shop.b.headers, path, param, 2)
    assert len(empty) == 1 and empty[0]["next_cursor"] is None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the page's paging only
def test_the_portals_order_list_offers_no_older_page_after_the_last(
    client: httpx.Client, shop: Shop, db: Database, vault: Vault
) -> None:
    """The portal lists pages as the API does: no "Older orders" link under the last page,
    even a full one (25 orders), and one as soon as there is a 26th."""
    factories.load_codes(db, vault, shop.sku, 6)
    factories.deposit(db, shop.a.id, "1000.00")
    login = add_member(db, vault, shop.a.id, "owner", "owner@acme.example")
    with db.session() as session:
        first = signin.check_password(session, login.email, login.password, utcnow())
    with db.session() as session:
        started = signin.check_second_factor(
            session, vault, first.token, login.code(), utcnow(), LIFETIMES
        )
    cookie = {"Cookie": f"{SESSION_COOKIE}={started.token}"}
    for _ in range(PORTAL_PAGE):
        assert order(client, shop.a.headers).status_code == 201
    full = client.get("/account/orders", headers=cookie)
    assert full.status_code == 200 and full.text.count('href="/account/orders/ord_') >= PORTAL_PAGE
    assert 'rel="next"' not in full.text
    assert order(client, shop.a.headers).status_code == 201
    assert 'rel="next"' in client.get("/account/orders", headers=cookie).text
