"""The soak's verdict, once the workers have drained: each check returns its violations.

The database is read with plain SQL (psycopg): the checks must not share code with what they
check. The CLI's own checks (``ledger check``, ``reconcile``) run as the operator runs them.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.procs import codeshelf_executable
from bench.soak.traffic import Partner


def rows(libpq: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq) as conn:
        return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]


def cli_check(env: dict[str, str], cwd: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [codeshelf_executable(), *args, "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return []
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return [f"codeshelf {' '.join(args)} exited {done.returncode}: {done.stderr[-800:]}"]
    found = report.get("violations") or report.get("mismatches") or []
    for partner in report.get("partners", []):
        found += partner.get("problems", [])
    return [f"codeshelf {' '.join(args)}: {problem}" for problem in found or [done.stderr[-800:]]]


def ledger_and_reconciliation(env: dict[str, str], cwd: Path, days: Iterable[date]) -> list[str]:
    found = cli_check(env, cwd, "ledger", "check")
    for day in days:
        found += cli_check(env, cwd, "reconcile", "--date", day.isoformat())
    return found


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def keys(libpq: str, partners: list[Partner]) -> tuple[list[str], Counter[str]]:
    """Every key made at most one order, the one its 201s named; a key refused made none; the
    database holds no purchase order no client knows of."""
    found: list[str] = []
    seen: Counter[str] = Counter()
    stored: dict[str, list[str]] = defaultdict(list)
    for client_order_id, public_id in rows(
        libpq, "SELECT client_order_id, public_id FROM orders WHERE kind = 'purchase'"
    ):
        stored[client_order_id].append(public_id)
    known = set()
    for partner in partners:
        for outcome in partner.keys:
            known.add(outcome.client_order_id)
            orders = stored.get(outcome.client_order_id, [])
            seen["keys"] += 1
            seen["keys sent more than once"] += outcome.attempts > 1
            if len(orders) > 1 or len(outcome.order_ids) > 1:
                found.append(f"key {outcome.key}: orders {sorted(outcome.order_ids)} / {orders}")
            elif outcome.final == 201 and set(orders) != outcome.order_ids:
                found.append(f"key {outcome.key}: answered {outcome.order_ids}, stored {orders}")
            elif outcome.final is not None and outcome.final != 201 and orders:
                found.append(f"key {outcome.key}: refused ({outcome.final}) but made {orders}")
            elif outcome.final is None:
                seen["keys never answered"] += 1
    strays = sorted(set(stored) - known)
    found += [f"order(s) {stored[c]} for client_order_id {c} no client placed" for c in strays]
    return found, seen


def codes(libpq: str, imported: set[str], revealed: dict[str, list[str]]) -> tuple[list[str], Any]:
    """Codes in the database = codes imported; each code delivered is in one order, is one
    that was imported, and every code sold (delivered, quarantined or voided) was revealed."""
    found: list[str] = []
    states = dict(rows(libpq, "SELECT state, count(*) FROM codes GROUP BY state"))
    total = sum(states.values())
    if total != len(imported):
        found.append(f"{total} codes in the database, {len(imported)} distinct codes imported")
    owner: dict[str, str] = {}
    for order_id, order_codes in revealed.items():
        for code in order_codes:
            if code in owner and owner[code] != order_id:
                found.append(f"code …{code[-4:]} delivered in {owner[code]} and {order_id}")
            owner[code] = order_id
            if code not in imported:
                found.append(f"code …{code[-4:]} of {order_id} was never imported")
    (sold,) = rows(libpq, "SELECT count(*) FROM codes WHERE order_item_id IS NOT NULL")[0]
    if sold != len(owner):
        found.append(f"{sold} codes belong to orders, {len(owner)} distinct codes were revealed")
    (short,) = rows(
        libpq,
        """SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id
           WHERE o.status = 'delivered'
           AND i.quantity <> (SELECT count(*) FROM codes c WHERE c.order_item_id = i.id)""",
    )[0]
    if short:
        found.append(f"{short} delivered order lines hold a number of codes not their quantity")
    return found, states


def webhooks(libpq: str, received: dict[str, Any]) -> tuple[list[str], dict[str, Counter[str]]]:
    """Every event has a delivery to each endpoint its partner had when it happened; each is
    delivered or still queued; every one recorded as delivered was answered 2xx; the endpoints
    that always answer 2xx have nothing left queued."""
    found: list[str] = []
    answered = {name: set(ids) for name, ids in received["delivered"].items()}
    (missing,) = rows(
        libpq,
        """SELECT count(*) FROM events e JOIN webhook_endpoints w ON w.partner_id = e.partner_id
           WHERE w.created_at <= e.created_at AND w.deleted_at IS NULL AND NOT EXISTS (
             SELECT 1 FROM webhook_deliveries d
             WHERE d.event_id = e.id AND d.endpoint_id = w.id)""",
    )[0]
    if missing:
        found.append(f"{missing} (event, endpoint) pairs have no delivery: events lost")
    by_behaviour: dict[str, Counter[str]] = defaultdict(Counter)
    for url, state, event_id in rows(
        libpq,
        """SELECT w.url, d.state, e.public_id FROM webhook_deliveries d
           JOIN webhook_endpoints w ON w.id = d.endpoint_id JOIN events e ON e.id = d.event_id""",
    ):
        behaviour, name = url.rsplit("/", 2)[-2:]
        by_behaviour[behaviour][state] += 1
        if state == "succeeded" and event_id not in answered.get(f"{behaviour}/{name}", set()):
            found.append(f"{behaviour}/{name}: {event_id} recorded delivered, never answered 2xx")
        if state == "failed":
            found.append(f"{behaviour}/{name}: {event_id} failed for good within the soak")
    queued = by_behaviour.get("ok", Counter())["pending"]
    if queued:
        found.append(f"{queued} deliveries to always-2xx receivers still queued after the drain")
    return found, by_behaviour


def imports_finished(libpq: str) -> list[str]:
    return [
        f"import job {public_id}: {status} {error or ''}"
        for public_id, status, error in rows(
            libpq, "SELECT public_id, status, error FROM stock_import_jobs WHERE status <> 'done'"
        )
    ]


def order_states(libpq: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for kind, status, hold, count in rows(
        libpq,
        "SELECT kind, status, coalesce(hold_reason, ''), count(*) FROM orders GROUP BY 1, 2, 3",
    ):
        found[f"{kind} {status}{' (' + hold + ')' if hold else ''}"] += count
    return found


def claim_states(libpq: str) -> Counter[str]:
    return Counter(dict(rows(libpq, "SELECT status, count(*) FROM claims GROUP BY status")))
