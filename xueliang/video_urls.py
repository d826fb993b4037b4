"""Signed, expiring video URLs (`?exp=…&sig=…`): made by the pages that decided a
viewer may watch a camera, checked by the relay. Set-top-box media players drop
cookies, so the URL itself carries the permission (and playlists pass it on)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from xueliang.signing import check_expiring, sign_expiring

PURPOSE = "video"


def signed_query(key: bytes, parts: list[str], ttl_s: int) -> str:
    """`exp=…&sig=…` valid `ttl_s` seconds for exactly these parts."""
    expires = int(time.time()) + ttl_s
    return urlencode({"exp": expires, "sig": sign_expiring(key, PURPOSE, parts, expires)})


def check(key: bytes, parts: list[str], exp: str, sig: str) -> None:
    """Raises InvalidCredentials for a forged, damaged or expired link."""
    check_expiring(key, PURPOSE, parts, exp, sig)


def camera_url(key: bytes, camera: str, output: str, ttl_s: int, profile: str = "") -> str:
    """A signed URL of one camera's output (`index.m3u8`, `stream.ts`, `snapshot.jpg`,
    `mjpeg`), in its own profile unless `profile` is given."""
    query = signed_query(key, [camera, profile], ttl_s)
    extra = f"&profile={profile}" if profile else ""
    return f"/video/{camera}/{output}?{query}{extra}"


def mosaic_url(key: bytes, village: str, ttl_s: int) -> str:
    """A signed URL of a village's mosaic of public cameras."""
    return f"/video/village/{village}/mosaic.jpg?{signed_query(key, ['mosaic', village], ttl_s)}"
