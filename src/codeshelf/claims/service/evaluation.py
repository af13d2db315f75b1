"""Judging claimed codes under the policy: the same for the preview (dry run) and for filing,
and again whenever the partner adds evidence."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from codeshelf.catalog.codes import MalformedCodeError, format_for, mask
from codeshelf.catalog.models import Product
from codeshelf.claims import policy as rules
from codeshelf.claims.models import (
    Claim,
    ClaimCode,
)
from codeshelf.claims.service.errors import CodeNotOnOrderError
from codeshelf.claims.service.inputs import MAX_CODES, REGION, ClaimInput, CodeClaimInput
from codeshelf.kit.clock import utcnow
from codeshelf.kit.errors import (
    InvalidInputError,
)
from codeshelf.kit.vault import Vault
from codeshelf.orders import service as orders
from codeshelf.orders.models import Order, OrderItem, OrderStatus
from codeshelf.stock import service as stock
from codeshelf.stock.service import StockCode


@dataclass(frozen=True)
class JudgedCode:
    code: StockCode
    item: OrderItem
    product: Product
    request: CodeClaimInput
    facts: rules.CodeFacts
    verdict: rules.Verdict


@dataclass(frozen=True)
class Evaluation:
    order: Order
    policy: rules.Policy
    codes: list[JudgedCode]

    @property
    def window_closed(self) -> bool:
        return any(judged.verdict.rule == "not_covered.window" for judged in self.codes)


def normalize_region(value: str | None, pointer: str) -> str | None:
    if value is None:
        return None
    region = value.strip().upper()
    if not REGION.fullmatch(region):
        raise InvalidInputError("a region is a two-letter code such as US or TR", pointer=pointer)
    return region


def check_problem(problem: str, pointer: str) -> str:
    if problem not in rules.PROBLEMS:
        raise InvalidInputError(
            f"problem must be one of {', '.join(rules.PROBLEMS)}", pointer=pointer
        )
    return problem


def find_code(
    session: Session, vault: Vault, order: Order, request: CodeClaimInput, platform: str
) -> StockCode:
    """The code of this order the partner names, or CodeNotOnOrderError.

    A code that exists on another order (anyone's) is answered exactly like one that does not
    exist, so nothing is learnt about other partners' codes.
    """
    try:
        canonical = format_for(platform).normalize(request.code)
    except MalformedCodeError as exc:
        raise InvalidInputError(f"not a code: {exc}", pointer=f"{request.pointer}/code") from None
    fingerprints = [vault.fingerprint(canonical), *vault.earlier_fingerprints(canonical)]
    item_ids = [item.id for item in order.items]
    code = stock.find_on_items(session, fingerprints, item_ids)
    if code is None:
        raise CodeNotOnOrderError(
            f"code {mask(canonical)} was not delivered on order {order.public_id}",
            pointer=f"{request.pointer}/code",
        )
    return code


def evaluate(
    session: Session,
    vault: Vault,
    partner_id: int,
    data: ClaimInput,
    now: datetime,
    policy: rules.Policy = rules.CURRENT,
) -> Evaluation:
    """Find the claimed codes on the partner's order and judge each under ``policy``."""
    if not data.codes:
        raise InvalidInputError("name at least one code", pointer="#/codes")
    if len(data.codes) > MAX_CODES:
        raise InvalidInputError(f"a claim names at most {MAX_CODES} codes", pointer="#/codes")
    check_problem(data.problem, "#/problem")
    order = orders.get_order(session, partner_id, data.order_id)
    if order.status != OrderStatus.DELIVERED or order.delivered_at is None:
        raise CodeNotOnOrderError(f"order {order.public_id} has delivered no codes")
    products = orders.products_by_id(session, {item.product_id for item in order.items})
    items = {item.id: item for item in order.items}
    account_region = normalize_region(data.redemption.account_region, "#/redemption/account_region")
    judged: list[JudgedCode] = []
    seen: set[int] = set()
    for request in data.codes:
        platform = products[order.items[0].product_id].platform
        code = find_code(session, vault, order, request, platform)
        if code.id in seen:
            raise InvalidInputError("the same code is named twice", pointer=request.pointer)
        seen.add(code.id)
        item = items[code.order_item_id or 0]
        problem = check_problem(request.problem or data.problem, f"{request.pointer}/problem")
        facts = rules.CodeFacts(
            problem=problem,
            sku_region=products[item.product_id].region,
            delivered_at=order.delivered_at,
            submitted_at=now,
            account_region=account_region,
            attempted_at=data.redemption.attempted_at,
            error_code=request.error_code or data.redemption.error_code,
            has_screenshot=bool(data.screenshots),
            code_region=normalize_region(request.code_region, f"{request.pointer}/code_region"),
            exposed_publicly=bool(data.redemption.exposed_publicly),
        )
        _refuse_impossible(facts, request)
        verdict = rules.evaluate(policy, facts)
        judged.append(JudgedCode(code, item, products[item.product_id], request, facts, verdict))
    return Evaluation(order, policy, judged)


def _refuse_impossible(facts: rules.CodeFacts, request: CodeClaimInput) -> None:
    impossible = rules.impossible_facts(facts)
    if not impossible:
        return
    field_name, reason = impossible[0]
    pointer = pointer_of(field_name)
    if field_name == "error_code" and request.error_code:
        pointer = f"{request.pointer}/error_code"
    raise InvalidInputError(reason, pointer=pointer)


def check_error_code(value: str, pointer: str) -> str:
    if not rules.PSN_ERROR_CODE.fullmatch(value):
        raise InvalidInputError("a PSN error code looks like WS-37432-9", pointer=pointer)
    return value


def pointer_of(field_name: str) -> str:
    return {
        rules.ATTEMPTED_AT: "#/redemption/attempted_at",
        "error_code": "#/error_code",
    }[field_name]


def facts_of(session: Session, claim: Claim, claimed: ClaimCode) -> rules.CodeFacts:
    order = session.get_one(Order, claim.order_id)
    item = session.get_one(OrderItem, claimed.order_item_id)
    product = session.get_one(Product, item.product_id)
    return rules.CodeFacts(
        problem=claimed.problem,
        sku_region=product.region,
        delivered_at=order.delivered_at or claim.submitted_at,
        submitted_at=claim.submitted_at,
        account_region=claim.account_region,
        attempted_at=claim.attempted_at,
        error_code=claimed.error_code or claim.error_code,
        has_screenshot=bool(claim.evidence),
        code_region=claimed.code_region,
        exposed_publicly=claim.exposed_publicly,
    )


def refuse_impossible_evidence(session: Session, claim: Claim) -> None:
    for claimed in claim.codes:
        facts = facts_of(session, claim, claimed)
        impossible = rules.impossible_facts(replace(facts, submitted_at=utcnow()))
        if impossible:
            field_name, reason = impossible[0]
            raise InvalidInputError(reason, pointer=pointer_of(field_name))


def rejudge(session: Session, claim: Claim) -> None:
    """Judge every code not yet decided again under the claim's own policy version (new
    evidence counts; the filing time, which the window is measured to, does not move). A
    decided code keeps the verdict it was decided on."""
    policy = rules.POLICIES[claim.policy_version]
    for claimed in claim.codes:
        if claimed.decision is not None:
            continue
        facts = facts_of(session, claim, claimed)
        verdict = rules.evaluate(policy, facts)
        claimed.verdict = verdict.verdict
        claimed.classification = verdict.classification
        claimed.rule = verdict.rule
        claimed.missing = list(verdict.missing)
