"""Secrets people and devices present: staff passwords, device passwords, pairing tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2id with the library's RFC 9106 "low memory" defaults (64 MiB, t=3).
_staff_hasher = PasswordHasher()

# Device passwords are random 144-bit tokens, so no dictionary attack applies; the
# hash only has to be in the format Mosquitto reads (PBKDF2-SHA512, "$7$"), cheap
# enough for thousands of buttons reconnecting after a broker restart.
MOSQUITTO_ITERATIONS = 1000
_MOSQUITTO_SALT_BYTES = 12


def new_password() -> str:
    """A random password for a device or a generated staff account (24 URL-safe chars)."""
    return secrets.token_urlsafe(18)


def new_token() -> str:
    """A random bearer token (pairing links, sessions): 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy token; tokens are stored only as this."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_staff_password(password: str) -> str:
    return _staff_hasher.hash(password)


def verify_staff_password(stored: str, password: str) -> bool:
    """True when `password` matches; never raises for a wrong or damaged hash."""
    try:
        return _staff_hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def staff_hash_is_outdated(stored: str) -> bool:
    return _staff_hasher.check_needs_rehash(stored)


def hash_device_password(password: str, *, salt: bytes | None = None) -> str:
    """Mosquitto's `$7$` password-file hash of `password`."""
    salt = salt if salt is not None else secrets.token_bytes(_MOSQUITTO_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, MOSQUITTO_ITERATIONS)
    return f"$7${MOSQUITTO_ITERATIONS}${_b64(salt)}${_b64(digest)}"


def verify_device_password(stored: str, password: str) -> bool:
    """Check a password against a `$7$` hash (ours or one `mosquitto_passwd` wrote)."""
    try:
        _, kind, iterations, salt, digest = stored.split("$")
        if kind != "7":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt, validate=True), int(iterations)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, actual)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
