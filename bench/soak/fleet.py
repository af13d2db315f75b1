"""The processes under test: several ``codeshelf serve`` and two ``codeshelf worker``, each
restarted when it is killed (by the chaos thread) or when it dies on its own (a failure)."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.procs import codeshelf_executable, free_port, stop


@dataclass
class Member:
    """One process of the fleet: what it runs and how it has fared."""

    name: str
    argv: list[str]
    log: Path
    url: str | None = None  # a server's base URL
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    killed: int = 0
    died: list[str] = field(default_factory=list)  # exits nobody asked for


class Fleet:
    """Start, kill -9 and restart the members; watch for deaths nobody caused."""

    def __init__(self, env: dict[str, str], workdir: Path, servers: int, workers: int) -> None:
        self.env = env
        self.workdir = workdir
        self.lock = threading.Lock()
        exe = codeshelf_executable()
        self.members: list[Member] = []
        for index in range(servers):
            port = free_port()
            argv = [exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
            log = workdir / f"serve-{index}.log"
            self.members.append(Member(f"serve-{index}", argv, log, f"http://127.0.0.1:{port}"))
        for index in range(workers):
            log = workdir / f"worker-{index}.log"
            self.members.append(Member(f"worker-{index}", [exe, "worker"], log))

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members if m.url is not None]

    def start(self, member: Member) -> None:
        with member.log.open("ab") as out:
            out.write(f"\n=== start {member.starts + 1} at {time.time():.3f}\n".encode())
            out.flush()
            member.proc = subprocess.Popen(
                member.argv,
                env=self.env,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        member.starts += 1

    def start_all(self, api_key: str) -> None:
        for member in self.members:
            self.start(member)
        for member in self.members:
            if member.url is not None and not wait_ready(member.url, api_key):
                raise RuntimeError(f"{member.name} did not come up; see {member.log}")

    def kill_one(self, rng: random.Random, gentle: float = 0.2) -> str:
        """kill -9 a random member (or, one time in five, SIGTERM: a graceful stop, with
        SIGKILL after 20 s), then start it again at once. Returns what was done to whom."""
        with self.lock:
            member = rng.choice(self.members)
            how = "SIGTERM" if rng.random() < gentle else "SIGKILL"
            if member.proc is not None and member.proc.poll() is None:
                member.proc.send_signal(getattr(signal, how))
                try:
                    member.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    member.proc.kill()
                    member.proc.wait()
                    how = "SIGTERM, then SIGKILL after 20 s"
                member.killed += 1
            self.start(member)
            return f"{how} {member.name}"

    def revive_the_dead(self) -> None:
        """Restart any member that exited without being killed, noting how it ended."""
        with self.lock:
            for member in self.members:
                if member.proc is not None and member.proc.poll() is not None:
                    member.died.append(f"exit {member.proc.returncode}")
                    self.start(member)

    def stop_all(self) -> None:
        with self.lock:
            for member in self.members:
                if member.proc is not None:
                    stop(member.proc)

    def deaths(self) -> list[str]:
        return [f"{m.name}: {why} (see {m.log})" for m in self.members for why in m.died]


def wait_ready(url: str, api_key: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {api_key}"}
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/balance", headers=headers).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False
