"""alarms, outbox, supervision events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_destination_id", ["destination", "id"], unique=False)

    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("household_id", sa.String(length=64), nullable=True),
        sa.Column("village_id", sa.String(length=64), nullable=True),
        sa.Column("town_id", sa.String(length=64), nullable=True),
        sa.Column("unregistered", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("presses", sa.Integer(), server_default="1", nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("battery", sa.Integer(), nullable=True),
        sa.Column("device_ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_by", sa.String(length=100), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.Column("escalate_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("level IN ('town', 'county')", name=op.f("ck_alarms_level")),
        sa.CheckConstraint(
            "state IN ('received', 'acknowledged', 'dispatched', 'resolved', 'false_alarm', "
            "'cancelled')",
            name=op.f("ck_alarms_state"),
        ),
        sa.CheckConstraint("presses >= 1", name=op.f("ck_alarms_presses")),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.id"], name=op.f("fk_alarms_household_id_households")
        ),
        sa.ForeignKeyConstraint(["town_id"], ["towns.id"], name=op.f("fk_alarms_town_id_towns")),
        sa.ForeignKeyConstraint(
            ["village_id"], ["villages.id"], name=op.f("fk_alarms_village_id_villages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarms_escalate_at"), ["escalate_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_town_id"), ["town_id"], unique=False)
        batch_op.create_index(
            "uq_alarms_open_household",
            ["household_id"],
            unique=True,
            sqlite_where=sa.text("state IN ('received', 'acknowledged', 'dispatched')"),
            postgresql_where=sa.text("state IN ('received', 'acknowledged', 'dispatched')"),
        )

    op.create_table(
        "alarm_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alarm_id"], ["alarms.id"], name=op.f("fk_alarm_events_alarm_id_alarms")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_events")),
    )
    with op.batch_alter_table("alarm_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarm_events_alarm_id"), ["alarm_id"], unique=False)

    op.create_table(
        "alarm_messages",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alarm_id"], ["alarms.id"], name=op.f("fk_alarm_messages_alarm_id_alarms")
        ),
        sa.PrimaryKeyConstraint("device_id", "message_id", name=op.f("pk_alarm_messages")),
    )
    with op.batch_alter_table("alarm_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarm_messages_alarm_id"), ["alarm_id"], unique=False)

    op.create_table(
        "supervision_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.String(length=200), server_default="", nullable=False),
        sa.CheckConstraint(
            "kind IN ('offline', 'online', 'low_battery')", name=op.f("ck_supervision_events_kind")
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_supervision_events_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_events")),
    )
    with op.batch_alter_table("supervision_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_supervision_events_device_id"), ["device_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("supervision_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_supervision_events_device_id"))

    op.drop_table("supervision_events")
    with op.batch_alter_table("alarm_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alarm_messages_alarm_id"))

    op.drop_table("alarm_messages")
    with op.batch_alter_table("alarm_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alarm_events_alarm_id"))

    op.drop_table("alarm_events")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alarms_open_household",
            sqlite_where=sa.text("state IN ('received', 'acknowledged', 'dispatched')"),
            postgresql_where=sa.text("state IN ('received', 'acknowledged', 'dispatched')"),
        )
        batch_op.drop_index(batch_op.f("ix_alarms_town_id"))
        batch_op.drop_index(batch_op.f("ix_alarms_escalate_at"))

    op.drop_table("alarms")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_destination_id")

    op.drop_table("outbox")
