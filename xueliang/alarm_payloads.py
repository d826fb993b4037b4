"""How an alarm is described to the outside: the centre payload of the contract and
the device's ack."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from xueliang.storage.tables import alarm_messages, alarms, cameras, counties, households


def to_json(payload: dict[str, Any]) -> str:
    """Compact UTF-8 JSON, as every message of the contract is sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def iso(moment: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, millisecond precision."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def centre_payloads(conn: Connection, alarm_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The alarms as published on `xl/centre/{town}/alarm` (and served by the API)."""
    if not alarm_ids:
        return {}
    rows = list(
        conn.execute(
            select(
                alarms,
                households.c.name.label("h_name"),
                households.c.address.label("h_address"),
                households.c.phone.label("h_phone"),
            )
            .outerjoin(households, households.c.id == alarms.c.household_id)
            .where(alarms.c.id.in_(list(alarm_ids)))
        )
    )
    village_ids = sorted({r.village_id for r in rows if r.village_id})
    by_village: dict[str, list[str]] = {}
    if village_ids:
        for camera in conn.execute(
            select(cameras.c.id, cameras.c.village_id)
            .where(cameras.c.village_id.in_(village_ids))
            .order_by(cameras.c.id)
        ):
            by_village.setdefault(camera.village_id, []).append(camera.id)
    county = conn.execute(select(func.min(counties.c.id))).scalar_one()
    return {row.id: _payload(row, by_village.get(row.village_id, []), county) for row in rows}


def _payload(row: Any, camera_ids: list[str], county: str | None) -> dict[str, Any]:
    household = None
    if row.household_id is not None:
        household = {
            "id": row.household_id,
            "name": row.h_name,
            "address": row.h_address,
            "phone": row.h_phone,
        }
    return {
        "alarm": row.id,
        "state": row.state,
        "level": row.level,
        "kind": row.kind,
        "priority": row.priority,
        "presses": row.presses,
        "source": row.source,
        "device": row.device_id,
        "household": household,
        "village": row.village_id,
        "town": row.town_id,
        "county": county,
        "unregistered": row.unregistered,
        "raised_at": iso(row.raised_at),
        "updated_at": iso(row.updated_at),
        "escalate_at": iso(row.escalate_at),
        "cameras": camera_ids,
    }


def ack_payload(message_id: str, alarm_id: int, state: str) -> dict[str, Any]:
    """What a device sees on `xl/dev/{device}/ack`."""
    return {"id": message_id, "alarm": alarm_id, "state": state}


def device_acks(conn: Connection, alarm_id: int) -> list[tuple[str, str]]:
    """(device, its latest message id) for every button that pressed for this alarm."""
    latest = (
        select(alarm_messages.c.device_id, func.max(alarm_messages.c.received_at).label("at"))
        .where(alarm_messages.c.alarm_id == alarm_id)
        .group_by(alarm_messages.c.device_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            alarm_messages.c.device_id, func.max(alarm_messages.c.message_id).label("message_id")
        )
        .join(
            latest,
            (latest.c.device_id == alarm_messages.c.device_id)
            & (latest.c.at == alarm_messages.c.received_at),
        )
        .where(alarm_messages.c.alarm_id == alarm_id, ~alarm_messages.c.device_id.startswith("tv:"))
        .group_by(alarm_messages.c.device_id)
        .order_by(alarm_messages.c.device_id)
    )
    return [(r.device_id, r.message_id) for r in rows]
