"""Alembic environment: always runs on a connection handed over by migrations_api."""

from alembic import context

from xueliang.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations with `xueliang db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
