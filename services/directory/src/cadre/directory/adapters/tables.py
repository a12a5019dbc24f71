"""The directory's own tables (its read state); every change also appends events."""

from __future__ import annotations

import sqlalchemy as sa

METADATA = sa.MetaData()

units = sa.Table(
    "units",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("unit_id", sa.Text, primary_key=True),
    sa.Column("parent_id", sa.Text, nullable=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.UniqueConstraint("tenant", "path", name="uq_units_path"),
)

cadres = sa.Table(
    "cadres",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, primary_key=True),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("unit_id", sa.Text, nullable=False),
    sa.Column("rank", sa.Text, nullable=True),
    sa.Column("leader_level", sa.Text, nullable=True),
    sa.Column("stationed", sa.Boolean, nullable=False),
    sa.Column("roles", sa.ARRAY(sa.Text), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("password_hash", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.UniqueConstraint("tenant", "username", name="uq_cadres_username"),
)

geofences = sa.Table(
    "geofences",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("unit_id", sa.Text, primary_key=True),
    sa.Column("fence_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("radius_m", sa.Float, nullable=False),
)

calendar_overrides = sa.Table(
    "calendar_overrides",
    METADATA,
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("workday", sa.Boolean, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
)

signing_keys = sa.Table(
    "signing_keys",
    METADATA,
    sa.Column("kid", sa.Text, primary_key=True),
    sa.Column("tenant", sa.Text, nullable=False, index=True),
    sa.Column("private_pem", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)
