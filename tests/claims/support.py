"""Helpers for claims tests."""

from __future__ import annotations

from typing import Any

import httpx

from codeshelf.db import Database
from codeshelf.operators import service as operators


def reveal(client: httpx.Client, headers: dict[str, str], order_id: str) -> list[str]:
    response = client.get(f"/api/v1/orders/{order_id}/codes", headers=headers)
    assert response.status_code == 200, response.text
    return [row["code"] for row in response.json()["codes"]]


def operator_headers(db: Database, name: str = "alice") -> dict[str, str]:
    with db.session() as session:
        issued = operators.create_key(session, name)
    return {"Authorization": f"Bearer {issued.secret}"}


def approve(client: httpx.Client, headers: dict[str, str], claim_id: str) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/admin/claims/{claim_id}/approve", json={"reason": "verified"}, headers=headers
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
