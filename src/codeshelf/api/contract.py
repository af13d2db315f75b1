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
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute

from codeshelf.api import deps, idempotency, problems, raises, webhook_docs
from codeshelf.api.contract_parts import (
    HEADERS,
    OPERATION_IDS,
    OPERATOR_KEY,
    PARTNER_KEY,
    PROBLEM_SCHEMAS,
    SECURITY_SCHEMES,
)
from codeshelf.api.raises import Problem

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
    """``document`` (FastAPI's, for ``routes``) completed in place; ``extra_models`` are the
    models of bodies that routes read by hand."""
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
    responses = {s: r for s, r in operation["responses"].items() if int(s) < 400}
    for status, slugs in sorted(_by_status(_problems(operation, calls)).items()):
        responses[str(status)] = _problem_response(slugs)
    _add_headers(
        responses,
        keyed=keyed,
        location=_sets_location(endpoint),
        replays=raises.reaches(calls, idempotency.replay_response),
    )
    operation["responses"] = dict(sorted(responses.items()))


def _problems(operation: dict[str, Any], calls: list[Callable[..., Any]]) -> set[Problem]:
    """What the code can make, and what the HTTP layer answers to a request of this shape."""
    found = raises.problems_of(calls) | ANY_REQUEST
    if operation.get("parameters"):
        found |= WITH_PARAMETERS
    if "requestBody" in operation:
        found |= WITH_BODY
    return found


def _add_links(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Links to the operations on one thing (``/orders/{order_id}``, ``.../codes``) from the
    answers that name one: what a POST creates (``$response.body#/id``), and the first of a
    page a GET lists (``$response.body#/data/0/id``). Clients and schemathesis' stateful
    tests follow them."""
    for path, item in paths.items():
        sources = [
            (item.get("post", {}).get("responses", {}).get("201"), "$response.body#/id", False),
            (
                item.get("get", {}).get("responses", {}).get("200"),
                "$response.body#/data/0/id",
                True,
            ),
        ]
        for response, expression, listed in sources:
            if response is None or not _names_an_id(response, schemas, listed):
                continue
            links = {
                operation["operationId"]: {
                    "operationId": operation["operationId"],
                    "parameters": {parameter: expression},
                }
                for parameter, operation in _operations_on_one(paths, path)
            }
            if links:
                response["links"] = links


def _operations_on_one(paths: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The operations on ``path/{x_id}`` and its actions, with the name of that parameter."""
    for other, item in paths.items():
        match = re.fullmatch(re.escape(path) + r"/\{(\w+)\}(/[\w-]+)?", other)
        if match is not None:
            for operation in item.values():
                yield match.group(1), operation


def _names_an_id(response: dict[str, Any], schemas: dict[str, Any], listed: bool) -> bool:
    properties = _properties(response.get("content", {}).get("application/json", {}), schemas)
    if listed:
        items = properties.get("data", {}).get("items", {})
        properties = _properties({"schema": items}, schemas)
    return "id" in properties


def _properties(media: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = media.get("schema", {})
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
        f"* [`{slug}`](/problems/{slug}): {problems.title_for(slug)} (`{problems.type_uri(slug)}`)"
        for slug in slugs
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
    if not models:
        return
    _, found = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    for name, schema in found.get("$defs", {}).items():
        schemas.setdefault(name, schema)
