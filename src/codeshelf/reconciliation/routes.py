from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from codeshelf.api.deps import PrincipalDep, ServicesDep
from codeshelf.reconciliation import service
from codeshelf.reconciliation.schemas import Reconciliation

router = APIRouter(tags=["reconciliation"])


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
        body.as_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
