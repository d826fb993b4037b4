"""Apply and check Alembic migrations from code (the CLI and every process at start)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from xueliang.errors import SchemaOutdated
from xueliang.storage.engine import Database

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant: PostgreSQL advisory lock that serialises concurrent upgrades.
_UPGRADE_LOCK = 0x584C_0001


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at our migrations, bound to `connection` if given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(db: Database) -> str | None:
    async with db.read() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def upgrade(db: Database, revision: str = "head") -> None:
    """Migrate to `revision`, one process at a time."""
    before = await current_revision(db)
    await _run(db, lambda cfg: command.upgrade(cfg, revision))
    after = await current_revision(db)
    if after != before:
        log.info("database schema upgraded from %s to %s", before or "empty", after)


async def downgrade(db: Database, revision: str) -> None:
    await _run(db, lambda cfg: command.downgrade(cfg, revision))


async def ensure_schema(db: Database, auto_upgrade: bool) -> None:
    """Upgrade, or (when upgrades are an operator's job) refuse to run on an old schema."""
    if auto_upgrade:
        await upgrade(db)
        return
    current, head = await current_revision(db), head_revision()
    if current != head:
        raise SchemaOutdated(
            f"database schema is at {current or 'empty'}, code needs {head}: "
            "run `xueliang db upgrade`"
        )


async def _run(db: Database, action: object) -> None:
    assert callable(action)

    def apply(sync: Connection) -> None:
        if db.backend == "postgresql":
            sync.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _UPGRADE_LOCK})
        action(alembic_config(sync))

    async with db.transaction() as conn:
        await conn.run_sync(apply)
