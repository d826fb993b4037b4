"""The first domain services on both backends: places, households, devices, staff,
cameras, with the hostile values an operator's typo or an attacker brings."""

from __future__ import annotations

import pytest

from xueliang import cameras, credentials, devices, geography, households, staff
from xueliang.errors import AlreadyExists, InvalidCredentials, InvalidInput, NotFound
from xueliang.storage import Database

HOSTILE_IDS = ["", "a/b", "dev+", "dev#", "../etc", "has space", "x" * 65, "dev:1", "设备", "-lead"]


async def test_geography_chain(county: Database) -> None:
    async with county.read() as conn:
        village = await geography.get_village(conn, "qilong")
        assert (village.town, village.county) == ("puxing", "xinjin")
        with pytest.raises(NotFound):
            await geography.get_village(conn, "nowhere")
    with pytest.raises(NotFound):
        async with county.transaction() as conn:
            await geography.put_village(conn, "v2", "V", "no-such-town")


async def test_household_pairing_token(county: Database) -> None:
    """Only the current pairing link binds a TV; re-issuing kills the old one."""
    async with county.transaction() as conn:
        new = await households.add(conn, village="qilong", name="王家", id="qilong-9")
        assert new.pair_url.startswith("/tv/pair/") and len(new.pair_token) >= 40
        assert (await households.by_pair_token(conn, new.pair_token)).id == "qilong-9"
        fresh = await households.reissue_pair_token(conn, "qilong-9")
        with pytest.raises(NotFound):
            await households.by_pair_token(conn, new.pair_token)
        assert await households.pair_token_matches(conn, "qilong-9", fresh)
        with pytest.raises(NotFound):
            await households.reissue_pair_token(conn, "qilong-404")
        with pytest.raises(AlreadyExists):
            await households.add(conn, village="qilong", name="again", id="qilong-9")


async def test_household_tokens_are_not_stored_in_clear(county: Database) -> None:
    from sqlalchemy import select

    from xueliang.storage.tables import households as table

    async with county.transaction() as conn:
        new = await households.add(conn, village="qilong", name="王家")
        stored = (await conn.execute(select(table.c.pair_token_hash))).scalar_one()
    assert new.pair_token not in stored and stored == credentials.token_hash(new.pair_token)


@pytest.mark.parametrize("bad", HOSTILE_IDS)
async def test_hostile_ids_are_refused(county: Database, bad: str) -> None:
    """Ids become MQTT topic levels and file names: no wildcards, separators or spaces."""
    async with county.transaction() as conn:
        with pytest.raises(InvalidInput):
            await households.add(conn, village="qilong", name="x", id=bad or "-")
        await households.add(conn, village="qilong", name="ok", id="h1")
        with pytest.raises(InvalidInput):
            await devices.add(conn, household="h1", id=bad or "-")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "x" * 101),
        ("name", "王\x00家"),
        ("name", "line\nbreak"),
        ("address", "a" * 201),
        ("phone", "13800000000; rm -rf /"),
        ("members", -1),
        ("members", 1000),
    ],
)
async def test_household_fields_are_validated(county: Database, field: str, value: object) -> None:
    values: dict[str, object] = {"village": "qilong", "name": "王家"} | {field: value}
    async with county.transaction() as conn:
        with pytest.raises(InvalidInput) as e:
            await households.add(conn, **values)  # type: ignore[arg-type]
    assert e.value.field == field


async def test_markup_is_stored_as_plain_text(county: Database) -> None:
    """HTML in a name is data, not markup: stored as typed (pages escape it)."""
    name = "<script>alert(1)</script>'; DROP TABLE households;--"
    async with county.transaction() as conn:
        new = await households.add(conn, village="qilong", name=name, id="h-x")
        assert (await conn.run_sync(households.get, "h-x")).name == name
    assert new.household.name == name


async def test_unknown_village_refused(county: Database) -> None:
    async with county.transaction() as conn:
        with pytest.raises(NotFound):
            await households.add(conn, village="nowhere", name="x")


async def test_device_credentials(county: Database) -> None:
    """The device's MQTT password is shown once and kept only as a Mosquitto hash."""
    async with county.transaction() as conn:
        await households.add(conn, village="qilong", name="王家", id="h1")
        new = await devices.add(conn, household="h1")
        assert new.device.id.startswith("btn-") and len(new.password) >= 20
        assert await devices.password_matches(conn, new.device.id, new.password)
        assert not await devices.password_matches(conn, new.device.id, new.password + "x")
        assert not await devices.password_matches(conn, "btn-absent", new.password)
        with pytest.raises(AlreadyExists):
            await devices.add(conn, household="h1", id=new.device.id)
        with pytest.raises(NotFound):
            await devices.add(conn, household="h-absent")
        replaced = await devices.set_password(conn, new.device.id)
        assert await devices.password_matches(conn, new.device.id, replaced)
        assert not await devices.password_matches(conn, new.device.id, new.password)


async def test_staff_scope_must_exist_at_its_level(county: Database) -> None:
    """A town account needs a town id: a village id there would widen nothing silently."""
    async with county.transaction() as conn:
        with pytest.raises(NotFound):
            await staff.add(
                conn, username="u1", role="town", scope="qilong", password="long-enough-pw"
            )
        with pytest.raises(InvalidInput):
            await staff.add(
                conn, username="u1", role="admin", scope="xinjin", password="long-enough-pw"
            )
        with pytest.raises(InvalidInput):
            await staff.add(conn, username="u1", role="county", scope="xinjin", password="short")
        account = await staff.add(
            conn, username="u1", role="town", scope="puxing", password="long-enough-pw"
        )
        assert (account.role, account.scope) == ("town", "puxing")
        with pytest.raises(AlreadyExists):
            await staff.add(
                conn, username="u1", role="county", scope="xinjin", password="long-enough-pw"
            )


async def test_staff_sign_in(county: Database) -> None:
    async with county.transaction() as conn:
        await staff.add(conn, username="duty", role="village", scope="qilong", password="p" * 12)
        assert (await staff.authenticate(conn, "duty", "p" * 12)).scope == "qilong"
        for username, password in (("duty", "p" * 11), ("nobody", "p" * 12), ("duty", "")):
            with pytest.raises(InvalidCredentials):
                await staff.authenticate(conn, username, password)


def test_staff_passwords_use_argon2id() -> None:
    stored = credentials.hash_staff_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert credentials.verify_staff_password(stored, "correct horse")
    assert not credentials.verify_staff_password(stored, "wrong horse")
    assert not credentials.verify_staff_password("garbage", "correct horse")


async def test_camera_source_is_kept_secret(county: Database) -> None:
    async with county.transaction() as conn:
        camera = await cameras.add(
            conn,
            id="gate",
            name="村口",
            village="qilong",
            url="rtsp://admin:hunter2@10.0.0.5:554/stream1",
            masks=(cameras.parse_mask("0.1,0.1,0.2,0.3"), cameras.parse_mask("0,0.5,1,0.5,blur")),
        )
        assert "hunter2" not in camera.display_url and "10.0.0.5" in camera.display_url
        stored = await cameras.get(conn, "gate")
        assert stored.source_url.endswith("hunter2@10.0.0.5:554/stream1")
        assert [m.fill for m in stored.masks] == ["black", "blur"]
        assert [c.id for c in await cameras.in_village(conn, "qilong")] == ["gate"]
        with pytest.raises(AlreadyExists):
            await cameras.add(conn, id="gate", name="x", village="qilong", url="testsrc://")


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "ftp://h/x", "rtsp:///nohost", "file://", "http://h/a b", ""]
)
async def test_camera_urls_are_validated(county: Database, url: str) -> None:
    async with county.transaction() as conn:
        with pytest.raises(InvalidInput):
            await cameras.add(conn, id="c", name="x", village="qilong", url=url)


@pytest.mark.parametrize(
    "spec", ["0.1,0.1,0.2", "a,b,c,d", "0.9,0,0.2,0.1", "0,0,0,1", "-0.1,0,0.5,0.5", "0,0,1,1,pink"]
)
def test_bad_masks(spec: str) -> None:
    with pytest.raises(InvalidInput):
        cameras.parse_mask(spec)
