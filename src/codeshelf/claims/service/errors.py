"""Why a claim action is refused: each a stable problem slug."""

from __future__ import annotations

from codeshelf.kit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
)


class ClaimNotFoundError(NotFoundError):
    slug = "claim-not-found"


class CodeNotOnOrderError(InvalidInputError):
    slug = "code-not-on-order"


class ClaimWindowClosedError(InvalidInputError):
    slug = "claim-window-closed"


class ClaimAlreadyOpenError(ConflictError):
    slug = "claim-already-open"


class CodeAlreadyRemediedError(ConflictError):
    slug = "code-already-remedied"


class ClaimStateError(ConflictError):
    """The claim is not in a state that allows this action (or changed meanwhile)."""

    slug = "claim-state-conflict"


class ClaimNotEligibleError(ConflictError):
    slug = "claim-not-eligible"


class ReplacementWaitingError(ConflictError):
    slug = "replacement-waiting-for-stock"
