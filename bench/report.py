"""The printed table and the JSON document of one benchmark run."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Figure:
    """One line of the table; ``passed`` is None for figures that have no target."""

    database: str
    name: str
    value: str
    target: str = "—"
    passed: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "MISS")


def machine(pg_bindir: Path | None) -> dict[str, Any]:
    """The machine and the software versions the figures were measured with."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor() or "unknown",
    )
    meminfo = Path("/proc/meminfo").read_text().split()
    mem_kb = int(meminfo[meminfo.index("MemTotal:") + 1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": _version(["wrk", "-v"]),
        "postgres": _version([str(pg_bindir / "postgres"), "--version"]) if pg_bindir else "absent",
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def _version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "absent"
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


def print_machine(info: dict[str, Any]) -> None:
    print(
        f"machine: {info['nproc']} CPU ({info['cpu_model']}), {info['memory_gb']} GB RAM, "
        f"Linux {info['kernel']}, Python {info['python']}, SQLite {info['sqlite']}"
    )
    print(f"load generator: {info['wrk']}; {info['postgres']}")
    print(f"load average at start: {' '.join(info['loadavg_at_start'])}", flush=True)


def print_table(figures: list[Figure]) -> None:
    header = ("database", "figure", "value", "target", "result", "note")
    rows = [(f.database, f.name, f.value, f.target, f.verdict, f.note) for f in figures]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3}

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    print()
    print(line(header))
    print("  ".join("-" * width for width in widths))
    previous = None
    for row in rows:
        if previous is not None and row[0] != previous:
            print()
        print(line(row))
        previous = row[0]
    print(flush=True)


def write_json(document: dict[str, Any], figures: list[Figure]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "latest.json"
    document = {
        "finished_at": datetime.now(UTC).isoformat(),
        **document,
        "table": [
            {
                "database": f.database,
                "figure": f.name,
                "value": f.value,
                "target": f.target,
                "result": f.verdict,
                "note": f.note,
            }
            for f in figures
        ],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path
