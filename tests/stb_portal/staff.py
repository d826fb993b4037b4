"""Signing demo staff in, and reading Server-Sent Events, for the console and API tests."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse

from tests.stb_portal.conftest import Client
from xueliang.alarms import RaiseRequest
from xueliang.signing import derive, load_secret_key
from xueliang.web import ALARMS


def demo_password(data_dir: Path, username: str) -> str:
    return derive(load_secret_key(data_dir), "demo-staff", username, length=16)


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
