"""Staff sign-in: password check with throttling, sessions for the console (cookie)
and the API (Bearer), sign-out. Every attempt lands in the audit log.

The password hash is verified on threads of its own, never on the event loop, a
database thread or under the write lock: an argon2 check takes a few hundred
milliseconds and alarms must not wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Row, delete, select, update

from xueliang import audit, credentials
from xueliang.errors import Busy, InvalidCredentials, Throttled
from xueliang.geography import Scope
from xueliang.staff import DUMMY_HASH, MAX_PASSWORD, Staff
from xueliang.storage import Database
from xueliang.storage.tables import staff, staff_sessions
from xueliang.storage.types import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

Kind = Literal["console", "api"]

LIFETIME: dict[Kind, timedelta] = {"console": timedelta(hours=12), "api": timedelta(hours=24)}
# After FREE_FAILURES wrong passwords for one account, each further try waits twice as
# long as the one before (30 s, 60 s, … up to 15 min); one address gets ADDRESS_FAILURES.
FREE_FAILURES = 5
FIRST_WAIT_S = 30
LONGEST_WAIT_S = 900
ADDRESS_FAILURES = 30
WINDOW = timedelta(minutes=15)
FAILED = "signin_failed"


@dataclass(frozen=True, slots=True)
class SignedIn:
    staff: Staff
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StaffSession:
    """Who is behind a token; `token_hash` identifies the session (CSRF, sign-out)."""

    staff: Staff
    kind: Kind
    token_hash: str
    expires_at: datetime

    @property
    def scope(self) -> Scope:
        return Scope(self.staff.role, self.staff.scope)


async def sign_in(
    db: Database, username: str, password: str, *, kind: Kind, address: str
) -> SignedIn:
    """A new session when the password matches; raises Throttled while an account (from
    this address) or an address is cooling down, Busy when too many checks are already
    running, InvalidCredentials otherwise (same message for an unknown account and a
    wrong password)."""
    username, password = username[:100], password[: MAX_PASSWORD + 1]
    try:
        row = await db.run_read(partial(_account, username=username, address=address))
    except Throttled as e:
        log.warning("sign-in as %r from %s refused for %d s", username, address, e.retry_after_s)
        raise
    # Verify even for unknown accounts so response times do not tell which exist.
    stored = row.password_hash if row is not None else DUMMY_HASH
    matches = await _off_the_loop(credentials.verify_staff_password, stored, password)
    if not matches or row is None or row.disabled:
        entry = audit.Entry(actor=username or "-", action=FAILED, address=address)
        await audit.record(db, entry)
        raise InvalidCredentials("wrong username or password")
    person = Staff(row.id, row.username, row.display_name, row.role, row.scope_id)
    rehash = None
    if credentials.staff_hash_is_outdated(row.password_hash):
        rehash = await _off_the_loop(credentials.hash_staff_password, password)
    token = credentials.new_token()
    expires_at = utcnow() + LIFETIME[kind]
    work = partial(
        _open, person=person, token=token, kind=kind, address=address, expires_at=expires_at,
        rehash=rehash,
    )  # fmt: skip
    await db.run_write(work)
    return SignedIn(person, token, expires_at)


# argon2 takes ~64 MiB and a few hundred ms of CPU per check: never on the event loop
# (which carries the alarms) nor on a database thread, and never more than a few at once.
_VERIFIERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="password-check")
_WAITING_MAX = 8
_waiting = 0


async def _off_the_loop(work: Callable[..., T], *args: str) -> T:
    global _waiting
    if _waiting >= _WAITING_MAX:
        raise Busy("too many sign-ins at once; try again in a few seconds")
    _waiting += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_VERIFIERS, work, *args)
    finally:
        _waiting -= 1


def _account(conn: Connection, *, username: str, address: str) -> Row[Any] | None:
    _refuse_while_throttled(conn, username, address)
    return conn.execute(select(staff).where(staff.c.username == username)).one_or_none()


def _refuse_while_throttled(conn: Connection, username: str, address: str) -> None:
    """Guessing one account from one address slows down that pair only, so a stranger
    cannot lock a duty officer out; many failures from one address hold the address."""
    by_address = audit.recent_failures(conn, FAILED, address=address, window=WINDOW)
    if by_address.count >= ADDRESS_FAILURES and by_address.last is not None:
        _wait(by_address.last, LONGEST_WAIT_S)
    by_account = audit.recent_failures(conn, FAILED, actor=username, address=address, window=WINDOW)
    if by_account.count >= FREE_FAILURES and by_account.last is not None:
        doublings = by_account.count - FREE_FAILURES
        _wait(by_account.last, min(LONGEST_WAIT_S, FIRST_WAIT_S * 2 ** min(doublings, 10)))


def _wait(last: datetime, wait_s: float) -> None:
    remaining = (last + timedelta(seconds=wait_s) - utcnow()).total_seconds()
    if remaining > 0:
        raise Throttled(math.ceil(remaining))


def _open(
    conn: Connection, *, person: Staff, token: str, kind: Kind, address: str,
    expires_at: datetime, rehash: str | None,
) -> None:  # fmt: skip
    now = utcnow()
    conn.execute(delete(staff_sessions).where(staff_sessions.c.expires_at < now))
    conn.execute(
        staff_sessions.insert().values(
            token_hash=credentials.token_hash(token), staff_id=person.id, kind=kind,
            address=address[:64], created_at=now, expires_at=expires_at,
        )
    )  # fmt: skip
    if rehash is not None:
        conn.execute(update(staff).where(staff.c.id == person.id).values(password_hash=rehash))
    audit.write(conn, _entry(person, "signin", address, kind), now)


async def session(db: Database, token: str, kind: Kind) -> StaffSession | None:
    """The live session behind `token`, if it exists, is of `kind`, has not expired and
    its account is still enabled."""
    if not 20 <= len(token) <= 100:
        return None
    return await db.run_read(partial(_session, token_hash=credentials.token_hash(token), kind=kind))


def _session(conn: Connection, *, token_hash: str, kind: Kind) -> StaffSession | None:
    row = conn.execute(
        select(staff, staff_sessions.c.expires_at)
        .join(staff_sessions, staff_sessions.c.staff_id == staff.c.id)
        .where(staff_sessions.c.token_hash == token_hash, staff_sessions.c.kind == kind)
    ).one_or_none()
    if row is None or row.disabled or row.expires_at <= utcnow():
        return None
    person = Staff(row.id, row.username, row.display_name, row.role, row.scope_id)
    return StaffSession(person, kind, token_hash, row.expires_at)


async def sign_out(db: Database, current: StaffSession, address: str) -> None:
    await db.run_write(partial(_close, current=current, address=address))


def _close(conn: Connection, *, current: StaffSession, address: str) -> None:
    conn.execute(delete(staff_sessions).where(staff_sessions.c.token_hash == current.token_hash))
    audit.write(conn, _entry(current.staff, "signout", address, current.kind))


def _entry(person: Staff, action: str, address: str, kind: str) -> audit.Entry:
    return audit.Entry(
        actor=person.username, staff_id=person.id, action=action, address=address, detail=kind
    )
