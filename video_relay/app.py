"""Adds the video relay to an application built by `xueliang.web.create_app`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from video_relay.alarm_snapshots import AlarmSnapshots
from video_relay.keys import ALARM_SNAPSHOTS, RELAY, SMALL_SNAPSHOTS, SNAPSHOTS
from video_relay.presets import has_filter
from video_relay.relay import Relay
from video_relay.routes import SMALL_WIDTH, setup_routes
from video_relay.snapshots import SnapshotCache
from xueliang.alarm_feed import AlarmFeed
from xueliang.errors import FfmpegNotFound
from xueliang.ffmpeg import find_ffmpeg
from xueliang.web import (
    ALARMS,
    DATABASE,
    EVENT_BUS,
    METRICS,
    SETTINGS,
    PartHealth,
    add_health_check,
)

log = logging.getLogger(__name__)


def setup(app: web.Application) -> None:
    """Register `/video/…`; cameras start when first watched."""
    setup_routes(app)
    app.cleanup_ctx.append(_relay)


async def _relay(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    video = settings.video
    try:
        ffmpeg = find_ffmpeg(video.ffmpeg)
        binary, problem = str(ffmpeg.path), None
        # Asked once, off the event loop: whether the slate can carry text.
        await asyncio.to_thread(has_filter, binary, "drawtext")
    except FfmpegNotFound as e:
        binary, problem = "ffmpeg", str(e)
    relay = Relay(
        settings.data_dir / "video", binary, idle_s=video.idle_grace_s,
        max_transcodes=video.max_transcodes, registry=app[METRICS].registry,
    )  # fmt: skip
    app[RELAY] = relay
    app[SNAPSHOTS] = SnapshotCache()
    app[SMALL_SNAPSHOTS] = SnapshotCache(max_width=SMALL_WIDTH)

    async def check() -> PartHealth:
        if problem is not None:
            return PartHealth("down", {"error": problem})
        return PartHealth("ok", {"ffmpeg": binary, **relay.health()})

    add_health_check(app, "video", check)
    # The moment of each alarm: this process's own reader of alarm changes.
    feed = AlarmFeed(app[DATABASE])
    app[ALARMS].listeners.append(feed.wake)
    if EVENT_BUS in app:
        app[EVENT_BUS].subscribe(feed.wake)
    moments = AlarmSnapshots(settings.data_dir / "alarm_snapshots", relay, app[SNAPSHOTS], feed)
    app[ALARM_SNAPSHOTS] = moments
    tasks = [
        asyncio.create_task(feed.run(), name="video-alarm-feed"),
        asyncio.create_task(moments.run(), name="video-alarm-snapshots"),
        asyncio.create_task(_sweep_daily(moments), name="video-alarm-snapshot-sweep"),
    ]
    yield
    feed.close_all()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await relay.close()


async def _sweep_daily(moments: AlarmSnapshots) -> None:
    while True:
        removed = await asyncio.to_thread(moments.sweep)
        if removed:
            log.info("removed the snapshots of %d old alarm(s)", removed)
        await asyncio.sleep(86_400)
