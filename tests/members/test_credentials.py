"""The password rule, TOTP codes (each good once, a step of drift allowed), recovery codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeshelf.members.service import credentials

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 12, 1, 12, 0, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-one", "at least 12"),
        ("x" * 129, "at most 128"),
        ("1qaz2wsx3edc", "most common"),
        ("Q1W2E3R4T5Y6", "most common"),  # the list is checked case-insensitively
        ("my-dana.smith-password", "e-mail address's name"),
    ],
)
def test_weak_passwords_are_refused_saying_why(password: str, reason: str) -> None:
    with pytest.raises(credentials.WeakPasswordError, match=reason):
        credentials.check_password_rule(password, "dana.smith@acme.example")


def test_a_long_uncommon_password_passes_and_hashes_with_argon2id() -> None:
    credentials.check_password_rule("violet anchor tundra", "dana@acme.example")
    stored = credentials.hash_password("violet anchor tundra")
    assert stored.startswith("$argon2id$")
    assert credentials.password_matches(stored, "violet anchor tundra")
    assert not credentials.password_matches(stored, "violet anchor tundrA")
    assert not credentials.password_matches("not a hash", "violet anchor tundra")


def test_a_totp_code_is_accepted_in_its_step_and_a_neighbour_only_once() -> None:
    secret = credentials.new_totp_secret()
    totp = pyotp.TOTP(secret)
    step = int(NOW.timestamp()) // 30
    assert credentials.totp_step(secret, totp.at(NOW), NOW) == step
    assert credentials.totp_step(secret, totp.at(NOW - timedelta(seconds=30)), NOW) == step - 1
    assert credentials.totp_step(secret, totp.at(NOW + timedelta(seconds=30)), NOW) == step + 1
    assert credentials.totp_step(secret, totp.at(NOW - timedelta(seconds=60)), NOW) is None
    assert credentials.totp_step(secret, totp.at(NOW), NOW, after_step=step) is None  # replayed
    assert credentials.totp_step(secret, " " + totp.at(NOW)[:3] + " " + totp.at(NOW)[3:], NOW)


@given(st.text(max_size=12))
def test_anything_but_the_right_six_digits_is_refused(guess: str) -> None:
    secret = SECRET
    right = {pyotp.TOTP(secret).at(NOW + timedelta(seconds=30 * d)) for d in (-1, 0, 1)}
    if guess.strip().replace(" ", "") not in right:
        assert credentials.totp_step(secret, guess, NOW) is None


def test_recovery_codes_are_ten_distinct_and_typed_loosely() -> None:
    codes = credentials.new_recovery_codes()
    assert len(set(codes)) == 10
    code = codes[0]
    assert credentials.recovery_hash(code) == credentials.recovery_hash(
        code.lower().replace("-", " ")
    )


def test_the_qr_code_is_an_svg_of_the_otpauth_uri() -> None:
    uri = credentials.totp_uri(SECRET, "dana@acme.example")
    assert uri.startswith("otpauth://totp/codeshelf:dana%40acme.example?secret=JBSWY3DPEHPK3PXP")
    assert credentials.totp_qr_svg(SECRET, "dana@acme.example").startswith("<svg")
