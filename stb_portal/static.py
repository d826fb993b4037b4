"""CSS and JavaScript of the TV (and of the console), read once, gzipped once, served
with a long cache and a content hash in the URL (old boxes often have no cache: every
byte counts)."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).with_name("static")
CENTRE_STATIC_DIR = Path(__file__).with_name("centre_static")


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    content_type: str
    version: str


class StaticFiles:
    def __init__(self, folder: Path = STATIC_DIR, prefix: str = "/tv/static/") -> None:
        self.prefix = prefix
        self.assets: dict[str, Asset] = {}
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                body = path.read_bytes()
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                self.assets[path.name] = Asset(
                    body=body,
                    gzipped=gzip.compress(body, 9, mtime=0),
                    content_type=f"{kind}; charset=utf-8"
                    if kind.startswith("text/") or kind.endswith("javascript")
                    else kind,
                    version=hashlib.sha256(body).hexdigest()[:10],
                )

    def url(self, name: str) -> str:
        """The URL of an asset, changing whenever its content does."""
        return f"{self.prefix}{name}?v={self.assets[name].version}"

    async def handle(self, request: web.Request) -> web.Response:
        asset = self.assets.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound()
        headers = {
            "Content-Type": asset.content_type,
            "Cache-Control": "public, max-age=31536000, immutable",
            "ETag": f'"{asset.version}"',
            "Vary": "Accept-Encoding",
        }
        if request.headers.get("If-None-Match") == headers["ETag"]:
            return web.Response(status=304, headers=headers)
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=asset.gzipped, headers=headers)
        return web.Response(body=asset.body, headers=headers)
