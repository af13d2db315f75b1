"""Partners' webhook endpoints, their delivery log, and the events feed (polling fallback)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from codeshelf.api.deps import PrincipalDep, ServicesDep
from codeshelf.kit import paging
from codeshelf.webhooks import service
from codeshelf.webhooks.schemas import (
    AttemptList,
    AttemptOut,
    EndpointCreate,
    EndpointList,
    EndpointOut,
    EventOut,
    EventPage,
    EventType,
)

router = APIRouter(tags=["webhooks and events"])


@router.post("/webhook-endpoints", status_code=201, response_model=EndpointOut)
def create_endpoint(
    body: EndpointCreate, response: Response, principal: PrincipalDep, services: ServicesDep
) -> EndpointOut:
    """Register an endpoint. The answer carries its signing secret (`whsec_…`), shown once."""
    with services.db.session() as session:
        endpoint, secret = service.create_endpoint(
            session,
            services.vault,
            principal.partner,
            body.url,
            body.event_types,
            allow_private=services.settings.webhook_allow_private,
        )
        out = EndpointOut.of(endpoint, secret)
    response.headers["Location"] = f"/api/v1/webhook-endpoints/{out.id}"
    return out


@router.get("/webhook-endpoints", response_model=EndpointList)
def list_endpoints(principal: PrincipalDep, services: ServicesDep) -> EndpointList:
    with services.db.read_session() as session:
        endpoints = service.list_endpoints(session, principal.partner.id)
        return EndpointList(data=[EndpointOut.of(e) for e in endpoints])


@router.get("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut)
def get_endpoint(endpoint_id: str, principal: PrincipalDep, services: ServicesDep) -> EndpointOut:
    with services.db.read_session() as session:
        return EndpointOut.of(service.get_endpoint(session, principal.partner.id, endpoint_id))


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: str, principal: PrincipalDep, services: ServicesDep) -> Response:
    with services.db.session() as session:
        service.delete_endpoint(session, principal.partner, endpoint_id)
    return Response(status_code=204)


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=EndpointOut)
def rotate_secret(endpoint_id: str, principal: PrincipalDep, services: ServicesDep) -> EndpointOut:
    """A new secret (shown once). For 24 hours every webhook carries both signatures."""
    with services.db.session() as session:
        endpoint, secret = service.rotate_secret(
            session, services.vault, principal.partner, endpoint_id
        )
        return EndpointOut.of(endpoint, secret)


@router.post("/webhook-endpoints/{endpoint_id}/enable", response_model=EndpointOut)
def enable_endpoint(
    endpoint_id: str, principal: PrincipalDep, services: ServicesDep
) -> EndpointOut:
    """Turn a disabled endpoint back on (it was failing, or answered 410)."""
    with services.db.session() as session:
        return EndpointOut.of(service.enable_endpoint(session, principal.partner, endpoint_id))


@router.get("/webhook-endpoints/{endpoint_id}/deliveries", response_model=AttemptList)
def delivery_log(
    endpoint_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AttemptList:
    """The latest delivery attempts to this endpoint, newest first."""
    with services.db.read_session() as session:
        endpoint = service.get_endpoint(session, principal.partner.id, endpoint_id)
        rows = service.delivery_log(session, endpoint, limit)
        return AttemptList(data=[AttemptOut.of(a, d.state, e) for a, d, e in rows])


@router.get("/events", response_model=EventPage)
def list_events(
    principal: PrincipalDep,
    services: ServicesDep,
    after: Annotated[str | None, Query(description="The last event id you have seen.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    type: Annotated[list[EventType] | None, Query()] = None,
) -> EventPage:
    """Your events in order, with the same payloads as the webhooks: poll with `after` set to
    the last event id you saw to see every state change even if a webhook is late.
    `next_cursor` is that id while more events follow, and null once you have them all."""
    with services.db.read_session() as session:
        events = service.list_events(
            session,
            principal.partner.id,
            after=after,
            limit=paging.fetch_size(limit),
            types=list(type or []),
        )
        shown, cursor = paging.cut(events, limit, lambda event: event.public_id)
        data = [EventOut.of(event) for event in shown]
    return EventPage(data=data, next_cursor=cursor)
