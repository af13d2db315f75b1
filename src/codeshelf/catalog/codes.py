"""Code formats per platform: normalisation, validation, masking.

Case, white space and hyphens are ignored when reading and comparing codes; a code is stored
and shown in its platform's canonical grouping (PSN: ``XXXX-XXXX-XXXX``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IGNORED = re.compile(r"[\s\-]+")
_UNSEPARATED = str.maketrans("", "", " \t\r\n\f\v-")


class MalformedCodeError(ValueError):
    """The text does not match the product's code pattern."""


@dataclass(frozen=True)
class CodeFormat:
    platform: str
    pattern: re.Pattern[str]
    group: int
    description: str

    def normalize(self, raw: str) -> str:
        """Return the canonical form, or raise MalformedCodeError."""
        compact = raw.translate(_UNSEPARATED)
        # ASCII first: str.upper() maps some non-ASCII letters to ASCII ("ß" to "SS"), and
        # non-ASCII white space would survive the translation above.
        if not compact.isascii():
            raise MalformedCodeError(f"expected {self.description}")
        compact = compact.upper()
        if not self.pattern.fullmatch(compact):
            raise MalformedCodeError(f"expected {self.description}")
        group = self.group
        return "-".join([compact[i : i + group] for i in range(0, len(compact), group)])


FORMATS: dict[str, CodeFormat] = {
    "psn": CodeFormat("psn", re.compile(r"[A-Z0-9]{12}"), 4, "12 letters and digits"),
}

PLATFORMS = tuple(FORMATS)


def format_for(platform: str) -> CodeFormat:
    return FORMATS[platform]


def mask(code_or_last4: str) -> str:
    """``****-****-AB12``: only the last four characters are ever shown outside a reveal."""
    last4 = _IGNORED.sub("", code_or_last4)[-4:]
    return f"****-****-{last4}"


def mask_raw(raw: str) -> str:
    """Mask untrusted input (a malformed line) without echoing more than four characters."""
    compact = _IGNORED.sub("", raw)
    if len(compact) <= 4:
        return "*" * len(compact)
    return mask(compact)
