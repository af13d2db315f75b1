"""``codeshelf secrets …``: rotating the encryption secret (``CODESHELF_SECRET_KEY``) over
everything stored under it, online, and how far that is."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlalchemy.exc import DBAPIError

from codeshelf.claims.evidence import EvidenceStore
from codeshelf.cli import context
from codeshelf.cli.options import JsonOption
from codeshelf.cli.output import emit, err, fail, say, table
from codeshelf.kit.db import Database
from codeshelf.kit.rotation import BATCH_SIZE
from codeshelf.secrets import service as secrets

secrets_app = typer.Typer(no_args_is_help=True, help="The encryption secret and its rotation.")

EMPTY_PREVIOUS = (
    "nothing is under a previous key any more: CODESHELF_PREVIOUS_SECRET_KEYS can be emptied "
    "(then restart the API and the worker)"
)
RETRIES = 5  # a batch that deadlocked with an order (PostgreSQL) is tried again
# Values changed meanwhile (a partner rotating its webhook secret) are left for another pass.
PASSES = 3


@secrets_app.command("status")
def secrets_status(as_json: JsonOption = False) -> None:
    """How many stored values of each kind are under the current key, a previous one, or a key
    no longer configured (unreadable)."""
    db = context.database()
    try:
        with db.read_session() as session:
            found = secrets.status(session, context.evidence_store())
    finally:
        context.release(db)
    emit(found.as_json(), as_json, lambda: _print_status(found))


@secrets_app.command("rotate")
def secrets_rotate(
    batch_size: Annotated[
        int, typer.Option(min=1, help="Values per batch; each batch is one short transaction.")
    ] = BATCH_SIZE,
    pause: Annotated[
        float,
        typer.Option(
            min=0, help="Seconds to wait between batches (to go easy on a busy database)."
        ),
    ] = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Seal every stored secret again under CODESHELF_SECRET_KEY (codes: fingerprinted again
    too), in batches, while the API and the worker run. Safe to stop and run again: it goes on
    where it was; a second run finds nothing to do."""
    db = context.database()
    store = context.evidence_store()
    try:
        with db.read_session() as session:
            actor = context.actor(session)
            before = secrets.status(session, store)
        progress = Progress(
            *Progress.get_default_columns()[:-1],
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not err.is_terminal,
            transient=True,
        )
        task = progress.add_task("rotating", total=before.previous)
        with progress:
            resealed, skipped, after = _passes(
                db, store, batch_size, pause, lambda n: progress.advance(task, n)
            )
        if sum(resealed.values()):
            with db.session() as session:
                secrets.record_rotation(session, store, resealed, actor)
    except KeyboardInterrupt:
        fail("interrupted: every finished batch is kept; run it again to go on", 130)
    finally:
        context.release(db)
    emit(
        {"resealed": resealed, "skipped": skipped, **after.as_json()},
        as_json,
        lambda: _print_rotation(resealed, after),
    )
    if after.previous_keys_needed:
        fail(_keep_previous(after) + _why_skipped(store, skipped))


Counts = dict[str, int]  # by kind


def _passes(
    db: Database,
    store: EvidenceStore,
    batch_size: int,
    pause: float,
    advance: Callable[[int], None],
) -> tuple[Counts, Counts, secrets.Status]:
    """Passes over every kind until nothing is left but what cannot be sealed (at most
    PASSES): how many were sealed again and skipped, by kind, and the status after."""
    resealed = dict.fromkeys((kind.name for kind in secrets.kinds(store)), 0)
    skipped = dict.fromkeys(resealed, 0)
    for _ in range(PASSES):
        for name, (done, left) in _rotate_all(db, store, batch_size, pause, advance).items():
            resealed[name] += done
            skipped[name] = left
        with db.read_session() as session:
            after = secrets.status(session, store)
        if after.previous <= sum(skipped.values()):
            break
    return resealed, skipped, after


def _rotate_all(
    db: Database,
    store: EvidenceStore,
    batch_size: int,
    pause: float,
    advance: Callable[[int], None],
) -> dict[str, tuple[int, int]]:
    """One pass over every kind: per kind, how many were sealed again and how many skipped."""
    return {
        kind.name: _rotate_kind(db, kind, batch_size, pause, advance)
        for kind in secrets.kinds(store)
    }


def _rotate_kind(
    db: Database,
    kind: secrets.Kind,
    batch_size: int,
    pause: float,
    advance: Callable[[int], None],
) -> tuple[int, int]:
    """Every batch of one kind, each in a transaction of its own: how many were sealed again,
    how many skipped."""
    after, resealed, skipped = 0, 0, 0
    while True:
        step = _batch(db, kind, after, batch_size)
        resealed, skipped = resealed + step.resealed, skipped + step.skipped
        advance(step.resealed)
        if step.last_id is None:
            return resealed, skipped
        after = step.last_id
        if pause:
            time.sleep(pause)


def _why_skipped(store: EvidenceStore, skipped: dict[str, int]) -> str:
    reasons = {kind.name: kind.skipped_because for kind in secrets.kinds(store)}
    found = [f"{count} {name} ({reasons[name]})" for name, count in skipped.items() if count]
    return "; could not seal " + ", ".join(found) if found else ""


def _batch(db: Database, kind: secrets.Kind, after: int, limit: int) -> secrets.Resealed:
    for attempt in range(RETRIES):
        try:
            with db.session() as session:
                return kind.reseal(session, after, limit)
        except DBAPIError as exc:
            if attempt == RETRIES - 1 or not _deadlocked(exc):
                raise
    raise AssertionError("unreachable")


def _deadlocked(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in {"40P01", "40001"}


def _print_status(found: secrets.Status) -> None:
    rows = [
        (name, counts.current, counts.previous, counts.unknown)
        for name, counts in found.counts.items()
    ]
    table(
        f"sealed values (current key {found.key_id})",
        ["kind", "current", "previous", "unknown key"],
        rows,
    )
    _print_verdict(found)


def _print_rotation(resealed: dict[str, int], after: secrets.Status) -> None:
    for name, count in resealed.items():
        say(f"{name}: {count} sealed again under key {after.key_id}")
    _warn_unknown(after)
    if not after.previous_keys_needed:
        say(EMPTY_PREVIOUS)


def _keep_previous(found: secrets.Status) -> str:
    return (
        f"{found.previous} value(s) are still under a previous key: keep "
        "CODESHELF_PREVIOUS_SECRET_KEYS and run `codeshelf secrets rotate`"
    )


def _print_verdict(found: secrets.Status) -> None:
    _warn_unknown(found)
    if found.previous_keys_needed:
        say(_keep_previous(found), console=err)
    else:
        say(EMPTY_PREVIOUS)


def _warn_unknown(found: secrets.Status) -> None:
    if found.unknown:
        say(
            f"{found.unknown} value(s) are under a key that is not configured: they cannot be "
            "read until its secret is in CODESHELF_PREVIOUS_SECRET_KEYS again",
            console=err,
            label="warning: ",
            style="bold yellow",
        )
