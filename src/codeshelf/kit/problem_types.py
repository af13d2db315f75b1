"""Every kind of problem the API (and the portal) can answer with, as data: one entry per slug,
the last part of its type URI ``https://codeshelf.dev/problems/<slug>``.

Each entry is what a client or a person needs: the ``title`` every occurrence carries, the HTTP
``status``, what it ``means`` and what to ``do``. The problem documents take their titles from
here, the pages at ``/problems/<slug>`` render it, and a test holds it to every slug the code
can raise.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE_URI = "https://codeshelf.dev/problems/"
# RFC 9457 registers this one at IANA: 429s carry it, not a type of our own.
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
OPERATOR = "operator"  # ``audience``: met on the operator API, the CLI or the console
PARTNER = "partner"  # met by partners, on the partner API or the portal


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str
    means: str
    do: str
    audience: str = PARTNER

    @property
    def type_uri(self) -> str:
        return QUOTA_EXCEEDED if self.slug == "rate-limited" else BASE_URI + self.slug


def _p(
    slug: str, status: int, title: str, means: str, do: str, audience: str = PARTNER
) -> ProblemType:
    return ProblemType(slug, status, title, means, do, audience)


_ALL = (
    # 400: the request itself is unusable
    _p(
        "malformed-request",
        400,
        "Malformed request",
        "The request could not be read as one unambiguous request: the body is not valid JSON "
        "(or not UTF-8), a JSON object names the same key twice, a multipart body is broken, or "
        "a header that must appear once (Authorization, Idempotency-Key) appears twice.",
        "Send well-formed JSON with each key once, and each of those headers once. Retrying "
        "the same bytes gives the same answer.",
    ),
    _p(
        "idempotency-key-missing",
        400,
        "Idempotency-Key missing",
        "POST /orders needs an Idempotency-Key, so that a retry can never buy twice.",
        "Send an `Idempotency-Key` header (a fresh UUID per order) and reuse it on every retry "
        "of that same order.",
    ),
    _p(
        "idempotency-key-invalid",
        400,
        "Idempotency-Key invalid",
        "The key is not 1 to 255 visible ASCII characters, or its quoted structured-field form "
        "is not a valid string.",
        'Use a UUID, bare (`Idempotency-Key: 8e03…`) or quoted (`"8e03…"`).',
    ),
    _p(
        "idempotency-key-mismatch",
        400,
        "Idempotency-Key mismatch",
        "The `Idempotency-Key` header and the body's `idempotency_key` were both sent and differ.",
        "Send one of them, or the same key in both.",
    ),
    _p(
        "invalid-cursor",
        400,
        "Invalid cursor",
        "The `cursor` query parameter is not one this API issued to you (altered, truncated, or "
        "another partner's).",
        "Pass back the `next_cursor` of the previous page unchanged, or start again without a "
        "cursor.",
    ),
    _p(
        "sign-in-refused",
        400,
        "Sign-in refused",
        "The email and password do not match a member, or the sign-in step has expired.",
        "Start signing in again; after repeated failures the account is locked for a while.",
    ),
    _p(
        "account-locked",
        400,
        "Account locked",
        "Too many failed sign-ins: the account is locked until the time shown.",
        "Wait until then, or ask an owner or admin of your team (staff: a staff admin).",
    ),
    _p(
        "domain-error",
        400,
        "Request refused",
        "A refusal that has no more precise type.",
        "Read `detail`; it says what to change.",
    ),
    _p(
        "http-error",
        400,
        "HTTP error",
        "The HTTP layer refused the request for a reason no other type describes.",
        "Read `detail` and the status code.",
    ),
    # 401 to 405: who you are, what you may, what is there
    _p(
        "unauthorized",
        401,
        "Missing or invalid API key",
        "No `Authorization: Bearer <key>` header, or the key is unknown or revoked. The answer "
        "carries `WWW-Authenticate: Bearer`.",
        "Send a live (`cs_live_…`) or sandbox (`cs_test_…`) key. Keys are shown once when "
        "issued: ask for a new one if it is lost.",
    ),
    _p(
        "insufficient-funds",
        402,
        "Not enough balance",
        "The wallet cannot pay the order; nothing was reserved or charged. `balance` and "
        "`required` say how far off it is.",
        "Deposit funds (or order less) and retry with a NEW Idempotency-Key: a retry with the "
        "same key replays this refusal.",
    ),
    _p(
        "sandbox-only",
        403,
        "Sandbox only",
        "This endpoint rehearses things (funding, failures) that must never touch live money or "
        "stock, so it answers only sandbox keys.",
        "Call it with your `cs_test_…` key.",
    ),
    _p(
        "four-eyes",
        403,
        "Four eyes required",
        "The person who asked for a deposit may not approve or decline it.",
        "Ask another operator with the finance role to decide it.",
        OPERATOR,
    ),
    _p(
        "not-allowed",
        403,
        "Not allowed",
        "Your role does not allow this action (for example managing the team or the staff).",
        "Ask an owner or admin of your team (staff: a staff admin).",
    ),
    _p(
        "not-found",
        404,
        "Not found",
        "Nothing at this method and path, or nothing of yours: another partner's order, claim "
        "or endpoint answers exactly like one that does not exist.",
        "Check the path and the id, and that you use the key (live or sandbox) that made it.",
    ),
    _p(
        "order-not-found",
        404,
        "Order not found",
        "No order with this id for this key (live and sandbox orders are apart).",
        "Check the id; list your orders with GET /orders.",
    ),
    _p(
        "claim-not-found",
        404,
        "Claim not found",
        "No claim with this id for this key.",
        "Check the id; list your claims with GET /claims.",
    ),
    _p(
        "webhook-endpoint-not-found",
        404,
        "Webhook endpoint not found",
        "No webhook endpoint with this id for this key.",
        "List your endpoints with GET /webhook-endpoints.",
    ),
    _p(
        "event-not-found",
        404,
        "Event not found",
        "No event with this id for this key, or it is past its retention.",
        "Page through GET /events from your stored cursor.",
    ),
    _p(
        "invitation-unusable",
        404,
        "Invitation unusable",
        "The invitation link is unknown, already used, withdrawn or expired (72 hours).",
        "Ask whoever invited you for a new invitation.",
    ),
    _p(
        "partner-not-found",
        404,
        "Partner not found",
        "No partner with this id.",
        "List partners with `codeshelf partner list`.",
        OPERATOR,
    ),
    _p(
        "product-not-found",
        404,
        "Product not found",
        "No product with this SKU.",
        "List products with `codeshelf product list`.",
        OPERATOR,
    ),
    _p(
        "batch-not-found",
        404,
        "Batch not found",
        "No stock batch with this id.",
        "List batches with `codeshelf stock batches`.",
        OPERATOR,
    ),
    _p(
        "deposit-request-not-found",
        404,
        "Deposit request not found",
        "No deposit request with this id.",
        "List pending deposits in the console or the CLI.",
        OPERATOR,
    ),
    _p(
        "application-not-found",
        404,
        "Application not found",
        "No access request with this id.",
        "List access requests in the console or the CLI.",
        OPERATOR,
    ),
    _p(
        "import-job-not-found",
        404,
        "Import job not found",
        "No import job with this id.",
        "List import jobs with `codeshelf stock jobs`.",
        OPERATOR,
    ),
    _p(
        "api-key-not-found",
        404,
        "API key not found",
        "No API key with this id for this partner.",
        "List the partner's keys.",
        OPERATOR,
    ),
    _p(
        "operator-key-not-found",
        404,
        "Operator key not found",
        "No operator key with this id.",
        "List operator keys with `codeshelf operator list`.",
        OPERATOR,
    ),
    _p(
        "member-not-found",
        404,
        "Member not found",
        "No member of your team with this id.",
        "Open the Team page to see your members.",
    ),
    _p(
        "staff-member-not-found",
        404,
        "Staff member not found",
        "No staff member with this id.",
        "Open the console's Staff page.",
        OPERATOR,
    ),
    _p(
        "method-not-allowed",
        405,
        "Method not allowed",
        "The path exists but not with this method. `Allow` lists the methods it has.",
        "Use one of the methods in `Allow`.",
    ),
    # 409: the state of things does not allow it now
    _p(
        "conflict",
        409,
        "Conflict",
        "The current state of the resource does not allow this.",
        "Read `detail`.",
    ),
    _p(
        "insufficient-stock",
        409,
        "Not enough stock",
        "Stock cannot fill the whole order (an order is delivered whole or not at all); nothing "
        "was reserved or charged. Codes that arrived for waiting backorders are set aside for "
        "them (GET /inventory counts them out).",
        'Order fewer, retry later with a NEW Idempotency-Key, or send `"allow_backorder": true` '
        "to wait for stock.",
    ),
    _p(
        "duplicate-client-order-id",
        409,
        "Duplicate client_order_id",
        "You already have an order with this `client_order_id`; `existing_order_id` names it.",
        "Fetch that order instead of placing a new one, or use another client_order_id.",
    ),
    _p(
        "idempotency-key-in-use",
        409,
        "A request with this Idempotency-Key is still being processed",
        "The first request with this key has not finished. The answer carries `Retry-After`.",
        "Wait `Retry-After` seconds and retry with the same key and body: you get the first "
        "request's result. A key whose request died is free again after 60 s.",
    ),
    _p(
        "codes-not-ready",
        409,
        "Codes not ready",
        "The order is not delivered (yet): it is pending, waiting for stock or review, or failed.",
        "Fetch the order; ask for its codes once its status is `delivered` (or wait for the "
        "`order.fulfilled` webhook).",
    ),
    _p(
        "claim-already-open",
        409,
        "Claim already open",
        "A claim for this code is already open.",
        "Follow up on that claim instead.",
    ),
    _p(
        "code-already-remedied",
        409,
        "Code already remedied",
        "This code was already replaced or refunded once.",
        "Nothing is owed for it; contact support if you disagree.",
    ),
    _p(
        "claim-state-conflict",
        409,
        "Claim state conflict",
        "The claim is not in a state that allows this action (or it changed meanwhile).",
        "Fetch the claim and act on its current status.",
    ),
    _p(
        "claim-not-eligible",
        409,
        "Claim not eligible",
        "Not every code of the claim is eligible under the code-support policy.",
        "Reject it, ask for information, or approve with an override and a reason.",
        OPERATOR,
    ),
    _p(
        "replacement-waiting-for-stock",
        409,
        "Replacement waiting for stock",
        "The claim's replacement codes wait for stock.",
        "Import stock of the product, or switch the claim's remedy to a refund.",
        OPERATOR,
    ),
    _p(
        "order-not-under-review",
        409,
        "Order not under review",
        "The order is not waiting for a review decision (decided already, or never held).",
        "List the review queue for the orders that wait.",
        OPERATOR,
    ),
    _p(
        "product-exists",
        409,
        "Product exists",
        "A product with this SKU already exists.",
        "Choose another SKU, or change the existing product.",
        OPERATOR,
    ),
    _p(
        "product-has-backorders",
        409,
        "Product has backorders",
        "Codes of the product are promised to waiting backorders.",
        "Retire it once they are filled or expired.",
        OPERATOR,
    ),
    _p(
        "product-already-retired",
        409,
        "Product already retired",
        "The product is already retired.",
        "Nothing to do.",
        OPERATOR,
    ),
    _p(
        "product-not-retired",
        409,
        "Product not retired",
        "The product is not retired.",
        "Nothing to do.",
        OPERATOR,
    ),
    _p(
        "batch-exists",
        409,
        "Batch exists",
        "A batch with this reference already exists.",
        "Use another batch reference (an import is not repeated under the same one).",
        OPERATOR,
    ),
    _p(
        "deposit-already-decided",
        409,
        "Deposit already decided",
        "The deposit request was already approved or declined.",
        "Nothing to do.",
        OPERATOR,
    ),
    _p(
        "deposit-reference-conflict",
        409,
        "Deposit reference conflict",
        "The payment reference belongs to a deposit request that only its approval may credit.",
        "Approve (or decline) that request instead.",
        OPERATOR,
    ),
    _p(
        "application-already-open",
        409,
        "Application already open",
        "An access request from this company or address is already being considered.",
        "Wait for its answer; the status link you were given shows it.",
    ),
    _p(
        "application-state-conflict",
        409,
        "Application state conflict",
        "The access request is not in a state that allows this.",
        "Reload it and act on its current status.",
        OPERATOR,
    ),
    _p(
        "member-exists",
        409,
        "Member exists",
        "Someone with this email is already a member or invited.",
        "Change their role instead, or withdraw the invitation first.",
    ),
    _p(
        "last-owner",
        409,
        "Last owner",
        "A team keeps at least one owner.",
        "Make someone else owner first.",
    ),
    _p(
        "last-admin",
        409,
        "Last admin",
        "The staff keeps at least one admin.",
        "Make someone else admin first.",
        OPERATOR,
    ),
    _p(
        "import-job-lost",
        409,
        "Import job lost",
        "This attempt no longer holds the import job: it was requeued after going silent.",
        "Nothing: the job's new attempt carries on.",
        OPERATOR,
    ),
    # 413
    _p(
        "payload-too-large",
        413,
        "Payload too large",
        "The body is over 1 MiB (26 MiB for claims with screenshots); it was not read.",
        "Send less: split large orders, shrink screenshots.",
    ),
    _p(
        "evidence-too-large",
        413,
        "Evidence too large",
        "A screenshot is over 5 MiB.",
        "Send a smaller image (PNG, JPEG or WebP).",
    ),
    # 422: understood, but not valid
    _p(
        "validation-error",
        422,
        "Your request is not valid",
        "A field is missing, of the wrong type, out of range, or unknown; `errors` lists each "
        "with a JSON Pointer (`pointer`) or the query `parameter`. Nothing was stored, so "
        "fixing it needs no new Idempotency-Key.",
        "Fix the named fields and send again.",
    ),
    _p(
        "unknown-product",
        422,
        "Unknown product",
        "An item names a product that does not exist (or a region and denomination that match "
        "none).",
        "List products with GET /inventory and use their `product_id`.",
    ),
    _p(
        "product-retired",
        422,
        "Product retired",
        "An item names a product that is no longer sold.",
        "Remove it from the order; GET /inventory shows what is for sale.",
    ),
    _p(
        "mixed-currency",
        422,
        "Mixed currency",
        "An order is paid in one currency and these items are priced in several.",
        "Place one order per currency.",
    ),
    _p(
        "idempotency-key-reused",
        422,
        "Idempotency-Key reused with a different request",
        "This key was used (in the last 24 hours) for a request with a different body.",
        "Use a new key for a new order; reuse a key only to retry the very same request.",
    ),
    _p(
        "code-not-on-order",
        422,
        "Code not on order",
        "A claimed code was not delivered on the order the claim names.",
        "Claim each code on the order that delivered it.",
    ),
    _p(
        "claim-window-closed",
        422,
        "Claim window closed",
        "The policy's time to report this code has passed.",
        "See the code-support policy's windows; contact support for exceptions.",
    ),
    _p(
        "evidence-not-an-image",
        422,
        "Evidence not an image",
        "An uploaded screenshot is not a PNG, JPEG or WebP image, or its size is out of bounds.",
        "Upload the screenshot itself, as PNG, JPEG or WebP.",
    ),
    _p(
        "webhook-url-refused",
        422,
        "Webhook URL refused",
        "The endpoint URL is not an https URL on a public address (private, loopback, "
        "link-local and other special-purpose addresses are refused).",
        "Register a public https URL that your receiver answers on.",
    ),
    _p(
        "import-refused",
        422,
        "Import refused",
        "A strict import found problems in the file of codes and imported nothing.",
        "Fix the rows the report lists, or import without --strict.",
        OPERATOR,
    ),
    _p(
        "weak-password",
        422,
        "Weak password",
        "The chosen password is too short or too easy to guess.",
        "Choose a longer one: a few unrelated words work well.",
    ),
    _p(
        "wrong-authentication-code",
        422,
        "Wrong authentication code",
        "The authenticator code is wrong, expired, or already used.",
        "Type the code your authenticator app shows now.",
    ),
    # 429, 5xx
    _p(
        "rate-limited",
        429,
        "Too many requests",
        "This key used its requests for the current minute (60 unless agreed otherwise). The "
        "type is IANA's quota-exceeded; `Retry-After` and `RateLimit` say when it comes back.",
        "Wait `Retry-After` seconds before the next request; spread requests out.",
    ),
    _p(
        "internal-error",
        500,
        "Internal error",
        "Something went wrong on our side; the error is logged.",
        "Retry later with the same Idempotency-Key: a retry never buys twice.",
    ),
    _p(
        "evidence-unavailable",
        503,
        "Evidence unavailable",
        "A stored screenshot is missing from this server's evidence directory or fails its "
        "checksum.",
        "Restore the evidence directory (every server must share it).",
        OPERATOR,
    ),
    _p(
        "not-ready",
        503,
        "Not ready",
        "GET /readyz: this server cannot serve requests now: its database does not answer, its "
        "schema is not at the current migration, or its evidence directory cannot be written "
        "(`checks` names which, as ok or failing).",
        "Take it out of the load balancer until /readyz answers 200; run `codeshelf migrate`, "
        "check the database and the evidence directory.",
        OPERATOR,
    ),
    _p(
        "request-timeout",
        408,
        "Request timeout",
        "The request's headers (CODESHELF_CLIENT_HEADER_TIMEOUT_SECONDS, 10 s) or its body "
        "(CODESHELF_CLIENT_BODY_TIMEOUT_SECONDS, 60 s) did not arrive in time; the connection "
        "was closed and nothing was done.",
        "Send the whole request at once; retry it (an order with the same Idempotency-Key).",
    ),
)

CATALOG: dict[str, ProblemType] = {problem.slug: problem for problem in _ALL}


def find(slug: str) -> ProblemType | None:
    return CATALOG.get(slug)


def title_for(slug: str) -> str:
    """The title every occurrence of ``slug`` carries."""
    found = CATALOG.get(slug)
    return found.title if found else slug.replace("-", " ").capitalize()


def type_uri(slug: str) -> str:
    found = CATALOG.get(slug)
    return found.type_uri if found else BASE_URI + slug
