"""The JSON bodies of `/api/v1`, as pydantic models: requests are validated with them
and the OpenAPI document is generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from xueliang.alarm_board import MAX_LIMIT

AlarmState = Literal[
    "received", "acknowledged", "dispatched", "resolved", "false_alarm", "cancelled"
]
StateFilter = Literal[
    "open", "closed", "all", "received", "acknowledged", "dispatched", "resolved",
    "false_alarm", "cancelled",
]  # fmt: skip
StaffAction = Literal["acknowledge", "dispatch", "resolve", "false_alarm"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Error(_Strict):
    """What every refusal looks like."""

    error: str = Field(description="what went wrong, for people")
    field: str | None = Field(default=None, description="the input at fault, if one")


class SessionRequest(_Strict):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=256)


class Token(_Strict):
    token: str = Field(description="send as `Authorization: Bearer <token>`")
    expires_at: datetime


class AlarmQuery(BaseModel):
    # Unknown query parameters (a cache-buster) are ignored, not refused.
    model_config = ConfigDict(extra="ignore", frozen=True)

    state: StateFilter = Field(default="all", description="`open`: most urgent first")
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=200, description="`next` of a page")


class Household(_Strict):
    id: str
    name: str
    address: str
    phone: str


class Alarm(_Strict):
    """An alarm as on `xl/centre/{town}/alarm`."""

    alarm: int
    state: AlarmState
    level: Literal["town", "county"]
    kind: Literal["panic", "fire", "medical", "intrusion", "test"]
    priority: int
    presses: int
    source: Literal["button", "tv"]
    device: str | None
    household: Household | None
    village: str | None
    town: str | None
    county: str | None
    unregistered: bool
    raised_at: str
    updated_at: str
    escalate_at: str | None
    cameras: list[str]


class AlarmPage(_Strict):
    alarms: list[Alarm]
    next: str | None = Field(description="cursor of the following page, or null")


class HistoryEntry(_Strict):
    id: int
    at: datetime
    action: str
    actor: str
    source: str
    note: str | None


class DeviceState(_Strict):
    id: str
    kind: str
    battery: int | None
    online: bool | None
    last_seen_at: datetime | None


class Camera(_Strict):
    id: str
    name: str


class AlarmDetail(Alarm):
    """One alarm with everything needed to act on it."""

    history: list[HistoryEntry]
    members: int | None
    village_name: str | None
    town_name: str | None
    devices: list[DeviceState]
    camera_list: list[Camera]
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    dispatched_at: datetime | None
    dispatched_by: str | None
    closed_at: datetime | None
    closed_by: str | None
    escalated_at: datetime | None
    received_at: datetime


class ActionRequest(_Strict):
    action: StaffAction
    note: str | None = Field(default=None, max_length=1000)


class ActionResult(_Strict):
    alarm: int
    state: AlarmState


class Me(_Strict):
    username: str
    display_name: str
    role: Literal["village", "town", "county"]
    scope: str
    expires_at: datetime
