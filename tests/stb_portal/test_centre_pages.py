"""The staff console over HTTP: sign-in and out, the board, acting with forms (CSRF),
devices, statistics and the CSV export, and what forged or hostile requests get."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import select, update

from tests.stb_portal.conftest import Client, csrf_of
from tests.stb_portal.staff import demo_password, raise_alarm, sign_in
from xueliang.storage.tables import alarms, audit_log, devices
from xueliang.web import DATABASE


async def test_sign_in_page_and_the_way_back(tv: Client, demo_dir: Path) -> None:
    first = await tv.get("/centre/alarms/1", allow_redirects=False)
    assert unquote(first.headers["Location"]) == "/centre/login?next=/centre/alarms/1"
    form = await (await tv.get("/centre/login?next=/centre/devices")).text()
    assert 'name="password"' in form and 'value="/centre/devices"' in form
    response = await tv.post(
        "/centre/login",
        data={"username": "qilong-duty", "password": "not-the-password",
              "next": "/centre/devices"},
    )  # fmt: skip
    assert response.status == 401
    assert "用户名或密码错误" in await response.text()
    response = await tv.post(
        "/centre/login",
        data={"username": "qilong-duty", "password": demo_password(demo_dir, "qilong-duty"),
              "next": "/centre/devices"},
        allow_redirects=False,
    )  # fmt: skip
    assert response.headers["Location"] == "/centre/devices"


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/centre/\\evil", "/tv/", "/centre//x"]
)
async def test_sign_in_never_sends_people_elsewhere(
    tv: Client, demo_dir: Path, target: str
) -> None:
    response = await tv.post(
        "/centre/login",
        data={"username": "qilong-duty", "password": demo_password(demo_dir, "qilong-duty"),
              "next": target},
        allow_redirects=False,
    )  # fmt: skip
    assert response.headers["Location"] == "/centre/"


async def test_throttled_sign_in_says_how_long_to_wait(tv: Client) -> None:
    for _ in range(5):
        await tv.post("/centre/login", data={"username": "fenghuo-duty", "password": "x" * 12})
    response = await tv.post(
        "/centre/login", data={"username": "fenghuo-duty", "password": "x" * 12}
    )
    assert response.status == 429
    assert re.search(r"请在 ?\d+ ?秒后再试", await response.text())


async def test_board_lists_open_alarms_most_urgent_first(tv: Client, demo_dir: Path) -> None:
    test = await raise_alarm(tv, "qilong-001", "test")
    fire = await raise_alarm(tv, "qilong-002", "fire")
    await raise_alarm(tv, "anxicun-001", "fire")  # another town
    await sign_in(tv, demo_dir, "puxing-centre")
    response = await tv.get("/centre/")
    page = await response.text()
    assert re.findall(r'id="alarm-(\d+)"', page) == [str(fire), str(test)]
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "王德明家" in page and "张国强家" not in page
    assert re.search(r'<script src="/centre/static/centre\.js\?v=\w+">', page)
    # The stream starts where the page was read: nothing raised meanwhile is missed.
    assert re.search(r'data-last-event="\d+"', page)


async def test_acting_with_forms(tv: Client, demo_dir: Path) -> None:
    alarm = await raise_alarm(tv, "anxicun-002", "medical")
    await sign_in(tv, demo_dir, "anxi-centre")
    page = await (await tv.get(f"/centre/alarms/{alarm}")).text()
    assert "陈桂兰家" in page and "028-8000-0202" in page
    csrf = csrf_of(page)
    response = await tv.post(
        f"/centre/alarms/{alarm}/act",
        data={"csrf": csrf, "action": "dispatch", "note": "村医已出发"},
        allow_redirects=False,
    )
    assert response.headers["Location"] == f"/centre/alarms/{alarm}"
    response = await tv.post(
        f"/centre/alarms/{alarm}/note", data={"csrf": csrf, "note": "家属已到场"},
        allow_redirects=False,
    )  # fmt: skip
    assert response.status == 303
    page = await (await tv.get(f"/centre/alarms/{alarm}")).text()
    assert "村医已出发" in page and "家属已到场" in page and "已派人" in page
    resolve = await tv.post(f"/centre/alarms/{alarm}/act", data={"csrf": csrf, "action": "resolve"})
    assert "已处理" in await resolve.text()
    again = await tv.post(
        f"/centre/alarms/{alarm}/act", data={"csrf": csrf, "action": "false_alarm"}
    )
    assert "already resolved" in await again.text()  # shown on the page, not a crash


@pytest.mark.parametrize(
    ("form", "headers"),
    [
        ({"action": "resolve"}, {}),
        ({"action": "resolve", "csrf": "forged-token-forged-token-forged"}, {}),
        ({"action": "resolve", "csrf": None}, {"Origin": "http://evil.example"}),
    ],
)
async def test_forms_without_this_sessions_csrf_token_are_refused(
    tv: Client, demo_dir: Path, form: dict[str, str | None], headers: dict[str, str]
) -> None:
    alarm = await raise_alarm(tv, "fenghuo-001")
    await sign_in(tv, demo_dir, "fenghuo-duty")
    csrf = csrf_of(await (await tv.get(f"/centre/alarms/{alarm}")).text())
    data = {k: (csrf if v is None else v) for k, v in form.items()}
    response = await tv.post(f"/centre/alarms/{alarm}/act", data=data, headers=headers)
    assert response.status == 403
    async with tv.app[DATABASE].read() as conn:
        state = (await conn.execute(select(alarms.c.state).where(alarms.c.id == alarm))).scalar()
    assert state == "received"


async def test_another_scopes_alarm_is_not_found(tv: Client, demo_dir: Path) -> None:
    alarm = await raise_alarm(tv, "qilong-001")
    await sign_in(tv, demo_dir, "fenghuo-duty")
    assert (await tv.get(f"/centre/alarms/{alarm}")).status == 404
    page = await (await tv.get("/centre/")).text()
    response = await tv.post(
        f"/centre/alarms/{alarm}/act", data={"csrf": csrf_of(page), "action": "resolve"}
    )
    assert response.status == 404
    for hostile in ("abc", "1%3Bdrop", "9" * 30):
        assert (await tv.get(f"/centre/alarms/{hostile}")).status == 404


async def test_sign_out_needs_the_form_and_ends_the_session(tv: Client, demo_dir: Path) -> None:
    await sign_in(tv, demo_dir, "qilong-duty")
    page = await (await tv.get("/centre/")).text()
    assert (await tv.post("/centre/logout", data={})).status == 403  # no CSRF: stays
    response = await tv.post("/centre/logout", data={"csrf": csrf_of(page)}, allow_redirects=False)
    assert response.headers["Location"] == "/centre/login"
    assert (await tv.get("/centre/", allow_redirects=False)).status == 303


async def test_devices_that_need_a_visit(tv: Client, demo_dir: Path) -> None:
    async with tv.app[DATABASE].transaction() as conn:
        await conn.execute(
            update(devices).where(devices.c.id == "btn-qilong-002").values(online=False)
        )
        await conn.execute(
            update(devices).where(devices.c.id == "btn-qilong-001").values(battery=9, online=True)
        )
        await conn.execute(
            update(devices).where(devices.c.id == "btn-anxicun-001").values(online=False)
        )
    await sign_in(tv, demo_dir, "puxing-centre")
    page = await (await tv.get("/centre/devices")).text()
    assert "btn-qilong-002" in page and "btn-qilong-001" in page and "9 %" in page
    assert "btn-anxicun-001" not in page  # another town's


async def test_statistics_page_and_csv_export(tv: Client, demo_dir: Path) -> None:
    alarm = await raise_alarm(tv, "qilong-001", "fire")
    await raise_alarm(tv, "anxicun-001", "medical")
    await sign_in(tv, demo_dir, "puxing-centre")
    page = await (await tv.get("/centre/stats")).text()
    assert page.count("<svg") == 3 and 'role="img"' in page
    assert "骑龙社区" in page and "安西村" not in page
    csv_link = re.search(r'id="csv" href="([^"]+)"', page)
    assert csv_link is not None
    response = await tv.get(csv_link.group(1).replace("&amp;", "&"))
    assert response.headers["Content-Type"].startswith("text/csv")
    body = (await response.read()).decode("utf-8")
    assert body.startswith("\ufeffid,")
    lines = body.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"{alarm},")
    async with tv.app[DATABASE].read() as conn:
        exported = (
            (
                await conn.execute(
                    select(audit_log.c.actor).where(audit_log.c.action == "export.alarms_csv")
                )
            )
            .scalars()
            .all()
        )
    assert exported == ["puxing-centre"]
    for query in ("from=2026-13", "from=../../etc", "from=2026-05&to=2020-01", "from=1999-01"):
        response = await tv.get(f"/centre/stats?{query}")
        assert response.status == 400 and "problem" in await response.text()


async def test_console_speaks_english_when_asked(tv: Client, demo_dir: Path) -> None:
    await sign_in(tv, demo_dir, "qilong-duty")
    assert "报警" in await (await tv.get("/centre/")).text()
    await tv.get("/centre/lang/en?next=/centre/")
    page = await (await tv.get("/centre/")).text()
    assert "Open alarms, most urgent first" in page
    assert (await tv.get("/centre/lang/xx", allow_redirects=False)).status == 404


async def test_board_reload_and_forms_behind_a_tls_proxy(tv: Client, demo_dir: Path) -> None:
    """The board script reloads its list after a `reset` event; a form posted through a
    TLS-terminating proxy (Origin https, request http) is still this site's."""
    alarm = await raise_alarm(tv, "qilong-001", "medical")
    await sign_in(tv, demo_dir, "qilong-duty")
    listed = await (await tv.get("/centre/board.json")).json()
    assert [a["alarm"] for a in listed["alarms"]] == [alarm]
    page = await (await tv.get(f"/centre/alarms/{alarm}")).text()
    host = f"{tv.server.host}:{tv.server.port}"
    response = await tv.post(
        f"/centre/alarms/{alarm}/act",
        data={"csrf": csrf_of(page), "action": "acknowledge"},
        headers={"Origin": f"https://{host}"},
        allow_redirects=False,
    )
    assert response.status == 303
