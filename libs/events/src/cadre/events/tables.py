"""The spine tables every service database has: event store, outbox, consumer dedup records
and stored idempotent responses. Each service's first Alembic migration creates them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

SPINE_METADATA = sa.MetaData()

event_store = sa.Table(
    "event_store",
    SPINE_METADATA,
    sa.Column("global_position", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("stream_id", sa.Text, nullable=False),
    sa.Column("stream_version", sa.Integer, nullable=False),
    sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("envelope", pg.JSONB, nullable=False),
    sa.UniqueConstraint("stream_id", "stream_version", name="uq_event_store_stream_version"),
)

outbox = sa.Table(
    "outbox",
    SPINE_METADATA,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("key", sa.LargeBinary, nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("headers", pg.JSONB, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
)
sa.Index(
    "ix_outbox_pending",
    outbox.c.id,
    postgresql_where=outbox.c.published_at.is_(None),
)

processed_events = sa.Table(
    "processed_events",
    SPINE_METADATA,
    sa.Column("consumer", sa.Text, primary_key=True),
    # The event id, or topic/partition/offset for a record too broken to have one.
    sa.Column("dedup_key", sa.Text, primary_key=True),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column(
        "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    SPINE_METADATA,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("response_headers", pg.JSONB, nullable=True),
    sa.Column("response_body", sa.LargeBinary, nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
)

OUTBOX_CHANNEL = "cadre_outbox"
# Held by the relay while it sleeps on OUTBOX_CHANNEL. An append notifies only then: NOTIFY
# takes a cluster-wide lock from before its commit until after the commit's WAL flush, so
# under load every appending transaction of every service queued behind the others' flushes.
# An append that skips its notification holds this lock shared until it commits, which
# keeps the relay from going to sleep before that row is visible to it.
RELAY_ASLEEP_LOCK_KEY = 0x0CAD_0E02
