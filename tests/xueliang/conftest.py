"""The alarm tests' county: three households with buttons, on each backend."""

from __future__ import annotations

import pytest

from xueliang import devices, households
from xueliang.alarms import AlarmService, RaiseRequest
from xueliang.storage import Database
from xueliang.topics import Topics


@pytest.fixture
async def homes(county: Database) -> Database:
    """h1 (two buttons) and h2 in qilong (town puxing), h3 in anxicun (town anxi)."""
    async with county.transaction() as conn:
        for household, village in (("h1", "qilong"), ("h2", "qilong"), ("h3", "anxicun")):
            await households.add(conn, village=village, name=f"{household}家", id=household)
        for device, household in (("d1", "h1"), ("d1b", "h1"), ("d2", "h2"), ("d3", "h3")):
            await devices.add(conn, household=household, id=device)
    return county


def service(db: Database, **options: object) -> AlarmService:
    return AlarmService(db, Topics(), **options)  # type: ignore[arg-type]


def press(device: str, message: str, kind: str = "panic") -> RaiseRequest:
    return RaiseRequest("button", kind, device=device, message_id=message)  # type: ignore[arg-type]
