"""Every partner API call, once: the path, the parameters, and the model its answer is read as.
The sync and async resources both send these."""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from codeshelf_client._http import Call, FileSpec
from codeshelf_client._models import (
    Balance,
    Claim,
    ClaimPreview,
    DeliveryAttempt,
    Event,
    InventoryItem,
    LedgerEntry,
    Money,
    Order,
    OrderCodes,
    Page,
    Reconciliation,
    Restocked,
    TopUp,
    Triggered,
    WebhookEndpoint,
)

M = TypeVar("M", bound=BaseModel)
# A screenshot: a path, raw bytes, an open binary file, or (filename, bytes).
Screenshot = str | Path | bytes | BinaryIO | tuple[str, bytes]
Params = list[tuple[str, str]]


def _model(model: type[M]) -> Any:
    def parse(response: httpx.Response, _key: str | None) -> M:
        return model.model_validate_json(response.content)

    return parse


def _data(model: type[M]) -> Any:
    adapter = TypeAdapter(list[model])  # type: ignore[valid-type]

    def parse(response: httpx.Response, _key: str | None) -> list[M]:
        found: list[M] = adapter.validate_python(response.json()["data"])
        return found

    return parse


def _money_list(response: httpx.Response, _key: str | None) -> list[Money]:
    return [Money.model_validate(item) for item in response.json()["data"]]


def _nothing(_response: httpx.Response, _key: str | None) -> None:
    return None


def _text(response: httpx.Response, _key: str | None) -> str:
    return response.text


def _order(response: httpx.Response, key: str | None) -> Order:
    order = Order.model_validate_json(response.content)
    replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
    return order.model_copy(update={"idempotency_key": key, "replayed": replayed})


def _seg(value: str) -> str:
    return quote(value, safe="")


def _params(**values: object) -> Params:
    found: Params = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            found.extend((name, str(item)) for item in value)
        elif isinstance(value, dt.datetime):
            found.append((name, value.isoformat()))
        else:
            found.append((name, str(value)))
    return found


# Catalog, wallet -----------------------------------------------------------------------------


def inventory() -> Call[list[InventoryItem]]:
    return Call("GET", "/inventory", _data(InventoryItem), replay_safe=True)


def balance() -> Call[Balance]:
    return Call("GET", "/balance", _model(Balance), replay_safe=True)


def low_balance_alerts() -> Call[list[Money]]:
    return Call("GET", "/balance/alerts", _money_list, replay_safe=True)


def set_low_balance_alert(currency: str, below: Decimal | str) -> Call[list[Money]]:
    path = f"/balance/alerts/{_seg(currency)}"
    return Call("PUT", path, _money_list, json={"below": str(below)}, replay_safe=True)


def delete_low_balance_alert(currency: str) -> Call[None]:
    return Call("DELETE", f"/balance/alerts/{_seg(currency)}", _nothing, replay_safe=True)


def ledger(cursor: str | None, limit: int | None, currency: str | None) -> Call[Page[LedgerEntry]]:
    params = _params(cursor=cursor, limit=limit, currency=currency)
    return Call("GET", "/ledger", _model(Page[LedgerEntry]), params=params, replay_safe=True)


# Orders --------------------------------------------------------------------------------------


def create_order(
    *,
    items: Sequence[Mapping[str, Any]] | None,
    product_id: str | None,
    quantity: int | None,
    client_order_id: str | None,
    idempotency_key: str | None,
    allow_backorder: bool,
    backorder_until: dt.datetime | None,
) -> Call[Order]:
    body: dict[str, Any] = {}
    if items is not None:
        body["items"] = [dict(item) for item in items]
    else:
        body["product_id"], body["quantity"] = product_id, quantity
    if client_order_id is not None:
        body["client_order_id"] = client_order_id
    if allow_backorder:
        body["allow_backorder"] = True
    if backorder_until is not None:
        body["backorder_until"] = backorder_until.isoformat()
    return Call(
        "POST", "/orders", _order, json=body, idempotency_key=idempotency_key, replay_safe=True
    )


def get_order(order_id: str) -> Call[Order]:
    return Call("GET", f"/orders/{_seg(order_id)}", _order, replay_safe=True)


def list_orders(
    cursor: str | None,
    limit: int | None,
    status: str | None,
    client_order_id: str | None,
    updated_since: dt.datetime | None,
) -> Call[Page[Order]]:
    params = _params(
        cursor=cursor,
        limit=limit,
        status=status,
        client_order_id=client_order_id,
        updated_since=updated_since,
    )
    return Call("GET", "/orders", _model(Page[Order]), params=params, replay_safe=True)


def order_codes(order_id: str) -> Call[OrderCodes]:
    path = f"/orders/{_seg(order_id)}/codes"
    return Call("GET", path, _model(OrderCodes), replay_safe=True)


# Claims --------------------------------------------------------------------------------------


def _screenshot(item: Screenshot, index: int) -> FileSpec:
    """A screenshot read whole, once, when the call is made: every retry of the call sends the
    same bytes (an open file or a generator of screenshots is not read again)."""
    default = f"screenshot-{index + 1}"
    if isinstance(item, str | Path):
        path = Path(item)
        name, content = path.name, path.read_bytes()
    elif isinstance(item, bytes | bytearray | memoryview):
        name, content = default, bytes(item)
    elif isinstance(item, tuple):
        name, content = item
    else:
        named = getattr(item, "name", None)
        name = Path(named).name if isinstance(named, str) and named else default
        content = item.read()
    if not isinstance(content, bytes):
        raise TypeError(f"screenshot {index + 1}: give bytes, a path or a binary file")
    return name, content, _media_type(name, content)


def _media_type(name: str, content: bytes) -> str:
    if content.startswith(b"\x89PNG"):
        return "image/png"
    if content.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _with_screenshots(
    method: str,
    path: str,
    parse: Any,
    part: str,
    body: dict[str, Any],
    screenshots: Iterable[Screenshot],
    params: Params | None = None,
) -> Call[Any]:
    files = [("screenshot", _screenshot(item, i)) for i, item in enumerate(screenshots)]
    if not files:
        return Call(method, path, parse, params=params or (), json=body)
    form = {part: json.dumps(body)}
    return Call(method, path, parse, params=params or (), form=form, files=files)


def claim_body(
    order_id: str,
    codes: Sequence[str | Mapping[str, Any]],
    problem: str,
    remedy: str,
    error_code: str | None,
    redemption: Mapping[str, Any] | None,
    description: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": order_id,
        "codes": [code if isinstance(code, str) else dict(code) for code in codes],
        "problem": problem,
        "remedy": remedy,
    }
    if error_code is not None:
        body["error_code"] = error_code
    if redemption is not None:
        body["redemption"] = _jsonable(dict(redemption))
    if description is not None:
        body["description"] = description
    return body


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in values.items()}


def evidence_body(
    error_code: str | None,
    redemption: Mapping[str, Any] | None,
    codes: Sequence[Mapping[str, Any]],
    note: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"codes": [dict(code) for code in codes]}
    if error_code is not None:
        body["error_code"] = error_code
    if redemption is not None:
        body["redemption"] = _jsonable(dict(redemption))
    if note is not None:
        body["note"] = note
    return body


def file_claim(body: dict[str, Any], screenshots: Iterable[Screenshot]) -> Call[Claim]:
    return _with_screenshots("POST", "/claims", _model(Claim), "claim", body, screenshots)


def preview_claim(body: dict[str, Any], screenshots: Iterable[Screenshot]) -> Call[ClaimPreview]:
    params = [("dry_run", "true")]
    parse = _model(ClaimPreview)
    return _with_screenshots("POST", "/claims", parse, "claim", body, screenshots, params)


def add_evidence(
    claim_id: str, body: dict[str, Any], screenshots: Iterable[Screenshot]
) -> Call[Claim]:
    path = f"/claims/{_seg(claim_id)}/evidence"
    return _with_screenshots("POST", path, _model(Claim), "evidence", body, screenshots)


def get_claim(claim_id: str) -> Call[Claim]:
    return Call("GET", f"/claims/{_seg(claim_id)}", _model(Claim), replay_safe=True)


def list_claims(cursor: str | None, limit: int | None, status: str | None) -> Call[Page[Claim]]:
    params = _params(cursor=cursor, limit=limit, status=status)
    return Call("GET", "/claims", _model(Page[Claim]), params=params, replay_safe=True)


def cancel_claim(claim_id: str) -> Call[Claim]:
    return Call("POST", f"/claims/{_seg(claim_id)}/cancel", _model(Claim))


def change_remedy(claim_id: str, remedy: Literal["replacement", "refund"]) -> Call[Claim]:
    path = f"/claims/{_seg(claim_id)}/remedy"
    return Call("POST", path, _model(Claim), json={"remedy": remedy})


# Events and webhook endpoints ----------------------------------------------------------------


def events(after: str | None, limit: int | None, types: Sequence[str] | None) -> Call[Page[Event]]:
    params = _params(after=after, limit=limit, type=list(types) if types else None)
    return Call("GET", "/events", _model(Page[Event]), params=params, replay_safe=True)


def create_endpoint(url: str, event_types: Sequence[str]) -> Call[WebhookEndpoint]:
    body = {"url": url, "event_types": list(event_types)}
    return Call("POST", "/webhook-endpoints", _model(WebhookEndpoint), json=body)


def list_endpoints() -> Call[list[WebhookEndpoint]]:
    return Call("GET", "/webhook-endpoints", _data(WebhookEndpoint), replay_safe=True)


def _endpoint_path(endpoint_id: str, action: str = "") -> str:
    return f"/webhook-endpoints/{_seg(endpoint_id)}{action}"


def get_endpoint(endpoint_id: str) -> Call[WebhookEndpoint]:
    path = _endpoint_path(endpoint_id)
    return Call("GET", path, _model(WebhookEndpoint), replay_safe=True)


def delete_endpoint(endpoint_id: str) -> Call[None]:
    return Call("DELETE", _endpoint_path(endpoint_id), _nothing, replay_safe=True)


def rotate_secret(endpoint_id: str) -> Call[WebhookEndpoint]:
    path = _endpoint_path(endpoint_id, "/rotate-secret")
    return Call("POST", path, _model(WebhookEndpoint))


def enable_endpoint(endpoint_id: str) -> Call[WebhookEndpoint]:
    return Call("POST", _endpoint_path(endpoint_id, "/enable"), _model(WebhookEndpoint))


def deliveries(endpoint_id: str, limit: int | None) -> Call[list[DeliveryAttempt]]:
    path = _endpoint_path(endpoint_id, "/deliveries")
    parse = _data(DeliveryAttempt)
    return Call("GET", path, parse, params=_params(limit=limit), replay_safe=True)


# Reconciliation and sandbox ------------------------------------------------------------------


def reconciliation(day: dt.date) -> Call[Reconciliation]:
    params = [("date", day.isoformat())]
    return Call("GET", "/reconciliation", _model(Reconciliation), params=params, replay_safe=True)


def reconciliation_csv(day: dt.date) -> Call[str]:
    params = [("date", day.isoformat()), ("format", "csv")]
    return Call("GET", "/reconciliation", _text, params=params, replay_safe=True)


def sandbox_deposit(amount: Decimal | str, currency: str) -> Call[TopUp]:
    body = {"amount": str(amount), "currency": currency}
    return Call("POST", "/sandbox/deposits", _model(TopUp), json=body)


def sandbox_restock() -> Call[Restocked]:
    return Call("POST", "/sandbox/restock", _model(Restocked))


def sandbox_review(order_id: str, decision: Literal["approve", "reject"]) -> Call[Order]:
    path = f"/sandbox/orders/{_seg(order_id)}/review"
    return Call("POST", path, _order, json={"decision": decision})


def sandbox_trigger(event: str) -> Call[Triggered]:
    return Call("POST", "/sandbox/webhooks/trigger", _model(Triggered), json={"event": event})
