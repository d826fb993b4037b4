"""The relay's application values."""

from __future__ import annotations

from aiohttp import web

from video_relay.alarm_snapshots import AlarmSnapshots
from video_relay.relay import Relay
from video_relay.snapshots import SnapshotCache

RELAY = web.AppKey("video_relay", Relay)
SNAPSHOTS = web.AppKey("video_snapshots", SnapshotCache)
# Stills for set-top boxes: 640 wide at most, so one decodes to under 1 MB.
SMALL_SNAPSHOTS = web.AppKey("video_small_snapshots", SnapshotCache)
ALARM_SNAPSHOTS = web.AppKey("video_alarm_snapshots", AlarmSnapshots)
