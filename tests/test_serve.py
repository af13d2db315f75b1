"""`codeshelf serve` is the real server: it refuses to run without a secret outside demo mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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
