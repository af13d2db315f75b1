"""The public access-request form (/apply) and the applicant's status page.

No one is signed in here: the form carries the double-submit CSRF token the sign-in page
uses, and valid applications are limited per client address (``APPLICATIONS_PER_HOUR``). A
refused form comes back with what was typed and each problem beside its field. The status
link is shown once, after filing; the status page shows only that application's company,
date, status and the operator's message. The rules are the applications service's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from codeshelf.applications import fields, service
from codeshelf.applications.fields import ApplicationForm, InvalidApplicationError
from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import DomainError, http_status
from codeshelf.web.http import ForbiddenError, checked_form, field, page, services

PREFIX = "/apply"
router = APIRouter(prefix=PREFIX)
APPLICATIONS_PER_HOUR = 5  # per client address
HOUR = 3600
CURRENCIES = ("USD", "EUR", "GBP", "TRY", "CAD", "AUD", "JPY", "BRL", "MXN", "PLN", "SEK", "AED")
# Longer than any field may be, so that a long value is refused by its rule, not cut short.
FIELD_LIMIT = 2 * fields.USE_CASE_MAX


def _form_page(
    request: Request,
    values: ApplicationForm | None = None,
    problems: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return page(
        request, "apply.html", status=status, values=values or ApplicationForm(),
        problems=problems or {}, error=error, countries=fields.COUNTRIES,
        currencies=CURRENCIES, buyer_types=fields.BUYER_TYPE_WORDS,
        payments=fields.PAYMENT_WORDS, integrations=fields.INTEGRATION_WORDS,
        use_case_min=fields.USE_CASE_MIN, use_case_max=fields.USE_CASE_MAX,
    )  # fmt: skip


def _message(request: Request, status: int, title: str, message: str) -> Response:
    return page(request, "apply_message.html", status=status, title=title, message=message)


@router.get("", response_class=HTMLResponse)
def apply_page(request: Request) -> Response:
    return _form_page(request)


def _typed(form: FormData) -> ApplicationForm:
    return ApplicationForm(
        **{name: field(form, name, FIELD_LIMIT) for name in ApplicationForm.names()}
    )


def _too_many(request: Request) -> Response | None:
    address = request.client.host if request.client else "unknown"
    decision = services(request).limiter.hit_window(
        f"web-apply:{address}", APPLICATIONS_PER_HOUR, HOUR
    )
    if decision.allowed:
        return None
    minutes = max(1, round(decision.reset_seconds / 60))
    response = _message(
        request, 429, "Too many applications",
        f"{APPLICATIONS_PER_HOUR} applications an hour may be sent from one address: please "
        f"try again in {minutes} minute{'s' if minutes != 1 else ''}.",
    )  # fmt: skip
    response.headers["Retry-After"] = str(decision.reset_seconds)
    return response


@router.post("", response_class=HTMLResponse)
async def apply(request: Request) -> Response:
    try:
        form = await checked_form(request)
    except ForbiddenError:
        return _message(
            request, 403, "Form expired",
            "This form has expired or was not sent from this site: reload the page and send "
            "it again.",
        )  # fmt: skip
    typed = _typed(form)
    try:
        service.check(typed)
    except InvalidApplicationError as exc:
        return _form_page(request, typed, exc.problems, status=422)
    refused = _too_many(request)
    if refused is not None:
        return refused
    svc = services(request)
    try:
        with svc.db.session() as session:
            filed = service.file_application(session, typed, utcnow())
            company = filed.application.company
    except DomainError as exc:  # an open application from this address (beside its field)
        name = (exc.pointer or "").removeprefix("#/")
        beside = {name: exc.detail} if name in ApplicationForm.names() else {}
        error = None if beside else exc.detail
        return _form_page(request, typed, beside, error, status=http_status(exc))
    link = svc.settings.public_url.rstrip("/") + filed.path
    return page(request, "apply_done.html", company=company, link=link, path=filed.path)


@router.get("/status/{token}", response_class=HTMLResponse)
def status_page(request: Request, token: str) -> Response:
    try:
        with services(request).db.read_session() as session:
            view = service.status_of(session, token)
    except service.ApplicationNotFoundError as exc:
        return _message(request, 404, "Application not found", exc.detail)
    return page(request, "apply_status.html", view=view, Status=service.Status)
