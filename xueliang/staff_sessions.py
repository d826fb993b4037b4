"""Staff sign-in: password check with throttling, sessions for the console (cookie)
and the API (Bearer), sign-out. Every attempt lands in the audit log.

The password hash is verified on a reader thread, never while holding the write lock:
an argon2 check takes tens of milliseconds and alarms must not wait for it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Literal

from sqlalchemy import Connection, delete, select, update

from xueliang import audit, credentials
from xueliang.errors import InvalidCredentials, Throttled
from xueliang.geography import Scope
from xueliang.staff import DUMMY_HASH, MAX_PASSWORD, Staff
from xueliang.storage import Database
from xueliang.storage.tables import staff, staff_sessions
from xueliang.storage.types import utcnow

log = logging.getLogger(__name__)

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
    """A new session when the password matches; raises Throttled while an account or
    an address is cooling down, InvalidCredentials otherwise (same message for an
    unknown account and a wrong password)."""
    username = username[:100]
    check = partial(
        _check, username=username, password=password[: MAX_PASSWORD + 1], address=address
    )
    try:
        checked = await db.run_read(check)
    except Throttled as e:
        log.warning("sign-in as %r from %s refused for %d s", username, address, e.retry_after_s)
        raise
    if checked is None:
        entry = audit.Entry(actor=username or "-", action=FAILED, address=address)
        await audit.record(db, entry)
        raise InvalidCredentials("wrong username or password")
    person, rehash = checked
    token = credentials.new_token()
    expires_at = utcnow() + LIFETIME[kind]
    work = partial(
        _open, person=person, token=token, kind=kind, address=address, expires_at=expires_at,
        rehash=credentials.hash_staff_password(password) if rehash else None,
    )  # fmt: skip
    await db.run_write(work)
    return SignedIn(person, token, expires_at)


def _check(
    conn: Connection, *, username: str, password: str, address: str
) -> tuple[Staff, bool] | None:
    _refuse_while_throttled(conn, username, address)
    row = conn.execute(select(staff).where(staff.c.username == username)).one_or_none()
    # Verify even for unknown accounts so response times do not tell which exist.
    stored = row.password_hash if row is not None else DUMMY_HASH
    matches = credentials.verify_staff_password(stored, password)
    if not matches or row is None or row.disabled:
        return None
    person = Staff(row.id, row.username, row.display_name, row.role, row.scope_id)
    return person, credentials.staff_hash_is_outdated(row.password_hash)


def _refuse_while_throttled(conn: Connection, username: str, address: str) -> None:
    by_address = audit.recent_failures(conn, FAILED, address=address, window=WINDOW)
    if by_address.count >= ADDRESS_FAILURES and by_address.last is not None:
        _wait(by_address.last, LONGEST_WAIT_S)
    by_account = audit.recent_failures(conn, FAILED, actor=username, window=WINDOW)
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
