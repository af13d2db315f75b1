"""``codeshelf webhooks …``: an endpoint's delivery log, and replays."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import domain_errors, emit, say, table
from codeshelf.partners.models import Partner
from codeshelf.webhooks import service

webhooks_app = typer.Typer(no_args_is_help=True, help="Webhook deliveries: the log, replays.")


@webhooks_app.command("replay")
def replay(event_id: str, as_json: JsonOption = False) -> None:
    """Send an event again to its partner's endpoints (same webhook-id), next worker pass."""
    with domain_errors(), context.database().session() as session:
        endpoints = service.replay(session, event_id)
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
