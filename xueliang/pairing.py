"""How a TV box becomes a household's: by opening its pairing link once, or by showing
a short code that the village duty centre binds to the household."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from xueliang import credentials, validation
from xueliang.errors import InvalidInput, NotFound
from xueliang.households import get as get_household
from xueliang.storage.tables import households, tv_pairings
from xueliang.storage.types import utcnow

CODE_LIFETIME = timedelta(hours=24)
CODE_DIGITS = 6


@dataclass(frozen=True, slots=True)
class Session:
    """What a paired box's cookie stands for: the household, and which pairing link
    generation it was paired under (re-issuing the link unpairs old boxes)."""

    household: str
    generation: int


def generation(conn: Connection, household: str) -> int | None:
    """The household's current pairing generation; None if it does not exist."""
    row = conn.execute(
        select(households.c.pair_token_issued_at).where(households.c.id == household)
    ).one_or_none()
    if row is None:
        return None
    issued = row.pair_token_issued_at
    return 0 if issued is None else int(issued.timestamp() * 1000)


async def start(conn: AsyncConnection) -> tuple[str, str]:
    """A new (code, box secret) for an unpaired box; the secret stays in its cookie."""
    now = utcnow()
    await conn.execute(delete(tv_pairings).where(tv_pairings.c.expires_at < now))
    for _ in range(20):
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        taken = await conn.execute(select(tv_pairings.c.code).where(tv_pairings.c.code == code))
        if taken.first() is None:
            break
    else:  # a million codes, nearly all in use: refuse rather than loop
        raise InvalidInput("code", "no free pairing code; try again later")
    secret = credentials.new_token()
    await conn.execute(
        tv_pairings.insert().values(
            code=code,
            box_hash=credentials.token_hash(secret),
            created_at=now,
            expires_at=now + CODE_LIFETIME,
        )
    )
    return code, secret


async def waiting(conn: AsyncConnection, secret: str) -> tuple[str, Session | None] | None:
    """For the box holding `secret`: its code and, once staff bound it, its session
    (the request is then used up). None when the code expired or never existed."""
    row = (
        await conn.execute(
            select(tv_pairings).where(tv_pairings.c.box_hash == credentials.token_hash(secret))
        )
    ).one_or_none()
    if row is None or row.expires_at < utcnow():
        return None
    if row.household_id is None:
        return row.code, None
    current = await conn.run_sync(generation, row.household_id)
    await conn.execute(delete(tv_pairings).where(tv_pairings.c.code == row.code))
    if current is None:
        return None
    return row.code, Session(row.household_id, current)


async def bind(conn: AsyncConnection, code: str, household: str, by: str) -> None:
    """Staff: the box showing `code` belongs to `household`."""
    code = code.strip()
    if not (code.isdigit() and len(code) == CODE_DIGITS):
        raise InvalidInput("code", f"must be the {CODE_DIGITS} digits the TV shows")
    await conn.run_sync(get_household, validation.identifier("household", household))
    result = await conn.execute(
        update(tv_pairings)
        .where(
            tv_pairings.c.code == code,
            tv_pairings.c.expires_at >= utcnow(),
            tv_pairings.c.household_id.is_(None),
        )
        .values(household_id=household, bound_by=by, bound_at=utcnow())
    )
    if result.rowcount == 0:
        raise NotFound("pairing code", code)
