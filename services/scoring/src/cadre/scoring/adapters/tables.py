"""Scoring's tables. Everything a replay rebuilds carries a `generation`, so a new
generation is built beside the live one and the read pointer switches in one statement."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

METADATA = sa.MetaData()

generations = sa.Table(
    "generations",
    METADATA,
    sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("status", sa.Text, nullable=False),  # building | live | retired | failed
    sa.Column("consumer_group", sa.Text, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("switched_at", sa.DateTime(timezone=True), nullable=True),
)
# One row: the generation every query reads and the live consumer folds into.
read_pointer = sa.Table(
    "read_pointer",
    METADATA,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.CheckConstraint("id = 1", name="read_pointer_single_row"),
)

# ---- the directory as scoring needs it (from directory.* events)
members = sa.Table(
    "members",
    METADATA,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("unit_id", sa.Text, nullable=False),
    sa.Column("unit_path", sa.Text, nullable=False),
    sa.Column("stationed", sa.Boolean, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)
units = sa.Table(
    "units",
    METADATA,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("unit_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
)
workday_overrides = sa.Table(
    "workday_overrides",
    METADATA,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("workday", sa.Boolean, nullable=False),
)

# ---- the counters: one row per fact (an event about one cadre and one local day)
# Facts and contributions are partitioned by generation, and each partition carries its own
# key and indexes (`PARTITION_INDEXES`): a replay loads its new partition bare and indexes
# it once loaded, which costs PostgreSQL far less than maintaining every index row by row
# (see generations.py), and dropping a generation drops its tables.
facts = sa.Table(
    "facts",
    METADATA,
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("metric", sa.Text(collation="C"), nullable=False),
    sa.Column("tenant", sa.Text(collation="C"), nullable=False),
    sa.Column("cadre_id", sa.Text(collation="C"), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("dimension", sa.Text, nullable=True),
    sa.Column("amount", sa.Float, nullable=False),
    sa.Column("level", sa.Text, nullable=True),
    sa.Column("positive", sa.Boolean, nullable=False),
    # No tags by default, so that a COPY of facts without any leaves the column out (sco_0005).
    sa.Column("tags", pg.ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("target", pg.UUID(as_uuid=True), nullable=True),
    postgresql_partition_by="LIST (generation)",
)
# The daily counters DESIGN section 6 speaks of, as a view over the fact rows.
DAILY_COUNTERS_VIEW = """
CREATE VIEW daily_counters AS
SELECT generation, tenant, cadre_id, day, metric, count(*) AS count
FROM facts GROUP BY generation, tenant, cadre_id, day, metric
"""

# ---- derived: every point, with its event and rule (explain reads these rows)
contributions = sa.Table(
    "contributions",
    METADATA,
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("tenant", sa.Text(collation="C"), nullable=False),
    sa.Column("cadre_id", sa.Text(collation="C"), nullable=False),
    sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("rule", sa.Text(collation="C"), nullable=False),
    sa.Column("dimension", sa.Text(collation="C"), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("raw_points", sa.Float, nullable=False),
    sa.Column("points", sa.Float, nullable=False),
    sa.Column("voided", sa.Boolean, nullable=False),
    postgresql_partition_by="LIST (generation)",
)
# Every partition's key and indexes, by table: (index suffix, unique, columns). Within a
# partition the generation is one value, so it leads no index; nor does the tenant, the
# same in nearly every row, which made every index a replay builds slower to sort (see
# sco_0004, which also puts cadre ids in byte order, and sco_0006 the other key columns).
# The facts key is what `ON CONFLICT DO NOTHING` deduplicates on; a cadre's contributions
# are found by their key's prefix, so no (cadre_id, day) index (sco_0002).
PARTITION_INDEXES: dict[str, tuple[tuple[str, bool, tuple[str, ...]], ...]] = {
    "facts": (
        ("key", True, ("event_id", "metric")),
        ("by_cadre", False, ("cadre_id", "tenant", "day")),
        ("by_day", False, ("day", "tenant")),
    ),
    "contributions": (
        ("key", True, ("cadre_id", "tenant", "event_id", "rule", "dimension")),
        ("by_day", False, ("day", "tenant")),
    ),
}
lights = sa.Table(
    "lights",
    METADATA,
    sa.Column("generation", sa.Integer, primary_key=True),
    sa.Column("tenant", sa.Text, primary_key=True),
    sa.Column("cadre_id", sa.Text, primary_key=True),
    sa.Column("light", sa.Text, nullable=False),
    sa.Column("reasons", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)

GENERATION_TABLES = (members, units, workday_overrides, facts, contributions, lights)
PARTITIONED_TABLES = (facts, contributions)
