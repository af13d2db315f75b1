"""Stock for the soak: files of fresh random codes (with a few duplicates of codes already
imported, and now and then a file of nothing but duplicates) imported through the real CLI,
directly or queued for the workers (``--background``). Every distinct code written is kept:
the final check counts the database's codes against them."""

from __future__ import annotations

import random
import string
import threading
import uuid
from pathlib import Path

from bench.procs import cli, cli_json

ALPHABET = string.ascii_uppercase + string.digits


class Stock:
    def __init__(self, env: dict[str, str], workdir: Path, rng: random.Random) -> None:
        self.env = env
        self.workdir = workdir
        self.rng = rng
        self.codes: set[str] = set()  # every distinct code handed to an import
        self.imports = 0
        self.background = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def _fresh(self, count: int) -> list[str]:
        made: list[str] = []
        while len(made) < count:
            code = "".join(self.rng.choice(ALPHABET) for _ in range(12))
            if code not in self.codes:
                made.append(code)
        return made

    def write(self, fresh: int, duplicates: int) -> tuple[Path, list[str]]:
        with self.lock:
            new = self._fresh(fresh)
            old = self.rng.sample(sorted(self.codes), min(duplicates, len(self.codes)))
        lines = new + old
        self.rng.shuffle(lines)
        path = self.workdir / f"codes-{uuid.uuid4().hex[:8]}.txt"
        path.write_text("\n".join(lines) + "\n")
        return path, new

    def load(self, sku: str, fresh: int, duplicates: int = 0, background: bool = False) -> None:
        """Import a file through ``codeshelf stock import``; its fresh codes count as stock
        once the command (or, with ``background``, the queued job) has been accepted."""
        path, new = self.write(fresh, duplicates)
        argv = ["stock", "import", str(path), "--sku", sku, "--batch", f"soak-{path.stem}"]
        try:
            if background:
                cli(self.env, self.workdir, *argv, "--background")
            else:
                report = cli_json(self.env, self.workdir, *argv)
                if report.get("imported") != len(new):
                    self.failures.append(f"{len(new)} fresh codes, report {report}"[:600])
        except RuntimeError as exc:
            self.failures.append(str(exc)[-600:])
            return
        with self.lock:
            self.codes.update(new)
            self.imports += 1
            self.background += background
