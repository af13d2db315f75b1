"""Health for the load balancer and the orchestrator: unauthenticated, and telling nothing.

``GET /healthz``: the process answers (liveness). ``GET /readyz``: it can serve (readiness): the
database answers, its schema is at the latest migration, and the evidence directory takes a
file; else 503 (problem+json) naming the failing checks by name only (no versions, paths or
error text: the log says what went wrong). Neither is in the OpenAPI document
(``include_in_schema=False``), rate-limited or logged apart from the request line.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from codeshelf.api.deps import Services, ServicesDep
from codeshelf.api.problems import problem_body, problem_response
from codeshelf.kit import migrate

log = logging.getLogger("codeshelf.health")
router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


@router.get("/healthz")
async def healthz() -> Response:
    """Alive: the process answers (nothing else is checked, so a database outage does not get
    every server restarted)."""
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


@router.get("/readyz")
def readyz(services: ServicesDep) -> Response:
    """Ready: each check ``ok`` or ``failing``; 503 unless all are ok."""
    checks = readiness(services)
    named = {name: "ok" if ok else "failing" for name, ok in checks.items()}
    if all(checks.values()):
        return JSONResponse({"status": "ready", "checks": named}, headers=NO_STORE)
    body = problem_body("not-ready", 503, "this server cannot serve requests now", checks=named)
    return problem_response(503, body, headers=NO_STORE)


def readiness(services: Services) -> dict[str, bool]:
    """The database answers, the schema is current, the evidence directory is writable."""
    checks = {"database": False, "schema": False, "evidence": False}
    try:
        with services.db.read_session() as session:
            connection = session.connection()
            checks["database"] = True
            checks["schema"] = migrate.at_head(connection)
    except Exception as exc:  # any failure is "not ready"; the log has its kind
        log.warning("readiness: the database check failed (%s)", type(exc).__name__)
    checks["evidence"] = _writable(services.evidence.root)
    return checks


def _writable(root: Path) -> bool:
    """Whether a file can be made in ``root`` (made if missing, as the store would)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".ready-") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as exc:
        log.warning("readiness: the evidence directory is not writable (%s)", type(exc).__name__)
        return False
    return True
