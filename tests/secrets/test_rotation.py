"""`codeshelf secrets rotate`: everything sealed under the previous secret is sealed again (codes
fingerprinted again too) under the new one, after which the previous secret can go; duplicates
stay detected throughout; a crash between the steps of a batch loses nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import SecretStr
from sqlalchemy import func, select
from typer.testing import Result

from codeshelf.audit.models import AuditEvent
from codeshelf.claims.evidence import EvidenceStore
from codeshelf.claims.models import Claim, ClaimEvidence
from codeshelf.kit.clock import utcnow
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from codeshelf.kit.vault import Vault
from codeshelf.members.models import Invitation, Member
from codeshelf.members.service import signin
from codeshelf.partners import service as partners
from codeshelf.stock import service as stock
from codeshelf.stock.models import Code
from codeshelf.stock.service import rotation as stock_rotation
from codeshelf.webhooks import rotation as webhooks_rotation
from codeshelf.webhooks import service as webhooks
from codeshelf.webhooks.models import WebhookEndpoint
from tests.fixtures import factories
from tests.fixtures.claims import claim_body, place, reveal
from tests.fixtures.factories import SECRET
from tests.fixtures.servers import serve
from tests.fixtures.staff import add_staff

NEW_SECRET = "the-secret-after-rotation-0123456789"
OLD, NEW = Vault(SECRET), Vault(NEW_SECRET)
ROTATING = Vault(NEW_SECRET, [SECRET])  # the new secret current, the old one previous


def rotating_env(evidence_dir: Path) -> dict[str, str | None]:
    return {
        "CODESHELF_SECRET_KEY": NEW_SECRET,
        "CODESHELF_PREVIOUS_SECRET_KEYS": SECRET,
        "CODESHELF_EVIDENCE_DIR": str(evidence_dir),
    }


def after_env(evidence_dir: Path) -> dict[str, str | None]:
    """The previous secret emptied, as the operator does once the rotation is done."""
    return {**rotating_env(evidence_dir), "CODESHELF_PREVIOUS_SECRET_KEYS": None}


def ok(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def file_with_screenshot(client: httpx.Client, headers: dict[str, str], data: bytes) -> None:
    order_id, [code] = place(client, headers)
    body = {k: v for k, v in claim_body(order_id, code).items() if k != "error_code"}
    response = client.post(
        "/api/v1/claims",
        data={"claim": json.dumps(body)},
        files=[("screenshot", ("error.png", data, "image/png"))],
        headers=headers,
    )
    assert response.status_code == 201, response.text


def test_after_a_rotation_everything_opens_without_the_previous_secret(
    db: Database, settings: Settings, database_url: str, shop: factories.Shop, tmp_path: Path
) -> None:
    evidence_dir = settings.evidence_dir
    screenshot = png()
    with serve(settings, db) as client:
        order_id, codes = place(client, shop.a.headers, quantity=3)
        file_with_screenshot(client, shop.b.headers, screenshot)
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        endpoint, first_secret = webhooks.create_endpoint(
            session,
            OLD,
            partner,
            "http://127.0.0.1:9/in",
            ["order.fulfilled"],
            allow_private=True,
        )
        endpoint_id = endpoint.public_id
        _, second_secret = webhooks.rotate_secret(session, OLD, partner, endpoint_id)
    staff = add_staff(db, "ops@example.com")
    [stored] = [path for path in evidence_dir.rglob("*") if path.is_file()]
    sealed_before = stored.read_bytes()

    first = ok(
        factories.run_cli(
            database_url,
            "secrets",
            "rotate",
            "--batch-size",
            "2",
            "--json",
            env=rotating_env(evidence_dir),
        )
    )

    assert first["resealed"] == {
        "codes": 20,
        "webhook secrets": 1,
        "member TOTP secrets": 1,
        "invitation TOTP secrets": 1,
        "evidence files": 1,
    }
    assert first["previous"] == 0 and first["previous_keys_needed"] is False
    assert first["key_id"] == NEW.key_id
    assert stored.read_bytes() != sealed_before  # replaced, not written beside
    assert [path for path in evidence_dir.rglob("*") if path.is_file()] == [stored]
    # Idempotent: a second run finds nothing to do.
    again = ok(
        factories.run_cli(
            database_url, "secrets", "rotate", "--json", env=rotating_env(evidence_dir)
        )
    )
    assert set(again["resealed"].values()) == {0}
    with db.read_session() as session:
        [entry] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "secrets.rotate")
        ).all()
    assert entry.subject == NEW.key_id and entry.count == 24  # the second run wrote nothing

    # The previous secret emptied: nothing is under it, and everything opens under the new one.
    status = ok(
        factories.run_cli(database_url, "secrets", "status", "--json", env=after_env(evidence_dir))
    )
    assert status["previous"] == 0 and status["unknown"] == 0
    assert status["kinds"]["codes"] == {"current": 20, "previous": 0, "unknown": 0}
    new_settings = settings.model_copy(update={"secret_key": SecretStr(NEW_SECRET)})
    with serve(new_settings, db) as client:
        assert reveal(client, shop.a.headers, order_id) == codes
    with db.read_session() as session:
        row = session.scalar(
            select(WebhookEndpoint).where(WebhookEndpoint.public_id == endpoint_id)
        )
        assert row is not None
        assert webhooks.signing_secrets(NEW, row, utcnow()) == [second_secret, first_secret]
        member = session.scalar(select(Member).where(Member.email == staff.email))
        assert member is not None
        assert signin.authenticator_secret(NEW, member) == staff.totp_secret
        [evidence] = session.scalars(select(ClaimEvidence)).all()
        assert (
            EvidenceStore(evidence_dir, NEW).read(
                evidence.storage_key, evidence.key_id, evidence.sha256
            )
            == screenshot
        )
        assert {key for (key,) in session.execute(select(Invitation.pending_totp_key_id))} == {
            NEW.key_id
        }


def test_status_counts_what_is_still_under_the_previous_key(
    db: Database, database_url: str, shop: factories.Shop, tmp_path: Path
) -> None:
    result = factories.run_cli(
        database_url, "secrets", "status", "--json", env=rotating_env(tmp_path)
    )
    data = ok(result)
    assert data["kinds"]["codes"] == {"current": 0, "previous": 20, "unknown": 0}
    assert data["previous_keys_needed"] is True
    # Without the old secret configured, its rows are unknown (unreadable), and the text says so.
    text = factories.run_cli(database_url, "secrets", "status", env=after_env(tmp_path))
    assert text.exit_code == 0, text.stderr
    assert "20 value(s) are under a key that is not configured" in text.stderr


def test_a_rotation_that_cannot_finish_says_to_keep_the_previous_secret(
    db: Database, settings: Settings, database_url: str, shop: factories.Shop
) -> None:
    with serve(settings, db) as client:
        file_with_screenshot(client, shop.a.headers, png())
    [stored] = [path for path in settings.evidence_dir.rglob("*") if path.is_file()]
    stored.unlink()  # lost from the volume

    result = factories.run_cli(
        database_url, "secrets", "rotate", "--json", env=rotating_env(settings.evidence_dir)
    )

    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["resealed"]["codes"] == 20
    assert data["kinds"]["evidence files"]["previous"] == 1
    assert data["previous_keys_needed"] is True
    assert "still under a previous key: keep" in result.stderr


# ---------------------------------------------------------------------------------------------
# Duplicates across the rotation


def import_again(db: Database, vault: Vault, codes: list[str], batch: str) -> stock.ImportReport:
    with db.session() as session:
        return stock.import_codes(
            session,
            vault,
            sku="psn-us-50",
            batch_reference=batch,
            lines=enumerate(codes, start=1),
        )


def reseal(db: Database, vault: Vault, limit: int) -> int:
    with db.session() as session:
        return stock_rotation.reseal_codes(session, vault, after=0, limit=limit).resealed


@pytest.mark.parametrize(
    ("phase", "resealed", "importer"),
    [
        ("before", 0, ROTATING),
        ("half-rotated", 5, ROTATING),
        ("rotated", 10, ROTATING),
        ("previous secret emptied", 10, NEW),
    ],
)
def test_codes_in_stock_stay_duplicates_across_the_rotation(
    db: Database, shop: factories.Shop, phase: str, resealed: int, importer: Vault
) -> None:
    stocked = shop.codes[:10]
    assert reseal(db, ROTATING, resealed) == resealed
    fresh = [factories.random_code() for _ in range(3)]

    report = import_again(db, importer, [*fresh, *stocked], f"again-{resealed}")

    assert report.imported == 3, phase
    assert report.duplicates_in_stock.count == 10, phase
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Code)) == 23


def test_a_code_fingerprinted_again_is_a_duplicate_of_a_later_import_under_the_old_key(
    db: Database, shop: factories.Shop
) -> None:
    """A process not restarted yet (the old secret still current) imports during the rotation:
    it fingerprints under the old secret only, so it must not miss a code already moved."""
    reseal(db, ROTATING, 20)
    report = import_again(db, Vault(SECRET, [NEW_SECRET]), shop.codes[:4], "stale-process")
    assert report.imported == 0 and report.duplicates_in_stock.count == 4


# ---------------------------------------------------------------------------------------------
# A crash between the steps of an evidence file's batch


def test_an_evidence_file_replaced_before_its_record_still_opens_and_the_rerun_finishes(
    db: Database, settings: Settings, database_url: str, shop: factories.Shop
) -> None:
    screenshot = png()
    with serve(settings, db) as client:
        file_with_screenshot(client, shop.a.headers, screenshot)
    with db.read_session() as session:
        [evidence] = session.scalars(select(ClaimEvidence)).all()
    store = EvidenceStore(settings.evidence_dir, ROTATING)
    # The crash: the file is sealed again, the record never said so.
    assert store.reseal(evidence.storage_key, evidence.key_id, evidence.sha256)
    assert evidence.key_id == OLD.key_id
    assert store.read(evidence.storage_key, evidence.key_id, evidence.sha256) == screenshot
    # A server not restarted yet (the old secret current, the new one known) serves it too.
    stale = settings.model_copy(update={"previous_secret_keys": SecretStr(NEW_SECRET)})
    alice = ok(factories.run_cli(database_url, "operator", "key", "create", "alice", "--json"))
    with db.read_session() as session:
        claim_id = session.scalar(select(Claim.public_id).where(Claim.id == evidence.claim_id))
    with serve(stale, db) as client:
        download = client.get(
            f"/api/v1/admin/claims/{claim_id}/evidence/{evidence.public_id}",
            headers={"Authorization": f"Bearer {alice['api_key']}"},
        )
    assert download.status_code == 200, download.text
    assert download.content == screenshot

    data = ok(
        factories.run_cli(
            database_url, "secrets", "rotate", "--json", env=rotating_env(settings.evidence_dir)
        )
    )

    assert data["resealed"]["evidence files"] == 1 and data["previous"] == 0
    with db.read_session() as session:
        [evidence] = session.scalars(select(ClaimEvidence)).all()
    assert evidence.key_id == NEW.key_id
    assert (
        EvidenceStore(settings.evidence_dir, NEW).read(
            evidence.storage_key, evidence.key_id, evidence.sha256
        )
        == screenshot
    )


# ---------------------------------------------------------------------------------------------
# A partner's change between a batch's read and its write wins


def test_a_webhook_secret_rotated_by_its_partner_meanwhile_is_not_overwritten(
    db: Database, shop: factories.Shop
) -> None:
    with db.session() as session:
        partner = partners.get_partner(session, shop.a.id)
        endpoint, _ = webhooks.create_endpoint(
            session, OLD, partner, "http://127.0.0.1:9/in", ["order.paid"], allow_private=True
        )
        endpoint_id = endpoint.public_id
    with db.read_session() as session:
        read_by_the_batch = session.scalar(
            select(WebhookEndpoint).where(WebhookEndpoint.public_id == endpoint_id)
        )
        assert read_by_the_batch is not None
        session.expunge(read_by_the_batch)
    with db.session() as session:  # the partner rotates (a server not restarted yet: old key)
        partner = partners.get_partner(session, shop.a.id)
        _, partners_new_secret = webhooks.rotate_secret(session, OLD, partner, endpoint_id)

    with db.session() as session:
        assert webhooks_rotation._reseal(session, ROTATING, read_by_the_batch) == 0
    with db.session() as session:  # the next run seals what the partner chose
        assert webhooks_rotation.reseal_secrets(session, ROTATING, after=0, limit=10).resealed == 1
    with db.read_session() as session:
        row = session.scalar(
            select(WebhookEndpoint).where(WebhookEndpoint.public_id == endpoint_id)
        )
        assert row is not None and row.secret_key_id == NEW.key_id
        assert webhooks.signing_secrets(NEW, row, utcnow())[0] == partners_new_secret


def test_a_code_stored_twice_under_two_secrets_is_skipped_and_named(
    db: Database, database_url: str, shop: factories.Shop, tmp_path: Path
) -> None:
    """A process that knew only the new secret imported a code already in stock under the old
    one: both rows cannot carry the new fingerprint. The rest is sealed again; that one is left
    under the old key and the run says why (not a traceback, every run)."""
    twice = shop.codes[7]
    assert import_again(db, NEW, [twice], "imported-again").imported == 1

    result = factories.run_cli(
        database_url, "secrets", "rotate", "--batch-size", "4", "--json", env=rotating_env(tmp_path)
    )

    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["resealed"]["codes"] == 19 and data["skipped"]["codes"] == 1
    assert data["kinds"]["codes"] == {"current": 20, "previous": 1, "unknown": 0}
    assert "1 codes (the same code is in stock twice" in result.stderr
    assert "Traceback" not in result.stderr
    with db.read_session() as session:
        rows = session.execute(select(Code.sealed, Code.fingerprint, Code.key_id)).all()
    opened = [ROTATING.open(*row) for row in rows]
    assert sorted(opened) == sorted([*shop.codes, twice])
