"""What a member signs in with: a password (argon2id), a TOTP second factor, recovery codes.

The password rule: 12 to 128 characters, not one of the 20,000 most common passwords (the list
Django ships, case-insensitively), and not containing the e-mail address's name. Length is what
makes a password strong; a list of breached favourites catches the rest. No composition rules.
"""

from __future__ import annotations

import gzip
import secrets
from datetime import datetime
from functools import cache
from importlib import resources

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from codeshelf.kit.errors import InvalidInputError
from codeshelf.kit.tokens import hash_key

MIN_PASSWORD = 12
MAX_PASSWORD = 128
RECOVERY_CODES = 10
TOTP_ISSUER = "codeshelf"
TOTP_STEP_SECONDS = 30

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters


class WeakPasswordError(InvalidInputError):
    slug = "weak-password"


@cache
def _common_passwords() -> frozenset[str]:
    packed = resources.files("codeshelf.members").joinpath("data/common-passwords.txt.gz")
    return frozenset(gzip.decompress(packed.read_bytes()).decode().split())


def check_password_rule(password: str, email: str) -> None:
    """Raise WeakPasswordError saying what is wrong with ``password``, if anything."""
    if len(password) < MIN_PASSWORD:
        raise WeakPasswordError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise WeakPasswordError(f"a password has at most {MAX_PASSWORD} characters")
    if password.lower() in _common_passwords():
        raise WeakPasswordError("this password is one of the most common ones: choose another")
    name = email.split("@", 1)[0].lower()
    if len(name) >= 4 and name in password.lower():
        raise WeakPasswordError("a password may not contain your e-mail address's name")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the e-mail is unknown, so both cases take as long."""
    return _hasher.hash(secrets.token_urlsafe(16))


def spend_time_as_if_checking(password: str) -> None:
    password_matches(_dummy_hash(), password)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def totp_qr_svg(secret: str, email: str) -> str:
    """The QR code of the otpauth:// URI, as an inline SVG document."""
    return str(segno.make(totp_uri(secret, email), error="m").svg_inline(scale=5, dark="#111"))


def totp_step(secret: str, code: str, now: datetime, after_step: int = 0) -> int | None:
    """The time step ``code`` belongs to (this one or either neighbour, for clock drift), or
    None when it is wrong or its step is not later than ``after_step`` (a code is good once)."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // TOTP_STEP_SECONDS
    for step in (current, current - 1, current + 1):
        if step > after_step and secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten one-time codes like ``7KQ2-M9XD-4TAP`` (59 random bits each)."""
    alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
    return [
        "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
        for _ in range(RECOVERY_CODES)
    ]


def recovery_hash(code: str) -> str:
    return hash_key("".join(char for char in code.upper() if char.isalnum()))
