"""Notify's database: its replica of the directory (with names and roles), what it needs to
remember from other services' events (leave chains, open tasks, journal days, approved
leave), the inbox, preferences, webhook subscriptions, and the deliveries with their log."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from cadre.events.replica import DirectoryReplica

METADATA = sa.MetaData()

REPLICA = DirectoryReplica.define(METADATA)
people, unit_paths, workday_overrides = (
    REPLICA.people,
    REPLICA.unit_paths,
    REPLICA.workday_overrides,
)
# Recipients are found by unit: the leaders of a unit and of the units above it.
sa.Index("people_by_unit", people.c.tenant, people.c.unit_id)
sa.Index("unit_paths_by_path", unit_paths.c.tenant, unit_paths.c.path)

person_names = sa.Table(
    "person_names",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
)
person_roles = sa.Table(
    "person_roles",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, primary_key=True),
    sa.Column("role", sa.Text, primary_key=True),
)
leaves = sa.Table(
    "leaves",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("leave_id", sa.Text, primary_key=True),
    sa.Column("requester_id", sa.Text, nullable=False),
    sa.Column("chain", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),  # the step waiting for a decision
    sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("open", sa.Boolean, nullable=False),
    sa.Column("starts_on", sa.Date, nullable=False),
    sa.Column("ends_on", sa.Date, nullable=False),
    sa.Column("approved", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("leaves_open", "tenant", "open"),
)
tasks = sa.Table(
    "tasks",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("task_id", sa.Text, primary_key=True),
    sa.Column("assignee_id", sa.Text, nullable=False),
    sa.Column("assigner_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("open", sa.Boolean, nullable=False),
    sa.Index("tasks_open_due", "tenant", "open", "due_at"),
)
journal_days = sa.Table(
    "journal_days",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("cadre_id", sa.Text, primary_key=True),
)
preferences = sa.Table(
    "preferences",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, primary_key=True),
    sa.Column("prefs", pg.JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
# Per-recipient sequence numbers: the row lock serialises writers of one recipient, so a
# recipient's notifications commit in sequence order and a stream resuming after sequence N
# can never miss one that commits later with a smaller number.
recipient_seq = sa.Table(
    "recipient_seq",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
)
notifications = sa.Table(
    "notifications",
    METADATA,
    sa.Column("notification_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("recipient_id", sa.Text, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("params", pg.JSONB, nullable=False),
    sa.Column("source", sa.Text, nullable=False),  # the event id, or the reminder's key
    sa.Column("source_type", sa.Text, nullable=False),
    sa.Column("live", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("tenant", "recipient_id", "seq", name="notifications_recipient_seq"),
    sa.Index(
        "notifications_unread",
        "tenant",
        "recipient_id",
        postgresql_where=sa.text("read_at IS NULL"),
    ),
)
webhooks = sa.Table(
    "webhooks",
    METADATA,
    sa.Column("subscription_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("tenant", sa.Text, nullable=False, index=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("event_types", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
# One row per notification and channel (email), or per event and webhook subscription: the
# primary key is what makes "never twice on one channel" hold.
deliveries = sa.Table(
    "deliveries",
    METADATA,
    sa.Column("delivery_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),  # email | webhook
    sa.Column("notification_id", pg.UUID(as_uuid=True), nullable=True),
    sa.Column("subscription_id", pg.UUID(as_uuid=True), nullable=True),
    sa.Column("recipient_id", sa.Text, nullable=True),
    sa.Column("event_id", sa.Text, nullable=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("target", sa.Text, nullable=False),  # the address or URL
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    # pending | held (for the digest) | sending | delivered | dead | uncertain | digested
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # Attempts made before the latest manual redeliver; the retry budget counts from here.
    sa.Column("round_start", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("digest_id", pg.UUID(as_uuid=True), nullable=True),
    sa.Index(
        "deliveries_due",
        "next_attempt_at",
        postgresql_where=sa.text("status = 'pending'"),
    ),
    sa.Index(
        "deliveries_in_flight",
        "lease_until",
        postgresql_where=sa.text("status = 'sending'"),
    ),
    sa.Index("deliveries_by_subscription", "subscription_id", "created_at"),
    sa.Index("deliveries_log", "tenant", "created_at"),
    sa.Index(
        "deliveries_held", "tenant", "recipient_id", postgresql_where=sa.text("status = 'held'")
    ),
)
delivery_attempts = sa.Table(
    "delivery_attempts",
    METADATA,
    sa.Column("delivery_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=False),
)
