"""Staff sign-in and the audit log on each backend: sessions end when they should,
guessing is slowed down, and the log cannot be rewritten."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from xueliang import audit, staff, staff_sessions
from xueliang.errors import InvalidCredentials, Throttled
from xueliang.storage import Database
from xueliang.storage.tables import audit_log
from xueliang.storage.tables import staff as staff_table
from xueliang.storage.tables import staff_sessions as sessions_table
from xueliang.storage.types import utcnow

PASSWORD = "correct horse battery"


@pytest.fixture
async def officer(county: Database) -> Database:
    async with county.transaction() as conn:
        await staff.add(conn, username="puxing-duty", role="town", scope="puxing",
                        password=PASSWORD, display_name="普兴值班")  # fmt: skip
    return county


async def test_a_session_works_until_it_expires_or_the_account_is_disabled(
    officer: Database,
) -> None:
    signed = await staff_sessions.sign_in(
        officer, "puxing-duty", PASSWORD, kind="api", address="10.0.0.7"
    )
    found = await staff_sessions.session(officer, signed.token, "api")
    assert found is not None and found.scope.level == "town" and found.scope.id == "puxing"
    assert await staff_sessions.session(officer, signed.token, "console") is None  # other kind
    async with officer.transaction() as conn:
        await conn.execute(
            update(sessions_table).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await staff_sessions.session(officer, signed.token, "api") is None
    again = await staff_sessions.sign_in(officer, "puxing-duty", PASSWORD, kind="api", address="")
    async with officer.transaction() as conn:
        await conn.execute(update(staff_table).values(disabled=True))
    assert await staff_sessions.session(officer, again.token, "api") is None
    with pytest.raises(InvalidCredentials):
        await staff_sessions.sign_in(officer, "puxing-duty", PASSWORD, kind="api", address="")
    async with officer.read() as conn:  # expired sessions are swept on the next sign-in
        left = (await conn.execute(select(sessions_table.c.token_hash))).all()
    assert len(left) == 1


async def test_tokens_are_stored_only_as_hashes(officer: Database) -> None:
    signed = await staff_sessions.sign_in(
        officer, "puxing-duty", PASSWORD, kind="console", address=""
    )
    async with officer.read() as conn:
        stored = (await conn.execute(select(sessions_table.c.token_hash))).scalar_one()
    assert signed.token not in stored and len(stored) == 64


async def test_throttling_grows_and_counts_addresses(
    officer: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(staff_sessions.FREE_FAILURES):
        with pytest.raises(InvalidCredentials):
            await staff_sessions.sign_in(officer, "puxing-duty", "wrong-wrong", kind="api",
                                         address="192.0.2.1")  # fmt: skip
    with pytest.raises(Throttled) as first:  # even the right password waits, from there
        await staff_sessions.sign_in(
            officer, "puxing-duty", PASSWORD, kind="api", address="192.0.2.1"
        )
    assert 25 <= first.value.retry_after_s <= 30
    # A stranger guessing cannot lock the duty officer out at the duty room's machine.
    await staff_sessions.sign_in(officer, "puxing-duty", PASSWORD, kind="api", address="10.0.0.7")
    # Many accounts tried from one address: the address waits too.
    monkeypatch.setattr(staff_sessions, "ADDRESS_FAILURES", 7)
    for name in ("a-user", "b-user"):
        with pytest.raises(InvalidCredentials):
            await staff_sessions.sign_in(officer, name, "wrong-wrong", kind="api",
                                         address="192.0.2.1")  # fmt: skip
    with pytest.raises(Throttled):
        await staff_sessions.sign_in(officer, "c-user", "whatever", kind="api", address="192.0.2.1")


async def test_the_audit_log_refuses_to_be_rewritten(officer: Database) -> None:
    await audit.record(officer, audit.Entry(actor="puxing-duty", action="alarm.resolve",
                                            target="1", address="10.0.0.7"))  # fmt: skip
    for statement in (update(audit_log).values(actor="someone-else"), delete(audit_log)):
        with pytest.raises(DBAPIError, match="append-only"):
            async with officer.transaction() as conn:
                await conn.execute(statement)
    async with officer.read() as conn:
        assert (await conn.execute(select(audit_log.c.actor))).scalars().all() == ["puxing-duty"]
