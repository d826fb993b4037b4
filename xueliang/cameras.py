"""Public cameras of the villages: where they are, where their stream comes from
(kept secret), and which regions must never be shown (privacy masks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)
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


_Fraction = Annotated[float, Field(ge=0, le=1)]


class Mask(BaseModel):
    """A region never to be shown, in fractions of the frame (0..1) so it holds at any
    resolution the relay produces: a rectangle (`x, y, w, h`, black or blurred) or a
    black polygon (`points`, 3 to 32 corners)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: float | None = Field(default=None, ge=0, le=1)
    y: float | None = Field(default=None, ge=0, le=1)
    w: float | None = Field(default=None, gt=0, le=1)
    h: float | None = Field(default=None, gt=0, le=1)
    points: tuple[tuple[_Fraction, _Fraction], ...] | None = Field(
        default=None, min_length=3, max_length=32
    )
    fill: Literal["black", "blur"] = "black"

    @model_validator(mode="after")
    def _one_shape_inside_frame(self) -> Mask:
        box = (self.x, self.y, self.w, self.h)
        if self.points is not None:
            if any(v is not None for v in box):
                raise ValueError("a mask is either x, y, w, h or points, not both")
            if self.fill != "black":
                raise ValueError("polygon masks are black only; blur needs a rectangle")
            if _area(self.points) < 1e-6:
                raise ValueError("polygon covers no area")
            return self
        rect = self.rect
        if rect is None:
            raise ValueError("a mask needs x, y, w and h (or points)")
        x, y, w, h = rect
        if x + w > 1.0001 or y + h > 1.0001:
            raise ValueError("mask reaches outside the frame")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_shape(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Rows stored before polygons existed read {"x","y","w","h","fill"}: keep that form.
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}

    @property
    def rect(self) -> tuple[float, float, float, float] | None:
        """`(x, y, w, h)` of a rectangle mask, None for a polygon."""
        if self.x is None or self.y is None or self.w is None or self.h is None:
            return None
        return (self.x, self.y, self.w, self.h)


def _area(points: tuple[tuple[float, float], ...]) -> float:
    """Shoelace formula: a polygon whose corners are all on one line hides nothing."""
    pairs = zip(points, points[1:] + points[:1], strict=True)
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairs)) / 2


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
    """`x,y,w,h` in fractions of the frame, optionally `,blur`; or a black polygon
    `poly:x1,y1;x2,y2;x3,y3[;...]`."""
    if spec.startswith("poly:"):
        return _parse_polygon(spec)
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) not in (4, 5):
        raise InvalidInput("mask", "must be x,y,w,h (fractions 0..1), optionally ,blur")
    try:
        x, y, w, h = (float(p) for p in parts[:4])
        return Mask(x=x, y=y, w=w, h=h, fill=parts[4] if len(parts) == 5 else "black")
    except ValueError as e:
        raise InvalidInput("mask", f"{spec!r}: {_reason(e)}") from None


def _parse_polygon(spec: str) -> Mask:
    if spec.endswith(",blur"):
        raise InvalidInput("mask", "polygon masks are black only; blur needs a rectangle")
    corners = [c.split(",") for c in spec.removeprefix("poly:").split(";")]
    if any(len(c) != 2 for c in corners):
        raise InvalidInput("mask", "a polygon is poly:x1,y1;x2,y2;x3,y3[;...] (fractions 0..1)")
    try:
        points = tuple((float(cx), float(cy)) for cx, cy in corners)
        return Mask(points=points)
    except ValueError as e:
        raise InvalidInput("mask", f"{spec!r}: {_reason(e)}") from None


def _reason(e: ValueError) -> str:
    if not isinstance(e, ValidationError):
        return "not a number"
    error = e.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def check_source_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise InvalidInput("url", "scheme must be one of " + ", ".join(SCHEMES))
    if parts.scheme in ("rtsp", "rtsps", "http", "https") and not parts.hostname:
        raise InvalidInput("url", "needs a host")
    if parts.scheme == "file" and not parts.path:
        raise InvalidInput("url", "needs a path: file:///PATH")
    if any(ch.isspace() or not ch.isprintable() for ch in url) or len(url) > 2000:
        raise InvalidInput(
            "url", "must have no spaces or control characters and at most 2000 characters"
        )
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
    if profile == "copy" and masks:
        raise InvalidInput("profile", "a camera with privacy masks must be transcoded, not copy")
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
            masks=[m.model_dump(mode="json") for m in masks],
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
