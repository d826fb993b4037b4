"""Storage: SQLAlchemy Core (async) over SQLite or PostgreSQL, with Alembic migrations."""

from xueliang.storage.engine import Database
from xueliang.storage.migrations_api import ensure_schema, upgrade

__all__ = ["Database", "ensure_schema", "upgrade"]
