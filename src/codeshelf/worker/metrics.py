"""The worker's counters: what it did, counted from the events it logs (``kit.logs.listen``),
so its metrics and its log never disagree. ``codeshelf worker --metrics-port`` serves them.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

from codeshelf.kit.logs import listen

DELIVERIES = Counter(
    "codeshelf_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered, retry, failed: given up).",
    ["outcome"],
)
BACKORDERS = Counter(
    "codeshelf_backorders", "Backorders settled by the worker, by outcome.", ["outcome"]
)
REPLACEMENTS = Counter(
    "codeshelf_claim_replacements", "Claims whose replacement codes the worker sent."
)
IMPORT_LINES = Counter("codeshelf_import_lines", "Lines of stock files read by import jobs.")
IMPORTED = Counter("codeshelf_imported_codes", "Codes imported into stock by import jobs.")
IMPORT_JOBS = Counter(
    "codeshelf_import_jobs", "Import jobs ended, by outcome (done, failed, queued).", ["outcome"]
)
_lines_seen: dict[str, int] = {}  # per running job: lines already counted


def _count(name: str, fields: dict[str, Any]) -> None:
    if name == "webhook.delivery":
        DELIVERIES.labels(str(fields.get("outcome"))).inc()
    elif name in ("backorder.filled", "backorder.expired"):
        BACKORDERS.labels(name.split(".")[1]).inc()
    elif name == "claim.replacement_sent":
        REPLACEMENTS.inc()
    elif name in ("import.progress", "import.finished"):
        _count_import(name, fields)


def _count_import(name: str, fields: dict[str, Any]) -> None:
    job, lines = str(fields.get("job")), int(fields.get("lines") or 0)
    IMPORT_LINES.inc(max(0, lines - _lines_seen.get(job, 0)))
    _lines_seen[job] = lines
    if name == "import.finished":
        _lines_seen.pop(job, None)
        IMPORT_JOBS.labels(str(fields.get("outcome"))).inc()
        IMPORTED.inc(int(fields.get("imported") or 0))


def count_events() -> None:
    """Count this process's events from now on (the worker, with ``--metrics-port``)."""
    listen(_count)
