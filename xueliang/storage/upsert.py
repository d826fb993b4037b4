"""INSERT … ON CONFLICT for both backends (idempotent seeding and imports)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_or_update(
    conn: AsyncConnection, table: Table, key: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    """Insert the row `key | values`, or update `values` where `key` already exists."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values({**key, **values})
    stmt = stmt.on_conflict_do_update(index_elements=list(key), set_=dict(values))
    await conn.execute(stmt)
