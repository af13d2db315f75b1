"""Which problems an endpoint can answer, read from the code: the ``DomainError``s its call graph
can make.

From the endpoint (and each of its dependencies) the walk follows every function and class of
``codeshelf`` that the code calls or passes on (``submit(..., place_order)``), through module
attributes (``service.get_order``) and classes (their ``__init__``); everything those create that
is a ``DomainError`` is a problem the endpoint may send. ``HTTPProblemError("slug", ...)`` names
its slug as its first argument. A call on an object (``services.db.session()``) is not followed:
what the walk cannot see, the contract tests (schemathesis against a real server) find.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError

from codeshelf.kit.errors import DomainError, http_status

ROOT = "codeshelf."


@dataclass(frozen=True, order=True)
class Problem:
    """A problem type an operation may answer with: its HTTP status and slug."""

    status: int
    slug: str


VALIDATION = {Problem(422, "validation-error"), Problem(400, "malformed-request")}


def status_of(slug: str, cls: type[DomainError] = DomainError) -> int:
    error = Exception.__new__(cls)
    error.slug = slug
    return http_status(error)


def problems_of(functions: list[Callable[..., Any]]) -> set[Problem]:
    """Every problem the functions (an endpoint and its dependencies) can make, transitively."""
    found: set[Problem] = set()
    seen: set[Any] = set()
    pending = list(functions)
    while pending:
        func = pending.pop()
        if func in seen:
            continue
        seen.add(func)
        made, reached = _read(func)
        found |= made
        pending.extend(reached)
    return found


def reaches(functions: list[Callable[..., Any]], target: Callable[..., Any]) -> bool:
    """Whether the call graph of ``functions`` reaches ``target``."""
    seen: set[Any] = set()
    pending = list(functions)
    while pending:
        func = pending.pop()
        if func is target:
            return True
        if func in seen:
            continue
        seen.add(func)
        pending.extend(_read(func)[1])
    return False


@functools.cache
def _read(func: Any) -> tuple[frozenset[Problem], tuple[Any, ...]]:
    """The problems ``func``'s own code creates, and the codeshelf callables it names."""
    tree = _tree(func)
    if tree is None:
        return frozenset(), ()
    scope = {**vars(builtins), **getattr(inspect.unwrap(func), "__globals__", {})}
    made: set[Problem] = set()
    reached: list[Any] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            made |= _created(node, scope)
        if isinstance(node, ast.Name | ast.Attribute):
            target = _resolve(node, scope)
            if _is_ours(target):
                reached.append(_callable(target))
    return frozenset(made), tuple(reached)


def _tree(func: Any) -> ast.AST | None:
    func = inspect.unwrap(func)
    if not (inspect.isfunction(func) or inspect.ismethod(func)) or not _is_ours(func):
        return None
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):  # pragma: no cover - no source to read
        return None


def _created(call: ast.Call, scope: dict[str, Any]) -> set[Problem]:
    cls = _resolve(call.func, scope)
    if cls is RequestValidationError:
        return set(VALIDATION)
    if not (inspect.isclass(cls) and issubclass(cls, DomainError)):
        return set()
    first = call.args[0] if call.args else None
    if "slug" in inspect.signature(cls.__init__).parameters:
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return {Problem(status_of(first.value, cls), first.value)}
        return set()  # a slug not written down here: the caller passed it on
    return {Problem(status_of(cls.slug, cls), cls.slug)}


def _resolve(node: ast.expr, scope: dict[str, Any]) -> Any:
    """The object a name or a dotted name stands for in the module, if it can be known."""
    if isinstance(node, ast.Name):
        return scope.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, scope)
        if base is None or not (inspect.ismodule(base) or inspect.isclass(base)):
            return None
        return inspect.getattr_static(base, node.attr, None)
    return None


def _callable(target: Any) -> Any:
    if isinstance(target, staticmethod | classmethod):
        return target.__func__
    return target.__init__ if inspect.isclass(target) else target


def _is_ours(target: Any) -> bool:
    if isinstance(target, staticmethod | classmethod):
        target = target.__func__
    if not (inspect.isfunction(target) or inspect.isclass(target)):
        return False
    return str(getattr(target, "__module__", "")).startswith(ROOT)


def dependency_calls(dependant: Any) -> Iterator[Callable[..., Any]]:
    """The endpoint and every dependency FastAPI calls for it."""
    for sub in dependant.dependencies:
        yield from dependency_calls(sub)
    if dependant.call is not None:
        yield dependant.call
