"""Journal's tables: a replica of the directory, leaves and closed days seen from attendance,
and the journal's own entries, attachments, reactions, endorsements, tasks and study."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from cadre.events.replica import DirectoryReplica

METADATA = sa.MetaData()

# ---- replicas (never written by a request)
REPLICA = DirectoryReplica.define(METADATA)
people, unit_paths = REPLICA.people, REPLICA.unit_paths
approved_leaves = sa.Table(
    "approved_leaves",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("leave_id", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, nullable=False),
    sa.Column("starts_on", sa.Date, nullable=False),
    sa.Column("ends_on", sa.Date, nullable=False),
    sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_approved_leaves_cadre", "tenant", "cadre_id"),
)
# A workday closed without an entry: journal_missed was emitted for it, exactly once.
missed_days = sa.Table(
    "missed_days",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("event_id", pg.UUID, nullable=False),
)

# ---- entries
entries = sa.Table(
    "entries",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("entry_id", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, nullable=False),
    sa.Column("unit_id", sa.Text, nullable=False),
    sa.Column("unit_path", sa.Text, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("tags", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("has_attachment", sa.Boolean, nullable=False),
    sa.Column("likes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("dislikes", sa.Integer, nullable=False, server_default="0"),
    # Chinese bigrams and words (cadre.journal.domain.search), for the back-check.
    sa.Column("search", pg.TSVECTOR, nullable=False),
    # The feed pages newest first within a scope; the subtree is a path prefix.
    sa.Index("ix_entries_feed", "tenant", sa.text("posted_at DESC"), sa.text("entry_id DESC")),
    sa.Index(
        "ix_entries_unit_feed",
        "tenant",
        sa.text("unit_path text_pattern_ops"),
        sa.text("posted_at DESC"),
    ),
    sa.Index("ix_entries_author", "tenant", "cadre_id", sa.text("posted_at DESC")),
    sa.Index("ix_entries_author_day", "tenant", "cadre_id", "day"),
    sa.Index("ix_entries_search", "search", postgresql_using="gin"),
    sa.Index("ix_entries_tags", "tags", postgresql_using="gin"),
)
attachments = sa.Table(
    "attachments",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("owner_id", sa.Text, primary_key=True),  # an entry id, or a task id (evidence)
    sa.Column("sha256", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("media_type", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("thumbnail_sha256", sa.Text, nullable=True),
    sa.Index("ix_attachments_blob", "sha256"),
    sa.Index("ix_attachments_thumbnail", "thumbnail_sha256"),
)
reactions = sa.Table(
    "reactions",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("entry_id", sa.Text, primary_key=True),
    sa.Column("leader_id", sa.Text, primary_key=True),
    sa.Column("reaction", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("reacted_at", sa.DateTime(timezone=True), nullable=False),
)
endorsements = sa.Table(
    "endorsements",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("endorsement_id", sa.Text, primary_key=True),
    sa.Column("endorser_id", sa.Text, nullable=False),
    sa.Column("target_id", sa.Text, nullable=False),
    sa.Column("dimension", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("week", sa.Text, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("reciprocal", sa.Boolean, nullable=False),
    sa.Column("endorsed_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("tenant", "endorser_id", "target_id", "week", name="uq_endorsement_week"),
    sa.Index("ix_endorsements_target", "tenant", "target_id", "day"),
)

# ---- tasks and study
tasks = sa.Table(
    "tasks",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("task_id", sa.Text, primary_key=True),
    sa.Column("group_id", sa.Text, nullable=True),
    sa.Column("cadre_id", sa.Text, nullable=False),
    sa.Column("unit_path", sa.Text, nullable=False),
    sa.Column("assigner_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("dimension", sa.Text, nullable=False),
    sa.Column("reward_points", sa.Float, nullable=False),
    sa.Column("penalty_points", sa.Float, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("evidence_entry_id", sa.Text, nullable=True),
    sa.Column("evidence_sha256", sa.Text, nullable=True),
    sa.Column("quality_pct", sa.Float, nullable=True),
    sa.Column("overdue_noted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index("ix_tasks_cadre", "tenant", "cadre_id", "status"),
    sa.Index("ix_tasks_group", "tenant", "group_id"),
    sa.Index(
        "ix_tasks_due_open",
        "due_at",
        postgresql_where=sa.text("status = 'open' AND NOT overdue_noted"),
    ),
)
studies = sa.Table(
    "studies",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("study_id", sa.Text, primary_key=True),
    sa.Column("unit_id", sa.Text, nullable=False),
    sa.Column("unit_path", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("party_theory", sa.Boolean, nullable=False),
    sa.Column("due_on", sa.Date, nullable=True),
    sa.Column("assigner_id", sa.Text, nullable=False),
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
)
study_assignments = sa.Table(
    "study_assignments",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("study_id", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, primary_key=True),
    sa.Column("assigned_on", sa.Date, nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("completed_on", sa.Date, nullable=True),
    sa.Column("minutes", sa.Integer, nullable=True),
    sa.Index("ix_study_cadre", "tenant", "cadre_id", "completed_on"),
)
