"""What a claim action is given: the claim as filed, added evidence, and who acts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from codeshelf.claims.evidence import Screenshot
from codeshelf.claims.models import (
    RemedyKind,
)

REGION = re.compile(r"[A-Z]{2}")


MAX_CODES = 100  # codes per claim


MAX_SCREENSHOTS = 10  # per claim, all uploads together


@dataclass(frozen=True)
class CodeClaimInput:
    code: str
    pointer: str  # "#/codes/0"
    problem: str | None = None  # overrides the claim's problem for this code
    code_region: str | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class Redemption:
    """What the partner knows of the failed attempt; every field optional until required."""

    account_region: str | None = None
    attempted_at: datetime | None = None
    error_code: str | None = None
    exposed_publicly: bool | None = None  # None: not stated (when filing: not exposed)


@dataclass(frozen=True)
class ClaimInput:
    order_id: str
    codes: Sequence[CodeClaimInput]
    problem: str
    remedy: str = RemedyKind.REPLACEMENT
    redemption: Redemption = field(default_factory=Redemption)
    description: str | None = None
    screenshots: Sequence[Screenshot] = ()


@dataclass(frozen=True)
class Actor:
    """Who acts: written to the audit log with every change."""

    name: str  # "partner:ptr_…", "operator:alice"
    partner_public_id: str | None = None
    key_public_id: str | None = None


@dataclass(frozen=True)
class EvidenceInput:
    redemption: Redemption = field(default_factory=Redemption)
    codes: Sequence[CodeClaimInput] = ()  # per-code additions (code_region, error_code)
    screenshots: Sequence[Screenshot] = ()
    note: str | None = None
