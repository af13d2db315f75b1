"""The OpenAPI documents made exact, from the code rather than from lists kept by hand.

FastAPI writes the operations, parameters and bodies; ``complete`` then, for every operation:

* states its API key as a bearer ``security`` requirement (instead of the optional
  ``authorization`` header FastAPI sees in the dependency);
* declares every problem it can answer, as ``application/problem+json`` with the one
  ``Problem`` schema: those its code can make (``raises.problems_of`` its endpoint and
  dependencies), and those the HTTP layer adds to any request of its shape (a repeated
  ``Authorization`` header; a body that is not JSON, too large or invalid; invalid parameters);
  each status's description lists its problem types and their URIs;
* declares the headers the server sends: ``RateLimit``/``RateLimit-Policy`` behind an API key,
  ``Retry-After`` on 409/429/503, ``Location`` where the endpoint sets it, ``Idempotent-Replayed``
  where it replays stored answers, ``WWW-Authenticate`` on 401, ``Cache-Control`` everywhere;
* names it (``createOrder``), and adds the webhooks the partner receives (``webhook_docs``).
"""

from __future__ import annotations

import inspect
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import routing
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute

from codeshelf.api import deps, idempotency, problems, raises, webhook_docs
from codeshelf.api.raises import Problem

PARTNER_KEY = "partnerKey"
OPERATOR_KEY = "operatorKey"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Every request: a second Authorization or Idempotency-Key header is refused (api.middleware);
# and a failure of ours is a problem too (api.problems' last handler), never an HTML page.
ANY_REQUEST = {Problem(400, "malformed-request"), Problem(500, "internal-error")}
# A request with a body: not JSON (or naming a key twice), too large, or not valid.
WITH_BODY = {
    Problem(400, "malformed-request"),
    Problem(413, "payload-too-large"),
    Problem(422, "validation-error"),
}
WITH_PARAMETERS = {Problem(422, "validation-error")}
RETRY_AFTER_STATUSES = {"409", "429", "503"}

# Readable operation ids where the endpoint's own name would clash or say too little; any other
# operation is its endpoint's name in camelCase (create_order: createOrder).
OPERATION_IDS = {
    "GET /balance/alerts": "listBalanceAlerts",
    "PUT /balance/alerts/{currency}": "setBalanceAlert",
    "DELETE /balance/alerts/{currency}": "deleteBalanceAlert",
    "POST /claims/{claim_id}/evidence": "addClaimEvidence",
    "POST /claims/{claim_id}/remedy": "changeClaimRemedy",
    "POST /webhook-endpoints": "createWebhookEndpoint",
    "GET /webhook-endpoints": "listWebhookEndpoints",
    "GET /webhook-endpoints/{endpoint_id}": "getWebhookEndpoint",
    "DELETE /webhook-endpoints/{endpoint_id}": "deleteWebhookEndpoint",
    "POST /webhook-endpoints/{endpoint_id}/rotate-secret": "rotateWebhookSecret",
    "POST /webhook-endpoints/{endpoint_id}/enable": "enableWebhookEndpoint",
    "GET /webhook-endpoints/{endpoint_id}/deliveries": "listWebhookDeliveries",
    "GET /reconciliation": "getReconciliation",
    "POST /sandbox/deposits": "sandboxDeposit",
    "POST /sandbox/restock": "sandboxRestock",
    "POST /sandbox/orders/{order_id}/review": "sandboxReviewOrder",
    "POST /sandbox/webhooks/trigger": "sandboxTriggerWebhook",
    "GET /admin/claims": "listClaimQueue",
    "GET /admin/claims/overview": "getClaimQueueOverview",
    "GET /admin/claims/{claim_id}": "getClaimForReview",
    "GET /admin/claims/{claim_id}/evidence/{evidence_id}": "getClaimEvidenceFile",
    "POST /admin/claims/{claim_id}/triage": "triageClaim",
    "POST /admin/claims/{claim_id}/approve": "approveClaim",
    "POST /admin/claims/{claim_id}/decisions": "decideClaimCodes",
    "POST /admin/claims/{claim_id}/reject": "rejectClaim",
    "POST /admin/claims/{claim_id}/request-info": "requestClaimInfo",
    "POST /admin/claims/{claim_id}/escalate": "escalateClaim",
    "POST /admin/claims/{claim_id}/resolve": "resolveClaim",
    "GET /admin/orders/review": "listOrdersUnderReview",
    "POST /admin/orders/{order_id}/review": "reviewOrder",
    "GET /admin/applications": "listApplications",
    "GET /admin/applications/{application_id}": "getApplication",
    "POST /admin/applications/{application_id}/review": "startApplicationReview",
    "POST /admin/applications/{application_id}/approve": "approveApplication",
    "POST /admin/applications/{application_id}/decline": "declineApplication",
    "POST /admin/partners/{partner_id}/deposits": "depositForPartner",
    "GET /admin/deposits": "listDepositRequests",
    "GET /admin/deposits/{request_id}": "getDepositRequest",
    "POST /admin/deposits/{request_id}/approve": "approveDeposit",
    "POST /admin/deposits/{request_id}/decline": "declineDeposit",
    "GET /admin/partners": "listPartners",
    "POST /admin/partners": "openPartner",
    "GET /admin/partners/{partner_id}": "getPartner",
    "PUT /admin/partners/{partner_id}/prices/{sku}": "setPartnerPrice",
    "DELETE /admin/partners/{partner_id}/prices/{sku}": "clearPartnerPrice",
    "PUT /admin/partners/{partner_id}/review-limits": "setPartnerReviewLimits",
    "PUT /admin/partners/{partner_id}/rate-limit": "setPartnerRateLimit",
    "GET /admin/reconciliation": "getDayReconciliation",
    "POST /admin/products/{sku}/price": "setProductPrice",
    "POST /admin/products/{sku}/retire": "retireProduct",
    "POST /admin/products/{sku}/unretire": "unretireProduct",
    "GET /admin/stock/batches": "listBatches",
    "GET /admin/stock/suppliers": "listSuppliers",
    "GET /admin/stock/cover": "getLowCover",
    "POST /admin/stock/batches/{reference}/quarantine": "quarantineBatch",
    "POST /admin/stock/batches/{reference}/release": "releaseBatch",
    "POST /admin/stock/imports": "uploadStockImport",
    "GET /admin/stock/imports": "listStockImports",
    "GET /admin/stock/imports/{job_id}": "getStockImport",
}


def build(
    *,
    title: str,
    version: str,
    description: str,
    routes: list[BaseRoute],
    prefix: str,
    extra_models: tuple[type[Any], ...] = (),
) -> dict[str, Any]:
    """The whole API's document, completed (``_split_openapi`` cuts it in two)."""
    document = get_openapi(title=title, version=version, description=description, routes=routes)
    return complete(document, routes, prefix, extra_models)


def complete(
    document: dict[str, Any],
    routes: list[BaseRoute],
    prefix: str,
    extra_models: tuple[type[Any], ...] = (),
) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _add_models(schemas, extra_models)
    schemas.update(PROBLEM_SCHEMAS)
    components["headers"] = HEADERS
    components["securitySchemes"] = SECURITY_SCHEMES
    for route, method, operation in _operations(document, routes):
        _complete_operation(route, method, operation, prefix)
    _add_links(document["paths"], schemas)
    document["webhooks"] = webhook_docs.webhooks(schemas)
    return document


def _operations(
    document: dict[str, Any], routes: list[BaseRoute]
) -> Iterator[tuple[routing.RouteContext, str, dict[str, Any]]]:
    for route in routing.iter_route_contexts(routes):
        if not isinstance(route.original_route, routing.APIRoute):
            continue
        item = document["paths"].get(route.path_format, {})
        for method in sorted(route.methods or ()):
            if method.lower() in item:
                yield route, method, item[method.lower()]


def _complete_operation(
    route: routing.RouteContext, method: str, operation: dict[str, Any], prefix: str
) -> None:
    calls = list(raises.dependency_calls(route.dependant))
    endpoint = route.endpoint
    assert endpoint is not None and route.path_format is not None
    relative = route.path_format.removeprefix(prefix)
    operation["operationId"] = OPERATION_IDS.get(f"{method} {relative}", _camel(endpoint.__name__))
    keyed = _security(operation, calls)
    found = raises.problems_of(calls) | ANY_REQUEST
    if operation.get("parameters"):
        found |= WITH_PARAMETERS
    if "requestBody" in operation:
        found |= WITH_BODY
    responses = operation["responses"]
    for status in [status for status in responses if int(status) >= 400]:
        del responses[status]
    for status, slugs in sorted(_by_status(found).items()):
        responses[str(status)] = _problem_response(slugs)
    _add_headers(
        responses,
        keyed=keyed,
        location=_sets_location(endpoint),
        replays=raises.reaches(calls, idempotency.replay_response),
    )
    responses = dict(sorted(responses.items()))
    operation["responses"] = responses


def _add_links(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Links from what a POST creates (its ``id``) to the operations on it: ``POST /orders``
    answers an order whose ``id`` is the ``order_id`` of ``GET /orders/{order_id}``, ...
    (clients and schemathesis' stateful tests follow them)."""
    for path, item in paths.items():
        created = item.get("post", {}).get("responses", {}).get("201")
        if created is None or "id" not in _properties(created, schemas):
            continue
        links = {}
        for other, other_item in paths.items():
            match = re.fullmatch(re.escape(path) + r"/\{(\w+)\}(/[\w-]+)?", other)
            if match is None:
                continue
            for operation in other_item.values():
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {match.group(1): "$response.body#/id"},
                }
        if links:
            created["links"] = links


def _properties(response: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    name = str(schema.get("$ref", "")).rsplit("/", 1)[-1]
    properties: dict[str, Any] = schemas.get(name, schema).get("properties", {})
    return properties


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _security(operation: dict[str, Any], calls: list[Callable[..., Any]]) -> bool:
    """The API key as a bearer requirement; the ``authorization`` header parameter goes (how
    the dependency reads the key is not the client's business)."""
    parameters = [
        parameter
        for parameter in operation.get("parameters", [])
        if not (parameter["in"] == "header" and parameter["name"].lower() == "authorization")
    ]
    if parameters:
        operation["parameters"] = parameters
    else:
        operation.pop("parameters", None)
    if deps.authenticate in calls:
        operation["security"] = [{PARTNER_KEY: []}]
    elif deps.authenticate_operator in calls:
        operation["security"] = [{OPERATOR_KEY: []}]
    else:
        operation["security"] = []
        return False
    return True


def _by_status(found: set[Problem]) -> dict[int, list[str]]:
    by_status: dict[int, list[str]] = defaultdict(list)
    for problem in sorted(found):
        by_status[problem.status].append(problem.slug)
    return by_status


def _problem_response(slugs: list[str]) -> dict[str, Any]:
    lines = [
        f"* `{slug}`: {problems.title_for(slug)} ({problems.type_uri(slug)})" for slug in slugs
    ]
    return {
        "description": "A problem (RFC 9457), of type:\n\n" + "\n".join(lines),
        "content": {problems.PROBLEM_JSON: {"schema": PROBLEM_REF}},
    }


def _sets_location(endpoint: Callable[..., Any]) -> bool:
    try:
        return bool(re.search(r"[\"']Location[\"']", inspect.getsource(endpoint)))
    except (OSError, TypeError):  # pragma: no cover - no source
        return False


def _header(name: str, required: bool = False) -> dict[str, Any]:
    """A reference to the header, or (sent on every such answer) the header marked required."""
    return (
        {**HEADERS[name], "required": True}
        if required
        else {"$ref": f"#/components/headers/{name}"}
    )


def _add_headers(responses: dict[str, Any], *, keyed: bool, location: bool, replays: bool) -> None:
    """The headers each answer carries; ``required`` where the server always sends it: the
    rate-limit fields on every success and 429 behind a key (a 401 has none, and some refusals
    come before the key is counted), ``Retry-After`` on 429, the challenge on 401."""
    for status, response in responses.items():
        success = status.startswith("2")
        headers: dict[str, Any] = {"Cache-Control": _header("Cache-Control", required=True)}
        if keyed and status != "401":
            always = success or status == "429"
            headers["RateLimit"] = _header("RateLimit", always)
            headers["RateLimit-Policy"] = _header("RateLimit-Policy", always)
        if status in RETRY_AFTER_STATUSES:
            headers["Retry-After"] = _header("Retry-After", status == "429")
        if status == "401":
            headers["WWW-Authenticate"] = _header("WWW-Authenticate", required=True)
        if location and status in ("201", "202"):
            headers["Location"] = _header("Location", required=True)
        if replays:
            headers["Idempotent-Replayed"] = _header("Idempotent-Replayed")
        response["headers"] = headers


def _add_models(schemas: dict[str, Any], models: tuple[type[Any], ...]) -> None:
    """Models that bodies read by hand refer to (a claim's JSON or multipart forms)."""
    from pydantic.json_schema import models_json_schema

    if not models:
        return
    _, found = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    for name, schema in found.get("$defs", {}).items():
        schemas.setdefault(name, schema)


MONEY = {
    "type": "object",
    "required": ["amount", "currency"],
    "properties": {"amount": {"type": "string"}, "currency": {"type": "string"}},
}

# The extensions problems carry (``DomainError`` extras): tests/contract checks that every
# keyword a DomainError is made with in src/ is one of these.
PROBLEM_EXTENSIONS: dict[str, dict[str, Any]] = {
    "existing_order_id": {
        "type": "string",
        "description": "duplicate-client-order-id: the order that has this client_order_id.",
    },
    "existing_claim_id": {
        "type": "string",
        "description": "claim-already-open: the open claim holding the code.",
    },
    "requested": {"type": "integer", "description": "insufficient-stock: codes asked for."},
    "available": {"type": "integer", "description": "insufficient-stock: codes there are."},
    "required": {**MONEY, "description": "insufficient-funds: what the order costs."},
    "balance": {**MONEY, "description": "insufficient-funds: the available balance."},
    "customer_message": {
        "type": "string",
        "description": "Words a reseller may show its own customer.",
    },
    "backordered": {
        "type": "integer",
        "description": "product-has-backorders: codes promised to waiting orders.",
    },
    "product_id": {"type": "string", "description": "product-retired: the product."},
    "max_bytes": {"type": "integer", "description": "evidence-too-large: the limit."},
    "rule": {"type": "string", "description": "claim-window-closed: the policy rule."},
    "closed_at": {
        "type": "string",
        "format": "date-time",
        "description": "claim-window-closed: when claims closed.",
    },
    "codes": {
        "type": "array",
        "items": {"type": "string"},
        "description": "claim-not-eligible: the masked codes the policy does not cover.",
    },
}

PROBLEM_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem",
        "description": "Problem details (RFC 9457). Match on `type`: it is stable; the `title` "
        "and `detail` are for people. Each type's page explains it and what to do.",
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri", "description": "The problem type."},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string", "description": "The path of the request."},
            "errors": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/ProblemFieldError"},
                "description": "What is wrong, field by field.",
            },
            **PROBLEM_EXTENSIONS,
        },
        "additionalProperties": True,
    },
    "ProblemFieldError": {
        "title": "ProblemFieldError",
        "description": "One wrong field: `pointer` (a JSON Pointer into the body, `#/items/0`), "
        "or the query or path `parameter`, or the `header`.",
        "type": "object",
        "required": ["detail"],
        "properties": {
            "detail": {"type": "string"},
            "pointer": {"type": "string"},
            "parameter": {"type": "string"},
            "header": {"type": "string"},
        },
        "additionalProperties": False,
    },
}

SECURITY_SCHEMES = {
    PARTNER_KEY: {
        "type": "http",
        "scheme": "bearer",
        "description": "A partner's API key: `Authorization: Bearer <key>`.",
    },
    OPERATOR_KEY: {
        "type": "http",
        "scheme": "bearer",
        "description": "An operator key (`codeshelf operator key`); without one the operator "
        "API answers 404.",
    },
}


def _string_header(description: str, **schema: Any) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string", **schema}}


HEADERS = {
    "RateLimit": _string_header(
        'The key\'s window now (IETF RateLimit fields): `"default";r=<left>;t=<seconds>`.'
    ),
    "RateLimit-Policy": _string_header(
        'The key\'s quota: `"default";q=<requests>;w=<window seconds>`.'
    ),
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "Location": _string_header("The path of what was created."),
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same Idempotency-Key: nothing was done again.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "WWW-Authenticate": _string_header("The bearer challenge (RFC 6750)."),
    "Cache-Control": _string_header("`no-store`: answers are never cached."),
}
