"""The village's public cameras on the TV: a list with a mosaic still, and a live
view that plays on whatever the box has (middleware player, HLS `<video>`, or
refreshed snapshots), with signed URLs because box players drop cookies."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from stb_portal.tv import session as tv_session
from stb_portal.tv.render import page
from xueliang import cameras, households, video_urls
from xueliang.cameras import Camera
from xueliang.web import DATABASE, SECRET_KEY, SETTINGS

PER_PAGE = 6
# Stills on the TV stay small: a 640x360 JPEG decodes to 0.9 MB, inside the budget.
STILL = "small=1"


async def _village_cameras(request: web.Request, household: str) -> tuple[str, list[Camera]]:
    db = request.app[DATABASE]
    home = await db.run_read(partial(households.get, id=household))
    async with db.read() as conn:
        found = await cameras.in_village(conn, home.village)
    return home.village, [c for c in found if c.public]


async def index(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    village, found = await _village_cameras(request, session.household)
    key, ttl = request.app[SECRET_KEY], request.app[SETTINGS].video.url_ttl_s
    mosaic = f"{video_urls.mosaic_url(key, village, ttl)}&{STILL}" if found else None
    return page(
        request, "tv/cameras.html", session=session, cameras=found[:PER_PAGE], mosaic=mosaic
    )


async def view(request: web.Request) -> web.Response:
    session = await tv_session.required(request)
    _village, found = await _village_cameras(request, session.household)
    camera = next((c for c in found if c.id == request.match_info["camera"]), None)
    if camera is None:  # another village's, not public, or none at all: not found
        return page(request, "tv/not_found.html", session=session, status=404)
    key, ttl = request.app[SECRET_KEY], request.app[SETTINGS].video.url_ttl_s
    return page(
        request, "tv/camera.html", session=session, camera=camera,
        hls=video_urls.camera_url(key, camera.id, "index.m3u8", ttl),
        ts=video_urls.camera_url(key, camera.id, "stream.ts", ttl),
        snapshot=video_urls.camera_url(key, camera.id, "snapshot.jpg", ttl) + f"&{STILL}",
    )  # fmt: skip


def setup(app: web.Application) -> None:
    app.router.add_get("/tv/cameras", index, name="tv_cameras")
    app.router.add_get("/tv/cameras/{camera}", view, name="tv_camera")
