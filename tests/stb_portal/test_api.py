"""The staff API over HTTP: sign-in, scope, actions, live events, and what a hostile
caller (another town, a household's box, a password guesser) gets instead."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from sqlalchemy import select

from stb_portal import auth
from stb_portal.api import events as events_module
from stb_portal.keys import FEED
from tests.stb_portal.conftest import Client
from tests.stb_portal.staff import EventReader, bearer, demo_password, raise_alarm
from xueliang.storage.tables import alarms, audit_log
from xueliang.web import ALARMS, DATABASE


async def test_sign_in_who_am_i_and_sign_out(tv: Client, demo_dir: Path) -> None:
    headers = await bearer(tv, demo_dir, "puxing-centre")
    me = await (await tv.get("/api/v1/session", headers=headers)).json()
    assert (me["username"], me["role"], me["scope"]) == ("puxing-centre", "town", "puxing")
    response = await tv.delete("/api/v1/session", headers=headers)
    assert response.status == 204
    response = await tv.get("/api/v1/session", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with tv.app[DATABASE].read() as conn:
        actions = (await conn.execute(select(audit_log.c.action))).scalars().all()
    assert actions == ["signin", "signout"]


async def test_wrong_password_is_refused_the_same_way_as_an_unknown_account(
    tv: Client,
) -> None:
    for username in ("puxing-centre", "nobody-here"):
        response = await tv.post(
            "/api/v1/session", json={"username": username, "password": "wrong-password"}
        )
        assert response.status == 401
        assert await response.json() == {"error": "wrong username or password"}


async def test_guessing_passwords_is_throttled(tv: Client, demo_dir: Path) -> None:
    """After five wrong passwords the account waits, even for the right one; another
    account is not affected; every attempt is in the audit log."""
    for _ in range(5):
        response = await tv.post(
            "/api/v1/session", json={"username": "anxi-centre", "password": "guess-guess"}
        )
        assert response.status == 401
    right = {"username": "anxi-centre", "password": demo_password(demo_dir, "anxi-centre")}
    response = await tv.post("/api/v1/session", json=right)
    assert response.status == 429
    assert 0 < int(response.headers["Retry-After"]) <= 30
    assert (await response.json())["error"].startswith("too many failed attempts")
    await bearer(tv, demo_dir, "puxing-centre")  # someone else signs in as usual
    async with tv.app[DATABASE].read() as conn:
        failures = (
            await conn.execute(
                select(audit_log.c.actor, audit_log.c.address).where(
                    audit_log.c.action == "signin_failed"
                )
            )
        ).all()
    assert len(failures) == 5 and {f.actor for f in failures} == {"anxi-centre"}
    assert all(f.address for f in failures)
    metrics = await (await tv.get("/metrics")).text()
    for result, count in (("wrong", 5), ("throttled", 1), ("ok", 1)):
        assert f'xl_staff_sign_ins_total{{result="{result}"}} {count}.0' in metrics


async def test_each_account_sees_and_acts_only_in_its_scope(tv: Client, demo_dir: Path) -> None:
    qilong = await raise_alarm(tv, "qilong-001", "fire")  # 普兴镇
    anxi = await raise_alarm(tv, "anxicun-001", "medical")  # 安西镇
    town = await bearer(tv, demo_dir, "puxing-centre")
    listed = await (await tv.get("/api/v1/alarms", headers=town)).json()
    assert [a["alarm"] for a in listed["alarms"]] == [qilong]
    assert listed["next"] is None
    # Another town's alarm does not exist for this account: read, act, resume.
    assert (await tv.get(f"/api/v1/alarms/{anxi}", headers=town)).status == 404
    act = await tv.post(
        f"/api/v1/alarms/{anxi}/actions", json={"action": "acknowledge"}, headers=town
    )
    assert act.status == 404
    async with tv.app[DATABASE].read() as conn:
        state = (await conn.execute(select(alarms.c.state).where(alarms.c.id == anxi))).scalar()
    assert state == "received"
    village = await bearer(tv, demo_dir, "anxicun-duty")
    mine = await (await tv.get("/api/v1/alarms?state=open", headers=village)).json()
    assert [a["alarm"] for a in mine["alarms"]] == [anxi]
    county = await bearer(tv, demo_dir, "xinjin-centre")
    everything = await (await tv.get("/api/v1/alarms", headers=county)).json()
    assert {a["alarm"] for a in everything["alarms"]} == {qilong, anxi}


async def test_alarm_detail_and_actions(tv: Client, demo_dir: Path) -> None:
    alarm = await raise_alarm(tv, "qilong-002", "medical")
    headers = await bearer(tv, demo_dir, "qilong-duty")
    detail = await (await tv.get(f"/api/v1/alarms/{alarm}", headers=headers)).json()
    assert detail["household"]["name"] == "李秀英家" and detail["members"] == 1
    assert detail["village_name"] == "骑龙社区" and detail["town_name"] == "普兴镇"
    assert detail["camera_list"] == [{"id": "qilong-square", "name": "骑龙社区广场"}]
    assert [h["action"] for h in detail["history"]] == ["raised"]
    for action, state in (("acknowledge", "acknowledged"), ("dispatch", "dispatched")):
        response = await tv.post(
            f"/api/v1/alarms/{alarm}/actions",
            json={"action": action, "note": "王医生已出发"},
            headers=headers,
        )
        assert await response.json() == {"alarm": alarm, "state": state}
    resolved = await tv.post(
        f"/api/v1/alarms/{alarm}/actions", json={"action": "resolve"}, headers=headers
    )
    assert (await resolved.json())["state"] == "resolved"
    late = await tv.post(
        f"/api/v1/alarms/{alarm}/actions", json={"action": "false_alarm"}, headers=headers
    )
    assert late.status == 409
    detail = await (await tv.get(f"/api/v1/alarms/{alarm}", headers=headers)).json()
    assert [h["action"] for h in detail["history"]] == [
        "raised", "acknowledged", "dispatched", "resolved"
    ]  # fmt: skip
    assert detail["acknowledged_by"] == "骑龙社区值守室"
    async with tv.app[DATABASE].read() as conn:
        logged = (
            await conn.execute(
                select(audit_log.c.action, audit_log.c.target, audit_log.c.actor)
                .where(audit_log.c.action.startswith("alarm."))
                .order_by(audit_log.c.id)
            )
        ).all()
    assert [tuple(r) for r in logged] == [
        ("alarm.acknowledge", str(alarm), "qilong-duty"),
        ("alarm.dispatch", str(alarm), "qilong-duty"),
        ("alarm.resolve", str(alarm), "qilong-duty"),
        ("alarm.false_alarm.refused", str(alarm), "qilong-duty"),  # refused, recorded
    ]


async def test_pages_follow_the_cursor_without_gaps_or_repeats(tv: Client, demo_dir: Path) -> None:
    service = tv.app[ALARMS]
    made = []
    for round_ in range(4):
        for household in ("qilong-001", "qilong-002"):
            alarm = await raise_alarm(tv, household, "test" if round_ % 2 else "fire")
            made.append(alarm)
            if round_ < 3:
                await service.act(alarm, "resolve", by="t", source="test")
    headers = await bearer(tv, demo_dir, "puxing-centre")
    for state, expected in (
        ("all", sorted(made, reverse=True)),
        ("closed", sorted(made[:6], reverse=True)),
    ):
        seen: list[int] = []
        url = f"/api/v1/alarms?state={state}&limit=3"
        while url:
            page = await (await tv.get(url, headers=headers)).json()
            seen += [a["alarm"] for a in page["alarms"]]
            url = page["next"] and f"/api/v1/alarms?state={state}&limit=3&cursor={page['next']}"
        assert seen == expected
    urgent = await (await tv.get("/api/v1/alarms?state=open&limit=1", headers=headers)).json()
    assert urgent["alarms"][0]["kind"] == "test" or urgent["next"] is not None
    # A cursor of one selection is refused by another.
    refused = await tv.get(f"/api/v1/alarms?state=all&cursor={urgent['next']}", headers=headers)
    assert refused.status == 400 and (await refused.json())["field"] == "cursor"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/v1/alarms?limit=0", None, 400),
        ("GET", "/api/v1/alarms?limit=1001", None, 400),
        ("GET", "/api/v1/alarms?limit=ten", None, 400),
        ("GET", "/api/v1/alarms?state=open'--", None, 400),
        ("GET", "/api/v1/alarms?cursor=" + "A" * 300, None, 400),
        ("GET", "/api/v1/alarms?cursor=eyJvIjoibmV3ZXN0IiwiayI6WyIxIG9yIDE9MSJdfQ", None, 400),
        ("GET", "/api/v1/alarms/1%20OR%201=1", None, 404),
        ("GET", "/api/v1/alarms/99999999999999999999", None, 404),
        ("GET", "/api/v1/alarms/-1", None, 404),
        ("POST", "/api/v1/alarms/1/actions", b"{not json", 400),
        ("POST", "/api/v1/alarms/1/actions", b'{"action": "delete"}', 400),
        ("POST", "/api/v1/alarms/1/actions", b'{"action": "resolve", "by": "x"}', 400),
        (
            "POST",
            "/api/v1/alarms/1/actions",
            b'{"action": "resolve", "note": "' + b"x" * 1001 + b'"}',
            400,
        ),
        ("POST", "/api/v1/alarms/1/actions", b'{"action": "resolve", "note": "a\\u0000b"}', 400),
        ("POST", "/api/v1/alarms/1/actions", b"[]", 400),
        ("POST", "/api/v1/alarms/1/actions", b"x" * (2 * 1024 * 1024), 413),
        ("PUT", "/api/v1/alarms", b"{}", 405),
        ("GET", "/api/v1/nothing-here", None, 404),
    ],
)
async def test_hostile_requests_get_a_clear_json_refusal(
    tv: Client, demo_dir: Path, method: str, path: str, body: bytes | None, status: int
) -> None:
    await raise_alarm(tv, "qilong-001")
    headers = {**await bearer(tv, demo_dir, "xinjin-centre"), "Content-Type": "application/json"}
    data = io.BytesIO(body) if body is not None and len(body) > 1024 else body
    response = await tv.request(method, path, data=data, headers=headers)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    assert "error" in await response.json()


async def test_a_household_box_cannot_use_staff_endpoints(paired: Client) -> None:
    """The TV's cookie names a household, never a staff member."""
    for path in ("/api/v1/alarms", "/api/v1/events", "/api/v1/session"):
        assert (await paired.get(path)).status == 401
    response = await paired.get("/centre/", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/centre/login")
    forged = await paired.get("/api/v1/alarms", headers={"Authorization": "Bearer " + "a" * 43})
    assert forged.status == 401


async def test_console_cookie_needs_the_csrf_header_to_write(tv: Client, demo_dir: Path) -> None:
    """A browser sends the console cookie to any request a hostile page makes; writes
    through the API with that cookie need the page's CSRF token too."""
    alarm = await raise_alarm(tv, "fenghuo-001")
    response = await tv.post(
        "/centre/login",
        data={"username": "fenghuo-duty", "password": demo_password(demo_dir, "fenghuo-duty")},
        allow_redirects=False,
    )
    assert response.status == 303
    cookie = response.cookies["xl_staff"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert (await tv.get("/api/v1/alarms")).status == 200  # reading is fine
    forged = await tv.post(f"/api/v1/alarms/{alarm}/actions", json={"action": "resolve"})
    assert forged.status == 403
    page = await (await tv.get(f"/centre/alarms/{alarm}")).text()
    token = page.split('name="csrf" value="')[1].split('"')[0]
    allowed = await tv.post(
        f"/api/v1/alarms/{alarm}/actions",
        json={"action": "acknowledge"},
        headers={"X-CSRF-Token": token},
    )
    assert (await allowed.json())["state"] == "acknowledged"


async def test_events_arrive_live_and_resume_after_a_disconnect(tv: Client, demo_dir: Path) -> None:
    """Every change in scope is pushed; a console that lost its connection gets what
    it missed by its last event id, and nothing from another town."""
    headers = await bearer(tv, demo_dir, "puxing-centre")
    response = await tv.get("/api/v1/events", headers=headers)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = EventReader(response)
    hello = await events.until("hello")
    assert hello.id is not None
    await raise_alarm(tv, "anxicun-002")  # another town: never shown here
    alarm = await raise_alarm(tv, "qilong-001", "fire")
    raised = await events.until("alarm")
    assert raised.data["alarm"] == alarm and raised.data["changes"] == ["raised"]
    assert raised.data["household"]["name"] == "王德明家"
    response.close()

    service = tv.app[ALARMS]
    await service.act(alarm, "acknowledge", by="普兴镇值班员", source="test")
    await service.act(alarm, "dispatch", by="普兴镇值班员", source="test")
    assert raised.id is not None
    resumed = await tv.get("/api/v1/events", headers={**headers, "Last-Event-ID": str(raised.id)})
    events = EventReader(resumed)
    missed = await events.next()
    assert missed.event == "alarm" and missed.data["state"] == "dispatched"
    assert missed.data["changes"] == ["acknowledged", "dispatched"]
    assert (await events.next()).event == "hello"
    await service.act(alarm, "resolve", by="普兴镇值班员", source="test")
    live = await events.until("alarm")
    assert live.data["state"] == "resolved" and live.id is not None and live.id > missed.id  # type: ignore[operator]
    resumed.close()


async def test_many_followers_all_get_every_event(tv: Client, demo_dir: Path) -> None:
    headers = await bearer(tv, demo_dir, "xinjin-centre")
    readers = []
    for _ in range(20):
        reader = EventReader(await tv.get("/api/v1/events", headers=headers))
        await reader.until("hello")
        readers.append(reader)
    alarm = await raise_alarm(tv, "fenghuo-002", "medical")
    got = await asyncio.gather(*(r.until("alarm", alarm=alarm) for r in readers))
    assert len({e.id for e in got}) == 1
    for reader in readers:
        reader.response.close()


async def test_openapi_document_describes_every_route(tv: Client) -> None:
    document = await (await tv.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    assert set(paths) == {
        "/session", "/alarms", "/alarms/{id}", "/alarms/{id}/actions", "/events",
        "/openapi.json",
    }  # fmt: skip
    assert paths["/alarms"]["get"]["parameters"][1]["schema"]["maximum"] == 1000
    alarm_schema = document["components"]["schemas"]["Alarm"]
    assert set(alarm_schema["required"]) >= {"alarm", "state", "level", "household", "cameras"}


async def test_a_stream_ends_when_its_session_does(
    tv: Client, demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signing out (or disabling the account) also ends an open event stream."""
    monkeypatch.setattr(events_module, "RECHECK_SESSION_S", 0.2)
    tv.app[auth.SESSIONS].seconds = 0.05
    tv.app[FEED].keepalive_s = 0.1
    tv.app[FEED].wake()
    headers = await bearer(tv, demo_dir, "qilong-duty")
    reader = EventReader(await tv.get("/api/v1/events", headers=headers))
    await reader.until("hello")
    assert (await tv.delete("/api/v1/session", headers=headers)).status == 204
    with pytest.raises(EOFError):
        await reader.next(timeout=3)
