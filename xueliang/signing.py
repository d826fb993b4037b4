"""The installation's secret key and what is derived from it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_KEY_FILE = "secret_key"  # noqa: S105  (a file name, not a secret)


def load_secret_key(data_dir: Path) -> bytes:
    """Read `DATA_DIR/secret_key`, creating it (mode 0600) on first use."""
    path = data_dir / SECRET_KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = bytes.fromhex(path.read_text().strip())
        if len(key) < 32:
            raise ValueError(f"{path} holds a key shorter than 32 bytes") from None
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return key


def derive(key: bytes, purpose: str, *parts: str, length: int = 24) -> str:
    """A URL-safe secret derived from `key` for `purpose`; stable, so the demo can print
    the same passwords each time it is seeded without storing them in clear."""
    message = "\x1f".join((purpose, *parts)).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:length]
