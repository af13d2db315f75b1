"""A page per problem type at ``/problems/<slug>`` (the type URIs' last part), and the list of
them all at ``/problems/``: what each means and what to do, from the one catalog
(``kit.problem_types``). A client that asks for JSON (``Accept: application/json``) gets the
same entries as data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from codeshelf.kit import problem_types
from codeshelf.kit.errors import NotFoundError
from codeshelf.kit.problem_types import ProblemType
from codeshelf.web.http import templates

PREFIX = "/problems"
router = APIRouter(prefix=PREFIX)


def _as_data(problem: ProblemType) -> dict[str, Any]:
    return {
        "slug": problem.slug,
        "type": problem.type_uri,
        "title": problem.title,
        "status": problem.status,
        "means": problem.means,
        "do": problem.do,
        "audience": problem.audience,
        "page": f"{PREFIX}/{problem.slug}",
    }


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


def _html(template: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(template).render(**context))


@router.get("/", response_class=HTMLResponse)
def all_problems(request: Request) -> Response:
    listed = sorted(problem_types.CATALOG.values(), key=lambda p: (p.status, p.slug))
    if _wants_json(request):
        return JSONResponse({"data": [_as_data(problem) for problem in listed]})
    return _html("problems.html", problems=listed)


@router.get("/{slug}", response_class=HTMLResponse)
def one_problem(request: Request, slug: str) -> Response:
    problem = problem_types.find(slug)
    if problem is None:
        raise NotFoundError(f"no problem type {slug!r}: see {PREFIX}/ for them all")
    if _wants_json(request):
        return JSONResponse(_as_data(problem))
    return _html("problem.html", problem=problem)
