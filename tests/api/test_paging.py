"""Every paginated list of the partner API ends with ``next_cursor: null``, also when its last
page is exactly full, and paging through it with any page size shows each row once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.claims import claim_body, file_claim, place
from tests.fixtures.factories import Shop

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
