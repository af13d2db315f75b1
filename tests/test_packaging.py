"""A production install works: `pip install .` without extras gives a working `codeshelf`, and
the runtime dependencies are exactly what src/ imports."""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import httpx
import pytest
import typer.main

from codeshelf.cli.main import app as cli_app

ROOT = Path(__file__).resolve().parents[1]
# Needed at run time without an import statement of ours: the PostgreSQL driver SQLAlchemy loads
# for postgresql+psycopg:// URLs, the form parser Starlette loads for claim screenshots, and the
# event loop and HTTP parser uvicorn picks when they are installed.
LOADED_BY_NAME = {
    "psycopg": "the PostgreSQL driver",
    "python-multipart": "multipart forms",
    "httptools": "uvicorn's HTTP parser",
    "uvloop": "uvicorn's event loop",
}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        _normalized(re.split(r"[\[=<>~! ]", spec, maxsplit=1)[0])
        for spec in project["dependencies"]
    }


def _imported() -> set[str]:
    """The distributions providing every top-level module src/ imports (standard library and
    codeshelf itself aside)."""
    modules: set[str] = set()
    for path in (ROOT / "src" / "codeshelf").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"codeshelf"}
    providers = packages_distributions()
    return {_normalized(dist) for module in third_party for dist in providers[module]}


def test_runtime_dependencies_are_exactly_what_src_imports() -> None:
    declared = _declared()
    imported = _imported()
    assert imported - declared == set(), "imported but not a runtime dependency"
    assert declared - imported == set(LOADED_BY_NAME), "declared but never used"


HELP_OF_EACH = """
import sys
from typer.testing import CliRunner
from codeshelf.cli.main import app
for name in sys.argv[1:]:
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.stdout, (name, result.stdout)
    print(name)
"""


def _constraints() -> list[str]:
    return ["-c", str(ROOT / "constraints.txt")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_the_wheel_without_extras_runs_every_door(tmp_path: Path) -> None:
    # uv builds and installs what pip would, from the same metadata, in a fifth of the time.
    uv = str(Path(sys.executable).with_name("uv"))
    dist = tmp_path / "dist"
    subprocess.run(
        [uv, "build", "-q", "--wheel", "-o", str(dist), str(ROOT)], check=True, capture_output=True
    )
    [wheel] = dist.glob("codeshelf-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), *_constraints(), str(wheel)],
        check=True,
        capture_output=True,
    )
    dev_only = subprocess.run([str(python), "-c", "import hypothesis"], capture_output=True)
    assert dev_only.returncode != 0, "a development dependency was installed"

    workdir = tmp_path / "work"  # no .env here
    workdir.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "CODESHELF_DATABASE_URL": f"sqlite:///{workdir / 'codeshelf.db'}",
        "CODESHELF_SECRET_KEY": "packaging-test-secret",
        "CODESHELF_EVIDENCE_DIR": str(workdir / "evidence"),
    }

    def codeshelf(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(venv / "bin" / "codeshelf"), *args],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    assert "Operate a codeshelf wholesale platform" in codeshelf("--help").stdout
    # Every command group's and command's --help, in one process of the installed package.
    names = sorted(typer.main.get_command(cli_app).commands)  # type: ignore[attr-defined]
    helps = subprocess.run(
        [str(python), "-c", HELP_OF_EACH, *names], env=env, capture_output=True, text=True
    )
    assert helps.returncode == 0, (helps.stdout, helps.stderr)
    assert helps.stdout.split() == names
    codeshelf("migrate")
    demo = codeshelf("demo", "--json")
    api_key = re.search(r'"api_key": "(cs_live_[^"]+)"', demo.stdout)
    assert api_key is not None, demo.stdout
    codeshelf("worker", "--once")

    port = _free_port()
    server = subprocess.Popen(
        [str(venv / "bin" / "codeshelf"), "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        response = _first_answer(
            f"http://127.0.0.1:{port}/api/v1/inventory",
            {"Authorization": f"Bearer {api_key[1]}"},
            server,
        )
        # The portal's templates, static files and password list come with the wheel.
        login = httpx.get(f"http://127.0.0.1:{port}/account/login")
        htmx = httpx.get(f"http://127.0.0.1:{port}/account/static/htmx-2.0.11.min.js")
        portal = json.loads(demo.stdout)["portal"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
            form = browser.get("/account/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            signed = browser.post(
                "/account/login",
                data={"csrf_token": token[1], "email": portal["email"], "password": "x" * 12},
                # httpx keeps Secure cookies for https only; a browser sends them to loopback.
                headers={"Cookie": form.headers["set-cookie"].split(";", 1)[0]},
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert response.status_code == 200, response.text
    assert {line["product_id"] for line in response.json()["data"]} == {"psn-us-50", "psn-tr-250"}
    assert login.status_code == 200 and "Sign in" in login.text
    assert htmx.status_code == 200 and htmx.headers["content-type"].startswith("text/javascript")
    assert signed.status_code == 401 and "not right" in signed.text


def _first_answer(
    url: str, headers: dict[str, str], server: subprocess.Popen[str]
) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(url, headers=headers, timeout=5)
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"codeshelf serve did not answer: {server.stderr}") from None
            time.sleep(0.1)
