"""Claims from the portal: filed from an order's page (the policy's verdict per code shown
before filing), then followed on the claim's page (status, verdicts, SLA deadlines counting
down, the remedy, the operator's questions answered with more evidence). The same claims
service as the API; the codes claimed are picked by position and never shown."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from codeshelf.audit import service as audit
from codeshelf.catalog.codes import mask
from codeshelf.claims import evidence, service
from codeshelf.claims.models import ClaimStatus
from codeshelf.claims.schemas import ClaimPreview, claim_preview, claim_view
from codeshelf.claims.service import Actor, ClaimInput, CodeClaimInput, EvidenceInput, Redemption
from codeshelf.kit import paging
from codeshelf.kit.errors import DomainError, InvalidInputError, http_status
from codeshelf.members.roles import Permission
from codeshelf.orders import service as orders
from codeshelf.web.http import (
    Viewer,
    ViewerDep,
    checked_form,
    field,
    page,
    redirect,
    require,
    services,
    whole_number,
)

router = APIRouter(prefix="/account")
CHECK_PATH = "/orders/{order_id}/claim/check"
FILE_PATH = "/orders/{order_id}/claim"
EVIDENCE_PATH = "/claims/{claim_id}/evidence"
# The forms that carry screenshots: their bodies reach them unread, after the session is checked.
UPLOAD_PATHS = tuple(router.prefix + path for path in (CHECK_PATH, FILE_PATH, EVIDENCE_PATH))
PROBLEMS = {
    "invalid": "The code is invalid",
    "already_redeemed": "The code was already redeemed",
    "wrong_region": "Wrong region for the account",
    "technical_failure": "A technical failure at redemption",
    "not_delivered": "The code was never received",
    "account_restricted": "The PSN account is restricted",
}
STATUSES = tuple(ClaimStatus)
HISTORY = {  # what the audit log's claim actions mean to the partner
    "claim.file": "filed",
    "claim.evidence": "evidence added",
    "claim.remedy": "remedy changed",
    "claim.cancel": "withdrawn",
    "claim.triage": "taken up by codeshelf",
    "claim.request_info": "codeshelf asked for more information",
    "claim.approve": "approved",
    "claim.reject": "rejected",
    "claim.decide": "decided code by code",
    "claim.escalate": "sent to the upstream supplier",
    "claim.resolve": "resolved",
}
PAGE_SIZE = 25


def _actor(who: Viewer) -> Actor:
    return Actor(who.actor, who.partner.public_id)


@router.get("/orders/{order_id}/claim", response_class=HTMLResponse)
def claim_form(request: Request, who: ViewerDep, order_id: str) -> Response:
    require(who, Permission.CLAIMS)
    return _form(request, who, order_id)


def _form(
    request: Request,
    who: Viewer,
    order_id: str,
    *,
    error: str | None = None,
    status: int = 200,
    kept: FormData | None = None,
    preview: ClaimPreview | None = None,
    check_error: str | None = None,
) -> Response:
    svc = services(request)
    with svc.db.read_session() as session:
        _, codes = orders.delivered_codes(session, svc.vault, who.partner, order_id)
    masked = [(index, code.product_id, mask(code.code[-4:])) for index, code in enumerate(codes)]
    chosen = set(kept.getlist("code")) if kept else set()
    return page(
        request, "claim_form.html", who, status=status, order_id=order_id, codes=masked,
        problems=PROBLEMS, error=error, chosen=chosen, kept=kept or {}, preview=preview,
        check_error=check_error,
    )  # fmt: skip


async def _claim_input(request: Request, who: Viewer, order_id: str, form: FormData) -> ClaimInput:
    """The form as the claims service's input: the picked codes (by position) in plaintext,
    read on the server, and the screenshots inspected like the API's."""
    svc = services(request)
    with svc.db.read_session() as session:
        _, codes = orders.delivered_codes(session, svc.vault, who.partner, order_id)
    picked = []
    for value in form.getlist("code"):
        position = whole_number(value) if isinstance(value, str) else None
        if position is None or position >= len(codes):
            raise InvalidInputError("pick the affected codes from the list", pointer="#/codes")
        picked.append(position)
    if not picked:
        raise InvalidInputError("pick at least one affected code", pointer="#/codes")
    return ClaimInput(
        order_id=order_id,
        codes=[CodeClaimInput(codes[index].code, f"#/codes/{n}") for n, index in enumerate(picked)],
        problem=field(form, "problem", 32),
        remedy=field(form, "remedy", 16) or "replacement",
        redemption=_redemption(form),
        description=field(form, "description", 2000) or None,
        screenshots=await _screenshots(request, form),
    )


def _redemption(form: FormData) -> Redemption:
    return Redemption(
        account_region=field(form, "account_region", 2).upper() or None,
        attempted_at=_utc(field(form, "attempted_at", 32)),
        error_code=field(form, "error_code", 32).strip() or None,
        exposed_publicly=True if form.get("exposed_publicly") == "yes" else None,
    )


def _utc(value: str) -> datetime | None:
    """A ``datetime-local`` value, read as UTC (the form says so)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInputError(
            "the time of the attempt is not a date and time", pointer="#/redemption/attempted_at"
        ) from None


async def _screenshots(request: Request, form: FormData) -> list[evidence.Screenshot]:
    """Every screenshot sniffed (size, format, pixels from its header) before any is decoded."""
    limit = services(request).settings.max_evidence_bytes
    uploads = [part for part in form.getlist("screenshot") if isinstance(part, UploadFile)]
    files = []
    for index, upload in enumerate(part for part in uploads if part.filename):
        files.append(data := await upload.read(limit + 1))
        evidence.sniff(data, limit, pointer=f"#/screenshot/{index}")
    return [
        await run_in_threadpool(evidence.inspect, data, limit, pointer=f"#/screenshot/{index}")
        for index, data in enumerate(files)
    ]


@router.post("/orders/{order_id}/claim/reveal/{position}", response_class=HTMLResponse)
async def reveal_one(request: Request, who: ViewerDep, order_id: str, position: int) -> Response:
    """One code, for someone filing a claim on it (support may not see the whole order)."""
    require(who, Permission.REVEAL_CLAIMED_CODE)
    await checked_form(request, who)
    svc = services(request)
    with svc.db.session() as session:
        code = orders.reveal_one_code(
            session, svc.vault, who.partner, order_id, position, who.actor
        )
    return page(request, "_one_code.html", who, code=code)


@router.post(CHECK_PATH, response_class=HTMLResponse)
async def check(request: Request, who: ViewerDep, order_id: str) -> Response:
    """The policy's verdict per code, before filing (the API's dry run)."""
    require(who, Permission.CLAIMS)
    form = await checked_form(request, who)
    svc = services(request)
    preview, error = None, None
    try:
        data = await _claim_input(request, who, order_id, form)
        with svc.db.read_session() as session:
            preview = claim_preview(session, svc.vault, who.partner.id, data)
    except DomainError as exc:
        error = exc.detail
    if request.headers.get("hx-request") == "true":  # htmx puts the verdicts under the form
        return page(request, "_claim_check.html", who, preview=preview, error=error)
    return _form(request, who, order_id, kept=form, preview=preview, check_error=error)


@router.post(FILE_PATH, response_class=HTMLResponse)
async def file(request: Request, who: ViewerDep, order_id: str) -> Response:
    require(who, Permission.CLAIMS)
    form = await checked_form(request, who)
    svc = services(request)
    try:
        data = await _claim_input(request, who, order_id, form)

        def work() -> str:
            with svc.db.session() as session:
                claim = service.file_claim(
                    session, svc.vault, svc.evidence, who.partner, data, actor=_actor(who)
                )
                return claim.public_id

        claim_id = await run_in_threadpool(work)
    except DomainError as exc:
        return _form(request, who, order_id, error=exc.detail, status=http_status(exc), kept=form)
    return redirect(f"/account/claims/{claim_id}")


@router.get("/claims", response_class=HTMLResponse)
def claim_list(request: Request, who: ViewerDep, status: str = "", cursor: str = "") -> Response:
    require(who, Permission.CLAIMS)
    chosen = status if status in STATUSES else None
    svc = services(request)
    with svc.db.read_session() as session:
        found = service.list_claims(
            session, who.partner.id, before=cursor or None,
            limit=paging.fetch_size(PAGE_SIZE), status=chosen,
        )  # fmt: skip
        found, following = paging.cut(found, PAGE_SIZE, lambda claim: claim.public_id)
        shown = [claim_view(session, claim) for claim in found]
    return page(
        request, "claims.html", who, claims=shown, statuses=STATUSES,
        chosen_status=chosen or "", next_cursor=following,
    )  # fmt: skip


@router.get("/claims/{claim_id}", response_class=HTMLResponse)
def claim_page(request: Request, who: ViewerDep, claim_id: str) -> Response:
    require(who, Permission.CLAIMS)
    return _claim(request, who, claim_id)


def _claim(
    request: Request, who: Viewer, claim_id: str, error: str | None = None, status: int = 200
) -> Response:
    svc = services(request)
    with svc.db.read_session() as session:
        shown = claim_view(session, service.get_claim(session, claim_id, who.partner.id))
        history = audit.partner_trail(session, who.partner.public_id, search=shown.id)
    steps = [(event, HISTORY.get(event.action, event.action)) for event in reversed(history)]
    return page(
        request, "claim.html", who, status=status, claim=shown, error=error, problems=PROBLEMS,
        history=steps,
    )  # fmt: skip


@router.post("/claims/{claim_id}/remedy", response_class=HTMLResponse)
async def remedy(request: Request, who: ViewerDep, claim_id: str) -> Response:
    require(who, Permission.CLAIMS)
    form = await checked_form(request, who)
    svc = services(request)
    try:
        with svc.db.session() as session:
            service.change_remedy(
                session, who.partner, claim_id, field(form, "remedy", 16), actor=_actor(who)
            )
    except DomainError as exc:
        return _claim(request, who, claim_id, exc.detail, http_status(exc))
    return redirect(f"/account/claims/{claim_id}")


@router.post(EVIDENCE_PATH, response_class=HTMLResponse)
async def add_evidence(request: Request, who: ViewerDep, claim_id: str) -> Response:
    """Answer the operator's request for information with more evidence."""
    require(who, Permission.CLAIMS)
    form = await checked_form(request, who)
    svc = services(request)
    try:
        with svc.db.read_session() as session:  # the claim is the partner's before decoding
            service.get_claim(session, claim_id, who.partner.id)
        data = EvidenceInput(
            redemption=_redemption(form),
            screenshots=await _screenshots(request, form),
            note=field(form, "note", 2000) or None,
        )

        def work() -> None:
            with svc.db.session() as session:
                service.add_evidence(
                    session, svc.vault, svc.evidence, who.partner, claim_id, data, _actor(who)
                )

        await run_in_threadpool(work)
    except DomainError as exc:
        return _claim(request, who, claim_id, exc.detail, http_status(exc))
    return redirect(f"/account/claims/{claim_id}")
