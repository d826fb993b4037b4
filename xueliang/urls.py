"""URL helpers shared by every part: credentials never reach a log or a page."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# Greedy up to the last "@" before the path: a password may itself contain "@".
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s'\"]*@")


def redact_url(url: str) -> str:
    """Return `url` with any user and password replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(r"\g<scheme>***@", url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def redact_text(text: str) -> str:
    """Redact every URL with credentials inside free text (ffmpeg stderr, error messages)."""
    return _USERINFO.sub(r"\g<scheme>***@", text)
