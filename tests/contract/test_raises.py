"""The walk that finds the problems an operation can answer (api/raises.py): what a new
``raise`` anywhere down an endpoint's call graph does to the document."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from codeshelf.api import deps, raises
from codeshelf.api.raises import Problem

PROBE = """
from codeshelf.api.problems import HTTPProblemError
from codeshelf.kit.errors import ConflictError, DomainError


class ProbeRefusedError(ConflictError):
    slug = "probe-refused"


class ProbeFundsError(DomainError):
    slug = "insufficient-funds"


def _refusal(detail):
    return ProbeRefusedError(detail)  # made here, raised by the caller


def deep(amount):
    if amount > 10:
        raise _refusal("too much")


def run(work):
    return work(1)


def endpoint(amount):
    if amount < 0:
        raise HTTPProblemError("probe-header-missing", "no header")
    return run(deep)  # passed on, not called here


def other(amount):
    try:
        return amount.total()  # a call on an object: not followed
    except ValueError:
        raise ProbeFundsError("short") from None
"""


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[ModuleType]:
    path = tmp_path / "probe.py"
    path.write_text(textwrap.dedent(PROBE))
    spec = importlib.util.spec_from_file_location("codeshelf.contract_probe", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_a_problem_made_anywhere_down_the_call_graph_is_found(probe: ModuleType) -> None:
    assert raises.problems_of([probe.endpoint]) == {
        Problem(409, "probe-refused"),  # via a function passed on, and a helper that returns it
        Problem(400, "probe-header-missing"),  # an HTTPProblemError names its slug
    }
    assert raises.problems_of([probe.other]) == {Problem(402, "insufficient-funds")}
    assert raises.reaches([probe.endpoint], probe.deep)
    assert not raises.reaches([probe.other], probe.deep)


def test_the_key_dependencies_answer_401_and_429() -> None:
    assert raises.problems_of([deps.authenticate]) == {
        Problem(401, "unauthorized"),
        Problem(429, "rate-limited"),
    }
    assert raises.problems_of([deps.authenticate_operator]) == {
        Problem(404, "not-found"),
        Problem(429, "rate-limited"),
    }
