"""The reference ``GET /balance`` is measured against: a minimal async endpoint doing one
indexed SELECT, served like ``codeshelf serve`` (uvicorn, one process per core, uvloop and
httptools, no access log). On PostgreSQL through psycopg's async pool; on SQLite with sqlite3
on the event loop (a read of a few microseconds). It reads the bench partner's row by its
public id, answering ``{"id": …}``.

    BENCH_REFERENCE_DATABASE=<libpq string or sqlite path> uvicorn bench.reference:app
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

DATABASE = os.environ.get("BENCH_REFERENCE_DATABASE", "")
QUERY = "SELECT id FROM partners WHERE public_id = {}"
_state: dict[str, Any] = {}


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    if DATABASE.endswith(".db"):
        _state["sqlite"] = sqlite3.connect(DATABASE, check_same_thread=False)
        yield
        _state.pop("sqlite").close()
        return
    async with AsyncConnectionPool(DATABASE, min_size=4, max_size=20) as pool:
        _state["pool"] = pool
        yield


app = FastAPI(lifespan=_lifespan)


@app.get("/balance/{partner_id}")
async def balance(partner_id: str) -> dict[str, Any]:
    if "sqlite" in _state:
        row = _state["sqlite"].execute(QUERY.format("?"), (partner_id,)).fetchone()
        return {"id": row and row[0]}
    pool: AsyncConnectionPool = _state["pool"]
    async with pool.connection() as conn:
        cursor = await conn.execute(QUERY.format("%s"), (partner_id,))
        found = await cursor.fetchone()
    return {"id": found and found[0]}
