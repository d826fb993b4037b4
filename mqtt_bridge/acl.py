"""Mosquitto's own files for the production broker: a password file with every device
(username = device id) and the bridge, an ACL that confines each device to its own
topics, and the `mosquitto.conf` that ties them together.

The texts are rendered by pure functions; `write_config` writes them atomically, so a
Mosquitto reloading on SIGHUP never reads half a file.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import AnyUrl
from sqlalchemy import select

from xueliang.config import MqttSettings
from xueliang.credentials import hash_device_password, new_password, verify_device_password
from xueliang.errors import InvalidInput
from xueliang.storage import Database, tables
from xueliang.topics import Topics

log = logging.getLogger(__name__)

PASSWORD_FILE = "passwd"  # noqa: S105  (a file name, not a password)
ACL_FILE = "acl"
CONFIG_FILE = "mosquitto.conf"
PERSISTENCE_DIR = "data"
BRIDGE_USER = "bridge"  # the account generated when XL_MQTT_URL carries no credentials

#: What a device may do under `{prefix}/dev/{its id}/`; everything else is denied.
DEVICE_WRITES = ("alarm", "heartbeat", "status")
DEVICE_READS = ("ack",)

_HEADER = "# Written by `xueliang mosquitto-config`; run it again rather than editing.\n"
# ':' ends the username in the password file; whitespace and control characters would
# split a line; Mosquitto refuses `%u` patterns for names with '+', '#' or '/'.
_USERNAME = re.compile(r"[\x21-\x7e]+")
_USERNAME_FORBIDDEN = frozenset(":#+/")
_HASH = re.compile(r"\$[67]\$[A-Za-z0-9+/=$]+")  # PBKDF2-SHA512 ($7$) or salted SHA512 ($6$)
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,32}")


@dataclass(frozen=True, slots=True)
class BridgeAccount:
    """The bridge's broker account; `password` is known only when just generated."""

    username: str
    password_hash: str
    source: Literal["url", "kept", "generated"]
    password: str | None = None


@dataclass(frozen=True, slots=True)
class MosquittoFiles:
    """What `write_config` wrote."""

    folder: Path
    devices: int
    bridge: BridgeAccount

    @property
    def password_file(self) -> Path:
        return self.folder / PASSWORD_FILE

    @property
    def acl_file(self) -> Path:
        return self.folder / ACL_FILE

    @property
    def conf(self) -> Path:
        return self.folder / CONFIG_FILE

    def as_json(self) -> dict[str, Any]:
        return {
            "dir": str(self.folder),
            "files": {
                "password_file": str(self.password_file),
                "acl_file": str(self.acl_file),
                "conf": str(self.conf),
            },
            "devices": self.devices,
            "bridge": {"username": self.bridge.username, "password": self.bridge.password},
        }


def username(value: str) -> str:
    """Check that `value` can be a Mosquitto username in our password and ACL files."""
    if not _USERNAME.fullmatch(value) or _USERNAME_FORBIDDEN & set(value):
        raise InvalidInput(
            "username", f"{value!r} must be printable ASCII without spaces, ':', '#', '+' or '/'"
        )
    return value


def password_file(accounts: Iterable[tuple[str, str]]) -> str:
    """`username:hash` lines, sorted by username, for Mosquitto's `password_file`."""
    lines: dict[str, str] = {}
    for name, hashed in accounts:
        if username(name) in lines:
            raise InvalidInput("username", f"{name!r} appears twice")
        if not _HASH.fullmatch(hashed):
            raise InvalidInput("username", f"{name!r} has no Mosquitto password hash")
        lines[name] = f"{name}:{hashed}\n"
    return "".join(lines[name] for name in sorted(lines))


def acl_file(prefix: str, bridge_user: str) -> str:
    """The ACL: the bridge reads and writes everything, every other account is a device
    limited to its own topics. Mosquitto denies whatever is not granted here."""
    if not _PREFIX.fullmatch(prefix):
        raise InvalidInput("mqtt.topic_prefix", "must be 1-32 letters, digits, '_' or '-'")
    topics = Topics(prefix)
    return (
        _HEADER
        + "\n# The bridge: every topic, both ways.\n"
        + f"user {username(bridge_user)}\n"
        + "topic readwrite #\n"
        + "\n# Devices log in with their id as username. Pattern lines apply to every user\n"
        + "# (the bridge too); %u is the username.\n"
        + "".join(f"pattern write {topics.device('%u', leaf)}\n" for leaf in DEVICE_WRITES)
        + "".join(f"pattern read {topics.device('%u', leaf)}\n" for leaf in DEVICE_READS)
    )


def broker_config(folder: Path, port: int, bind: str) -> str:
    """`mosquitto.conf` for a broker whose files (and persistence) live in `folder`."""
    if not 1 <= port <= 65535:
        raise InvalidInput("port", "must be between 1 and 65535")
    if not bind or any(ch.isspace() for ch in bind):
        raise InvalidInput("bind", "must be one address without spaces")
    folder = folder.absolute()
    if any(ch in str(folder) for ch in "\r\n"):
        raise InvalidInput("dir", "must not contain a line break")
    return (
        _HEADER
        + f"# Start:  mosquitto -c {folder / CONFIG_FILE}\n"
        + "# Reload: run the command again, then send SIGHUP to the broker.\n"
        + f"\nlistener {port} {bind}\n"
        + "# Every client logs in: the devices with their own password, and the bridge.\n"
        + "allow_anonymous false\n"
        + f"password_file {folder / PASSWORD_FILE}\n"
        + f"acl_file {folder / ACL_FILE}\n"
        + "\n# Keep queued QoS 1 messages (alarms, acks) across a restart, and far more of\n"
        + "# them than the default 1000 per client, past which Mosquitto drops silently.\n"
        + "persistence true\n"
        + f"persistence_location {folder / PERSISTENCE_DIR}/\n"
        + "autosave_interval 60\n"
        + "max_queued_messages 100000\n"
        + "set_tcp_nodelay true\n"
    )


async def device_accounts(db: Database) -> list[tuple[str, str]]:
    """(device id, Mosquitto hash) of every device, by id."""
    devices = tables.devices
    query = select(devices.c.id, devices.c.credentials_hash).order_by(devices.c.id)
    async with db.read() as conn:
        return [(row.id, row.credentials_hash) for row in await conn.execute(query)]


def bridge_account(url: AnyUrl | None, previous: Mapping[str, str]) -> BridgeAccount:
    """The bridge's account: from the broker URL's credentials, else the generated one
    already in the password file, else a new one. `previous` is that file's accounts."""
    if url is not None and url.username and url.password:
        name, password = unquote(url.username), unquote(url.password)
        old = previous.get(name)
        if old is not None and verify_device_password(old, password):
            # Same password: keep the old salt, so re-running changes no byte.
            return BridgeAccount(name, old, "url")
        return BridgeAccount(name, hash_device_password(password), "url")
    if BRIDGE_USER in previous:
        # The running bridge knows that password; a new one would lock it out on reload.
        return BridgeAccount(BRIDGE_USER, previous[BRIDGE_USER], "kept")
    password = new_password()
    return BridgeAccount(BRIDGE_USER, hash_device_password(password), "generated", password)


def read_password_file(path: Path) -> dict[str, str]:
    """The accounts of an existing password file (none if there is no file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    accounts: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, hashed = line.partition(":")
        if sep and not name.startswith("#"):
            accounts[name] = hashed
    return accounts


def write_config(
    folder: Path, *, devices: Sequence[tuple[str, str]], mqtt: MqttSettings, port: int, bind: str
) -> MosquittoFiles:
    """Render the three files for these devices and write them into `folder`."""
    folder = folder.absolute()
    bridge = bridge_account(mqtt.url, read_password_file(folder / PASSWORD_FILE))
    if any(device == bridge.username for device, _ in devices):
        raise InvalidInput("mqtt.url", f"the bridge username {bridge.username!r} is a device id")
    # Everything is rendered (and validated) before the first file is touched.
    texts = (
        (PASSWORD_FILE, password_file([*devices, (bridge.username, bridge.password_hash)]), 0o600),
        (ACL_FILE, acl_file(mqtt.topic_prefix, bridge.username), 0o644),
        (CONFIG_FILE, broker_config(folder, port, bind), 0o644),
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PERSISTENCE_DIR).mkdir(mode=0o700, exist_ok=True)
    for name, text, mode in texts:
        write_atomically(folder / name, text, mode)
    return MosquittoFiles(folder, len(devices), bridge)


def write_atomically(path: Path, text: str, mode: int) -> None:
    """Replace `path` with `text` in one step, durably, keeping the file's owner (an
    operator may have given it to the user Mosquitto runs as)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)
            _keep_owner(f.fileno(), path)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def _keep_owner(fd: int, path: Path) -> None:
    try:
        old = path.stat()
    except FileNotFoundError:
        return
    if (old.st_uid, old.st_gid) == (os.geteuid(), os.getegid()):
        return
    try:
        os.fchown(fd, old.st_uid, old.st_gid)
    except PermissionError:
        log.warning(
            "%s was owned by uid %d and now is ours; check Mosquitto can read it", path, old.st_uid
        )
