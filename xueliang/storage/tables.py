"""The schema, as SQLAlchemy Core tables. Migrations in `migrations/` must match it
(a test compares them)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
    true,
)

from xueliang.storage.types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = 64  # length of every textual id (roster ids, device ids, place ids)
NAME = 100

counties = Table(
    "counties",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(NAME), nullable=False),
)

towns = Table(
    "towns",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("county_id", ForeignKey("counties.id"), nullable=False, index=True),
    Column("name", String(NAME), nullable=False),
)

villages = Table(
    "villages",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("town_id", ForeignKey("towns.id"), nullable=False, index=True),
    Column("name", String(NAME), nullable=False),
)

grids = Table(
    "grids",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("village_id", ForeignKey("villages.id"), nullable=False, index=True),
    Column("name", String(NAME), nullable=False),
    Column("worker_name", String(NAME)),
)

households = Table(
    "households",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("village_id", ForeignKey("villages.id"), nullable=False, index=True),
    Column("grid_id", ForeignKey("grids.id"), index=True),
    Column("name", String(NAME), nullable=False),
    Column("address", String(200), nullable=False, server_default=""),
    Column("phone", String(32), nullable=False, server_default=""),
    Column("members", Integer, nullable=False, server_default="1"),
    # Only a SHA-256 of the pairing token is stored: a leaked database pairs no box.
    Column("pair_token_hash", String(64), unique=True),
    Column("pair_token_issued_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("members >= 0 AND members <= 99", name="members"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("household_id", ForeignKey("households.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False, server_default="button"),
    # Mosquitto's own PBKDF2-SHA512 format, so `mosquitto-config` can write it as is.
    Column("credentials_hash", String(200), nullable=False),
    Column("heartbeat_interval_s", Integer, nullable=False, server_default="3600"),
    Column("last_seen_at", UtcDateTime),
    Column("battery", Integer),
    Column("rssi", Integer),
    Column("firmware", String(64)),
    Column("online", Boolean),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("battery IS NULL OR (battery >= 0 AND battery <= 100)", name="battery"),
    CheckConstraint("heartbeat_interval_s > 0", name="heartbeat_interval"),
)

staff = Table(
    "staff",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(ID), nullable=False, unique=True),
    Column("display_name", String(NAME), nullable=False, server_default=""),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    # A village, town or county id according to `role`; checked by the domain.
    Column("scope_id", String(ID), nullable=False, index=True),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", UtcDateTime, nullable=False),
    Column("password_changed_at", UtcDateTime, nullable=False),
    CheckConstraint("role IN ('village', 'town', 'county')", name="role"),
)

cameras = Table(
    "cameras",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(NAME), nullable=False),
    Column("village_id", ForeignKey("villages.id"), nullable=False, index=True),
    # May carry credentials: never logged, never shown; see xueliang.urls.redact_url.
    Column("source_url", Text, nullable=False),
    Column("profile", String(32), nullable=False, server_default="stb"),
    Column("public", Boolean, nullable=False, server_default=true()),
    Column("masks", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# --- alarms (the MQTT bridge and the TV raise them through xueliang.alarms) ---------

alarms = Table(
    "alarms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(16), nullable=False),
    Column("level", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("source", String(16), nullable=False),
    # No foreign key: an unregistered device's alarm is stored all the same.
    Column("device_id", String(ID)),
    Column("household_id", ForeignKey("households.id")),
    Column("village_id", ForeignKey("villages.id")),
    Column("town_id", ForeignKey("towns.id"), index=True),
    Column("unregistered", Boolean, nullable=False, server_default=false()),
    Column("presses", Integer, nullable=False, server_default="1"),
    Column("message_id", String(64)),
    Column("battery", Integer),
    Column("device_ts", UtcDateTime),
    Column("raised_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("acknowledged_at", UtcDateTime),
    Column("acknowledged_by", String(NAME)),
    Column("dispatched_at", UtcDateTime),
    Column("dispatched_by", String(NAME)),
    Column("closed_at", UtcDateTime),
    Column("closed_by", String(NAME)),
    # Stored deadline, so escalation survives restarts; NULL once acted on or escalated.
    Column("escalate_at", UtcDateTime, index=True),
    Column("escalated_at", UtcDateTime),
    CheckConstraint(
        "state IN ('received', 'acknowledged', 'dispatched', 'resolved', 'false_alarm', "
        "'cancelled')",
        name="state",
    ),
    CheckConstraint("level IN ('town', 'county')", name="level"),
    CheckConstraint("presses >= 1", name="presses"),
    # At most one open alarm per household, whichever process raises it: a second
    # press anywhere joins it (the loser of a race retries and joins).
    Index(
        "uq_alarms_open_household",
        "household_id",
        unique=True,
        sqlite_where=text("state IN ('received', 'acknowledged', 'dispatched')"),
        postgresql_where=text("state IN ('received', 'acknowledged', 'dispatched')"),
    ),
)

alarm_messages = Table(
    "alarm_messages",
    metadata,
    # (device, message id) of every alarm message ever stored: resends are dropped.
    Column("device_id", String(ID), primary_key=True),
    Column("message_id", String(64), primary_key=True),
    Column("alarm_id", ForeignKey("alarms.id"), nullable=False, index=True),
    Column("received_at", UtcDateTime, nullable=False),
)

alarm_events = Table(
    "alarm_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alarm_id", ForeignKey("alarms.id"), nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    Column("action", String(24), nullable=False),
    Column("actor", String(NAME), nullable=False),
    Column("source", String(24), nullable=False),
    Column("note", Text),
)

outbox = Table(
    "outbox",
    metadata,
    # Messages to publish, in id order per destination, deleted only after PUBACK.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("destination", String(ID), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_outbox_destination_id", "destination", "id"),
)

supervision_events = Table(
    "supervision_events",
    metadata,
    # Device offline / back online / low battery: low priority, never in the alarm queue.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", ForeignKey("devices.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("detail", String(200), nullable=False, server_default=""),
    CheckConstraint("kind IN ('offline', 'online', 'low_battery')", name="kind"),
)

# --- legal information -------------------------------------------------------------

law_articles = Table(
    "law_articles",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("lang", String(8), primary_key=True),
    Column("category", String(16), nullable=False, index=True),
    Column("title", String(NAME), nullable=False),
    Column("summary", String(300), nullable=False, server_default=""),
    Column("body", Text, nullable=False),  # paragraphs separated by blank lines
    Column("law", String(300), nullable=False, server_default=""),
    Column("in_force", Date, nullable=False),
    Column("reviewed", Date, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("lang IN ('zh_CN', 'en')", name="lang"),
)

# --- TV boxes waiting to be paired by the village duty centre -----------------------

tv_pairings = Table(
    "tv_pairings",
    metadata,
    # The short code the box shows; staff bind it to a household (CLI or console).
    Column("code", String(8), primary_key=True),
    # Only the box that holds the secret behind this hash gets the household's session.
    Column("box_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("household_id", ForeignKey("households.id")),
    Column("bound_by", String(NAME)),
    Column("bound_at", UtcDateTime),
)

# --- staff sessions and the audit log ------------------------------------------------

staff_sessions = Table(
    "staff_sessions",
    metadata,
    # Only a SHA-256 of the session token is stored: a leaked database signs no one in.
    Column("token_hash", String(64), primary_key=True),
    Column("staff_id", ForeignKey("staff.id"), nullable=False, index=True),
    Column("kind", String(8), nullable=False),
    Column("address", String(64), nullable=False, server_default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    CheckConstraint("kind IN ('console', 'api')", name="kind"),
)

audit_log = Table(
    "audit_log",
    metadata,
    # Append-only (triggers refuse UPDATE and DELETE): who did what, when, from where.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("actor", String(NAME), nullable=False),
    Column("staff_id", ForeignKey("staff.id")),
    Column("action", String(32), nullable=False),
    Column("target", String(NAME), nullable=False, server_default=""),
    Column("address", String(64), nullable=False, server_default=""),
    Column("detail", Text),
    # Sign-in throttling counts recent failures by account and by address.
    Index("ix_audit_log_action_actor_at", "action", "actor", "at"),
    Index("ix_audit_log_action_address_at", "action", "address", "at"),
)
