"""The partner's claims API: file (or preview) a claim, add evidence, follow it, cancel it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from codeshelf.api.deps import PrincipalDep, Services, ServicesDep
from codeshelf.api.problems import HTTPProblemError
from codeshelf.claims import evidence, service
from codeshelf.claims.schemas import (
    ClaimCreate,
    ClaimOut,
    ClaimPage,
    ClaimPreview,
    EvidenceCreate,
    RemedyChange,
    claim_preview,
    claim_view,
)
from codeshelf.kit import paging
from codeshelf.kit.errors import InvalidInputError
from codeshelf.orders import service as orders

router = APIRouter(tags=["claims"])

Model = TypeVar("Model", bound=BaseModel)
MAX_SCREENSHOTS = 5
# The bodies these routes read by hand (JSON or multipart): the OpenAPI document's components.
BODY_MODELS = (ClaimCreate, EvidenceCreate)
FILE_PATH = "/claims"
EVIDENCE_PATH = "/claims/{claim_id}/evidence"
# The routes that take screenshots (multipart, up to CODESHELF_MAX_UPLOAD_BYTES): their bodies
# reach them unread, and they authenticate before reading.
UPLOAD_PATHS = (FILE_PATH, EVIDENCE_PATH)


def _multipart_body(json_part: str, schema: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema.__name__}"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [json_part],
                        "properties": {
                            json_part: {
                                "type": "string",
                                "description": f"The {schema.__name__} as JSON.",
                            },
                            "screenshot": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "PNG, JPEG or WebP; up to 5 files.",
                            },
                        },
                    }
                },
            },
        }
    }


def _parse(model: type[Model], raw: bytes | str) -> Model:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


async def _read(
    request: Request, model: type[Model], json_part: str, max_bytes: int
) -> tuple[Model, list[bytes]]:
    """The JSON document and any screenshots, from a JSON or a multipart/form-data body. The
    screenshots are only sniffed (size, format and pixels from their headers): decoding them
    is left until the request is known to be sound (``_decoded``)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return _parse(model, await request.body()), []
    try:
        form = await request.form(max_files=MAX_SCREENSHOTS, max_fields=5, max_part_size=max_bytes)
    except HTTPException as exc:  # too many files or fields, a broken multipart body
        raise HTTPProblemError("malformed-request", f"multipart body: {exc.detail}") from None
    raw = form.get(json_part)
    if not isinstance(raw, str):
        raise InvalidInputError(f"a multipart claim needs a `{json_part}` field holding JSON")
    stray = sorted(
        {name for name, part in form.multi_items() if name not in (json_part, "screenshot")}
    )
    if stray:
        raise InvalidInputError(
            f"unknown multipart field(s) {', '.join(stray)}: send `{json_part}` and `screenshot`"
        )
    uploads = [part for part in form.getlist("screenshot") if isinstance(part, UploadFile)]
    payload = _parse(model, raw)
    files = []
    for index, upload in enumerate(uploads):
        data = await upload.read(max_bytes + 1)
        evidence.sniff(data, max_bytes, pointer=f"#/screenshot/{index}")
        files.append(data)
    return payload, files


async def _decoded(files: list[bytes], max_bytes: int) -> list[evidence.Screenshot]:
    """Each screenshot decoded whole and checked (CPU work: off the event loop)."""
    return [
        await run_in_threadpool(evidence.inspect, data, max_bytes, pointer=f"#/screenshot/{i}")
        for i, data in enumerate(files)
    ]


async def _in_session(
    services: Services, work: Callable[[Session], Any], *, read_only: bool = False
) -> Any:
    def run() -> Any:
        with services.db.read_session() if read_only else services.db.session() as session:
            return work(session)

    return await run_in_threadpool(run)


@router.post(
    FILE_PATH,
    status_code=201,
    response_model=ClaimOut,
    responses={
        200: {"model": ClaimPreview, "description": "`dry_run=true`: the verdict; nothing filed"}
    },
    openapi_extra=_multipart_body("claim", ClaimCreate),
)
async def file_claim(
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    dry_run: Annotated[
        bool, Query(description="Judge the claim under the policy without filing it.")
    ] = False,
) -> Response:
    """File a code-support claim (JSON, or multipart with the claim as JSON in the `claim` field
    and screenshots in `screenshot`). The answer says at once, per code, whether it is eligible,
    not covered (and by which rule) or what evidence is missing."""
    max_bytes = services.settings.max_evidence_bytes
    payload, files = await _read(request, ClaimCreate, "claim", max_bytes)
    partner = principal.partner
    if files:  # the order is the partner's before any image is decoded
        await _in_session(
            services,
            lambda session: orders.get_order(session, partner.id, payload.order_id),
            read_only=True,
        )
    data = payload.as_input(await _decoded(files, max_bytes))
    if dry_run:
        preview: Response = await _in_session(
            services, lambda session: _preview(session, services, partner.id, data), read_only=True
        )
        return preview

    def work(session: Session) -> Response:
        claim = service.file_claim(session, services.vault, services.evidence, partner, data)
        body = claim_view(session, claim)
        return Response(
            body.model_dump_json(),
            201,
            headers={"Location": f"/api/v1/claims/{claim.public_id}"},
            media_type="application/json",
        )

    result: Response = await _in_session(services, work)
    return result


def _preview(
    session: Session, services: Services, partner_id: int, data: service.ClaimInput
) -> Response:
    preview = claim_preview(session, services.vault, partner_id, data)
    return Response(preview.model_dump_json(), 200, media_type="application/json")


@router.get("/claims", response_model=ClaimPage)
def list_claims(
    principal: PrincipalDep,
    services: ServicesDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status: Literal[
        "submitted",
        "triaged",
        "needs_info",
        "approved",
        "rejected",
        "escalated_upstream",
        "resolved",
        "cancelled",
    ]
    | None = None,
) -> ClaimPage:
    """The partner's claims, newest first."""
    with services.db.read_session() as session:
        claims = service.list_claims(
            session, principal.partner.id, before=cursor, limit=paging.fetch_size(limit),
            status=status,
        )  # fmt: skip
        shown, next_cursor = paging.cut(claims, limit, lambda claim: claim.public_id)
        data = [claim_view(session, claim) for claim in shown]
    return ClaimPage(data=data, next_cursor=next_cursor)


@router.get("/claims/{claim_id}", response_model=ClaimOut)
def get_claim(claim_id: str, principal: PrincipalDep, services: ServicesDep) -> ClaimOut:
    with services.db.read_session() as session:
        return claim_view(session, service.get_claim(session, claim_id, principal.partner.id))


@router.post(
    EVIDENCE_PATH,
    response_model=ClaimOut,
    openapi_extra=_multipart_body("evidence", EvidenceCreate),
)
async def add_evidence(
    claim_id: str, request: Request, principal: PrincipalDep, services: ServicesDep
) -> ClaimOut:
    """Add evidence (JSON, or multipart with `evidence` JSON and `screenshot` files). A claim
    waiting for information goes back to triage."""
    max_bytes = services.settings.max_evidence_bytes
    payload, files = await _read(request, EvidenceCreate, "evidence", max_bytes)
    if files:  # the claim is the partner's before any image is decoded
        await _in_session(
            services,
            lambda session: service.get_claim(session, claim_id, principal.partner.id),
            read_only=True,
        )
    data = payload.as_input(await _decoded(files, max_bytes))

    def work(session: Session) -> ClaimOut:
        claim = service.add_evidence(
            session, services.vault, services.evidence, principal.partner, claim_id, data
        )
        return claim_view(session, claim)

    result: ClaimOut = await _in_session(services, work)
    return result


@router.post("/claims/{claim_id}/cancel", response_model=ClaimOut)
def cancel_claim(claim_id: str, principal: PrincipalDep, services: ServicesDep) -> ClaimOut:
    """Withdraw a claim not yet decided; its codes may be claimed again."""
    with services.db.session() as session:
        return claim_view(session, service.cancel(session, principal.partner, claim_id))


@router.post("/claims/{claim_id}/remedy", response_model=ClaimOut)
def change_remedy(
    claim_id: str, body: RemedyChange, principal: PrincipalDep, services: ServicesDep
) -> ClaimOut:
    """Choose replacement or refund: any time before approval; after it, a replacement still
    waiting for stock can become a refund, paid at once."""
    with services.db.session() as session:
        claim = service.change_remedy(session, principal.partner, claim_id, body.remedy)
        return claim_view(session, claim)
