"""Placeholder while the console pages are written; replaced in the same change."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the pages (none yet)."""
