"""The demo county of the source document (新津县), seeded idempotently.

Secrets of demo accounts are derived from the installation's secret key, so seeding
again prints the same passwords and links without ever storing them in clear; one
that an operator has changed since is printed as null.
"""

from __future__ import annotations

from typing import Any

from xueliang import cameras, devices, geography, households, law, staff
from xueliang.signing import derive
from xueliang.storage import Database

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
    return out
