"""``codeshelf webhooks …``: an endpoint's delivery log, and replays."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from sqlalchemy import select

from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, say, table
from codeshelf.kit.clock import utcnow
from codeshelf.partners.models import Partner
from codeshelf.webhooks import service

webhooks_app = typer.Typer(no_args_is_help=True, help="Webhook deliveries: the log, replays.")


@webhooks_app.command("replay")
def replay(event_id: str, as_json: JsonOption = False) -> None:
    """Send an event again to its partner's endpoints (same webhook-id), next worker pass."""
    with domain_errors(), context.database().session() as session:
        endpoints = service.replay(session, event_id, actor=context.actor(session))
    data = {"event_id": event_id, "endpoints": endpoints}
    emit(data, as_json, lambda: say(f"queued {event_id} for {len(endpoints)} endpoint(s)"))


@webhooks_app.command("log")
def delivery_log(
    endpoint_id: str,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """An endpoint's latest delivery attempts: status code, latency, response excerpt."""
    with domain_errors(), context.database().read_session() as session:
        endpoint = service.find_endpoint(session, endpoint_id)
        partner = session.get_one(Partner, endpoint.partner_id)
        rows = service.delivery_log(session, endpoint, limit)
        attempts: list[dict[str, Any]] = [
            {
                "event_id": event.public_id,
                "event": event.type,
                "attempt": attempt.number,
                "started_at": attempt.started_at,
                "status_code": attempt.status_code,
                "latency_ms": attempt.latency_ms,
                "error": attempt.error,
                "response_excerpt": attempt.response_excerpt,
                "delivery_state": state.state,
            }
            for attempt, state, event in rows
        ]
        data: dict[str, Any] = {
            "endpoint_id": endpoint.public_id,
            "partner_id": partner.public_id,
            "url": endpoint.url,
            "status": endpoint.status,
            "disabled_reason": endpoint.disabled_reason,
            "attempts": attempts,
        }

    def render() -> None:
        say(f"{data['endpoint_id']} {data['url']} ({data['status']})")
        if data["disabled_reason"]:
            say(f"disabled: {data['disabled_reason']}")
        columns = [
            "event_id",
            "event",
            "attempt",
            "started_at",
            "status_code",
            "latency_ms",
            "error",
            "delivery_state",
        ]
        table(
            "deliveries",
            columns,
            [[a[c] if a[c] is not None else "" for c in columns] for a in attempts],
        )

    emit(data, as_json, render)


@webhooks_app.command("health")
def health(
    days: Annotated[int, typer.Option(min=1, max=90)] = 7, as_json: JsonOption = False
) -> None:
    """Every endpoint's success rate over the last days, disabled ones first."""
    with context.database().read_session() as session:
        found = service.endpoint_health(session, utcnow() - timedelta(days=days))
        partners = {p.id: p.public_id for p in session.scalars(select(Partner))}
        data = [health_json(h, partners[h.endpoint.partner_id]) for h in found]
    columns = ["endpoint_id", "partner_id", "status", "attempts", "success_rate", "last_failure"]
    rows = [[d[c] if d[c] is not None else "" for c in columns] for d in data]
    emit(data, as_json, lambda: table("webhook endpoints", columns, rows))


def health_json(found: service.EndpointHealth, partner_public_id: str) -> dict[str, Any]:
    return {
        "endpoint_id": found.endpoint.public_id,
        "partner_id": partner_public_id,
        "url": found.endpoint.url,
        "status": found.endpoint.status,
        "disabled_reason": found.endpoint.disabled_reason,
        "attempts": found.attempts,
        "success_rate": found.success_rate,
        "last_failure_at": found.last_failure_at,
        "last_failure": found.last_failure,
    }


@webhooks_app.command("enable")
def enable(
    endpoint_id: str,
    retry_failed: Annotated[
        bool, typer.Option(help="Also send once more every delivery it gave up on.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Enable a disabled endpoint again (the console's Re-enable)."""
    with domain_errors(), context.database().session() as session:
        endpoint = service.find_endpoint(session, endpoint_id)
        partner = session.get_one(Partner, endpoint.partner_id)
        actor = context.actor(session)
        service.enable_endpoint(session, partner, endpoint_id, actor)
        retried = service.retry_failed(session, endpoint, actor) if retry_failed else 0
    data = {"endpoint_id": endpoint_id, "status": "active", "retried": retried}
    emit(data, as_json, lambda: say(f"enabled {endpoint_id}; {retried} deliveries sent again"))
