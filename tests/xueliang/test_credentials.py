"""Secrets: device hashes in Mosquitto's own format, the installation key, derivations."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from tests.helpers import require_binary
from xueliang import credentials
from xueliang.signing import derive, load_secret_key


def test_device_hash_round_trip() -> None:
    stored = credentials.hash_device_password("pw-123")
    assert stored.startswith(f"$7${credentials.MOSQUITTO_ITERATIONS}$")
    assert credentials.verify_device_password(stored, "pw-123")
    assert not credentials.verify_device_password(stored, "pw-124")
    for damaged in ("", "$7$", "$6$1$a$b", "$7$x$AAAA$AAAA", "$7$10$not base64$AAAA"):
        assert not credentials.verify_device_password(damaged, "pw-123")


def test_hashes_written_by_mosquitto_passwd_verify(tmp_path: Path) -> None:
    """Our hash format is Mosquitto's: a file written by its own tool checks out here."""
    tool = require_binary("mosquitto_passwd")
    path = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(path), "btn-1", "s3cret"], check=True)
    username, stored = path.read_text().strip().split(":", 1)
    assert username == "btn-1" and stored.startswith("$7$")
    assert credentials.verify_device_password(stored, "s3cret")
    assert not credentials.verify_device_password(stored, "s3cret!")


def test_secret_key_is_created_once_and_private(tmp_path: Path) -> None:
    key = load_secret_key(tmp_path / "data")
    assert len(key) == 32
    path = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret_key(tmp_path / "data") == key


def test_derived_secrets_are_stable_and_separate() -> None:
    key = b"k" * 32
    assert derive(key, "demo-staff", "a") == derive(key, "demo-staff", "a")
    assert derive(key, "demo-staff", "a") != derive(key, "demo-device", "a")
    assert derive(key, "demo-staff", "a") != derive(b"j" * 32, "demo-staff", "a")
    assert len(derive(key, "p", "x", length=43)) == 43


def test_tokens_are_long_and_distinct() -> None:
    tokens = {credentials.new_token() for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) >= 43 for t in tokens)
