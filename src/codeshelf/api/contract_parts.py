"""The fixed parts of the OpenAPI contract (``api.contract`` puts them together): operation ids,
the Problem schema and its extensions, the security schemes, the response headers."""

from __future__ import annotations

from typing import Any

PARTNER_KEY = "partnerKey"
OPERATOR_KEY = "operatorKey"

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
        "and `detail` are for people. Each type has a page on this server, "
        "[`/problems/<slug>`](/problems/) (the last part of `type`; `/problems/` lists them), "
        "that explains it and what to do.",
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {
                "type": "string",
                "format": "uri",
                "description": "The problem type; its page: `/problems/<its last part>`.",
            },
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
