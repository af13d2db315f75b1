"""The operator's reconciliation under /api/v1/admin/reconciliation, for operator keys only."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from codeshelf.api.deps import OperatorDep, ServicesDep
from codeshelf.reconciliation import service
from codeshelf.reconciliation.schemas import OperatorReconciliation

router = APIRouter(prefix="/admin", tags=["admin: reconciliation"])


@router.get(
    "/reconciliation",
    response_model=OperatorReconciliation,
    responses={200: {"content": {"text/csv": {}}}},
    summary="Reconcile a day across every partner and currency",
)
def reconciliation(
    operator: OperatorDep,
    services: ServicesDep,
    day: Annotated[date, Query(description="A UTC day, YYYY-MM-DD.")],
    format: Literal["json", "csv"] = "json",
) -> Response:
    """Each live partner's money per currency for the day, each line with its own cross-checks
    (`mismatch`), and the day's ledger against its orders, delivered codes and imported stock
    (`mismatches`), as `codeshelf reconcile` checks it. `format=csv`: a row per partner and
    currency, then one per mismatch."""
    with services.db.read_session() as session:
        report = service.operator_day(session, day)
    if format == "json":
        body = OperatorReconciliation.of(report)
        return Response(body.model_dump_json(), media_type="application/json")
    filename = f"codeshelf-operator-reconciliation-{day.isoformat()}.csv"
    return Response(
        service.operator_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
