"""The alarm lifecycle (分级处置): one service for every source (buttons, TV) and every
actor (console, external centre systems, households, the escalation clock).

raised → received (durably stored) → acknowledged → dispatched → resolved |
false_alarm | cancelled. Every change is written together with its history event and
the messages that announce it (outbox), in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal, get_args

from sqlalchemy import Connection, Row, bindparam, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from xueliang import audit, validation
from xueliang.alarm_payloads import ack_payload, centre_payloads, device_acks, to_json
from xueliang.config import Settings
from xueliang.errors import InvalidTransition, NotFound
from xueliang.geography import Scope
from xueliang.storage import Database
from xueliang.storage.tables import (
    alarm_events,
    alarm_messages,
    alarms,
    devices,
    households,
    outbox,
    villages,
)
from xueliang.storage.types import utcnow
from xueliang.topics import Topics
from xueliang.ttl_cache import MISSING, Missing, TtlCache

log = logging.getLogger(__name__)

Kind = Literal["panic", "fire", "medical", "intrusion", "test"]
Source = Literal["button", "tv"]
State = Literal["received", "acknowledged", "dispatched", "resolved", "false_alarm", "cancelled"]
Action = Literal["acknowledge", "dispatch", "resolve", "false_alarm", "cancel"]
Outcome = Literal["new", "joined", "duplicate"]

KINDS: tuple[str, ...] = get_args(Kind)
ACTIONS: tuple[str, ...] = get_args(Action)
OPEN: tuple[State, ...] = ("received", "acknowledged", "dispatched")
CLOSED: tuple[State, ...] = ("resolved", "false_alarm", "cancelled")
# 1 is the most urgent. Supervision events (priority 3) live in their own table.
PRIORITY: dict[str, int] = {"fire": 1, "medical": 1, "panic": 1, "intrusion": 2, "test": 4}
_RESULT: dict[str, State] = {
    "acknowledge": "acknowledged",
    "dispatch": "dispatched",
    "resolve": "resolved",
    "false_alarm": "false_alarm",
    "cancel": "cancelled",
}
# A device clock this far behind is wrong, not slow: use the time of receipt.
_OLDEST_DEVICE_TS = timedelta(days=1)
_RAISE_ATTEMPTS = 3
MAX_NOTE = 1000


@dataclass(frozen=True, slots=True)
class RaiseRequest:
    """One press: from a button (device + message id) or from a TV (household)."""

    source: Source
    kind: Kind
    device: str | None = None
    message_id: str | None = None
    household: str | None = None
    device_ts: datetime | None = None
    battery: int | None = None

    @property
    def dedup_key(self) -> tuple[str, str] | None:
        if self.message_id is None:
            return None
        if self.device is not None:
            return self.device, self.message_id
        # A TV's resubmitted form carries the same nonce; ':' never occurs in device ids.
        return f"tv:{self.household}", self.message_id


@dataclass(frozen=True, slots=True)
class Raised:
    """What became of one request: the alarm it is stored in, and how."""

    request: RaiseRequest
    alarm: int
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class HouseholdAlarm:
    """What the household's TV shows of one of its alarms."""

    id: int
    state: State
    kind: str
    source: str
    presses: int
    raised_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    dispatched_at: datetime | None
    dispatched_by: str | None
    closed_at: datetime | None
    closed_by: str | None
    cancellable: bool

    @property
    def open(self) -> bool:
        return self.state in OPEN


@dataclass(frozen=True, slots=True)
class _Place:
    household: str | None
    village: str | None
    town: str | None

    @property
    def unregistered(self) -> bool:
        return self.household is None


@dataclass
class AlarmService:
    """The only code that changes alarms. Each of `listeners` is called after every
    commit (the bridge wakes its outbox, the portal its event stream)."""

    db: Database
    topics: Topics
    town_s: float = 90.0
    cancel_grace_s: float = 120.0
    max_clock_skew_s: float = 20.0
    upstream_towns: frozenset[str] = frozenset()
    listeners: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def from_settings(cls, db: Database, settings: Settings) -> AlarmService:
        return cls(
            db,
            Topics(settings.mqtt.topic_prefix),
            town_s=settings.escalation.town_s,
            cancel_grace_s=settings.alarms.cancel_grace_s,
            max_clock_skew_s=settings.alarms.max_clock_skew_s,
            upstream_towns=frozenset(settings.bridge.upstream),
        )

    # --- raising -------------------------------------------------------------------

    async def raise_many(self, requests: Sequence[RaiseRequest]) -> list[Raised]:
        """Store a batch of presses in one transaction (group commit) and return, for
        each, the alarm it now belongs to. Resends are recognised by (device, id);
        presses of a household with an open alarm join it."""
        for attempt in range(1, _RAISE_ATTEMPTS + 1):
            try:
                raised = await self.db.run_write(partial(self._raise, requests=requests))
                break
            except IntegrityError:
                # Another process opened an alarm for one of these households between
                # our read and our insert; the next attempt joins it.
                if attempt == _RAISE_ATTEMPTS:
                    raise
                log.info("raise batch raced another writer; retrying (attempt %d)", attempt)
        self._changed()
        return raised

    def _raise(self, conn: Connection, requests: Sequence[RaiseRequest]) -> list[Raised]:
        now = utcnow()
        known = _stored_messages(conn, [r.dedup_key for r in requests if r.dedup_key])
        places = _places(conn, requests)
        open_alarms = _open_alarms(conn, places.values())
        results: list[Raised | None] = [None] * len(requests)
        first_of: dict[tuple[str, str], int] = {}  # resend within this batch → first index
        resends: dict[int, int] = {}
        new_groups: dict[tuple[str, str], list[int]] = {}  # group → request indexes
        joins: dict[int, list[int]] = {}  # existing alarm → request indexes
        for index, request in enumerate(requests):
            key = request.dedup_key
            if key is not None and key in known:
                results[index] = Raised(request, known[key], "duplicate")
                continue
            if key is not None and key in first_of:
                resends[index] = first_of[key]
                continue
            if key is not None:
                first_of[key] = index
            group = _group(request, places[index])
            existing = open_alarms.get(group)
            if existing is not None:
                joins.setdefault(existing, []).append(index)
            else:
                new_groups.setdefault(group, []).append(index)

        created = self._insert_alarms(
            conn, [(requests[i[0]], places[i[0]], len(i)) for i in new_groups.values()], now
        )
        for alarm_id, indexes in zip(created, new_groups.values(), strict=True):
            results[indexes[0]] = Raised(requests[indexes[0]], alarm_id, "new")
            for i in indexes[1:]:
                results[i] = Raised(requests[i], alarm_id, "joined")
        for alarm_id, indexes in joins.items():
            for i in indexes:
                results[i] = Raised(requests[i], alarm_id, "joined")
        if joins:
            conn.execute(
                update(alarms)
                .where(alarms.c.id == bindparam("alarm"))
                .values(presses=alarms.c.presses + bindparam("more"), updated_at=now),
                [{"alarm": a, "more": len(i)} for a, i in joins.items()],
            )
        for index, first in resends.items():
            original = results[first]
            assert original is not None
            results[index] = Raised(requests[index], original.alarm, "duplicate")
        done = [r for r in results if r is not None]
        assert len(done) == len(requests)
        _record_messages(conn, [r for r in done if r.outcome != "duplicate"], now)
        self._publish(conn, {r.alarm for r in done if r.outcome != "duplicate"}, now)
        return done

    def _insert_alarms(
        self,
        conn: Connection,
        new: list[tuple[RaiseRequest, _Place, int]],
        now: datetime,
    ) -> list[int]:
        if not new:
            return []
        deadline = now + timedelta(seconds=self.town_s)
        rows = [
            {
                "state": "received",
                "level": "county" if place.unregistered else "town",
                "kind": request.kind,
                "priority": PRIORITY[request.kind],
                "source": request.source,
                "device_id": request.device,
                "household_id": place.household,
                "village_id": place.village,
                "town_id": place.town,
                "unregistered": place.unregistered,
                "presses": presses,
                "message_id": request.message_id,
                "battery": request.battery,
                "device_ts": request.device_ts,
                "raised_at": self._raised_at(request.device_ts, now),
                "received_at": now,
                "updated_at": now,
                # The county sees an unregistered device's alarm at once: nothing to wait for.
                "escalate_at": None if place.unregistered else deadline,
            }
            for request, place, presses in new
        ]
        result = conn.execute(
            alarms.insert().returning(alarms.c.id, sort_by_parameter_order=True), rows
        )
        ids = [row.id for row in result]
        conn.execute(
            alarm_events.insert(),
            [
                {
                    "alarm_id": alarm_id,
                    "at": now,
                    "action": "raised",
                    "actor": request.device or f"household {request.household}",
                    "source": request.source,
                    "note": "unregistered device" if place.unregistered else None,
                }
                for alarm_id, (request, place, _) in zip(ids, new, strict=True)
            ],
        )
        return ids

    def _raised_at(self, device_ts: datetime | None, now: datetime) -> datetime:
        if device_ts is None:
            return now
        if now - _OLDEST_DEVICE_TS <= device_ts <= now + timedelta(seconds=self.max_clock_skew_s):
            return min(device_ts, now)
        return now

    # --- acting --------------------------------------------------------------------

    async def act(
        self,
        alarm_id: int,
        action: Action,
        *,
        by: str,
        source: str,
        note: str | None = None,
        scope: Scope | None = None,
        household: str | None = None,
        audit_entry: audit.Entry | None = None,
    ) -> State:
        """Apply a person's or a system's action and return the resulting state.
        Repeating an action is harmless (QoS 1 redelivers); an alarm outside `scope`
        (or another household's) is reported as not found. `audit_entry` is written in
        the same transaction as the change."""
        if note is not None:
            note = validation.text("note", note, max_length=MAX_NOTE, required=False) or None
        work = partial(
            self._act, alarm_id=alarm_id, action=action, by=by, source=source, note=note,
            scope=scope, household=household, audit_entry=audit_entry,
        )  # fmt: skip
        target, changed = await self.db.run_write(work)
        if changed:
            self._changed()
        return target

    def _act(
        self,
        conn: Connection,
        *,
        alarm_id: int,
        action: Action,
        by: str,
        source: str,
        note: str | None,
        scope: Scope | None,
        household: str | None,
        audit_entry: audit.Entry | None,
    ) -> tuple[State, bool]:
        row = _locked(conn, alarm_id, scope, household)
        now = utcnow()
        if audit_entry is not None:
            audit.write(conn, audit_entry, now)
        if _changes_nothing(row.state, action):
            return row.state, False
        _check_transition(row, action, now, self.cancel_grace_s)
        target = _RESULT[action]
        conn.execute(
            update(alarms)
            .where(alarms.c.id == alarm_id)
            .values(state=target, updated_at=now, escalate_at=None, **_stamps(row, action, by, now))
        )
        conn.execute(
            alarm_events.insert().values(
                alarm_id=alarm_id, at=now, action=target, actor=by, source=source, note=note
            )
        )
        self._publish(conn, {alarm_id}, now, tell_devices=True)
        return target, True

    async def add_note(
        self, alarm_id: int, note: str, *, by: str, scope: Scope, audit_entry: audit.Entry
    ) -> None:
        """Add a staff note to the alarm's history (and republish it: a change)."""
        text = validation.text("note", note, max_length=MAX_NOTE)
        work = partial(
            self._add_note, alarm_id=alarm_id, note=text, by=by, scope=scope,
            audit_entry=audit_entry,
        )  # fmt: skip
        await self.db.run_write(work)
        self._changed()

    def _add_note(
        self, conn: Connection, *, alarm_id: int, note: str, by: str, scope: Scope,
        audit_entry: audit.Entry,
    ) -> None:  # fmt: skip
        _locked(conn, alarm_id, scope, None)
        now = utcnow()
        audit.write(conn, audit_entry, now)
        conn.execute(update(alarms).where(alarms.c.id == alarm_id).values(updated_at=now))
        conn.execute(
            alarm_events.insert().values(
                alarm_id=alarm_id, at=now, action="note", actor=by, source="console", note=note
            )
        )
        self._publish(conn, {alarm_id}, now)

    # --- escalation ----------------------------------------------------------------

    async def escalate_overdue(self) -> list[int]:
        """Raise every alarm unacknowledged past its deadline to the county. Safe to
        run in several processes: each alarm escalates once."""
        now = utcnow()
        async with self.db.read() as conn:  # the usual case: nothing due, no write lock
            anything = await conn.execute(
                select(alarms.c.id)
                .where(alarms.c.escalate_at.is_not(None), alarms.c.escalate_at <= now)
                .limit(1)
            )
            if anything.first() is None:
                return []
        escalated = await self.db.run_write(self._escalate)
        if escalated:
            log.warning("escalated %d unacknowledged alarm(s) to the county", len(escalated))
            self._changed()
        return escalated

    def _escalate(self, conn: Connection) -> list[int]:
        now = utcnow()
        due = conn.execute(
            select(alarms.c.id)
            .where(alarms.c.escalate_at.is_not(None), alarms.c.escalate_at <= now)
            .order_by(alarms.c.escalate_at)
        ).scalars()
        escalated: list[int] = []
        for alarm_id in list(due):
            result = conn.execute(
                update(alarms)
                .where(alarms.c.id == alarm_id, alarms.c.escalate_at.is_not(None))
                .values(level="county", escalate_at=None, escalated_at=now, updated_at=now)
            )
            if result.rowcount:
                escalated.append(alarm_id)
        if escalated:
            conn.execute(
                alarm_events.insert(),
                [
                    {"alarm_id": a, "at": now, "action": "escalated", "actor": "system",
                     "source": "escalation", "note": f"unacknowledged after {self.town_s:g} s"}
                    for a in escalated
                ],
            )  # fmt: skip
            self._publish(conn, set(escalated), now)
        return escalated

    async def next_deadline(self) -> datetime | None:
        async with self.db.read() as conn:
            deadline: datetime | None = (
                await conn.execute(select(func.min(alarms.c.escalate_at)))
            ).scalar_one()
        return deadline

    # --- reading -------------------------------------------------------------------

    async def household_alarm(self, alarm_id: int, household: str) -> HouseholdAlarm:
        """One alarm as its household sees it; another household's does not exist."""
        found = await self._household_alarms(household, alarms.c.id == alarm_id, 1)
        if not found:
            raise NotFound("alarm", str(alarm_id))
        return found[0]

    async def household_alarms(self, household: str, limit: int = 10) -> list[HouseholdAlarm]:
        """The household's latest alarms, newest first."""
        return await self._household_alarms(household, None, limit)

    async def _household_alarms(
        self, household: str, where: Any, limit: int
    ) -> list[HouseholdAlarm]:
        return await self.db.run_read(
            partial(self._household_rows, household=household, where=where, limit=limit)
        )

    def _household_rows(
        self, conn: Connection, *, household: str, where: Any, limit: int
    ) -> list[HouseholdAlarm]:
        query = select(alarms).where(alarms.c.household_id == household)
        if where is not None:
            query = query.where(where)
        rows = conn.execute(query.order_by(alarms.c.id.desc()).limit(limit))
        now = utcnow()
        return [self._household_alarm(row, now) for row in rows]

    def _latest_household_row(self, conn: Connection, *, household: str) -> _Latest | None:
        """The household's newest alarm, and until when the household may cancel it."""
        row = conn.execute(
            select(alarms)
            .where(alarms.c.household_id == household)
            .order_by(alarms.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        until = row.received_at + timedelta(seconds=self.cancel_grace_s)
        return _Latest(self._household_alarm(row, utcnow()), until)

    def _household_alarm(self, row: Row[Any], now: datetime) -> HouseholdAlarm:
        return HouseholdAlarm(
            id=row.id,
            state=row.state,
            kind=row.kind,
            source=row.source,
            presses=row.presses,
            raised_at=row.raised_at,
            updated_at=row.updated_at,
            acknowledged_at=row.acknowledged_at,
            acknowledged_by=row.acknowledged_by,
            dispatched_at=row.dispatched_at,
            dispatched_by=row.dispatched_by,
            closed_at=row.closed_at,
            closed_by=row.closed_by,
            cancellable=row.state in OPEN
            and (now - row.received_at).total_seconds() <= self.cancel_grace_s,
        )

    async def payload(self, alarm_id: int) -> dict[str, Any]:
        """The alarm as centres see it on `xl/centre/{town}/alarm`."""
        async with self.db.read() as conn:
            payloads = await conn.run_sync(centre_payloads, [alarm_id])
        if alarm_id not in payloads:
            raise NotFound("alarm", str(alarm_id))
        return payloads[alarm_id]

    # --- announcing ----------------------------------------------------------------

    def _publish(
        self, conn: Connection, alarm_ids: set[int], now: datetime, tell_devices: bool = False
    ) -> None:
        """Queue the alarm for its town centre (and the town's own broker), and, after a
        person's action, the new state for the devices that pressed."""
        payloads = centre_payloads(conn, sorted(alarm_ids))
        rows: list[dict[str, Any]] = []
        for alarm_id in sorted(alarm_ids):
            payload = payloads[alarm_id]
            town = payload["town"] or payload["county"]
            body = to_json(payload)
            topic = self.topics.centre_alarm(town)
            rows.append(
                {"destination": "local", "topic": topic, "payload": body, "created_at": now}
            )
            if town in self.upstream_towns:
                rows.append(
                    {"destination": town, "topic": topic, "payload": body, "created_at": now}
                )
        if tell_devices:
            for alarm_id in sorted(alarm_ids):
                state = payloads[alarm_id]["state"]
                for device, message_id in device_acks(conn, alarm_id):
                    rows.append(
                        {
                            "destination": "local",
                            "topic": self.topics.ack(device),
                            "payload": to_json(ack_payload(message_id, alarm_id, state)),
                            "created_at": now,
                        }
                    )
        if rows:
            conn.execute(outbox.insert(), rows)

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()


# How late a TV page may show a change made by another process (the bridge storing a
# button press, another portal's console) when no event bus tells this one sooner.
LATEST_TTL_S = 2.0


@dataclass(frozen=True, slots=True)
class _Latest:
    alarm: HouseholdAlarm
    cancellable_until: datetime  # received_at + the cancel grace


class LatestHouseholdAlarms:
    """Each household's newest alarm, kept in memory for pages shown on every visit
    (the TV home page shows the open one), so that a page costs no query.

    Freshness: the view is one of the service's `listeners`, called after every commit
    in this process, and then forgets everything; a read already running when that
    happens (it may have read before the commit) is not kept. So once a press or an
    action made in this process has returned, the next page shows it. Changes made by
    other processes are seen at most `ttl_s` seconds late (each entry is dropped
    `ttl_s` after its read started), or sooner when `invalidate` is also subscribed to
    the event bus. A household that is already cancellable stops being so on time:
    that flag is recomputed on every `get`, not cached."""

    def __init__(
        self, service: AlarmService, ttl_s: float = LATEST_TTL_S, max_items: int = 10_000
    ) -> None:
        self.service = service
        self.cache: TtlCache[str, _Latest | None] = TtlCache(ttl_s, max_items)
        service.listeners.append(self.invalidate)

    def invalidate(self) -> None:
        self.cache.clear()

    async def get(self, household: str) -> HouseholdAlarm | None:
        """The household's newest alarm (open or not), or None if it never had one."""
        return _shown(await self.cache.get(household, partial(self._read, household)))

    def peek(self, household: str) -> HouseholdAlarm | Missing | None:
        """What `get` would answer, if it has it at hand (`TtlCache.peek`)."""
        latest = self.cache.peek(household)
        return latest if latest is MISSING else _shown(latest)

    async def _read(self, household: str) -> _Latest | None:
        service = self.service
        return await service.db.run_read(
            partial(service._latest_household_row, household=household)
        )


def _shown(latest: _Latest | None) -> HouseholdAlarm | None:
    if latest is None:
        return None
    alarm = latest.alarm
    if alarm.cancellable and utcnow() > latest.cancellable_until:
        return replace(alarm, cancellable=False)
    return alarm


def _locked(
    conn: Connection, alarm_id: int, scope: Scope | None, household: str | None
) -> Row[Any]:
    row = conn.execute(
        select(alarms).where(alarms.c.id == alarm_id).with_for_update()
    ).one_or_none()
    if row is None or not _visible(row, scope, household):
        raise NotFound("alarm", str(alarm_id))
    return row


def _visible(row: Row[Any], scope: Scope | None, household: str | None) -> bool:
    if household is not None and row.household_id != household:
        return False
    return scope is None or scope.covers(row.village_id, row.town_id)


def _changes_nothing(state: str, action: str) -> bool:
    """Repeating an action, or acknowledging an alarm someone is already going to."""
    return state == _RESULT[action] or (action == "acknowledge" and state == "dispatched")


def _check_transition(row: Row[Any], action: str, now: datetime, grace_s: float) -> None:
    state: str = row.state
    if state in CLOSED:
        raise InvalidTransition(f"alarm {row.id} is already {state}")
    if action == "cancel" and (now - row.received_at).total_seconds() > grace_s:
        raise InvalidTransition(
            f"alarm {row.id} can no longer be cancelled by the household (after {grace_s:g} s)"
        )


def _stamps(row: Row[Any], action: str, by: str, now: datetime) -> dict[str, Any]:
    """Who did what when; dispatching implies acknowledging."""
    stamps: dict[str, Any] = {}
    if action in ("acknowledge", "dispatch") and row.acknowledged_at is None:
        stamps |= {"acknowledged_at": now, "acknowledged_by": by}
    if action == "dispatch":
        stamps |= {"dispatched_at": now, "dispatched_by": by}
    if action in ("resolve", "false_alarm", "cancel"):
        stamps |= {"closed_at": now, "closed_by": by}
    return stamps


def _group(request: RaiseRequest, place: _Place) -> tuple[str, str]:
    """Presses that belong to one alarm: same household, or same unregistered device."""
    if place.household is not None:
        return "household", place.household
    assert request.device is not None
    return "device", request.device


def _stored_messages(
    conn: Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    wanted = sorted(set(keys))
    found: dict[tuple[str, str], int] = {}
    for start in range(0, len(wanted), 400):
        chunk = wanted[start : start + 400]
        rows = conn.execute(
            select(
                alarm_messages.c.device_id, alarm_messages.c.message_id, alarm_messages.c.alarm_id
            ).where(tuple_(alarm_messages.c.device_id, alarm_messages.c.message_id).in_(chunk))
        )
        found |= {(r.device_id, r.message_id): r.alarm_id for r in rows}
    return found


def _places(conn: Connection, requests: Sequence[RaiseRequest]) -> dict[int, _Place]:
    """Where each press comes from: the device's (or TV's) household, village, town."""
    device_ids = sorted({r.device for r in requests if r.device})
    household_ids = sorted({r.household for r in requests if r.household and not r.device})
    by_device: dict[str, _Place] = {}
    for start in range(0, len(device_ids), 500):
        rows = conn.execute(
            select(
                devices.c.id,
                households.c.id.label("household"),
                villages.c.id.label("village"),
                villages.c.town_id,
            )
            .join(households, households.c.id == devices.c.household_id)
            .join(villages, villages.c.id == households.c.village_id)
            .where(devices.c.id.in_(device_ids[start : start + 500]))
        )
        by_device |= {r.id: _Place(r.household, r.village, r.town_id) for r in rows}
    by_household: dict[str, _Place] = {}
    for start in range(0, len(household_ids), 500):
        rows = conn.execute(
            select(households.c.id, villages.c.id.label("village"), villages.c.town_id)
            .join(villages, villages.c.id == households.c.village_id)
            .where(households.c.id.in_(household_ids[start : start + 500]))
        )
        by_household |= {r.id: _Place(r.id, r.village, r.town_id) for r in rows}
    places: dict[int, _Place] = {}
    for index, request in enumerate(requests):
        if request.device is not None:
            places[index] = by_device.get(request.device, _Place(None, None, None))
        elif request.household in by_household:
            places[index] = by_household[request.household]
        else:
            raise NotFound("household", str(request.household))
    return places


def _open_alarms(conn: Connection, places: Iterable[_Place]) -> dict[tuple[str, str], int]:
    places = list(places)
    household_ids = sorted({p.household for p in places if p.household})
    found: dict[tuple[str, str], int] = {}
    for start in range(0, len(household_ids), 500):
        rows = conn.execute(
            select(alarms.c.id, alarms.c.household_id).where(
                alarms.c.household_id.in_(household_ids[start : start + 500]),
                alarms.c.state.in_(OPEN),
            )
        )
        found |= {("household", r.household_id): r.id for r in rows}
    if any(p.unregistered for p in places):
        rows = conn.execute(
            select(alarms.c.id, alarms.c.device_id).where(
                alarms.c.unregistered.is_(True), alarms.c.state.in_(OPEN)
            )
        )
        found |= {("device", r.device_id): r.id for r in rows}
    return found


def _record_messages(conn: Connection, raised: list[Raised], now: datetime) -> None:
    rows = [
        {"device_id": key[0], "message_id": key[1], "alarm_id": r.alarm, "received_at": now}
        for r in raised
        if (key := r.request.dedup_key) is not None
    ]
    if rows:
        conn.execute(alarm_messages.insert(), rows)
    presses = [
        {"alarm_id": r.alarm, "at": now, "action": "press", "actor": r.request.device or "tv",
         "source": r.request.source, "note": None}
        for r in raised
        if r.outcome == "joined"
    ]  # fmt: skip
    if presses:
        conn.execute(alarm_events.insert(), presses)
