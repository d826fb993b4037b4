"""geography, households, devices, staff, cameras

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "counties",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counties")),
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=64), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('village', 'town', 'county')", name=op.f("ck_staff_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_username")),
    )
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_scope_id"), ["scope_id"], unique=False)

    op.create_table(
        "towns",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("county_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["county_id"], ["counties.id"], name=op.f("fk_towns_county_id_counties")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_towns")),
    )
    with op.batch_alter_table("towns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_towns_county_id"), ["county_id"], unique=False)

    op.create_table(
        "villages",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("town_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["town_id"], ["towns.id"], name=op.f("fk_villages_town_id_towns")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_villages")),
    )
    with op.batch_alter_table("villages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_villages_town_id"), ["town_id"], unique=False)

    op.create_table(
        "cameras",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("profile", sa.String(length=32), server_default="stb", nullable=False),
        sa.Column("public", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("masks", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_cameras_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
    )
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cameras_village_id"), ["village_id"], unique=False)

    op.create_table(
        "grids",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("worker_name", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_grids_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grids")),
    )
    with op.batch_alter_table("grids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grids_village_id"), ["village_id"], unique=False)

    op.create_table(
        "households",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=False),
        sa.Column("grid_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=200), server_default="", nullable=False),
        sa.Column("phone", sa.String(length=32), server_default="", nullable=False),
        sa.Column("members", sa.Integer(), server_default="1", nullable=False),
        sa.Column("pair_token_hash", sa.String(length=64), nullable=True),
        sa.Column("pair_token_issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("members >= 0 AND members <= 99", name=op.f("ck_households_members")),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name=op.f("fk_households_grid_id_grids")
        ),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_households_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_households")),
        sa.UniqueConstraint("pair_token_hash", name=op.f("uq_households_pair_token_hash")),
    )
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_households_grid_id"), ["grid_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_households_village_id"), ["village_id"], unique=False)

    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), server_default="button", nullable=False),
        sa.Column("credentials_hash", sa.String(length=200), nullable=False),
        sa.Column("heartbeat_interval_s", sa.Integer(), server_default="3600", nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("battery", sa.Integer(), nullable=True),
        sa.Column("rssi", sa.Integer(), nullable=True),
        sa.Column("firmware", sa.String(length=64), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "battery IS NULL OR (battery >= 0 AND battery <= 100)", name=op.f("ck_devices_battery")
        ),
        sa.CheckConstraint("heartbeat_interval_s > 0", name=op.f("ck_devices_heartbeat_interval")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_devices_household_id_households")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_household_id"), ["household_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_household_id"))

    op.drop_table("devices")
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_households_village_id"))
        batch_op.drop_index(batch_op.f("ix_households_grid_id"))

    op.drop_table("households")
    with op.batch_alter_table("grids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grids_village_id"))

    op.drop_table("grids")
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cameras_village_id"))

    op.drop_table("cameras")
    with op.batch_alter_table("villages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_villages_town_id"))

    op.drop_table("villages")
    with op.batch_alter_table("towns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_towns_county_id"))

    op.drop_table("towns")
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_scope_id"))

    op.drop_table("staff")
    op.drop_table("counties")
