"""The JSON payloads devices and centre systems send, validated before anything else
looks at them. A payload that fails gets a reason string for the log and the metric."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

from xueliang.alarms import Action, Kind

MAX_PAYLOAD = 4096  # bytes; a real alarm is under 200
_Text = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Rejected(ValueError):
    """A payload that is not valid; `reason` is a short label for metrics."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class _Message(BaseModel):
    # Unknown fields are ignored: newer firmware may add some.
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class AlarmMessage(_Message):
    id: _Text
    kind: Kind
    ts: StrictInt | StrictFloat | None = Field(None, ge=0, le=2**32)
    battery: StrictInt | None = Field(None, ge=0, le=100)

    @property
    def device_ts(self) -> datetime | None:
        return None if self.ts is None else datetime.fromtimestamp(self.ts, UTC)


class Heartbeat(_Message):
    battery: StrictInt | None = Field(None, ge=0, le=100)
    rssi: StrictInt | None = Field(None, ge=-200, le=100)
    fw: Annotated[str, Field(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")] | None = None


class Command(_Message):
    alarm: StrictInt = Field(ge=1, le=2**53)
    action: Literal["acknowledge", "dispatch", "resolve", "false_alarm"]
    by: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
    note: Annotated[str, Field(max_length=2000)] | None = None

    @property
    def domain_action(self) -> Action:
        return self.action


M = TypeVar("M", bound=_Message)


class ZigbeeEvent(_Message):
    action: Annotated[str, Field(max_length=64)] | None = None
    battery: StrictInt | StrictFloat | None = None


def parse(model: type[M], payload: bytes) -> M:
    """Decode and validate one payload, or raise Rejected with a reason label."""
    if len(payload) > MAX_PAYLOAD:
        raise Rejected("oversized", f"{len(payload)} bytes")
    try:
        data: Any = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise Rejected("not_json", str(e)[:120]) from None
    if not isinstance(data, dict):
        raise Rejected("not_object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(payload)"
        raise Rejected("invalid", f"{field}: {first['msg']}") from None


def parse_status(payload: bytes) -> Literal["online", "offline"]:
    """`online` or `offline`, as plain text (the device's will and birth messages)."""
    text = payload.strip()
    if text == b"online":
        return "online"
    if text == b"offline":
        return "offline"
    raise Rejected("invalid", "status must be online or offline")
