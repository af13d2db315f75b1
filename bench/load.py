"""The load generator: wrk, with Lua scripts that give every order a fresh Idempotency-Key.

wrk's ``done`` hook prints one JSON line with the request count, the errors and the latency
percentiles from wrk's own histogram (microseconds), so nothing is scraped from its prose.
wrk's CPU time comes from ``wait4`` on the wrk process itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import run_child

MARKER = "BENCH-JSON "

DONE_HOOK = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\\n',
    "MARKER", summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
""".replace("MARKER", MARKER)

# setup() runs in the main Lua state once per thread, before the thread's own init().
ORDER_SCRIPT = """
local next_thread = 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
end

function init(args)
  run_id = args[1]
  math.randomseed(os.time() + tid * 7919)
  salt = string.format("%08x", math.random(0, 0x7fffffff))
  counter = 0
  wrk.method = "POST"
  wrk.body = '{"product_id": "SKU", "quantity": 1}'
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = string.format("%s-%d-%s-%d", run_id, tid, salt, counter)
  return wrk.format()
end
"""


def ensure_wrk() -> str:
    """wrk's path, installing Debian's ``wrk`` package (as root) only when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("wrk is not installed; run `apt-get install wrk` as root")
    print("installing wrk (Debian package)…", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("installing wrk did not put it on PATH")
    return found


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    wrk_cpu_s: float
    raw: str

    @property
    def rate(self) -> float:
        return self.requests / self.duration_s

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def wrk_core_share(self) -> float:
        """wrk's CPU time over wall time: 1.0 is one core kept busy."""
        return self.wrk_cpu_s / self.duration_s

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": self.duration_s,
            "rate_per_s": self.rate,
            "errors": self.errors,
            "latency_ms": {
                "p50": self.p50_ms,
                "p90": self.p90_ms,
                "p99": self.p99_ms,
                "max": self.max_ms,
            },
            "wrk_cpu_s": self.wrk_cpu_s,
            "wrk_core_share": self.wrk_core_share,
            "wrk_output": self.raw,
        }


@dataclass(frozen=True)
class Load:
    """One wrk configuration: where to send what, from how many connections and threads."""

    wrk: str
    workdir: Path
    connections: int
    threads: int

    def orders(self, url: str, api_key: str, sku: str, seconds: int) -> WrkResult:
        script = ORDER_SCRIPT.replace("SKU", sku) + DONE_HOOK
        return self._run(f"{url}/api/v1/orders", api_key, script, seconds, "orders")

    def balance(self, url: str, api_key: str, seconds: int) -> WrkResult:
        return self._run(f"{url}/api/v1/balance", api_key, DONE_HOOK, seconds, "balance")

    def get(self, url: str, seconds: int, name: str) -> WrkResult:
        """GET ``url`` (the key is sent, and ignored by a reference that needs none)."""
        return self._run(url, "none", DONE_HOOK, seconds, name)

    def _run(self, url: str, api_key: str, script: str, seconds: int, name: str) -> WrkResult:
        script_path = self.workdir / f"{name}.lua"
        script_path.write_text(script)
        output = self.workdir / f"wrk-{name}-{uuid.uuid4().hex[:8]}.out"
        options = f"-t{self.threads} -c{self.connections} -d{seconds}s --latency --timeout 30s"
        argv = [
            self.wrk, *options.split(), "-H", f"Authorization: Bearer {api_key}",
            "-s", str(script_path), url, "--", uuid.uuid4().hex[:12],
        ]  # fmt: skip
        child = run_child(argv, env=None, cwd=self.workdir, stdout=output)
        raw = output.read_text()
        if child.returncode != 0:
            raise RuntimeError(f"wrk exited {child.returncode}:\n{raw}")
        return _parse(raw, child.cpu_s)


def _parse(raw: str, cpu_s: float) -> WrkResult:
    lines = [line for line in raw.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise RuntimeError(f"wrk printed no summary:\n{raw}")
    data = json.loads(lines[-1][len(MARKER) :])
    return WrkResult(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        errors={key: data[key] for key in ("connect", "read", "write", "status", "timeout")},
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        wrk_cpu_s=cpu_s,
        raw=raw,
    )
