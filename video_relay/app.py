"""Adds the video relay to an application built by `xueliang.web.create_app`."""

from __future__ import annotations

from aiohttp import web

from xueliang.errors import FfmpegNotFound
from xueliang.ffmpeg import find_ffmpeg
from xueliang.web import SETTINGS, PartHealth, add_health_check


def setup(app: web.Application) -> None:
    """Register the relay; its health says which ffmpeg it will run."""
    configured = app[SETTINGS].video.ffmpeg

    async def check() -> PartHealth:
        try:
            ffmpeg = find_ffmpeg(configured)
        except FfmpegNotFound as e:
            return PartHealth("down", {"error": str(e)})
        return PartHealth("ok", {"ffmpeg": str(ffmpeg.path), "ffmpeg_source": ffmpeg.source})

    add_health_check(app, "video", check)
