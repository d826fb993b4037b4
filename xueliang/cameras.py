"""Public cameras of the villages: where they are, where their stream comes from
(kept secret), and which regions must never be shown (privacy masks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from xueliang import validation
from xueliang.errors import AlreadyExists, InvalidInput, NotFound
from xueliang.geography import get_village
from xueliang.storage.tables import cameras
from xueliang.storage.types import utcnow
from xueliang.urls import redact_url

SCHEMES = ("rtsp", "rtsps", "http", "https", "file", "testsrc")
PROFILES = ("stb", "stb-sd", "copy")


class Mask(BaseModel):
    """A rectangle to black out, in fractions of the frame (0..1), so it holds at any
    resolution the relay produces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)
    w: float = Field(gt=0, le=1)
    h: float = Field(gt=0, le=1)
    fill: Literal["black", "blur"] = "black"

    @model_validator(mode="after")
    def _inside_frame(self) -> Mask:
        if self.x + self.w > 1.0001 or self.y + self.h > 1.0001:
            raise ValueError("mask reaches outside the frame")
        return self


@dataclass(frozen=True, slots=True)
class Camera:
    id: str
    name: str
    village: str
    source_url: str
    profile: str
    public: bool
    masks: tuple[Mask, ...]

    @property
    def display_url(self) -> str:
        """The source URL without credentials: the only form that may be shown."""
        return redact_url(self.source_url)


def parse_mask(spec: str) -> Mask:
    """`x,y,w,h` in fractions of the frame, optionally `,blur`."""
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) not in (4, 5):
        raise InvalidInput("mask", "must be x,y,w,h (fractions 0..1), optionally ,blur")
    try:
        x, y, w, h = (float(p) for p in parts[:4])
        return Mask(x=x, y=y, w=w, h=h, fill=parts[4] if len(parts) == 5 else "black")
    except ValueError as e:
        reason = e.errors()[0]["msg"] if isinstance(e, ValidationError) else "not a number"
        raise InvalidInput("mask", f"{spec!r}: {reason}") from None


def check_source_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise InvalidInput("url", "scheme must be one of " + ", ".join(SCHEMES))
    if parts.scheme in ("rtsp", "rtsps", "http", "https") and not parts.hostname:
        raise InvalidInput("url", "needs a host")
    if parts.scheme == "file" and not parts.path:
        raise InvalidInput("url", "needs a path: file:///PATH")
    if any(ch.isspace() for ch in url) or len(url) > 2000:
        raise InvalidInput("url", "must have no spaces and at most 2000 characters")
    return url


async def add(
    conn: AsyncConnection,
    *,
    id: str,
    name: str,
    village: str,
    url: str,
    masks: tuple[Mask, ...] = (),
    profile: str = "stb",
    public: bool = True,
) -> Camera:
    camera = Camera(
        id=validation.identifier("camera", id),
        name=validation.text("name", name, max_length=100),
        village=village,
        source_url=check_source_url(url),
        profile=profile,
        public=public,
        masks=masks,
    )
    if profile not in PROFILES:
        raise InvalidInput("profile", "must be one of " + ", ".join(PROFILES))
    await get_village(conn, village)
    if await find(conn, camera.id) is not None:
        raise AlreadyExists("camera", camera.id)
    await conn.execute(
        cameras.insert().values(
            id=camera.id,
            name=camera.name,
            village_id=village,
            source_url=camera.source_url,
            profile=profile,
            public=public,
            masks=[m.model_dump() for m in masks],
            created_at=utcnow(),
        )
    )
    return camera


def _camera(row: Row[Any]) -> Camera:
    return Camera(
        id=row.id,
        name=row.name,
        village=row.village_id,
        source_url=row.source_url,
        profile=row.profile,
        public=row.public,
        masks=tuple(Mask.model_validate(m) for m in row.masks),
    )


async def find(conn: AsyncConnection, id: str) -> Camera | None:
    row = (await conn.execute(select(cameras).where(cameras.c.id == id))).one_or_none()
    return None if row is None else _camera(row)


async def get(conn: AsyncConnection, id: str) -> Camera:
    camera = await find(conn, id)
    if camera is None:
        raise NotFound("camera", id)
    return camera


async def in_village(conn: AsyncConnection, village: str) -> list[Camera]:
    rows = await conn.execute(
        select(cameras).where(cameras.c.village_id == village).order_by(cameras.c.id)
    )
    return [_camera(row) for row in rows]
