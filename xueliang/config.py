"""One validated settings tree, from a TOML file plus the `XL_*` variables of the contract.

Precedence: defaults < TOML file (`XL_CONFIG`, else `./xueliang.toml` if present) <
environment. A bad value raises `ConfigError` naming the field path and where the
value came from; the CLI prints it and exits non-zero, never with a traceback.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    UrlConstraints,
    ValidationError,
    field_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from xueliang.errors import ConfigError
from xueliang.urls import redact_text

log = logging.getLogger(__name__)

Port = Annotated[int, Field(ge=1, le=65535)]
MqttUrl = Annotated[
    AnyUrl,
    UrlConstraints(allowed_schemes=["mqtt", "mqtts"], host_required=True, default_port=1883),
]

#: The environment variables of the public contract and the field each one sets.
ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "XL_DATA_DIR": ("data_dir",),
    "XL_DATABASE_URL": ("database", "url"),
    "XL_MQTT_URL": ("mqtt", "url"),
    "XL_HTTP_HOST": ("http", "host"),
    "XL_HTTP_PORT": ("http", "port"),
    "XL_MQTT_PORT": ("mqtt", "embedded_port"),
    "XL_TOPIC_PREFIX": ("mqtt", "topic_prefix"),
}
#: Variables that are read elsewhere and so are not unknown.
OTHER_VARIABLES = frozenset({"XL_CONFIG", "XL_TEST_POSTGRES_URL", "XL_TEST_REQUIRE_ALL"})
DEFAULT_CONFIG_FILE = Path("xueliang.toml")


class Section(BaseModel):
    """Base of every settings section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSettings(Section):
    host: str = Field("0.0.0.0", description="Address the HTTP listener binds to.")  # noqa: S104
    port: Port = Field(8080, description="Port of the HTTP listener.")
    public_url: AnyUrl | None = Field(
        None,
        description="Base URL households and staff use (printed in pairing links); "
        "default http://localhost:PORT.",
    )

    def base_url(self) -> str:
        """The URL printed in pairing links and the console address."""
        if self.public_url is not None:
            return str(self.public_url).rstrip("/")
        return f"http://localhost:{self.port}"


class MqttSettings(Section):
    url: MqttUrl | None = Field(
        None,
        description="Broker URL, mqtt://user:pass@host:1883 or mqtts://; unset starts the "
        "embedded demo broker.",
    )
    embedded_host: str = Field(
        "127.0.0.1",
        description="Address of the embedded demo broker; it allows anonymous clients, "
        "so it stays on loopback unless you change this.",
    )
    embedded_port: Port = Field(1883, description="Port of the embedded demo broker.")
    topic_prefix: str = Field(
        "xl",
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="First level of every MQTT topic; letters, digits, '_' and '-' only.",
    )
    client_id: str = Field(
        "xueliang-bridge",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Client id of the bridge; stable, so the broker keeps its session.",
    )
    protocol: Literal["5", "3.1.1"] = Field(
        "5",
        description="MQTT version spoken to the broker (the embedded demo broker is 3.1.1).",
    )
    session_expiry_s: int = Field(
        7 * 86_400,
        ge=60,
        le=2**32 - 1,
        description="How long the broker keeps the bridge's session (and queues alarms for "
        "it) while the bridge is down.",
    )


class DatabaseSettings(Section):
    url: str | None = Field(
        None,
        description="sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB; "
        "default sqlite:///DATA_DIR/xueliang.db.",
    )
    auto_upgrade: bool = Field(
        True,
        description="Apply migrations at start. Turn off when several processes share one "
        "PostgreSQL and an operator runs `xueliang db upgrade`.",
    )

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL") from None
        backend = url.get_backend_name()
        if backend == "sqlite":
            if not url.database or url.database == ":memory:":
                raise ValueError("a SQLite URL needs a file: sqlite:///PATH")
        elif backend == "postgresql":
            if not url.host or not url.database:
                raise ValueError("a PostgreSQL URL needs a host and a database name")
        else:
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class EscalationSettings(Section):
    town_s: float = Field(
        90.0,
        gt=0,
        le=86_400,
        description="Seconds an alarm may stay unacknowledged before it escalates to the county.",
    )


class AlarmSettings(Section):
    cancel_grace_s: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="Seconds after raising during which a household may cancel its alarm.",
    )
    max_clock_skew_s: float = Field(
        20.0,
        ge=0,
        le=3600,
        description="A device timestamp further in the future than this is ignored "
        "(the time of receipt is used instead).",
    )


class UpstreamBroker(Section):
    url: MqttUrl = Field(description="The town centre's own broker, mqtt:// or mqtts://.")


class ZigbeeSettings(Section):
    base_topic: str = Field(
        "zigbee2mqtt",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Zigbee2MQTT's base topic on the same broker.",
    )
    alarm_actions: tuple[str, ...] = Field(
        ("emergency", "sos", "single"),
        description="Values of `action` that raise a panic alarm.",
    )
    devices: dict[str, str] = Field(
        default_factory=dict,
        description="Zigbee2MQTT friendly name → registered device id.",
    )


class BridgeSettings(Section):
    batch_max: int = Field(
        500, ge=1, le=10_000, description="Most alarm messages stored in one transaction."
    )
    heartbeat_flush_s: float = Field(
        1.0, gt=0, le=60, description="Heartbeats are written to the database this often."
    )
    supervision_check_s: float = Field(
        30.0, gt=0, le=3600, description="How often silent devices are looked for."
    )
    low_battery: int = Field(
        20, ge=0, le=100, description="Battery percentage below which a device is reported."
    )
    flood_burst: int = Field(
        10, ge=1, le=1000, description="Alarm messages a device may send at once."
    )
    flood_per_minute: float = Field(
        30.0,
        gt=0,
        le=6000,
        description="Alarm messages per minute a device may keep sending (a stuck button).",
    )
    upstream: dict[str, UpstreamBroker] = Field(
        default_factory=dict,
        description="Town id → that town centre's broker; its alarms are also forwarded there.",
    )
    zigbee2mqtt: ZigbeeSettings | None = Field(
        None, description="Zigbee2MQTT buttons mapped to devices (off when absent)."
    )


class VideoSettings(Section):
    ffmpeg: Path | None = Field(
        None,
        description="ffmpeg binary; default the system ffmpeg on PATH, else the one "
        "bundled with imageio-ffmpeg.",
    )
    idle_grace_s: float = Field(
        30.0, gt=0, le=3600,
        description="A camera's ffmpeg stops this long after its last viewer's last request.",
    )  # fmt: skip
    max_transcodes: int = Field(
        4, ge=1, le=256,
        description="Cameras transcoded at once (CPU-bound); past it viewers are told busy.",
    )  # fmt: skip
    url_ttl_s: int = Field(
        6 * 3600, ge=60, le=7 * 86_400,
        description="Lifetime of the signed video URLs that pages hand to players.",
    )  # fmt: skip


class Settings(Section):
    data_dir: Path = Field(
        Path("var"), description="SQLite file, HLS segments and generated secrets."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Level of the log written to standard error."
    )
    http: HttpSettings = Field(default_factory=HttpSettings, description="HTTP listener.")
    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="MQTT broker.")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings, description="Storage.")
    escalation: EscalationSettings = Field(
        default_factory=EscalationSettings, description="Alarm escalation deadlines."
    )
    alarms: AlarmSettings = Field(default_factory=AlarmSettings, description="Alarm handling.")
    bridge: BridgeSettings = Field(default_factory=BridgeSettings, description="MQTT bridge.")
    video: VideoSettings = Field(default_factory=VideoSettings, description="Video relay.")

    @property
    def database_url(self) -> str:
        """The configured database URL, or the SQLite file inside the data directory."""
        if self.database.url is not None:
            return self.database.url
        return f"sqlite:///{self.data_dir / 'xueliang.db'}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file and the environment, validate, and return the settings."""
    env = os.environ if environ is None else environ
    path, data = _read_file(env)
    from_env: dict[tuple[str, ...], str] = {}
    for name, field_path in ENVIRONMENT.items():
        if name in env:
            _set(data, field_path, env[name])
            from_env[field_path] = name
    for name in sorted(env):
        if name.startswith("XL_") and name not in ENVIRONMENT and name not in OTHER_VARIABLES:
            log.warning("ignoring unknown environment variable %s", name)
    source = str(path) if path else "defaults and environment"
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(source, [_describe(err, from_env) for err in e.errors()]) from None


def _read_file(env: Mapping[str, str]) -> tuple[Path | None, dict[str, Any]]:
    named = env.get("XL_CONFIG")
    path = Path(named) if named else DEFAULT_CONFIG_FILE
    if not path.exists():
        if named:
            raise ConfigError(str(path), [("XL_CONFIG", "file does not exist")])
        return None, {}
    try:
        with path.open("rb") as f:
            return path, tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), [("(file)", f"not valid TOML: {e}")]) from None
    except OSError as e:
        raise ConfigError(str(path), [("(file)", f"cannot be read: {e.strerror}")]) from None


def _set(data: dict[str, Any], path: tuple[str, ...], value: str) -> None:
    node = data
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):  # the file has e.g. `http = 3`; let validation say so
            return
        node = child
    node[path[-1]] = value


def _describe(err: Any, from_env: Mapping[tuple[str, ...], str]) -> tuple[str, str]:
    loc = tuple(str(part) for part in err["loc"])
    path = ".".join(loc) or "(file)"
    if loc in from_env:
        path = f"{path} (from {from_env[loc]})"
    message = str(err["msg"])
    if err["type"] == "extra_forbidden":
        message = "unknown setting (check the spelling; see README, Configuration)"
    elif "input" in err and not isinstance(err["input"], dict | list):
        shown = redact_text(repr(err["input"]))
        if len(shown) > 80:
            shown = shown[:77] + "..."
        message = f"{message} (got {shown})"
    return path, message
