"""Screenshot evidence over HTTP against the real server, on both databases: multipart claims
and evidence, checked by content and size, stored encrypted outside the database, downloadable
by operators only."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import LargeBinary, func, inspect, select

from codeshelf.claims.models import ClaimEvidence
from codeshelf.kit.db import Database
from codeshelf.kit.settings import Settings
from tests.fixtures import factories
from tests.fixtures.claims import claim_body, claims_of, operator_headers, place
from tests.fixtures.http import assert_problem, balance
from tests.fixtures.servers import serve

CLAIMS = "/api/v1/claims"
SMALL_LIMIT = 2048
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
FileSpec = tuple[str, tuple[str, bytes, str]]


def image_bytes(image_format: str, size: tuple[int, int] = (48, 32), noise: bool = False) -> bytes:
    """A real image made in memory: a gradient, or random pixels (which do not compress)."""
    width, height = size
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(width * height * 3))
    else:
        image = Image.new("RGB", size)
        image.putdata(
            [(x * 5 % 256, y * 7 % 256, 120) for y in range(height) for x in range(width)]
        )
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def png_of_exactly(size: int) -> bytes:
    """A valid PNG of exactly ``size`` bytes (padded with a text chunk)."""
    data = image_bytes_with_text(size - len(image_bytes_with_text(0)))
    assert len(data) == size
    return data


def image_bytes_with_text(length: int) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("pad", "x" * length)
    buffer = io.BytesIO()
    image = Image.new("RGB", (8, 8))
    image.putdata([(x * 5 % 256, y * 7 % 256, 120) for y in range(8) for x in range(8)])
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def shot(data: bytes, name: str = "shot.png", media_type: str = "image/png") -> FileSpec:
    return ("screenshot", (name, data, media_type))


def file_multipart(
    client: httpx.Client,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    files: list[FileSpec],
    dry_run: bool = False,
) -> httpx.Response:
    data = {"claim": json.dumps(body)} if body is not None else {"note": "no claim here"}
    params = {"dry_run": "true"} if dry_run else {}
    return client.post(CLAIMS, data=data, files=files, headers=headers, params=params)


def without_error_code(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "error_code"}


def stored_files(settings: Settings) -> list[Path]:
    root = settings.evidence_dir
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def evidence_rows(db: Database) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).select_from(ClaimEvidence)) or 0


def assert_nothing_kept(
    client: httpx.Client, db: Database, settings: Settings, headers: dict[str, str]
) -> None:
    assert claims_of(client, headers) == []
    assert balance(client, headers) == "953.50"
    assert evidence_rows(db) == 0
    assert stored_files(settings) == []


@pytest.fixture
def small_client(settings: Settings, db: Database) -> Iterator[httpx.Client]:
    """A server of its own whose screenshots may be at most SMALL_LIMIT bytes."""
    limited = settings.model_copy(update={"max_evidence_bytes": SMALL_LIMIT})
    with serve(limited, db) as http:
        yield http


# ---------------------------------------------------------------------------------------------
# Accepted uploads


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_a_real_image_is_accepted_as_the_error_evidence(
    client: httpx.Client,
    db: Database,
    settings: Settings,
    shop: factories.Shop,
    image_format: str,
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    data = image_bytes(image_format)
    body = without_error_code(claim_body(order_id, code))
    # The declared name and type are ignored: the content decides.
    upload = shot(data, name="whatever.bin", media_type="application/octet-stream")
    response = file_multipart(client, shop.a.headers, body, [upload])
    assert response.status_code == 201, response.text
    claim = response.json()
    assert response.headers["location"] == f"{CLAIMS}/{claim['id']}"
    [judged] = claim["codes"]
    assert (judged["verdict"], judged["rule"], judged["missing"]) == (
        "eligible",
        "covered.invalid",
        [],
    )
    assert claim["error_code"] is None
    [evidence] = claim["evidence"]
    assert evidence["media_type"] == MEDIA_TYPES[image_format]
    assert evidence["size_bytes"] == len(data)
    assert evidence["sha256"] == hashlib.sha256(data).hexdigest()
    assert evidence["id"].startswith("evd_")
    seen = client.get(f"{CLAIMS}/{claim['id']}", headers=shop.a.headers).json()
    assert seen["evidence"] == claim["evidence"]
    assert len(stored_files(settings)) == 1
    assert evidence_rows(db) == 1


def test_up_to_five_screenshots_are_kept_in_order(
    client: httpx.Client, settings: Settings, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    images = [
        image_bytes("PNG"),
        image_bytes("JPEG"),
        image_bytes("WEBP"),
        image_bytes("PNG", (10, 10)),
        image_bytes("JPEG", (20, 12)),
    ]
    files = [shot(data, f"shot-{index}.img") for index, data in enumerate(images)]
    response = file_multipart(client, shop.a.headers, claim_body(order_id, code), files)
    assert response.status_code == 201, response.text
    evidence = response.json()["evidence"]
    assert [(e["sha256"], e["size_bytes"]) for e in evidence] == [
        (hashlib.sha256(data).hexdigest(), len(data)) for data in images
    ]
    assert [e["media_type"] for e in evidence] == [
        "image/png",
        "image/jpeg",
        "image/webp",
        "image/png",
        "image/jpeg",
    ]
    assert len({e["id"] for e in evidence}) == 5
    assert len(stored_files(settings)) == 5


def test_a_multipart_dry_run_counts_the_screenshot_and_keeps_nothing(
    client: httpx.Client, db: Database, settings: Settings, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    body = without_error_code(claim_body(order_id, code))
    response = file_multipart(
        client, shop.a.headers, body, [shot(image_bytes("PNG"))], dry_run=True
    )
    assert response.status_code == 200, response.text
    assert response.json()["codes"][0]["verdict"] == "eligible"
    assert_nothing_kept(client, db, settings, shop.a.headers)


# ---------------------------------------------------------------------------------------------
# Refused uploads: a clear problem, and nothing kept


def test_a_text_file_named_like_a_png_is_not_an_image(
    client: httpx.Client, db: Database, settings: Settings, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    fake = shot(b"this is not a screenshot, just text\n" * 4, "shot.png", "image/png")
    response = file_multipart(client, shop.a.headers, claim_body(order_id, code), [fake])
    problem = assert_problem(response, 422, "evidence-not-an-image")
    assert [e["pointer"] for e in problem["errors"]] == ["#/screenshot/0"]
    assert_nothing_kept(client, db, settings, shop.a.headers)


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda png: png[:8], id="signature-only"),
        pytest.param(lambda png: png[:33], id="header-only"),
        pytest.param(lambda png: png[: len(png) // 2], id="half"),
        pytest.param(lambda png: png[:-12], id="no-end-chunk"),
    ],
)
def test_a_truncated_png_is_not_an_image(
    client: httpx.Client,
    db: Database,
    settings: Settings,
    shop: factories.Shop,
    cut: Any,
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    good = image_bytes("PNG")
    # The first of two screenshots is fine; the second is refused, and with it the claim.
    files = [shot(good), shot(cut(good))]
    response = file_multipart(client, shop.a.headers, claim_body(order_id, code), files)
    problem = assert_problem(response, 422, "evidence-not-an-image")
    assert [e["pointer"] for e in problem["errors"]] == ["#/screenshot/1"]
    assert_nothing_kept(client, db, settings, shop.a.headers)


def test_a_screenshot_over_the_limit_is_too_large(
    small_client: httpx.Client, db: Database, settings: Settings, shop: factories.Shop
) -> None:
    order_id, [code] = place(small_client, shop.a.headers)
    big = image_bytes("PNG", (40, 40), noise=True)
    assert len(big) > SMALL_LIMIT
    response = file_multipart(small_client, shop.a.headers, claim_body(order_id, code), [shot(big)])
    problem = assert_problem(response, 413, "evidence-too-large")
    assert problem["max_bytes"] == SMALL_LIMIT
    assert [e["pointer"] for e in problem["errors"]] == ["#/screenshot/0"]
    assert_nothing_kept(small_client, db, settings, shop.a.headers)

    just_over = png_of_exactly(SMALL_LIMIT + 1)
    response = file_multipart(
        small_client, shop.a.headers, claim_body(order_id, code), [shot(just_over)]
    )
    assert_problem(response, 413, "evidence-too-large")
    at_limit = png_of_exactly(SMALL_LIMIT)
    response = file_multipart(
        small_client, shop.a.headers, claim_body(order_id, code), [shot(at_limit)]
    )
    assert response.status_code == 201, response.text
    assert response.json()["evidence"][0]["size_bytes"] == SMALL_LIMIT


def test_more_than_five_screenshots_are_refused(
    client: httpx.Client, db: Database, settings: Settings, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    files = [shot(image_bytes("PNG", (8 + i, 8))) for i in range(6)]
    response = file_multipart(client, shop.a.headers, claim_body(order_id, code), files)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == response.status_code
    assert_nothing_kept(client, db, settings, shop.a.headers)


def test_too_many_screenshots_are_explained(client: httpx.Client, shop: factories.Shop) -> None:
    """The refusal says what is wrong (six files where five are allowed), not something else."""
    order_id, [code] = place(client, shop.a.headers)
    files = [shot(image_bytes("PNG", (8 + i, 8))) for i in range(6)]
    response = file_multipart(client, shop.a.headers, claim_body(order_id, code), files)
    detail = response.json()["detail"]
    assert "JSON" not in detail, detail
    assert "5" in detail, detail


def test_a_multipart_claim_needs_its_claim_field(
    client: httpx.Client, db: Database, settings: Settings, shop: factories.Shop
) -> None:
    place(client, shop.a.headers)
    response = file_multipart(client, shop.a.headers, None, [shot(image_bytes("PNG"))])
    problem = assert_problem(response, 422, "validation-error")
    assert "claim" in problem["detail"]
    as_file = [("claim", ("claim.json", b"{}", "application/json")), shot(image_bytes("PNG"))]
    response = client.post(CLAIMS, files=as_file, headers=shop.a.headers)
    assert_problem(response, 422, "validation-error")
    response = client.post(
        CLAIMS,
        data={"claim": "{not json"},
        files=[shot(image_bytes("PNG"))],
        headers=shop.a.headers,
    )
    assert_problem(response, 400, "malformed-request")
    response = client.post(
        CLAIMS,
        data={"claim": json.dumps({"codes": []})},
        files=[shot(image_bytes("PNG"))],
        headers=shop.a.headers,
    )
    assert_problem(response, 422, "validation-error")
    assert_nothing_kept(client, db, settings, shop.a.headers)


def test_a_refused_claim_keeps_no_evidence(
    client: httpx.Client, db: Database, settings: Settings, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    screenshot = [shot(image_bytes("PNG"))]
    not_on_order = claim_body(order_id, factories.random_code())
    response = file_multipart(client, shop.a.headers, not_on_order, screenshot)
    assert_problem(response, 422, "code-not-on-order")
    assert_nothing_kept(client, db, settings, shop.a.headers)

    first = file_multipart(client, shop.a.headers, claim_body(order_id, code), screenshot)
    assert first.status_code == 201, first.text
    files_before = stored_files(settings)
    assert len(files_before) == 1
    second = file_multipart(client, shop.a.headers, claim_body(order_id, code), screenshot)
    assert_problem(second, 409, "claim-already-open")
    assert evidence_rows(db) == 1
    assert stored_files(settings) == files_before


# ---------------------------------------------------------------------------------------------
# Storage and the operator's download


def test_the_stored_file_is_encrypted_and_the_row_holds_only_metadata(
    client: httpx.Client, db: Database, settings: Settings, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    data = image_bytes("PNG", (64, 64))
    response = file_multipart(
        client, shop.a.headers, claim_body(order_id, code), [shot(data, "my-shot.png")]
    )
    assert response.status_code == 201, response.text
    [evidence] = response.json()["evidence"]

    [path] = stored_files(settings)
    stored = path.read_bytes()
    assert stored != data
    assert data not in stored and data[:8] not in stored  # not even the PNG signature
    assert data[16:48] not in stored
    assert "my-shot" not in str(path) and not path.suffix  # named by random keys only

    columns = inspect(ClaimEvidence).columns
    assert {column.key for column in columns} == {
        "id",
        "public_id",
        "claim_id",
        "media_type",
        "size_bytes",
        "sha256",
        "key_id",
        "storage_key",
        "uploaded_at",
    }
    assert not any(isinstance(column.type, LargeBinary) for column in columns)
    with db.read_session() as session:
        row = session.scalars(select(ClaimEvidence)).one()
        assert row.public_id == evidence["id"]
        assert row.sha256 == hashlib.sha256(data).hexdigest()
        assert row.size_bytes == len(data)
        assert settings.evidence_dir / row.storage_key == path
        values = [getattr(row, column.key) for column in columns]
    assert all(len(str(value)) < 100 for value in values)


def test_the_operator_downloads_the_screenshot_and_partners_cannot(
    client: httpx.Client, db: Database, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    data = image_bytes("JPEG", (64, 48))
    response = file_multipart(client, shop.a.headers, claim_body(order_id, code), [shot(data)])
    assert response.status_code == 201, response.text
    claim = response.json()
    url = f"/api/v1/admin/claims/{claim['id']}/evidence/{claim['evidence'][0]['id']}"
    operator = operator_headers(db)

    download = client.get(url, headers=operator)
    assert download.status_code == 200, download.text
    assert download.content == data
    assert download.headers["content-type"] == "image/jpeg"
    assert download.headers["cache-control"] == "no-store"
    assert download.headers["x-content-type-options"] == "nosniff"

    for headers in (shop.a.headers, shop.b.headers, {}):
        assert_problem(client.get(url, headers=headers), 404, "not-found")
    other_order, [other_code] = place(client, shop.a.headers)
    other = file_multipart(
        client, shop.a.headers, claim_body(other_order, other_code), [shot(image_bytes("PNG"))]
    ).json()
    crossed = f"/api/v1/admin/claims/{claim['id']}/evidence/{other['evidence'][0]['id']}"
    assert_problem(client.get(crossed, headers=operator), 404, "claim-not-found")
    missing = f"/api/v1/admin/claims/{claim['id']}/evidence/evd_{'0' * 20}"
    assert_problem(client.get(missing, headers=operator), 404, "claim-not-found")


def test_a_tampered_file_is_not_served(
    client: httpx.Client, db: Database, settings: Settings, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    data = image_bytes("PNG")
    claim = file_multipart(client, shop.a.headers, claim_body(order_id, code), [shot(data)]).json()
    [path] = stored_files(settings)
    sealed = bytearray(path.read_bytes())
    sealed[-1] ^= 0x01
    path.write_bytes(bytes(sealed))
    url = f"/api/v1/admin/claims/{claim['id']}/evidence/{claim['evidence'][0]['id']}"
    response = client.get(url, headers=operator_headers(db))
    assert response.status_code >= 500
    assert data not in response.content


# ---------------------------------------------------------------------------------------------
# Evidence added to a filed claim


def test_a_screenshot_added_later_satisfies_the_missing_evidence(
    client: httpx.Client, db: Database, settings: Settings, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    filed = client.post(
        CLAIMS, json=without_error_code(claim_body(order_id, code)), headers=shop.a.headers
    )
    assert filed.status_code == 201, filed.text
    claim = filed.json()
    assert claim["codes"][0]["missing"] == ["error_evidence"]
    asked = client.post(
        f"/api/v1/admin/claims/{claim['id']}/request-info",
        json={"reason": "Please send a screenshot of the PSN error."},
        headers=operator_headers(db),
    )
    assert asked.status_code == 200, asked.text

    data = image_bytes("WEBP", (30, 20))
    response = client.post(
        f"{CLAIMS}/{claim['id']}/evidence",
        data={"evidence": json.dumps({"note": "Screenshot from the customer"})},
        files=[shot(data, "error.webp", "image/webp")],
        headers=shop.a.headers,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["status"] == "submitted"
    assert updated["codes"][0]["verdict"] == "eligible"
    assert updated["codes"][0]["missing"] == []
    [evidence] = updated["evidence"]
    assert evidence["media_type"] == "image/webp"
    assert evidence["sha256"] == hashlib.sha256(data).hexdigest()
    assert evidence["size_bytes"] == len(data)
    assert len(stored_files(settings)) == 1

    download = client.get(
        f"/api/v1/admin/claims/{claim['id']}/evidence/{evidence['id']}",
        headers=operator_headers(db, "bob"),
    )
    assert download.content == data

    # Not an image, or no `evidence` field: refused, and the claim is as it was.
    refused = client.post(
        f"{CLAIMS}/{claim['id']}/evidence",
        data={"evidence": "{}"},
        files=[shot(b"GIF89a not really", "x.png")],
        headers=shop.a.headers,
    )
    assert_problem(refused, 422, "evidence-not-an-image")
    unnamed = client.post(
        f"{CLAIMS}/{claim['id']}/evidence",
        data={"claim": "{}"},
        files=[shot(image_bytes("PNG"))],
        headers=shop.a.headers,
    )
    assert_problem(unnamed, 422, "validation-error")
    foreign = client.post(
        f"{CLAIMS}/{claim['id']}/evidence",
        data={"evidence": "{}"},
        files=[shot(image_bytes("PNG"))],
        headers=shop.b.headers,
    )
    assert_problem(foreign, 404, "claim-not-found")
    assert client.get(f"{CLAIMS}/{claim['id']}", headers=shop.a.headers).json() == updated
    assert evidence_rows(db) == 1


def test_evidence_refused_after_upload_leaves_no_row(
    client: httpx.Client, db: Database, settings: Settings, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    filed = client.post(
        CLAIMS, json=without_error_code(claim_body(order_id, code)), headers=shop.a.headers
    )
    assert filed.status_code == 201, filed.text
    claim = filed.json()
    before = (datetime.now(UTC) - timedelta(days=1)).isoformat()  # before the delivery
    response = client.post(
        f"{CLAIMS}/{claim['id']}/evidence",
        data={"evidence": json.dumps({"redemption": {"attempted_at": before}})},
        files=[shot(image_bytes("PNG"))],
        headers=shop.a.headers,
    )
    problem = assert_problem(response, 422, "validation-error")
    assert [e["pointer"] for e in problem["errors"]] == ["#/redemption/attempted_at"]
    assert evidence_rows(db) == 0
    assert client.get(f"{CLAIMS}/{claim['id']}", headers=shop.a.headers).json() == claim
    assert stored_files(settings) == []  # checked before any file is written


@pytest.mark.parametrize("keep", [0.5, 0.9], ids=["half", "no-end-marker"])
def test_a_truncated_jpeg_is_not_an_image(
    client: httpx.Client, db: Database, settings: Settings, shop: factories.Shop, keep: float
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    jpeg = image_bytes("JPEG", size=(64, 64), noise=True)
    cut = jpeg[: int(len(jpeg) * keep)]
    response = file_multipart(client, shop.a.headers, claim_body(order_id, code), [shot(cut)])
    assert_problem(response, 422, "evidence-not-an-image")
    assert_nothing_kept(client, db, settings, shop.a.headers)


def test_evidence_can_declare_the_code_was_exposed(
    client: httpx.Client, shop: factories.Shop
) -> None:
    order_id, [code] = place(client, shop.a.headers)
    claim = client.post(CLAIMS, json=claim_body(order_id, code), headers=shop.a.headers).json()
    assert claim["codes"][0]["verdict"] == "eligible"
    response = client.post(
        f"{CLAIMS}/{claim['id']}/evidence",
        json={"redemption": {"exposed_publicly": True}},
        headers=shop.a.headers,
    )
    assert response.status_code == 200, response.text
    [judged] = response.json()["codes"]
    assert (judged["verdict"], judged["rule"]) == ("not_covered", "not_covered.public_exposure")


def _sound_header_broken_body() -> bytes:
    """A PNG whose header is sound and whose pixels are not: sniffing passes, decoding fails."""
    whole = image_bytes("PNG", (64, 64), noise=True)
    return whole[: len(whole) // 2]


def test_a_request_naming_no_order_or_claim_of_its_own_is_refused_before_any_decoding(
    client: httpx.Client, shop: factories.Shop, settings: Settings
) -> None:
    """Cheap checks first: an unknown order (or another partner's claim) answers 404 without
    decoding a single image, so lossless images that cost seconds to decode buy nothing. The
    same request naming a real order is refused only once decoded (422)."""
    broken = [shot(_sound_header_broken_body())]
    missing = file_multipart(
        client, shop.a.headers, claim_body("ord_00000000000000000000", "ABCD-EFGH-JKLM"), broken
    )
    assert_problem(missing, 404, "order-not-found")
    order_id, codes = place(client, shop.a.headers)
    real = file_multipart(client, shop.a.headers, claim_body(order_id, codes[0]), broken)
    assert_problem(real, 422, "evidence-not-an-image")
    theirs = file_multipart(client, shop.b.headers, claim_body(order_id, codes[0]), broken)
    assert_problem(theirs, 404, "order-not-found")

    filed = client.post(CLAIMS, json=claim_body(order_id, codes[0]), headers=shop.a.headers)
    claim_id = filed.json()["id"]
    for headers, expected in ((shop.b.headers, 404), (shop.a.headers, 422)):
        more = client.post(
            f"{CLAIMS}/{claim_id}/evidence",
            data={"evidence": json.dumps({"note": "here"})},
            files=broken,
            headers=headers,
        )
        assert more.status_code == expected, more.text
    assert stored_files(settings) == []


def test_an_image_too_large_in_pixels_is_refused_from_its_header(
    client: httpx.Client, shop: factories.Shop
) -> None:
    huge = image_bytes("PNG", (5000, 4000))  # 20 megapixels of one colour: tiny on the wire
    assert len(huge) < 200_000
    order_id, codes = place(client, shop.a.headers)
    refused = file_multipart(client, shop.a.headers, claim_body(order_id, codes[0]), [shot(huge)])
    assert_problem(refused, 422, "evidence-not-an-image")
    assert "too large" in refused.json()["detail"]
