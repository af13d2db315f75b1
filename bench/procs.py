"""Process helpers: the ``codeshelf`` CLI as a subprocess, child resource usage, CPU counters."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def codeshelf_executable() -> str:
    """The ``codeshelf`` console script of the interpreter running the benchmark."""
    beside = Path(sys.executable).parent / "codeshelf"
    if beside.exists():
        return str(beside)
    found = shutil.which("codeshelf")
    if found is None:
        raise RuntimeError("the codeshelf command is not installed (run `make install`)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(env: Mapping[str, str], cwd: Path, *args: str) -> str:
    """Run ``codeshelf ARGS``; return its stdout, or raise with its stderr."""
    done = subprocess.run(
        [codeshelf_executable(), *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"codeshelf {' '.join(args)} failed:\n{done.stderr.strip()}")
    return done.stdout


def cli_json(env: Mapping[str, str], cwd: Path, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli(env, cwd, *args, "--json"))
    return data


@contextmanager
def background(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running command in its own session (Ctrl-C is ours to handle), its stdout and
    stderr into ``log``; stopped however we leave."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 15 seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:]


@dataclass(frozen=True)
class ChildRun:
    """A finished child: exit code, wall time, CPU time and peak RSS (of it alone)."""

    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_mb: float

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def run_child(
    argv: Sequence[str], *, env: Mapping[str, str] | None, cwd: Path, stdout: Path
) -> ChildRun:
    """Run a command to completion, its stdout into ``stdout`` and its stderr beside it (.err).

    ``wait4`` gives the resource usage of exactly this child, not of every child we waited for.
    """
    with stdout.open("wb") as out, stdout.with_suffix(".err").open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), env=None if env is None else dict(env), cwd=cwd, stdout=out, stderr=err
        )
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildRun(proc.returncode, wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a live process, of the children it has reaped (cutime + cstime) and of
    its live children: a PostgreSQL backend's CPU still counts once its client has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    reaped = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return process_cpu_s(pid) + reaped + sum(process_cpu_s(child) for child in children_of(pid))


def children_of(pid: int) -> list[int]:
    """The direct children of a process (e.g. a postmaster's backends)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot, all cores together."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK
