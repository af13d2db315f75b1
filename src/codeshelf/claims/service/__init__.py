"""Code-support claims: filing under the policy, evidence, the operator's decisions, remedies.

Nothing here replaces or refunds on its own (seed 001): the policy's verdict is a
recommendation, and an operator approves. Once approved, each claimed code gets exactly one
remedy, ever (``claim_remedies.code_id`` is unique): a refund of what was paid for it, or a
replacement code allocated like any order. A replacement short of stock waits, and the claim
with it, until stock arrives or the partner switches to a refund.

Doors call these names from here; each lives in the module of its seam: ``inputs`` (what an
action is given), ``evaluation`` (the policy applied), ``filing`` (the partner's side),
``decisions`` (the operator's, code by code), ``remedies``, ``queue`` (reading claims),
``history`` (each claimed code's past, for the decision) and ``lifecycle`` (the moves and the
trail they leave).
"""

from codeshelf.claims.service.decisions import (
    DECIDABLE,
    approve,
    decide,
    escalate,
    reject,
    request_info,
    triage,
)
from codeshelf.claims.service.errors import (
    ClaimAlreadyOpenError,
    ClaimNotEligibleError,
    ClaimNotFoundError,
    ClaimStateError,
    ClaimWindowClosedError,
    CodeAlreadyRemediedError,
    CodeNotOnOrderError,
    ReplacementWaitingError,
)
from codeshelf.claims.service.evaluation import Evaluation, JudgedCode, evaluate, facts_of
from codeshelf.claims.service.filing import (
    add_evidence,
    cancel,
    change_remedy,
    file_claim,
    filing_refusal,
)
from codeshelf.claims.service.history import (
    BatchRecord,
    CodeHistory,
    OtherClaim,
    PolicyRule,
    Reveal,
    history,
)
from codeshelf.claims.service.inputs import (
    MAX_CODES,
    MAX_SCREENSHOTS,
    Actor,
    ClaimInput,
    CodeClaimInput,
    EvidenceInput,
    Redemption,
)
from codeshelf.claims.service.lifecycle import (
    customer_message,
    get_claim,
    order_public_ids,
    position_of,
    undecided,
)
from codeshelf.claims.service.queue import (
    QueueOverview,
    batch_quality,
    counts_by_status,
    is_overdue,
    list_claims,
    open_count,
    overdue_count,
    overview,
    queue,
    status_counts,
)
from codeshelf.claims.service.remedies import fulfil_waiting, resolve

__all__ = [
    "DECIDABLE",
    "MAX_CODES",
    "MAX_SCREENSHOTS",
    "Actor",
    "BatchRecord",
    "ClaimAlreadyOpenError",
    "ClaimInput",
    "ClaimNotEligibleError",
    "ClaimNotFoundError",
    "ClaimStateError",
    "ClaimWindowClosedError",
    "CodeAlreadyRemediedError",
    "CodeClaimInput",
    "CodeHistory",
    "CodeNotOnOrderError",
    "Evaluation",
    "EvidenceInput",
    "JudgedCode",
    "OtherClaim",
    "PolicyRule",
    "QueueOverview",
    "Redemption",
    "ReplacementWaitingError",
    "Reveal",
    "add_evidence",
    "approve",
    "batch_quality",
    "cancel",
    "change_remedy",
    "counts_by_status",
    "customer_message",
    "decide",
    "escalate",
    "evaluate",
    "facts_of",
    "file_claim",
    "filing_refusal",
    "fulfil_waiting",
    "get_claim",
    "history",
    "is_overdue",
    "list_claims",
    "open_count",
    "order_public_ids",
    "overdue_count",
    "overview",
    "position_of",
    "queue",
    "reject",
    "request_info",
    "resolve",
    "status_counts",
    "triage",
    "undecided",
]
