"""Payload validation: whatever bytes arrive, the answer is a parsed message or a
Rejected with a short reason, never another exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xueliang.messages import (
    MAX_PAYLOAD,
    AlarmMessage,
    Command,
    Heartbeat,
    Rejected,
    parse,
    parse_status,
)
from xueliang.topics import Topics

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "id": JSON | st.text(max_size=70),
        "kind": JSON | st.sampled_from(["panic", "fire", "medical", "intrusion", "test"]),
        "ts": JSON,
        "battery": JSON | st.integers(-5, 105),
        "alarm": JSON,
        "action": JSON | st.sampled_from(["acknowledge", "dispatch", "resolve"]),
        "by": JSON,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | FIELDS.map(lambda d: json.dumps(d).encode()))
def test_any_payload_parses_or_is_rejected(payload: bytes) -> None:
    reasons = set()
    for model in (AlarmMessage, Heartbeat, Command):
        try:
            parse(model, payload)
        except Rejected as e:
            reasons.add(e.reason)
    assert reasons <= {"oversized", "not_json", "not_object", "invalid"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_topic_parses_or_is_refused(topic: str) -> None:
    topics = Topics()
    parsed = topics.parse_device(topic)
    if parsed is not None:
        device, channel = parsed
        assert topics.device(device, channel) == topic
        assert not set(device) & set("/+#") and device.isascii()


def test_valid_messages() -> None:
    alarm = parse(AlarmMessage, b'{"id":"a-1","kind":"fire","ts":1795000000,"battery":40,"x":1}')
    assert (alarm.id, alarm.kind, alarm.battery) == ("a-1", "fire", 40)
    assert alarm.device_ts is not None and alarm.device_ts.year == 2026
    command = parse(Command, '{"alarm":7,"action":"dispatch","by":"张三","note":"已出警"}'.encode())
    assert (command.alarm, command.action, command.by) == (7, "dispatch", "张三")
    assert parse(Heartbeat, b"{}").battery is None
    assert parse_status(b"online") == "online"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"id":"a","kind":"panic"}' + b" " * MAX_PAYLOAD, "oversized"),
        (b"\xff\xfe", "not_json"),
        (b"[" * 2000 + b"]" * 2000, "not_json"),  # deeper than the JSON parser goes
        (b'"panic"', "not_object"),
        (b'{"id":"","kind":"panic"}', "invalid"),
        (b'{"id":"' + b"x" * 65 + b'","kind":"panic"}', "invalid"),
        (b'{"id":"a\\u0000","kind":"panic"}', "invalid"),
        (b'{"id":7,"kind":"panic"}', "invalid"),
        (b'{"id":"a","kind":"PANIC"}', "invalid"),
        (b'{"id":"a","kind":"panic","battery":101}', "invalid"),
        (b'{"id":"a","kind":"panic","battery":true}', "invalid"),
        (b'{"id":"a","kind":"panic","ts":-1}', "invalid"),
        (b'{"id":"a","kind":"panic","ts":"now"}', "invalid"),
    ],
)
def test_hostile_alarm_payloads(payload: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as e:
        parse(AlarmMessage, payload)
    assert e.value.reason == reason


@pytest.mark.parametrize(
    "payload",
    [
        b'{"alarm":"7","action":"resolve","by":"x"}',
        b'{"alarm":7,"action":"cancel","by":"x"}',  # households cancel, centres do not
        b'{"alarm":7,"action":"resolve","by":""}',
        b'{"alarm":0,"action":"resolve","by":"x"}',
        b'{"alarm":7,"action":"resolve"}',
    ],
)
def test_hostile_commands(payload: bytes) -> None:
    with pytest.raises(Rejected):
        parse(Command, payload)


@pytest.mark.parametrize(
    "topic",
    ["xl/dev/a/b/alarm", "xl/dev/+/alarm", "xl/dev/#", "xl/dev//alarm", "xl/dev/a/ack",
     "xx/dev/a/alarm", "xl/dev/a/alarm/", "xl/dev/../alarm", "xl/dev/設備/alarm"],
)  # fmt: skip
def test_hostile_topics(topic: str) -> None:
    assert Topics().parse_device(topic) is None
