"""Endpoints' signing secrets after a secret rotation: sealed again under the current key, a
batch at a time, while the worker signs with them.

An endpoint holds up to two sealed secrets (the current one, and the previous during its
overlap); both move in one UPDATE that names the ciphertexts it read, so a partner rotating
its endpoint's secret meanwhile wins: that row is left for the next batch, never overwritten
with the secret it replaced.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select, union_all, update
from sqlalchemy.orm import Session

from codeshelf.kit.rotation import KeyCounts, Resealed, classify, reseal_value
from codeshelf.kit.vault import Vault
from codeshelf.webhooks.models import WebhookEndpoint
from codeshelf.webhooks.service import _secret_aad


def secret_keys(session: Session, vault: Vault) -> KeyCounts:
    """How many sealed signing secrets (current and previous ones) are under which key."""
    keys = union_all(
        select(WebhookEndpoint.secret_key_id.label("key_id")),
        select(WebhookEndpoint.previous_secret_key_id.label("key_id")).where(
            WebhookEndpoint.previous_secret_key_id.is_not(None)
        ),
    ).subquery()
    rows = session.execute(select(keys.c.key_id, func.count()).group_by(keys.c.key_id))
    return classify(vault, [(key_id, count) for key_id, count in rows])


def reseal_secrets(session: Session, vault: Vault, *, after: int, limit: int) -> Resealed:
    """Seal again under the current key the secrets of up to ``limit`` endpoints (ids above
    ``after``) that hold one under a previous key; in the caller's transaction."""
    previous = sorted(vault.previous_key_ids)
    if not previous:
        return Resealed(0, 0, None)
    endpoints = session.execute(
        select(WebhookEndpoint)
        .where(
            WebhookEndpoint.id > after,
            or_(
                WebhookEndpoint.secret_key_id.in_(previous),
                WebhookEndpoint.previous_secret_key_id.in_(previous),
            ),
        )
        .order_by(WebhookEndpoint.id)
        .limit(limit)
        .execution_options(populate_existing=True)
    ).scalars()
    seen = resealed = 0
    last_id = None
    for endpoint in endpoints.all():
        seen, last_id = seen + 1, endpoint.id
        resealed += _reseal(session, vault, endpoint)
    return Resealed(seen, resealed, last_id)


def _reseal(session: Session, vault: Vault, endpoint: WebhookEndpoint) -> int:
    aad = _secret_aad(endpoint.public_id)
    secret, secret_key = reseal_value(vault, endpoint.secret_sealed, aad, endpoint.secret_key_id)
    previous, previous_key = reseal_value(
        vault, endpoint.previous_secret_sealed, aad, endpoint.previous_secret_key_id
    )
    moved = session.execute(
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.id == endpoint.id,
            WebhookEndpoint.secret_sealed == endpoint.secret_sealed,
            WebhookEndpoint.previous_secret_sealed.is_not_distinct_from(
                endpoint.previous_secret_sealed
            ),
        )
        .values(
            secret_sealed=secret,
            secret_key_id=secret_key,
            previous_secret_sealed=previous,
            previous_secret_key_id=previous_key,
        )
        .execution_options(synchronize_session=False)
    )
    return int(moved.rowcount)  # type: ignore[attr-defined]
