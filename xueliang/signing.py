"""The installation's secret key and what is derived from it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from xueliang.errors import InvalidCredentials

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


def sign(key: bytes, purpose: str, value: str, issued: int | None = None) -> str:
    """`value.issued.signature`: a token only this installation can make, bound to
    `purpose` so a token made for one use (a cookie) is worthless for another (a URL)."""
    issued = int(time.time()) if issued is None else issued
    body = f"{_b64(value.encode())}.{issued}"
    return f"{body}.{_mac(key, purpose, body)}"


def unsign(key: bytes, purpose: str, token: str, max_age_s: float | None = None) -> str:
    """The value inside a token made by `sign`; raises InvalidCredentials when the
    token is forged, damaged, made for another purpose, or older than `max_age_s`."""
    try:
        encoded, issued_text, mac = token.split(".")
        issued = int(issued_text)
        value = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidCredentials("malformed token") from None
    if not hmac.compare_digest(mac, _mac(key, purpose, f"{encoded}.{issued_text}")):
        raise InvalidCredentials("bad signature")
    if max_age_s is not None and not 0 <= time.time() - issued <= max_age_s:
        raise InvalidCredentials("expired token")
    return value


def _mac(key: bytes, purpose: str, body: str) -> str:
    digest = hmac.new(key, f"{purpose}\x1f{body}".encode(), hashlib.sha256).digest()
    return _b64(digest)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sign_expiring(key: bytes, purpose: str, parts: Sequence[str], expires: int) -> str:
    """A signature over `parts` valid until the Unix time `expires` (for URLs handed
    to media players, which drop cookies: `?exp=…&sig=…`)."""
    message = "\x1f".join((purpose, str(expires), *parts)).encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest())[:32]


def check_expiring(key: bytes, purpose: str, parts: Sequence[str], exp: str, sig: str) -> None:
    """Raises InvalidCredentials unless `sig` signs `parts` and `exp` is in the future."""
    if not exp.isascii() or not exp.isdigit() or len(exp) > 12 or len(sig) != 32:
        raise InvalidCredentials("malformed signature")
    if not hmac.compare_digest(sig, sign_expiring(key, purpose, parts, int(exp))):
        raise InvalidCredentials("bad signature")
    if int(exp) < time.time():
        raise InvalidCredentials("expired link")


def seal(key: bytes, purpose: str, plain: str, context: Sequence[str] = ()) -> str:
    """`plain` encrypted and authenticated (AES-256-GCM under a key derived for
    `purpose`), bound to `context`: for state a page must carry in its links that no
    log or browser history should be able to read (a household's choices in a poll)."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(_sealing_key(key, purpose)).encrypt(
        nonce, plain.encode(), "\x1f".join(context).encode()
    )
    return _b64(nonce + sealed)


def unseal(key: bytes, purpose: str, token: str, context: Sequence[str] = ()) -> str:
    """What `seal` sealed with the same purpose and context; InvalidCredentials for
    anything else (forged, damaged, another household's)."""
    if len(token) > 4096 or not token.isascii():
        raise InvalidCredentials("malformed sealed value")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        plain = AESGCM(_sealing_key(key, purpose)).decrypt(
            raw[:12], raw[12:], "\x1f".join(context).encode()
        )
        return plain.decode()
    except (ValueError, InvalidTag, UnicodeDecodeError):
        raise InvalidCredentials("bad sealed value") from None


def _sealing_key(key: bytes, purpose: str) -> bytes:
    return hmac.new(key, f"seal\x1f{purpose}".encode(), hashlib.sha256).digest()
