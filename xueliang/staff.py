"""Staff accounts of the village duty rooms and the town and county centres."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from xueliang import credentials, validation
from xueliang.errors import AlreadyExists, InvalidCredentials, InvalidInput, NotFound
from xueliang.geography import Level, scope_exists
from xueliang.storage.tables import staff
from xueliang.storage.types import utcnow

MIN_PASSWORD = 10
MAX_PASSWORD = 256
# Verifying against this when the username is unknown keeps response times equal,
# so sign-in timing does not tell which usernames exist.
DUMMY_HASH = credentials.hash_staff_password("not-a-real-password")


@dataclass(frozen=True, slots=True)
class Staff:
    id: int
    username: str
    display_name: str
    role: Level
    scope: str


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput("password", f"must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("password", f"must be at most {MAX_PASSWORD} characters")
    return password


async def add(
    conn: AsyncConnection,
    *,
    username: str,
    role: str,
    scope: str,
    password: str,
    display_name: str = "",
) -> Staff:
    """Create an account whose scope is a village, a town or the county."""
    username = validation.identifier("username", username)
    if role not in get_args(Level):
        raise InvalidInput("role", "must be village, town or county")
    level: Level = role  # type: ignore[assignment]  # checked just above
    if not await scope_exists(conn, level, scope):
        raise NotFound(role, scope)
    check_password(password)
    if await find(conn, username) is not None:
        raise AlreadyExists("staff", username)
    now = utcnow()
    result = await conn.execute(
        staff.insert().values(
            username=username,
            display_name=validation.text(
                "display_name", display_name, max_length=100, required=False
            ),
            password_hash=credentials.hash_staff_password(password),
            role=level,
            scope_id=scope,
            created_at=now,
            password_changed_at=now,
        )
    )
    assert result.inserted_primary_key is not None
    return Staff(result.inserted_primary_key[0], username, display_name, level, scope)


async def find(conn: AsyncConnection, username: str) -> Staff | None:
    row = (await conn.execute(select(staff).where(staff.c.username == username))).one_or_none()
    if row is None:
        return None
    return Staff(row.id, row.username, row.display_name, row.role, row.scope_id)


async def authenticate(conn: AsyncConnection, username: str, password: str) -> Staff:
    """The account, if the password matches and the account is enabled."""
    row = (await conn.execute(select(staff).where(staff.c.username == username))).one_or_none()
    stored = row.password_hash if row is not None else DUMMY_HASH
    if not credentials.verify_staff_password(stored, password) or row is None or row.disabled:
        raise InvalidCredentials("wrong username or password")
    if credentials.staff_hash_is_outdated(row.password_hash):
        await conn.execute(
            update(staff)
            .where(staff.c.id == row.id)
            .values(password_hash=credentials.hash_staff_password(password))
        )
    return Staff(row.id, row.username, row.display_name, row.role, row.scope_id)


async def password_matches(conn: AsyncConnection, username: str, password: str) -> bool:
    try:
        await authenticate(conn, username, password)
    except InvalidCredentials:
        return False
    return True
