"""schemathesis (a tool nobody here wrote) runs every operation of both OpenAPI documents
against the real server on loopback, with a partner key, a sandbox key and an operator key and
seeded data: no 5xx, no status the document does not declare, no body or header that does not
match it. Stateful runs follow the documents' links (create an order, then read it and its
codes). The budget is small and fixed (5 examples an operation, derandomized, one worker)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from tests.fixtures.claims import issue_operator_key
from tests.fixtures.factories import Shop
from tests.fixtures.sandbox import issue_sandbox_key
from tests.fixtures.servers import LIVE_SERVERS

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    )
)
SANDBOX = "^/api/v1/sandbox/"


def schemathesis(
    document: Path,
    url: str,
    key: str,
    cwd: Path,
    *only: str,
    phases: str = "examples,fuzzing,stateful",
) -> None:
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        str(document),
        "--url",
        url,
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        CHECKS,
        "--phases",
        phases,
        "--max-examples",
        "5",
        "--generation-deterministic",
        "--workers",
        "1",
        "--no-color",
        "--warnings",
        "off",
        *only,
    ]
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert " failed" not in report and "errored" not in report.lower(), report


@pytest.mark.live
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the HTTP contract
def test_both_documents_hold_against_the_real_server(
    db: Database, settings: Settings, shop: Shop, tmp_path: Path
) -> None:
    operator = issue_operator_key(db)
    sandbox = issue_sandbox_key(db, shop.a.id)
    quiet = settings.model_copy(update={"operator_rate_limit_per_minute": 100_000})
    with LIVE_SERVERS.serving(quiet) as server:
        partner_doc = tmp_path / "partner.json"
        partner_doc.write_text(json.dumps(server.app.openapi()))
        operator_doc = tmp_path / "operator.json"
        operator_doc.write_text(json.dumps(server.app.state.operator_openapi()))
        schemathesis(partner_doc, server.url, shop.a.key, tmp_path, "--exclude-path-regex", SANDBOX)
        schemathesis(  # the sandbox's operations link to nothing: no stateful phase
            partner_doc,
            server.url,
            sandbox.key,
            tmp_path,
            "--include-path-regex",
            SANDBOX,
            phases="examples,fuzzing",
        )
        schemathesis(operator_doc, server.url, operator.secret, tmp_path)
