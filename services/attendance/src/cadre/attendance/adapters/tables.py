"""Attendance's tables: a replica of the directory (fed by directory.* events) and its own
devices, check-ins, leaves and day closes."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from cadre.events.replica import DirectoryReplica

METADATA = sa.MetaData()

# ---- replica of the directory (never written by a request)
REPLICA = DirectoryReplica.define(METADATA)
people, unit_paths, workday_overrides = (
    REPLICA.people,
    REPLICA.unit_paths,
    REPLICA.workday_overrides,
)
fences = sa.Table(
    "fences",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("unit_id", sa.Text, primary_key=True),
    sa.Column("fence_id", sa.Text, primary_key=True),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("radius_m", sa.Float, nullable=False),
)
# ---- attendance's own state
devices = sa.Table(
    "devices",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, primary_key=True),
    sa.Column("device_id", sa.Text, nullable=True),  # null: unbound, the next check-in binds
    sa.Column("mismatches", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_mismatch_at", sa.DateTime(timezone=True), nullable=True),
)
check_ins = sa.Table(
    "check_ins",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("check_in_id", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("device_id", sa.Text, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("accuracy_m", sa.Float, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("destination", sa.Text, nullable=True),
    sa.Column("within_geofence", sa.Boolean, nullable=True),
    sa.Column("late_sync", sa.Boolean, nullable=False),
    sa.Column("flags", pg.ARRAY(sa.Text), nullable=False),
    sa.Index("ix_check_ins_cadre_time", "tenant", "cadre_id", "occurred_at"),
    # The spoofing check's "earlier check-ins at the very spot": without it, every check-in
    # read the cadre's whole history (about 500 rows a year) to find the few that match.
    sa.Index("ix_check_ins_cadre_spot", "tenant", "cadre_id", "lat", "lon"),
)
leaves = sa.Table(
    "leaves",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("leave_id", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, nullable=False),
    sa.Column("unit_path", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("starts_on", sa.Date, nullable=False),
    sa.Column("ends_on", sa.Date, nullable=False),
    sa.Column("start_half", sa.Text, nullable=True),
    sa.Column("end_half", sa.Text, nullable=True),
    sa.Column("workdays", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("chain", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # pending, approved, rejected, cancelled
    sa.Column("decisions", pg.JSONB, nullable=False, server_default="[]"),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index("ix_leaves_cadre", "tenant", "cadre_id"),
)
day_closes = sa.Table(
    "day_closes",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("modes", pg.ARRAY(sa.Text), nullable=False),
)
