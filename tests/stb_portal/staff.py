"""Signing demo staff in, reading the audit log, and reading Server-Sent Events, for the
console and API tests."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from sqlalchemy import select

from tests.stb_portal.conftest import Client, csrf_of
from xueliang.alarms import RaiseRequest
from xueliang.signing import derive, load_secret_key
from xueliang.storage.tables import audit_log
from xueliang.web import ALARMS, DATABASE


def demo_password(data_dir: Path, username: str) -> str:
    return derive(load_secret_key(data_dir), "demo-staff", username, length=16)


async def sign_in(client: Client, demo_dir: Path, username: str) -> str:
    """Sign a demo account in to the console; the CSRF token of the new session, from
    the page the sign-in leads to."""
    response = await client.post(
        "/centre/login",
        data={"username": username, "password": demo_password(demo_dir, username)},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    return csrf_of(await (await client.get(response.headers["Location"])).text())


async def audited(client: Client, action: str) -> list[tuple[str, str, str | None]]:
    """(actor, target, detail) of every audit entry of `action`, oldest first."""
    async with client.app[DATABASE].read() as conn:
        rows = await conn.execute(
            select(audit_log.c.actor, audit_log.c.target, audit_log.c.detail)
            .where(audit_log.c.action == action)
            .order_by(audit_log.c.id)
        )
        return [(r.actor, r.target, r.detail) for r in rows]


async def bearer(client: Client, data_dir: Path, username: str) -> dict[str, str]:
    """Authorization headers of a fresh API session of a demo account."""
    response = await client.post(
        "/api/v1/session",
        json={"username": username, "password": demo_password(data_dir, username)},
    )
    assert response.status == 201, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def raise_alarm(client: Client, household: str, kind: str = "panic") -> int:
    [raised] = await client.app[ALARMS].raise_many(
        [RaiseRequest(source="tv", kind=kind, household=household)]  # type: ignore[arg-type]
    )
    return raised.alarm


@dataclass(frozen=True)
class Event:
    id: int | None
    event: str
    data: Any


class EventReader:
    """Reads one SSE response event by event."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 5.0) -> Event:
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    raise EOFError("the stream ended")
                line = raw.decode().rstrip("\n")
                if line == "":
                    if "event" in fields or "data" in fields:
                        ident = fields.get("id")
                        return Event(
                            int(ident) if ident else None,
                            fields.get("event", "message"),
                            json.loads(fields.get("data", "null")),
                        )
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value

    async def until(self, event: str, timeout: float = 5.0, **fields: object) -> Event:
        """The next `event` whose data has these field values (others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                found = await self.next(timeout)
                if found.event == event and all(found.data.get(k) == v for k, v in fields.items()):
                    return found
