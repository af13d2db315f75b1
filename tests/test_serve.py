"""`codeshelf serve` is the real server: it refuses to run without a secret outside demo mode."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _codeshelf(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CODESHELF_")}
    clean["CODESHELF_DATABASE_URL"] = f"sqlite:///{tmp_path / 'serve.db'}"
    return subprocess.run(
        [str(Path(sys.executable).with_name("codeshelf")), *args],
        cwd=tmp_path,  # no .env here
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    result = _codeshelf(tmp_path, "serve", "--port", "1")
    assert result.returncode != 0
    assert "CODESHELF_SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "serve.db").exists()  # refused before touching the database


def test_demo_mode_runs_without_a_secret(tmp_path: Path) -> None:
    result = _codeshelf(tmp_path, "demo", "--json", CODESHELF_DEMO="true")
    assert result.returncode == 0, result.stderr
    assert '"api_key": "cs_live_' in result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_text()
    return ""


def _serving(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, httpx.Headers]:
    """Start `codeshelf serve`, make one request, stop it: its worker count, its log and the
    answer's headers."""
    port = _free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CODESHELF_")}
    clean |= {"CODESHELF_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}"}
    clean |= {"CODESHELF_SECRET_KEY": "s" * 32, **(env or {})}
    argv = [str(Path(sys.executable).with_name("codeshelf")), "serve", "--port", str(port)]
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*argv, *args], cwd=tmp_path, env=clean, stdout=out, stderr=out)
        try:
            headers = httpx.Headers()
            for _ in range(600):
                with contextlib.suppress(httpx.TransportError):
                    answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/inventory")
                    headers = answer.headers
                    break
                time.sleep(0.05)
            spawned = [c for c in _children(proc.pid) if "spawn" in _cmdline(c)]
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    return len(spawned), log.read_text(), headers


@pytest.mark.live
def test_serve_runs_a_process_per_core_with_a_shared_rate_limit_store(tmp_path: Path) -> None:
    storage = {"CODESHELF_RATE_LIMIT_STORAGE": "redis://127.0.0.1:1"}  # never reached here
    workers, log, _ = _serving(tmp_path, env=storage)
    cores = len(os.sched_getaffinity(0))
    assert workers == (cores if cores > 1 else 0)  # one process serves alone, with no children
    assert "Started server process" in log


@pytest.mark.live
def test_serve_keeps_one_process_while_rate_limits_count_in_memory(tmp_path: Path) -> None:
    workers, log, _ = _serving(tmp_path)
    assert workers == 0
    if len(os.sched_getaffinity(0)) > 1:
        assert "serving with one process: rate limits are counted in this process" in log


@pytest.mark.live
def test_serve_logs_a_json_line_per_request(tmp_path: Path) -> None:
    _, log, headers = _serving(tmp_path, "--workers", "1")
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert lines and all(line["time"].endswith("+00:00") for line in lines), log
    [request] = [line for line in lines if line.get("event") == "request"]
    assert request["route"] == "/api/v1/inventory"
    assert request["status"] == 401
    assert request["request_id"] == headers["x-request-id"]
    assert "GET /api/v1/inventory HTTP/1.1" not in log  # uvicorn's own access line is off


@pytest.mark.live
def test_serve_logs_text_for_a_person_and_no_requests_when_told(tmp_path: Path) -> None:
    _, log, _ = _serving(tmp_path, "--workers", "1", "--log-format", "text", "--no-access-log")
    assert " INFO uvicorn.error Started server process" in log
    assert "/api/v1/inventory" not in log


def test_serve_sends_no_server_banner(tmp_path: Path) -> None:
    _, _, headers = _serving(tmp_path, "--workers", "1")
    assert headers and "server" not in headers
