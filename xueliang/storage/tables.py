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

# --- the family lawyer (一村一法律顾问) and bookings ----------------------------------

lawyers = Table(
    "lawyers",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(NAME), nullable=False),
    Column("firm", String(NAME), nullable=False, server_default=""),
    Column("phone", String(32), nullable=False, server_default=""),
    Column("practice", String(200), nullable=False, server_default=""),
    # Weekly working plan: [{"weekday": 0..6, "start": "HH:MM", "end": "HH:MM",
    # "village": id | null}], local time; the gaps between periods are the breaks.
    Column("plan", JSON, nullable=False),
    Column("slot_minutes", Integer, nullable=False, server_default="30"),
    Column("lead_minutes", Integer, nullable=False, server_default="120"),
    Column("window_days", Integer, nullable=False, server_default="14"),
    Column("cancel_cutoff_minutes", Integer, nullable=False, server_default="120"),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint(
        "slot_minutes >= 10 AND slot_minutes <= 240 AND slot_minutes % 5 = 0", name="slot"
    ),
    CheckConstraint("lead_minutes >= 0 AND lead_minutes <= 10080", name="lead"),
    CheckConstraint("window_days >= 1 AND window_days <= 90", name="window"),
    CheckConstraint("cancel_cutoff_minutes >= 0 AND cancel_cutoff_minutes <= 10080", name="cutoff"),
)

lawyer_villages = Table(
    "lawyer_villages",
    metadata,
    Column("lawyer_id", ForeignKey("lawyers.id"), primary_key=True),
    Column("village_id", ForeignKey("villages.id"), primary_key=True, index=True),
)

lawyer_absences = Table(
    "lawyer_absences",
    metadata,
    # Holidays and absences: a whole day, or part of it (minutes after local midnight).
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("lawyer_id", ForeignKey("lawyers.id"), nullable=False, index=True),
    Column("day", Date, nullable=False),
    Column("start_minute", Integer),
    Column("end_minute", Integer),
    Column("reason", String(NAME), nullable=False, server_default=""),
    Column("created_by", String(NAME), nullable=False),
    CheckConstraint(
        "(start_minute IS NULL AND end_minute IS NULL) OR "
        "(start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute)",
        name="span",
    ),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("lawyer_id", ForeignKey("lawyers.id"), nullable=False),
    Column("household_id", ForeignKey("households.id"), nullable=False),
    Column("village_id", ForeignKey("villages.id"), nullable=False, index=True),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("topic", String(16), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(NAME), nullable=False),
    Column("cancelled_at", UtcDateTime),
    Column("cancelled_by", String(NAME)),
    Column("cancel_reason", String(16)),
    Column("closed_at", UtcDateTime),
    Column("closed_by", String(NAME)),
    CheckConstraint("ends_at > starts_at", name="span"),
    CheckConstraint(
        "topic IN ('family', 'land', 'labour', 'debt', 'inheritance', 'other')", name="topic"
    ),
    CheckConstraint("channel IN ('tv', 'phone', 'visit')", name="channel"),
    CheckConstraint("state IN ('booked', 'cancelled', 'done', 'no_show')", name="state"),
    Index("ix_bookings_lawyer_id_starts_at", "lawyer_id", "starts_at"),
    Index("ix_bookings_household_id_starts_at", "household_id", "starts_at"),
)

lawyer_busy = Table(
    "lawyer_busy",
    metadata,
    # Every 5 minutes a live booking covers, one row each: the primary key makes two
    # overlapping bookings of one lawyer impossible, whatever their lengths, on both
    # backends and from any number of processes. Rows go when the booking is cancelled.
    Column("lawyer_id", ForeignKey("lawyers.id"), primary_key=True),
    Column("at", UtcDateTime, primary_key=True),
    Column("booking_id", ForeignKey("bookings.id"), nullable=False, index=True),
)

booking_notes = Table(
    "booking_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("booking_id", ForeignKey("bookings.id"), nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    Column("by", String(NAME), nullable=False),
    Column("text", Text, nullable=False),
)

# --- opinion polls (意见征询) -----------------------------------------------------------

polls = Table(
    "polls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # A village poll has both; a town poll only the town.
    Column("town_id", ForeignKey("towns.id"), nullable=False, index=True),
    Column("village_id", ForeignKey("villages.id"), index=True),
    Column("title", String(NAME), nullable=False),
    Column("description", String(300), nullable=False, server_default=""),
    Column("opens_at", UtcDateTime, nullable=False),
    Column("closes_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime),
    Column("results", String(16), nullable=False, server_default="after_close"),
    Column("lock_votes", Boolean, nullable=False, server_default=false()),
    Column("created_by", String(NAME), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("closes_at > opens_at", name="period"),
    CheckConstraint("results IN ('after_close', 'live')", name="results"),
)

poll_questions = Table(
    "poll_questions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("poll_id", ForeignKey("polls.id"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("text", String(200), nullable=False),
    Column("max_choices", Integer, nullable=False, server_default="1"),
    CheckConstraint("max_choices >= 1 AND max_choices <= 10", name="max_choices"),
)

poll_options = Table(
    "poll_options",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("question_id", ForeignKey("poll_questions.id"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("text", String(NAME), nullable=False),
)

poll_voters = Table(
    "poll_voters",
    metadata,
    # The voter roll: who took part, by which channel, never what they chose. The
    # primary key is the one-vote-per-household rule, for every channel together.
    Column("poll_id", ForeignKey("polls.id"), primary_key=True),
    Column("household_id", ForeignKey("households.id"), primary_key=True, index=True),
    Column("channel", String(8), nullable=False),
    Column("recorded_by", String(NAME), nullable=False, server_default=""),
    Column("changes", Integer, nullable=False, server_default="0"),
    CheckConstraint("channel IN ('tv', 'paper')", name="channel"),
)

poll_answers = Table(
    "poll_answers",
    metadata,
    # The answers, apart from the roll: a ballot is a keyed hash of (poll, household)
    # where votes may change, a random value where they are locked; no time, no row id
    # (SQLite keeps the rows in ballot order, not in the order they came), and every
    # vote rewrites earlier ballots with its own (xueliang.polls._cast).
    Column("poll_id", ForeignKey("polls.id"), primary_key=True),
    Column("ballot", String(64), primary_key=True),
    Column("option_id", ForeignKey("poll_options.id"), primary_key=True, index=True),
    sqlite_with_rowid=False,
)
