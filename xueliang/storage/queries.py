"""Small query helpers used by several domain modules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

_CHUNK = 500  # stays under every backend's bound-parameter limit


async def rows_by_id(
    conn: AsyncConnection, table: Table, ids: Iterable[str]
) -> dict[str, Row[Any]]:
    """Fetch the rows of `table` whose `id` is among `ids`, keyed by id."""
    wanted = sorted(set(ids))
    found: dict[str, Row[Any]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        for row in await conn.execute(select(table).where(table.c.id.in_(chunk))):
            found[row.id] = row
    return found
