"""The demo county of the source document (新津县), seeded idempotently.

Secrets of demo accounts are derived from the installation's secret key, so seeding
again prints the same passwords and links without ever storing them in clear; one
that an operator has changed since is printed as null.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, select

from xueliang import cameras, devices, geography, households, law, lawyers, polls, staff
from xueliang.geography import Scope
from xueliang.signing import derive
from xueliang.storage import Database
from xueliang.storage.tables import polls as polls_table
from xueliang.storage.types import utcnow

COUNTY = ("xinjin", "新津县")
TOWNS = (("puxing", "普兴镇"), ("anxi", "安西镇"), ("yongshang", "永商镇"))
VILLAGES = (
    ("qilong", "骑龙社区", "puxing"),
    ("anxicun", "安西村", "anxi"),
    ("fenghuo", "烽火社区", "yongshang"),
)
# (id, village, name, address, phone, members); phone numbers are fictitious.
HOUSEHOLDS = (
    ("qilong-001", "qilong", "王德明家", "骑龙社区3组12号", "028-8000-0101", 4),
    ("qilong-002", "qilong", "李秀英家", "骑龙社区5组3号", "028-8000-0102", 1),
    ("anxicun-001", "anxicun", "张国强家", "安西村2组8号", "028-8000-0201", 3),
    ("anxicun-002", "anxicun", "陈桂兰家", "安西村7组21号", "028-8000-0202", 2),
    ("fenghuo-001", "fenghuo", "刘建华家", "烽火社区1组5号", "028-8000-0301", 5),
    ("fenghuo-002", "fenghuo", "赵淑芬家", "烽火社区4组17号", "028-8000-0302", 1),
)
# (username, role, scope, display name)
STAFF = (
    ("xinjin-centre", "county", "xinjin", "新津县综治中心"),
    ("puxing-centre", "town", "puxing", "普兴镇综治中心"),
    ("anxi-centre", "town", "anxi", "安西镇综治中心"),
    ("yongshang-centre", "town", "yongshang", "永商镇综治中心"),
    ("qilong-duty", "village", "qilong", "骑龙社区值守室"),
    ("anxicun-duty", "village", "anxicun", "安西村值守室"),
    ("fenghuo-duty", "village", "fenghuo", "烽火社区值守室"),
)
CAMERAS = (("qilong-square", "骑龙社区广场", "qilong", "testsrc://"),)
# Family lawyers (fictitious people and firms): weekdays, with a lunch break.
_WEEK = [
    {"weekday": day, "start": start, "end": end}
    for day in range(5)
    for start, end in (("09:00", "12:00"), ("14:00", "17:00"))
]
LAWYERS = (
    {
        "id": "lawyer-zhou", "name": "周文静", "firm": "新津明理律师事务所",
        "phone": "028-8000-1001", "practice": "婚姻家庭、土地承包、劳动争议",
        "villages": ["qilong", "anxicun"], "plan": _WEEK,
    },
    {
        "id": "lawyer-he", "name": "何建平", "firm": "新津安平律师事务所",
        "phone": "028-8000-1002", "practice": "合同债务、继承、消费维权",
        "villages": ["fenghuo"],
        "plan": [{**p, "village": "fenghuo"} for p in _WEEK if p["weekday"] in (1, 3)],
        "slot_minutes": 45,
    },
)  # fmt: skip
# Polls open for a month from the first seeding: one village's, one town's.
POLLS = (
    {
        "title": "村口路灯装在哪里？", "village": "qilong",
        "description": "村委会计划今年在村口加装路灯，请选择您认为最需要的位置。",
        "questions": [{"text": "路灯最需要装在：", "options": [
            "村口公交站", "文化广场", "3组桥头", "卫生室门口"]}],
    },
    {
        "title": "普兴镇冬季文化活动征询", "town": "puxing",
        "description": "镇文化站准备冬季活动，请选出您家最想参加的（最多两项）。",
        "questions": [{"text": "您家想参加的活动：", "max_choices": 2, "options": [
            "坝坝电影", "川剧演出", "健康讲座", "法律知识讲座", "广场舞比赛"]}],
    },
)  # fmt: skip


async def seed(db: Database, key: bytes) -> dict[str, Any]:
    """Create whatever of the demo county is missing and describe all of it."""
    out: dict[str, Any] = {"county": COUNTY[0]}
    async with db.transaction() as conn:
        await geography.put_county(conn, *COUNTY)
        for id, name in TOWNS:
            await geography.put_town(conn, id, name, COUNTY[0])
        for id, name, town in VILLAGES:
            await geography.put_village(conn, id, name, town)
            await geography.put_grid(conn, f"{id}-g1", f"{name}第一网格", id)
        out["towns"] = [{"id": id, "name": name} for id, name in TOWNS]
        out["villages"] = [{"id": id, "name": name, "town": town} for id, name, town in VILLAGES]

        out["households"] = []
        for id, village, name, address, phone, members in HOUSEHOLDS:
            token = derive(key, "demo-pair", id, length=43)
            if await conn.run_sync(households.find, id) is None:
                await households.add(
                    conn,
                    id=id,
                    village=village,
                    name=name,
                    address=address,
                    phone=phone,
                    members=members,
                    pair_token=token,
                )
            current = await households.pair_token_matches(conn, id, token)
            url = households.pair_url(token) if current else None
            out["households"].append({"id": id, "name": name, "village": village, "pair_url": url})

        out["devices"] = []
        for household_id, *_ in HOUSEHOLDS:
            device_id = f"btn-{household_id}"
            password = derive(key, "demo-device", device_id)
            if await devices.find(conn, device_id) is None:
                await devices.add(conn, household=household_id, id=device_id, password=password)
            current = await devices.password_matches(conn, device_id, password)
            out["devices"].append(
                {
                    "id": device_id,
                    "household": household_id,
                    "username": device_id,
                    "password": password if current else None,
                }
            )

        out["staff"] = []
        for username, role, scope, display_name in STAFF:
            password = derive(key, "demo-staff", username, length=16)
            if await staff.find(conn, username) is None:
                await staff.add(
                    conn,
                    username=username,
                    role=role,
                    scope=scope,
                    password=password,
                    display_name=display_name,
                )
            current = await staff.password_matches(conn, username, password)
            out["staff"].append(
                {
                    "username": username,
                    "password": password if current else None,
                    "role": role,
                    "scope": scope,
                }
            )

        await law.seed_demo(conn)

        out["cameras"] = []
        for id, name, village, url in CAMERAS:
            if await cameras.find(conn, id) is None:
                await cameras.add(conn, id=id, name=name, village=village, url=url)
            out["cameras"].append({"id": id, "village": village})

        now = utcnow()
        for lawyer in LAWYERS:
            if await conn.run_sync(lawyers.find, str(lawyer["id"])) is None:
                await conn.run_sync(lawyers.put, lawyers.checked(dict(lawyer)), now)
        for poll in POLLS:
            await conn.run_sync(partial(_seed_poll, poll=poll, now=now))
    return out


def _seed_poll(conn: Connection, poll: dict[str, Any], now: Any) -> None:
    seeded = select(polls_table.c.id).where(polls_table.c.title == poll["title"])
    if conn.execute(seeded).first() is not None:
        return
    data = polls.checked({**poll, "opens_at": now, "closes_at": now + timedelta(days=30)})
    polls.create(conn, data, scope=Scope("county", COUNTY[0]), by="demo", now=now)
