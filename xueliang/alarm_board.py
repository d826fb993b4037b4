"""What staff see of alarms: lists in their scope (the live board, the API's pages) and
one alarm in full. Scope is applied in every query here, so no view can forget it:
another scope's alarm is simply not found."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, and_, or_, select, true

from xueliang.alarm_payloads import centre_payloads
from xueliang.alarms import CLOSED, OPEN
from xueliang.errors import InvalidInput, NotFound
from xueliang.geography import Scope
from xueliang.storage.tables import (
    alarm_events,
    alarms,
    cameras,
    devices,
    households,
    towns,
    villages,
)

MAX_LIMIT = 1000
STATE_FILTERS = ("open", "closed", "all", *OPEN, *CLOSED)
Order = Literal["urgent", "newest"]


def in_scope(scope: Scope) -> ColumnElement[bool]:
    """The SQL condition for alarms inside `scope`; unplaced alarms (unregistered
    devices) are the county's alone."""
    if scope.level == "county":
        return true()
    if scope.level == "town":
        return alarms.c.town_id == scope.id
    return alarms.c.village_id == scope.id


@dataclass(frozen=True, slots=True)
class Page:
    alarms: list[dict[str, Any]]
    next: str | None


def page(
    conn: Connection, scope: Scope, *, state: str = "all", limit: int = 100,
    cursor: str | None = None,
) -> Page:  # fmt: skip
    """Alarms in `scope`: open ones most urgent first (priority, then age), any other
    selection newest first; `next` continues after the last one."""
    if state not in STATE_FILTERS:
        raise InvalidInput("state", f"must be one of {', '.join(STATE_FILTERS)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
    order: Order = "urgent" if state == "open" else "newest"
    query = select(alarms.c.id, alarms.c.priority).where(in_scope(scope))
    if state == "open":
        query = query.where(alarms.c.state.in_(OPEN))
    elif state == "closed":
        query = query.where(alarms.c.state.in_(CLOSED))
    elif state != "all":
        query = query.where(alarms.c.state == state)
    if cursor is not None:
        query = query.where(_after(order, _decode(cursor, order)))
    if order == "urgent":
        query = query.order_by(alarms.c.priority, alarms.c.id)
    else:
        query = query.order_by(alarms.c.id.desc())
    rows = list(conn.execute(query.limit(limit + 1)))
    more, rows = len(rows) > limit, rows[:limit]
    payloads = centre_payloads(conn, [r.id for r in rows])
    last = rows[-1] if rows else None
    following = None
    if more and last is not None:
        following = _encode(order, [last.priority, last.id] if order == "urgent" else [last.id])
    return Page([payloads[r.id] for r in rows], following)


def _after(order: Order, key: list[int]) -> ColumnElement[bool]:
    if order == "newest":
        return alarms.c.id < key[0]
    priority, last_id = key
    return or_(
        alarms.c.priority > priority, and_(alarms.c.priority == priority, alarms.c.id > last_id)
    )


def _encode(order: Order, key: list[int]) -> str:
    raw = json.dumps({"o": order, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, order: Order) -> list[int]:
    """The key inside a cursor this module made for the same selection."""
    problem = InvalidInput("cursor", "not a cursor of this list; start again without it")
    if len(cursor) > 200:
        raise problem
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise problem from None
    key = data.get("k") if isinstance(data, dict) else None
    size = 2 if order == "urgent" else 1
    if (
        data.get("o") != order
        or not isinstance(key, list)
        or len(key) != size
        or not all(type(k) is int and 0 <= k < 2**53 for k in key)
    ):
        raise problem
    return key


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: int
    at: datetime
    action: str
    actor: str
    source: str
    note: str | None


@dataclass(frozen=True, slots=True)
class DeviceState:
    id: str
    kind: str
    battery: int | None
    online: bool | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class CameraRef:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class AlarmDetail:
    """Everything a centre needs to act: who, where, which devices, which cameras."""

    alarm: dict[str, Any]  # the centre payload of the contract
    history: list[HistoryEntry]
    members: int | None
    village_name: str | None
    town_name: str | None
    devices: list[DeviceState]
    cameras: list[CameraRef]
    handled: dict[str, Any]  # who acknowledged / dispatched / closed, and when


def detail(conn: Connection, scope: Scope, alarm_id: int) -> AlarmDetail:
    row = conn.execute(
        select(alarms, households.c.members, villages.c.name.label("village_name"),
               towns.c.name.label("town_name"))
        .outerjoin(households, households.c.id == alarms.c.household_id)
        .outerjoin(villages, villages.c.id == alarms.c.village_id)
        .outerjoin(towns, towns.c.id == alarms.c.town_id)
        .where(alarms.c.id == alarm_id, in_scope(scope))
    ).one_or_none()  # fmt: skip
    if row is None:
        raise NotFound("alarm", str(alarm_id))
    history = [
        HistoryEntry(e.id, e.at, e.action, e.actor, e.source, e.note)
        for e in conn.execute(
            select(alarm_events)
            .where(alarm_events.c.alarm_id == alarm_id)
            .order_by(alarm_events.c.id)
        )
    ]
    device_filter = (
        devices.c.household_id == row.household_id
        if row.household_id is not None
        else devices.c.id == row.device_id
    )
    device_states = [
        DeviceState(d.id, d.kind, d.battery, d.online, d.last_seen_at)
        for d in conn.execute(select(devices).where(device_filter).order_by(devices.c.id))
    ]
    camera_refs = [
        CameraRef(c.id, c.name)
        for c in conn.execute(
            select(cameras.c.id, cameras.c.name)
            .where(cameras.c.village_id == row.village_id)
            .order_by(cameras.c.id)
        )
    ]
    handled = {
        name: getattr(row, name)
        for name in (
            "acknowledged_at", "acknowledged_by", "dispatched_at", "dispatched_by",
            "closed_at", "closed_by", "escalated_at", "received_at",
        )
    }  # fmt: skip
    return AlarmDetail(
        alarm=centre_payloads(conn, [alarm_id])[alarm_id],
        history=history,
        members=row.members,
        village_name=row.village_name,
        town_name=row.town_name,
        devices=device_states,
        cameras=camera_refs,
        handled=handled,
    )
