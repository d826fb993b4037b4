"""The append-only audit log: every staff action, who, what, when and from where.

Entries are written in the same transaction as the action they describe, so there is
no action without its entry. The database refuses UPDATE and DELETE on the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, func, select

from xueliang.storage import Database
from xueliang.storage.tables import audit_log
from xueliang.storage.types import utcnow

MAX_DETAIL = 2000


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing a person (or someone trying to be one) did."""

    actor: str
    action: str
    target: str = ""
    address: str = ""
    staff_id: int | None = None
    detail: str | None = None

    def row(self, at: datetime) -> dict[str, Any]:
        return {
            "at": at,
            "actor": self.actor[:100],
            "staff_id": self.staff_id,
            "action": self.action[:32],
            "target": self.target[:100],
            "address": self.address[:64],
            "detail": self.detail[:MAX_DETAIL] if self.detail else None,
        }


@dataclass(frozen=True, slots=True)
class Logged:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    address: str
    detail: str | None


def write(conn: Connection, entry: Entry, at: datetime | None = None) -> None:
    """Append `entry` inside the caller's transaction."""
    conn.execute(audit_log.insert().values(entry.row(at or utcnow())))


async def record(db: Database, entry: Entry) -> None:
    """Append `entry` in a transaction of its own."""
    await db.run_write(partial(write, entry=entry))


@dataclass(frozen=True, slots=True)
class Failures:
    """Recent failures of one kind, for throttling."""

    count: int
    last: datetime | None


def recent_failures(
    conn: Connection, action: str, *, actor: str | None = None, address: str | None = None,
    window: timedelta,
) -> Failures:  # fmt: skip
    """How often `action` was logged for this account or address within `window`."""
    query = select(func.count(), func.max(audit_log.c.at)).where(
        audit_log.c.action == action, audit_log.c.at >= utcnow() - window
    )
    if actor is not None:
        query = query.where(audit_log.c.actor == actor)
    if address is not None:
        query = query.where(audit_log.c.address == address)
    count, last = conn.execute(query).one()
    return Failures(count, last)


def latest(conn: Connection, limit: int = 100, before: int | None = None) -> list[Logged]:
    """The newest entries first (for the county's audit view)."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    return [
        Logged(r.id, r.at, r.actor, r.action, r.target, r.address, r.detail)
        for r in conn.execute(query)
    ]
