"""A throwaway PostgreSQL cluster for tests and benchmarks.

initdb and pg_ctl refuse to run as root, so as root the cluster runs as the ``postgres`` system
user. It listens only on a unix socket in its own temporary directory, with fsync off: it holds
nothing worth keeping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg


def find_bindir() -> Path | None:
    candidates = [os.environ.get("CODESHELF_PG_BINDIR", "")]
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        candidates.append(
            subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
    candidates += sorted(
        (str(path) for path in Path("/usr/lib/postgresql").glob("*/bin")), reverse=True
    )
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    def __init__(
        self,
        bindir: Path,
        *,
        fsync: bool = False,
        tcp: bool = False,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="codeshelf-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.port = _free_port()
        self.fsync = fsync
        self.tcp = tcp
        self.settings = settings or {}
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True)

    def start(self) -> PostgresCluster:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        options = [
            f"-k {self.socket_dir}",
            f"-p {self.port}",
            "-c listen_addresses=" + ("127.0.0.1" if self.tcp else "''"),
            "-c max_connections=300",
            f"-c fsync={'on' if self.fsync else 'off'}",
            "-c synchronous_commit=" + ("on" if self.fsync else "off"),
            "-c full_page_writes=" + ("on" if self.fsync else "off"),
            *(f"-c {name}={value}" for name, value in self.settings.items()),
        ]
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            " ".join(options),
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def libpq(self, database: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={database}"

    def execute(self, sql: str) -> None:
        with psycopg.connect(self.libpq(), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]
