"""`/video/…`: HLS, continuous MPEG-TS, snapshots, MJPEG and village mosaics.

Who may watch: a signed, expiring query (`?exp=…&sig=…`, made by the TV pages and the
console for cameras the viewer may see; set-top-box players drop cookies), or a staff
session (Bearer token or the console cookie) whose scope holds the camera's village.
The TV's own cookie is scoped to `/tv`, so households always come with a signature,
which playlists carry on to their segments."""

from __future__ import annotations

import asyncio
import contextlib
import math
from functools import partial
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select

from video_relay.keys import ALARM_SNAPSHOTS, RELAY, SMALL_SNAPSHOTS, SNAPSHOTS
from video_relay.mosaic import mosaic
from video_relay.producer import Producer
from video_relay.snapshots import SnapshotCache, offline_jpeg
from xueliang import cameras, geography, staff_sessions, validation, video_urls
from xueliang.cameras import Camera
from xueliang.errors import Busy, InvalidCredentials, InvalidInput, NotFound
from xueliang.storage.tables import alarms
from xueliang.ttl_cache import TtlCache
from xueliang.web import DATABASE, SECRET_KEY

READY_WAIT_S = 10.0
MJPEG_INTERVAL_S = 1.0
MOSAIC_MAX = 16
SMALL_WIDTH = 640
SMALL_HEIGHT = 360
CAMERAS = web.AppKey("video_cameras", TtlCache[str, Camera | None])
_STAFF_COOKIE = "xl_staff"  # the console's session cookie (stb_portal.auth.COOKIE)


async def _camera(request: web.Request) -> Camera:
    ident = request.match_info["camera"]
    if len(ident) > 64:
        raise web.HTTPNotFound(text="no such camera")
    db = request.config_dict[DATABASE]

    async def load() -> Camera | None:
        async with db.read() as conn:
            return await cameras.find(conn, ident)

    camera = await request.config_dict[CAMERAS].get(ident, load)
    if camera is None:
        raise web.HTTPNotFound(text="no such camera")
    return camera


async def _allow(request: web.Request, parts: list[str], village: str) -> None:
    """A valid signature for `parts`, or a staff session whose scope holds `village`."""
    query = request.query
    if "sig" in query or "exp" in query:
        try:
            video_urls.check(
                request.config_dict[SECRET_KEY], parts, query.get("exp", ""), query.get("sig", "")
            )
        except InvalidCredentials as e:
            raise web.HTTPForbidden(text=f"video link refused: {e}") from None
        return
    session = await _staff(request)
    if session is None:
        raise web.HTTPUnauthorized(text="a signed link or a staff session is needed")
    db = request.config_dict[DATABASE]
    async with db.read() as conn:
        try:
            place = await geography.get_village(conn, village)
        except NotFound:
            raise web.HTTPNotFound(text="no such camera") from None
    if not session.scope.covers(place.id, place.town):
        raise web.HTTPNotFound(text="no such camera")


async def _staff(request: web.Request) -> staff_sessions.StaffSession | None:
    db = request.config_dict[DATABASE]
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return await staff_sessions.session(db, header[7:].strip(), "api")
    cookie = request.cookies.get(_STAFF_COOKIE)
    return await staff_sessions.session(db, cookie, "console") if cookie else None


async def _producer(request: web.Request, camera: Camera, *, start: bool = True) -> Producer:
    profile = request.query.get("profile", "")
    await _allow(request, [camera.id, profile], camera.village)
    relay = request.config_dict[RELAY]
    if not start:
        running = relay.running(camera.id, profile or camera.profile)
        if running is None:
            raise web.HTTPNotFound(text="this camera is not playing; load its playlist first")
        running.touch()
        return running
    try:
        return relay.producer(camera, profile or None)
    except Busy as e:
        raise web.HTTPServiceUnavailable(
            text=f"busy: {e}; try again in a minute", headers={"Retry-After": "30"}
        ) from None


async def _ready(producer: Producer) -> None:
    """Wait for the first segment; a viewer waiting counts as watching (the producer
    must not go idle under a cold start that takes longer than the grace period)."""
    if producer.ready.is_set():
        return
    producer.viewers += 1
    try:
        async with asyncio.timeout(READY_WAIT_S):
            await producer.ready.wait()
    except TimeoutError:
        raise web.HTTPServiceUnavailable(
            text="the camera is starting; try again shortly", headers={"Retry-After": "2"}
        ) from None
    finally:
        producer.viewers -= 1
        producer.touch()


async def playlist(request: web.Request) -> web.Response:
    camera = await _camera(request)
    producer = await _producer(request, camera)
    await _ready(producer)
    carried = {k: v for k, v in request.query.items() if k in ("exp", "sig", "profile")}
    suffix = f"?{urlencode(carried)}" if carried else ""
    body = producer.playlist_for(suffix)
    producer.touch()
    return web.Response(
        text=body,
        content_type="application/vnd.apple.mpegurl",
        headers={"Cache-Control": "no-cache"},
    )


async def segment(request: web.Request) -> web.StreamResponse:
    camera = await _camera(request)
    seq = validation.number(request.match_info["seq"], 12)
    if seq is None:
        raise web.HTTPNotFound(text="no such segment")
    producer = await _producer(request, camera, start=False)
    found = producer.segment(seq)
    if found is None or not found.path.exists():
        raise web.HTTPNotFound(text="no such segment (it may have left the window)")
    return web.FileResponse(
        found.path,
        headers={"Content-Type": "video/mp2t", "Cache-Control": "private, max-age=60"},
    )


async def stream_ts(request: web.Request) -> web.StreamResponse:
    """The segments one after another as one endless MPEG-TS, for middleware players."""
    camera = await _camera(request)
    producer = await _producer(request, camera)
    await _ready(producer)
    response = web.StreamResponse(
        headers={"Content-Type": "video/mp2t", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    producer.viewers += 1
    try:
        last: int | None = None
        while (found := await producer.next_segment(last)) is not None:
            producer.touch()
            with contextlib.suppress(FileNotFoundError):
                await response.write(await asyncio.to_thread(found.path.read_bytes))
            last = found.seq
    except ConnectionError:
        pass
    finally:
        producer.viewers -= 1
    return response


async def snapshot(request: web.Request) -> web.Response:
    camera = await _camera(request)
    body = await _snapshot(request, camera)
    return web.Response(body=body, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _cache(request: web.Request) -> SnapshotCache:
    """`?small=1`: stills for set-top boxes (decoded size under 1 MB)."""
    return request.config_dict[SMALL_SNAPSHOTS if request.query.get("small") else SNAPSHOTS]


async def _snapshot(request: web.Request, camera: Camera) -> bytes:
    producer = await _producer(request, camera)
    await _ready(producer)
    found = await _cache(request).get(producer.key, producer.live)
    if found is not None:
        return found
    small = bool(request.query.get("small"))
    width, height = (SMALL_WIDTH, SMALL_HEIGHT) if small else (1280, 720)
    return offline_jpeg(width, height)


async def mjpeg(request: web.Request) -> web.StreamResponse:
    camera = await _camera(request)
    producer = await _producer(request, camera)
    await _ready(producer)
    response = web.StreamResponse(
        headers={
            "Content-Type": "multipart/x-mixed-replace; boundary=frame",
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    producer.viewers += 1
    cache = _cache(request)
    try:
        while producer.state != "stopped":
            producer.touch()
            jpeg = await cache.get(producer.key, producer.live) or offline_jpeg(1280, 720)
            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            await response.write(head.encode() + jpeg + b"\r\n")
            await asyncio.sleep(MJPEG_INTERVAL_S)
    except ConnectionError:
        pass
    finally:
        producer.viewers -= 1
    return response


async def village_mosaic(request: web.Request) -> web.Response:
    """The public cameras of a village as one JPEG grid (a still for old boxes)."""
    village = request.match_info["village"]
    if len(village) > 64:
        raise web.HTTPNotFound(text="no such village")
    await _allow(request, ["mosaic", village], village)
    db = request.config_dict[DATABASE]
    async with db.read() as conn:
        found = [c for c in await cameras.in_village(conn, village) if c.public][:MOSAIC_MAX]
    relay = request.config_dict[RELAY]
    cache = request.config_dict[SMALL_SNAPSHOTS]

    async def tile(camera: Camera) -> bytes | None:
        try:
            producer = relay.producer(camera)
            async with asyncio.timeout(READY_WAIT_S):
                await producer.ready.wait()
        except (Busy, InvalidInput, TimeoutError):
            return None  # an offline tile: busy, misconfigured or not starting
        return await cache.get(producer.key, producer.live)

    tiles = await asyncio.gather(*(tile(c) for c in found))
    columns = max(1, math.ceil(math.sqrt(len(tiles))))
    rows = max(1, math.ceil(len(tiles) / columns))
    size = (
        (SMALL_WIDTH // columns, SMALL_HEIGHT // rows) if request.query.get("small") else (640, 360)
    )
    body = await asyncio.to_thread(
        partial(mosaic, tiles, labels=[c.id for c in found], tile_size=size, columns=columns)
    )
    return web.Response(body=body, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def alarm_snapshot(request: web.Request) -> web.StreamResponse:
    """What a camera showed when an alarm was raised: staff of the alarm's scope only."""
    alarm_id, camera = (
        validation.row_id(request.match_info["alarm"]),
        request.match_info["camera"],
    )
    if alarm_id is None:
        raise web.HTTPNotFound(text="no such alarm")
    session = await _staff(request)
    if session is None:
        raise web.HTTPUnauthorized(text="staff only")
    async with request.config_dict[DATABASE].read() as conn:
        row = (
            await conn.execute(
                select(alarms.c.village_id, alarms.c.town_id).where(alarms.c.id == alarm_id)
            )
        ).one_or_none()
    if row is None or not session.scope.covers(row.village_id, row.town_id):
        raise web.HTTPNotFound(text="no such alarm")
    found = request.config_dict[ALARM_SNAPSHOTS].path(alarm_id, camera)
    if found is None:
        raise web.HTTPNotFound(text="no snapshot was taken")
    return web.FileResponse(
        found, headers={"Content-Type": "image/jpeg", "Cache-Control": "private, no-store"}
    )


def setup_routes(app: web.Application) -> None:
    app[CAMERAS] = TtlCache(10.0)
    add = app.router.add_get
    add("/video/village/{village}/mosaic.jpg", village_mosaic, name="video_mosaic")
    add("/video/alarms/{alarm}/{camera}.jpg", alarm_snapshot, name="video_alarm_snapshot")
    add("/video/{camera}/index.m3u8", playlist, name="video_playlist")
    add("/video/{camera}/seg/{seq}.ts", segment, name="video_segment")
    add("/video/{camera}/stream.ts", stream_ts, name="video_stream_ts")
    add("/video/{camera}/snapshot.jpg", snapshot, name="video_snapshot")
    add("/video/{camera}/mjpeg", mjpeg, name="video_mjpeg")
