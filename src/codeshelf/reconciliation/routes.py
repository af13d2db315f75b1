from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from codeshelf.api.deps import PrincipalDep, ServicesDep
from codeshelf.reconciliation import service
from codeshelf.reconciliation.schemas import Reconciliation

router = APIRouter(tags=["reconciliation"])

CSV_COLUMNS = [
    "record",
    "currency",
    "amount",
    "order_id",
    "client_order_id",
    "status",
    "created_at",
]


@router.get(
    "/reconciliation",
    response_model=Reconciliation,
    responses={200: {"content": {"text/csv": {}}}},
)
def reconciliation(
    principal: PrincipalDep,
    services: ServicesDep,
    day: Annotated[date, Query(alias="date", description="A UTC day, YYYY-MM-DD.")],
    format: Literal["json", "csv"] = "json",
) -> Response:
    """One day's money per currency (opening, deposits, order debits, holds, releases, refunds,
    closing) and its orders. `format=csv` gives one table: a row per figure, then per order."""
    with services.db.read_session() as session:
        report = service.partner_day(session, principal.partner.id, day)
    body = Reconciliation.of(report)
    if format == "json":
        return Response(body.model_dump_json(), media_type="application/json")
    filename = f"codeshelf-reconciliation-{day.isoformat()}.csv"
    return Response(
        _csv(body),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _csv(body: Reconciliation) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in body.currencies:
        for name, value in line.model_dump(exclude={"currency"}).items():
            writer.writerow([name, line.currency, value["amount"], "", "", "", ""])
    for order in body.orders:
        writer.writerow(
            [
                "order",
                order.amount.currency,
                order.amount.amount,
                order.order_id,
                _safe(order.client_order_id or ""),
                order.status,
                order.created_at.isoformat(),
            ]
        )
    return out.getvalue()


def _safe(cell: str) -> str:
    """Neutralise spreadsheet formulas (OWASP CSV injection) in partner-supplied text."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell
