"""The durable outbox: messages written with the change that caused them, published
in order per destination broker, and deleted only after the broker's PUBACK."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from sqlalchemy import Connection, delete, func, select

from mqtt_bridge.client import MqttClient, NotConnected
from xueliang.storage import Database
from xueliang.storage.tables import outbox

log = logging.getLogger(__name__)

BATCH = 100
PUBACK_TIMEOUT_S = 30.0
IDLE_POLL_S = 5.0  # a safety net; normally a commit wakes the forwarder at once


class OutboxForwarder:
    """Drains the rows of one destination through one client."""

    def __init__(self, db: Database, destination: str, client: MqttClient) -> None:
        self.db = db
        self.destination = destination
        self.client = client
        self.wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            await self.client.connected.wait()
            self.wake.clear()
            rows = await self._next()
            if not rows:
                try:
                    async with asyncio.timeout(IDLE_POLL_S):
                        await self.wake.wait()
                except TimeoutError:
                    pass
                continue
            sent = await self._publish(rows)
            if sent:
                await self.db.run_write(partial(_delete, sent))
            if len(sent) < len(rows):
                await asyncio.sleep(0.5)  # broker gone or slow: wait for the reconnect

    async def _next(self) -> list[tuple[int, str, str]]:
        return await self.db.run_read(partial(_waiting, self.destination))

    async def _publish(self, rows: list[tuple[int, str, str]]) -> list[int]:
        """Publish in order; return the ids of the leading rows the broker confirmed.
        Rows after the first unconfirmed one are sent again later (in order)."""
        futures: list[tuple[int, asyncio.Future[None]]] = []
        for row_id, topic, payload in rows:
            try:
                futures.append((row_id, self.client.publish(topic, payload, qos=1)))
            except NotConnected:
                break
        if not futures:
            return []
        try:
            async with asyncio.timeout(PUBACK_TIMEOUT_S):
                await asyncio.wait([f for _, f in futures], return_when=asyncio.ALL_COMPLETED)
        except TimeoutError:
            log.warning("outbox %s: no PUBACK within %.0f s", self.destination, PUBACK_TIMEOUT_S)
        confirmed: list[int] = []
        for row_id, future in futures:
            if not (future.done() and not future.cancelled() and future.exception() is None):
                break
            confirmed.append(row_id)
        return confirmed


def _waiting(destination: str, conn: Connection) -> list[tuple[int, str, str]]:
    rows = conn.execute(
        select(outbox.c.id, outbox.c.topic, outbox.c.payload)
        .where(outbox.c.destination == destination)
        .order_by(outbox.c.id)
        .limit(BATCH)
    )
    return [(r.id, r.topic, r.payload) for r in rows]


def _delete(ids: list[int], conn: Connection) -> None:
    conn.execute(delete(outbox).where(outbox.c.id.in_(ids)))


async def depth(db: Database) -> dict[str, int]:
    """Rows waiting, per destination."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(outbox.c.destination, func.count()).group_by(outbox.c.destination)
        )
        return {r[0]: r[1] for r in rows}
