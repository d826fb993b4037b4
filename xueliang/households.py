"""Households: the unit a TV box pairs with and a button belongs to."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Connection, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from xueliang import credentials, validation
from xueliang.errors import AlreadyExists, InvalidInput, NotFound
from xueliang.geography import get_village
from xueliang.storage import Database
from xueliang.storage.tables import households
from xueliang.storage.types import utcnow
from xueliang.ttl_cache import Missing, TtlCache

PAIR_PATH = "/tv/pair/"
# Names and addresses change rarely: pages read on every visit may show them this late.
CACHE_TTL_S = 5.0


@dataclass(frozen=True, slots=True)
class Household:
    id: str
    village: str
    name: str
    address: str
    phone: str
    members: int


@dataclass(frozen=True, slots=True)
class NewHousehold:
    household: Household
    pair_token: str

    @property
    def pair_url(self) -> str:
        return pair_url(self.pair_token)


def pair_url(token: str) -> str:
    """The path a TV box opens once to bind itself to its household."""
    return PAIR_PATH + token


def checked(
    *, village: str, name: str, id: str | None, address: str, phone: str, members: int
) -> Household:
    """Validate the fields of a household without touching the database."""
    if not 0 <= members <= 99:
        raise InvalidInput("members", "must be between 0 and 99")
    return Household(
        id=validation.identifier("household", id) if id else f"{village}-{secrets.token_hex(4)}",
        village=validation.identifier("village", village),
        name=validation.text("name", name, max_length=100),
        address=validation.text("address", address, max_length=200, required=False),
        phone=validation.phone("phone", phone),
        members=members,
    )


async def add(
    conn: AsyncConnection,
    *,
    village: str,
    name: str,
    id: str | None = None,
    address: str = "",
    phone: str = "",
    members: int = 1,
    pair_token: str | None = None,
) -> NewHousehold:
    """Register a household and issue its first pairing token."""
    household = checked(
        village=village, name=name, id=id, address=address, phone=phone, members=members
    )
    await get_village(conn, household.village)
    if await conn.run_sync(find, household.id) is not None:
        raise AlreadyExists("household", household.id)
    token = pair_token or credentials.new_token()
    await insert_many(conn, [household], {household.id: token})
    return NewHousehold(household, token)


async def insert_many(
    conn: AsyncConnection, new: list[Household], tokens: dict[str, str] | None = None
) -> None:
    """Insert validated households; those with a token in `tokens` can pair at once."""
    if not new:
        return
    tokens = tokens or {}
    now = utcnow()
    await conn.execute(
        households.insert(),
        [
            {
                "id": h.id,
                "village_id": h.village,
                "name": h.name,
                "address": h.address,
                "phone": h.phone,
                "members": h.members,
                "pair_token_hash": credentials.token_hash(tokens[h.id]) if h.id in tokens else None,
                "pair_token_issued_at": now if h.id in tokens else None,
                "created_at": now,
            }
            for h in new
        ],
    )


def find(conn: Connection, id: str) -> Household | None:
    """The household, or None (synchronous: async callers use `conn.run_sync`)."""
    row = conn.execute(select(households).where(households.c.id == id)).one_or_none()
    if row is None:
        return None
    return Household(
        id=row.id,
        village=row.village_id,
        name=row.name,
        address=row.address,
        phone=row.phone,
        members=row.members,
    )


def get(conn: Connection, id: str) -> Household:
    household = find(conn, id)
    if household is None:
        raise NotFound("household", id)
    return household


class HouseholdCache:
    """Households as read at most `seconds` ago (`TtlCache`): for pages that show the
    household's name on every visit. A household that does not exist is not cached."""

    def __init__(self, db: Database, seconds: float = CACHE_TTL_S) -> None:
        self.db = db
        self.cache: TtlCache[str, Household] = TtlCache(seconds)

    async def get(self, id: str) -> Household:
        """The household (NotFound if there is none), at most `seconds` old."""
        return await self.cache.get(id, partial(self.db.run_read, partial(get, id=id)))

    def peek(self, id: str) -> Household | Missing:
        """The household if `get` has it at hand (`TtlCache.peek`)."""
        return self.cache.peek(id)

    def forget(self, id: str) -> None:
        self.cache.forget(id)


async def reissue_pair_token(conn: AsyncConnection, id: str, token: str | None = None) -> str:
    """Issue a new pairing token; the previous one stops working at once."""
    token = token or credentials.new_token()
    result = await conn.execute(
        update(households)
        .where(households.c.id == id)
        .values(pair_token_hash=credentials.token_hash(token), pair_token_issued_at=utcnow())
    )
    if result.rowcount == 0:
        raise NotFound("household", id)
    return token


async def pair_token_matches(conn: AsyncConnection, id: str, token: str) -> bool:
    """True when `token` is the household's current pairing token."""
    stored = (
        await conn.execute(select(households.c.pair_token_hash).where(households.c.id == id))
    ).scalar_one_or_none()
    return stored is not None and secrets.compare_digest(stored, credentials.token_hash(token))


async def by_pair_token(conn: AsyncConnection, token: str) -> Household:
    """The household a pairing link belongs to."""
    row = (
        await conn.execute(
            select(households.c.id).where(
                households.c.pair_token_hash == credentials.token_hash(token)
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound("pairing token", "(hidden)")
    return await conn.run_sync(get, row.id)
