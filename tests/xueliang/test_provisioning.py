"""Bulk device import from the county's roster: good rows go in, each bad row is named
by its line, and importing the same file again changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from xueliang import devices, households
from xueliang.errors import InvalidInput
from xueliang.provisioning import MAX_BYTES, import_devices
from xueliang.storage import Database
from xueliang.storage.tables import devices as devices_table
from xueliang.storage.tables import households as households_table

HEADER = "device,household,village,household_name,address,phone\n"


@pytest.fixture
async def county(county: Database) -> Database:
    """The shared county plus one household that already has a button."""
    async with county.transaction() as conn:
        await households.add(conn, village="qilong", name="老住户", id="h-old")
        await devices.add(conn, household="h-old", id="btn-taken")
    return county


ROSTER = (
    HEADER
    + "btn-1,h-1,qilong,王家,骑龙社区3组12号,028-8000-0101\n"  # line 2: new household
    + "btn-2,h-1,,,,\n"  # 3: second button of the same household
    + "btn-3,h-old,qilong,,,\n"  # 4: existing household
    + "bad/id,h-2,qilong,李家,,\n"  # 5: id with a topic separator
    + "btn-4,h-3,nowhere,张家,,\n"  # 6: unknown village
    + "btn-taken,h-1,qilong,王家,,\n"  # 7: device of another household
    + "btn-5,h-4,qilong,,,\n"  # 8: new household without a name
    + "btn-6,h-old,other,,,\n"  # 9: household is in another village
    + "btn-7,h-5,qilong\n"  # 10: too few fields
    + '"btn-8","h-6","qilong","陈家","多行\n地址",""\n'  # 11-12: a quoted newline (control char)
    + "btn-9,h-7,qilong,'; DROP TABLE devices;--,<b>x</b>,\n"  # 13: odd but valid text
    + "\n"  # blank line, ignored
    + "btn-1,h-1,qilong,王家,,\n"  # 15: repeated row, same household: fine
    + "btn-10,h-8,qilong,赵家,,13800000000; rm -rf /\n"  # 16: bad phone
)


async def counts(db: Database) -> tuple[int, int]:
    async with db.read() as conn:
        d = (await conn.execute(select(func.count()).select_from(devices_table))).scalar_one()
        h = (await conn.execute(select(func.count()).select_from(households_table))).scalar_one()
    return d, h


async def test_bad_rows_are_named_and_good_rows_imported(county: Database) -> None:
    report = await import_devices(county, ROSTER.encode())
    assert [e.line for e in report.errors] == [5, 6, 7, 8, 9, 10, 11, 16]
    reasons = {e.line: e.reason for e in report.errors}
    assert "device" in reasons[5]
    assert "unknown village nowhere" in reasons[6]
    assert "already belongs to household h-old" in reasons[7]
    assert "household_name" in reasons[8]
    assert "in village qilong, not other" in reasons[9]
    assert "fields" in reasons[10]
    assert "control characters" in reasons[11]
    assert "phone" in reasons[16]
    assert report.imported == 5
    assert sorted(d.device.id for d in report.devices) == ["btn-1", "btn-2", "btn-3", "btn-9"]
    assert report.households_created == 2
    async with county.read() as conn:
        for new in report.devices:
            assert await devices.password_matches(conn, new.device.id, new.password)
        assert (await conn.run_sync(households.get, "h-7")).name == "'; DROP TABLE devices;--"
        assert (await devices.get(conn, "btn-2")).household == "h-1"
    assert await counts(county) == (5, 3)


async def test_import_is_idempotent(county: Database) -> None:
    """Re-running a roster after fixing a few lines creates nothing twice."""
    first = await import_devices(county, ROSTER.encode())
    before = await counts(county)
    again = await import_devices(county, ROSTER.encode())
    assert await counts(county) == before
    assert again.devices == [] and again.imported == first.imported
    assert [e.line for e in again.errors] == [e.line for e in first.errors]


async def test_spreadsheet_encodings(county: Database) -> None:
    """Excel writes a BOM; Chinese WPS/Excel write GB18030 by default."""
    bom = ("\ufeff" + HEADER + "btn-a,h-a,qilong,王家,,\n").encode()
    gbk = (HEADER + "btn-b,h-b,qilong,李家,安西村2组,\n").encode("gb18030")
    assert (await import_devices(county, bom)).imported == 1
    assert (await import_devices(county, gbk)).imported == 1
    async with county.read() as conn:
        assert (await conn.run_sync(households.get, "h-b")).address == "安西村2组"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"device,household\nbtn-1,h-1\n",
        "设备,户,村,户名,地址,电话\n".encode(),
        b"\xff\xfe\x00\x00garbage",
        b"a" * (MAX_BYTES + 1),
    ],
)
async def test_unusable_files_are_refused_whole(county: Database, raw: bytes) -> None:
    before = await counts(county)
    with pytest.raises(InvalidInput):
        await import_devices(county, raw)
    assert await counts(county) == before


async def test_oversized_fields_do_not_pass(county: Database) -> None:
    raw = (HEADER + "btn-x,h-x,qilong," + "名" * 5000 + ",,\n").encode()
    report = await import_devices(county, raw)
    assert report.imported == 0 and report.errors[0].line == 2
