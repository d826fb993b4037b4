"""Alarm buttons and other devices: each belongs to one household and has its own
MQTT credentials (username = device id)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from xueliang import credentials, validation
from xueliang.errors import AlreadyExists, NotFound
from xueliang.geography import Scope, villages_in
from xueliang.households import get as get_household
from xueliang.storage.queries import rows_by_id
from xueliang.storage.tables import devices, households, villages
from xueliang.storage.types import utcnow


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    household: str
    kind: str


@dataclass(frozen=True, slots=True)
class NewDevice:
    """A device just provisioned; the only moment its password is known in clear."""

    device: Device
    password: str

    def as_json(self) -> dict[str, str]:
        return {
            "id": self.device.id,
            "household": self.device.household,
            "username": self.device.id,
            "password": self.password,
        }


def new_id() -> str:
    return f"btn-{secrets.token_hex(5)}"


async def add(
    conn: AsyncConnection,
    *,
    household: str,
    id: str | None = None,
    password: str | None = None,
    kind: str = "button",
) -> NewDevice:
    """Provision a device for an existing household and return its credentials."""
    device_id = validation.identifier("device", id) if id else new_id()
    await conn.run_sync(get_household, household)
    if await find(conn, device_id) is not None:
        raise AlreadyExists("device", device_id)
    created = await insert_many(conn, [(device_id, household)], kind=kind, password=password)
    return created[0]


async def insert_many(
    conn: AsyncConnection,
    pairs: Iterable[tuple[str, str]],
    *,
    kind: str = "button",
    password: str | None = None,
) -> list[NewDevice]:
    """Insert (device id, household id) pairs, each with a new random password."""
    now = utcnow()
    created = [
        NewDevice(Device(id=d, household=h, kind=kind), password or credentials.new_password())
        for d, h in pairs
    ]
    if created:
        await conn.execute(
            devices.insert(),
            [
                {
                    "id": n.device.id,
                    "household_id": n.device.household,
                    "kind": kind,
                    "credentials_hash": credentials.hash_device_password(n.password),
                    "created_at": now,
                }
                for n in created
            ],
        )
    return created


async def find(conn: AsyncConnection, id: str) -> Device | None:
    row = (await conn.execute(select(devices).where(devices.c.id == id))).one_or_none()
    if row is None:
        return None
    return Device(id=row.id, household=row.household_id, kind=row.kind)


async def get(conn: AsyncConnection, id: str) -> Device:
    device = await find(conn, id)
    if device is None:
        raise NotFound("device", id)
    return device


async def households_of(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, str]:
    """Map each existing device id among `ids` to its household."""
    return {id: row.household_id for id, row in (await rows_by_id(conn, devices, ids)).items()}


async def set_password(conn: AsyncConnection, id: str, password: str | None = None) -> str:
    """Replace a device's password (lost or leaked); returns the new one."""
    password = password or credentials.new_password()
    result = await conn.execute(
        devices.update()
        .where(devices.c.id == id)
        .values(credentials_hash=credentials.hash_device_password(password))
    )
    if result.rowcount == 0:
        raise NotFound("device", id)
    return password


async def password_matches(conn: AsyncConnection, id: str, password: str) -> bool:
    stored = (
        await conn.execute(select(devices.c.credentials_hash).where(devices.c.id == id))
    ).scalar_one_or_none()
    return stored is not None and credentials.verify_device_password(stored, password)


@dataclass(frozen=True, slots=True)
class NeedsAttention:
    """A device the village should visit: silent (offline) or with a low battery."""

    id: str
    household: str
    household_name: str
    address: str
    village: str
    village_name: str
    online: bool | None
    battery: int | None
    last_seen_at: datetime | None


def needing_attention(conn: Connection, scope: Scope, low_battery: int) -> list[NeedsAttention]:
    """Offline devices and low batteries in `scope`, by village, then household."""
    query = (
        select(
            devices.c.id, devices.c.online, devices.c.battery, devices.c.last_seen_at,
            households.c.id.label("household"), households.c.name.label("household_name"),
            households.c.address, villages.c.id.label("village"),
            villages.c.name.label("village_name"),
        )
        .join(households, households.c.id == devices.c.household_id)
        .join(villages, villages.c.id == households.c.village_id)
        .where(
            or_(devices.c.online.is_(False), devices.c.battery <= low_battery),
            villages_in(scope),
        )
        .order_by(villages.c.name, households.c.name, devices.c.id)
    )  # fmt: skip
    return [
        NeedsAttention(
            r.id, r.household, r.household_name, r.address, r.village, r.village_name,
            r.online, r.battery, r.last_seen_at,
        )
        for r in conn.execute(query)
    ]  # fmt: skip
