"""The client's models are exact for the server's answers: every field the server's response
schema has, the client reads, with the same name, the same nullability and the same default
(a field the server may leave out is optional in the client too); and every model is exported."""

from __future__ import annotations

import types
import typing

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

import codeshelf_client
from codeshelf.claims import schemas as claims
from codeshelf.kit import schemas as kit
from codeshelf.orders import schemas as orders
from codeshelf.reconciliation import schemas as reconciliation
from codeshelf.sandbox import schemas as sandbox
from codeshelf.stock import schemas as stock
from codeshelf.wallet import schemas as wallet
from codeshelf.webhooks import schemas as webhooks
from codeshelf_client import _models as client

# Each client model and the server schema it reads.
PAIRS: list[tuple[type[BaseModel], type[BaseModel]]] = [
    (client.Money, kit.MoneyOut),
    (client.InventoryItem, stock.InventoryItem),
    (client.Balance, wallet.Balance),
    (client.LedgerEntry, wallet.LedgerEntryOut),
    (client.OrderItem, orders.OrderItemOut),
    (client.Order, orders.OrderOut),
    (client.DeliveredCode, orders.CodeOut),
    (client.OrderCodes, orders.OrderCodes),
    (client.Redemption, claims.RedemptionIn),
    (client.Remedy, claims.RemedyOut),
    (client.CodeVerdict, claims.VerdictOut),
    (client.ClaimSla, claims.SlaOut),
    (client.Evidence, claims.EvidenceOut),
    (client.Claim, claims.ClaimOut),
    (client.PreviewCode, claims.PreviewCode),
    (client.ClaimPreview, claims.ClaimPreview),
    (client.Event, webhooks.EventOut),
    (client.WebhookEndpoint, webhooks.EndpointOut),
    (client.DeliveryAttempt, webhooks.AttemptOut),
    (client.CurrencyFigures, reconciliation.CurrencyFiguresOut),
    (client.ReconciledOrder, reconciliation.ReconciledOrder),
    (client.Reconciliation, reconciliation.Reconciliation),
    (client.TopUp, sandbox.TopUpOut),
    (client.Restocked, sandbox.Restocked),
    (client.Triggered, sandbox.TriggerOut),
]
# Set by the client itself, never sent by the server.
CLIENT_ONLY = {"Order": {"idempotency_key", "replayed"}}


def _wire(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {(f.serialization_alias or f.alias or n): f for n, f in model.model_fields.items()}


def _nullable(annotation: object) -> bool:
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return annotation is type(None) or (union and type(None) in typing.get_args(annotation))


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_each_model_reads_every_field_the_server_sends(
    ours: type[BaseModel], theirs: type[BaseModel]
) -> None:
    mine, sent = _wire(ours), _wire(theirs)
    assert set(mine) - CLIENT_ONLY.get(ours.__name__, set()) == set(sent)
    for name, field in sent.items():
        assert _nullable(mine[name].annotation) == _nullable(field.annotation), name
        # A field the server may leave out must not be required by the client.
        assert field.is_required() or not mine[name].is_required(), name


def test_every_model_is_exported() -> None:
    models = {
        name
        for name, value in vars(client).items()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == client.__name__
        and name != "Model"
    }
    assert models <= set(codeshelf_client.__all__)
    assert all(hasattr(codeshelf_client, name) for name in codeshelf_client.__all__)
