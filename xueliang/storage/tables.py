"""The schema, as SQLAlchemy Core tables. Migrations in `migrations/` must match it
(a test compares them)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
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
