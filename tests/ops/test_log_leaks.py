"""The suite's last check (``pytest_sessionfinish``) reads every log line its runs wrote for
every code and key the tests made: here, that it finds them however they are written, and that
what it reads is really collected."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
import pytest

from tests.fixtures import leaks
from tests.fixtures.factories import Shop, random_code

KEY = "cs_live_" + "k" * 43
HOOK_SECRET = "whsec_" + "A+/b" * 10 + "AbC="


@pytest.mark.parametrize(
    "line",
    [
        '{"event": "request", "code": "%(code)s"}',
        "redeemed code=%(code)s for the partner",
        "typed without dashes: %(bare)s",
        "inside a word: x%(code)sy",
        "Authorization: Bearer %(key)s",
        '{"detail": "key=%(key)s"}',
        "signing with secret=%(hook)s now",
    ],
)
def test_a_secret_in_a_log_line_is_found_however_it_is_written(tmp_path: Path, line: str) -> None:
    code = random_code()
    log = tmp_path / "a.log"
    log.write_text("a clean line\n" + line % {"code": code, "bare": code.replace("-", ""),
                                              "key": KEY, "hook": HOOK_SECRET} + "\n")  # fmt: skip
    leaks.remember(KEY, HOOK_SECRET)
    assert list(leaks.find_leaks([log], leaks._made)) != []


def test_lines_without_secrets_are_clean(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text('{"route": "/api/v1/orders/{order_id}", "partner": "ptr_1234567890"}\n')
    assert list(leaks.find_leaks([log], {"ABCD-EFGH-IJKL", KEY})) == []


def test_what_the_tests_make_is_remembered(hook_client: httpx.Client, shop: Shop) -> None:
    body = {"url": "http://127.0.0.1:9/in", "event_types": []}
    created = hook_client.post("/api/v1/webhook-endpoints", json=body, headers=shop.a.headers)
    assert created.status_code == 201, created.text
    made = {shop.a.key, shop.b.key, created.json()["secret"], *shop.codes}
    assert made <= leaks._made


def test_the_in_process_app_s_lines_are_kept_for_the_check(client: httpx.Client) -> None:
    marker = uuid.uuid4().hex
    client.get("/healthz", headers={"X-Request-Id": marker})
    kept = Path(os.environ[leaks.DIRECTORY]).glob("in-process-*.log")
    assert any(marker in path.read_text() for path in kept)
    assert os.environ["CODESHELF_LOG_FILE"].startswith(os.environ[leaks.DIRECTORY])
