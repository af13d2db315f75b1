"""The client is a package of its own: it depends on exactly what it imports, pinned as the
server's constraints pin them, and it ships its type information."""

from __future__ import annotations

import ast
import inspect
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import codeshelf_client

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"


def _name(spec: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\[=<>~! ;]", spec, maxsplit=1)[0]).lower()


def test_the_client_depends_on_exactly_what_it_imports_pinned_as_the_constraints() -> None:
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    declared = {_name(spec): spec for spec in project["dependencies"]}
    modules: set[str] = set()
    for path in (CLIENT / "src" / "codeshelf_client").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"codeshelf_client"}
    providers = packages_distributions()
    imported = {_name(dist) for module in third_party for dist in providers[module]}
    assert imported == set(declared)
    pins = {
        _name(line): line.strip()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for name, spec in declared.items():
        assert spec.split("==")[1] == pins[name].split("==")[1], name
    assert project["version"] == codeshelf_client.__version__
    assert (CLIENT / "src" / "codeshelf_client" / "py.typed").exists()


def test_the_async_client_mirrors_the_blocking_one_call_for_call() -> None:
    from codeshelf_client import AsyncCodeshelf, Codeshelf

    blocking = Codeshelf("cs_test_x")
    awaited = AsyncCodeshelf("cs_test_x")
    for name, resource in vars(blocking).items():
        if name.startswith("_"):
            continue
        twin = getattr(awaited, name)
        methods = {m for m in dir(resource) if not m.startswith("_")}
        assert methods == {m for m in dir(twin) if not m.startswith("_")}, name
        for method in methods:
            ours = inspect.signature(getattr(resource, method)).parameters
            theirs = inspect.signature(getattr(twin, method)).parameters
            assert list(ours) == list(theirs), f"{name}.{method}"
    blocking.close()
