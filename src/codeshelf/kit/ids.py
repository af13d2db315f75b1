"""Public identifiers: opaque, unguessable ids shown to users (``ord_…``, ``ptr_…``, ``clm_…``).

Each is a short prefix naming its kind and 20 hex digits (80 random bits). ``is_public_id``
checks the shape before any lookup, so a malformed id never reaches the database.
"""

from __future__ import annotations

import re
import secrets
from functools import cache

HEX_DIGITS = 20


def public_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(HEX_DIGITS // 2)}"


@cache
def _pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(prefix)}_[0-9a-f]{{{HEX_DIGITS}}}")


def is_public_id(prefix: str, value: str) -> bool:
    """Whether ``value`` has the shape of an id made by ``public_id(prefix)``."""
    return _pattern(prefix).fullmatch(value) is not None
