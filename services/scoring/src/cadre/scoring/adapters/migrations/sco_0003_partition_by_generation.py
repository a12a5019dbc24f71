"""Facts and contributions partitioned by generation, each partition with its own key and
indexes: a replay loads its generation's partitions bare and indexes them once loaded,
instead of maintaining five indexes row by row (at 2,000 cadres x 90 days the derive
phase took 5.2 s against 2.4 s, and building the indexes afterwards 1.3 s), and dropping
a generation drops its tables instead of deleting millions of rows.

Revision ID: sco_0003
Revises: sco_0002
"""

import sqlalchemy as sa
from alembic import op

from cadre.scoring.adapters.generations import create_partitions_sql, index_partition_sql
from cadre.scoring.adapters.tables import DAILY_COUNTERS_VIEW

revision = "sco_0003"
down_revision = "sco_0002"
branch_labels = None
depends_on = None

# The tables as sco_0002 left them, for the downgrade.
_UNPARTITIONED_KEYS = {
    "facts": "PRIMARY KEY (generation, event_id, metric)",
    "contributions": "PRIMARY KEY (generation, tenant, cadre_id, event_id, rule, dimension)",
}
_UNPARTITIONED_INDEXES = (
    "CREATE INDEX facts_by_cadre ON facts (generation, tenant, cadre_id, day)",
    "CREATE INDEX facts_by_day ON facts (generation, tenant, day)",
    "CREATE INDEX contributions_by_day ON contributions (generation, tenant, day)",
)


def _partitioned(table: str) -> bool:
    kind = op.get_bind().scalar(
        sa.text("SELECT relkind FROM pg_class WHERE oid = CAST(:table AS regclass)"),
        {"table": table},
    )
    return bool(kind == "p")


def upgrade() -> None:
    # A database created at this revision has them already: sco_0001 builds today's tables.
    if _partitioned("facts"):
        return
    op.execute("DROP VIEW daily_counters")
    for table in ("facts", "contributions"):
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_unpartitioned")
        op.execute(
            f"CREATE TABLE {table} (LIKE {table}_unpartitioned INCLUDING DEFAULTS)"
            " PARTITION BY LIST (generation)"
        )
    found = op.get_bind().scalars(
        sa.text(
            "SELECT generation FROM generations UNION SELECT DISTINCT generation"
            " FROM facts_unpartitioned UNION SELECT DISTINCT generation"
            " FROM contributions_unpartitioned"
        )
    )
    generations = sorted(found)
    for generation in generations:
        for statement in create_partitions_sql(generation, indexed=False):
            op.execute(statement)
    for table in ("facts", "contributions"):
        op.execute(f"INSERT INTO {table} SELECT * FROM {table}_unpartitioned")
        op.execute(f"DROP TABLE {table}_unpartitioned")
        for generation in generations:  # indexed once filled, as a replay does
            for statement in index_partition_sql(table, generation):
                op.execute(statement)
    op.execute(DAILY_COUNTERS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW daily_counters")
    for table, key in _UNPARTITIONED_KEYS.items():
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_partitioned")
        op.execute(f"CREATE TABLE {table} (LIKE {table}_partitioned INCLUDING DEFAULTS, {key})")
        op.execute(f"INSERT INTO {table} SELECT * FROM {table}_partitioned")
        op.execute(f"DROP TABLE {table}_partitioned")  # and its partitions
    for statement in _UNPARTITIONED_INDEXES:
        op.execute(statement)
    op.execute(DAILY_COUNTERS_VIEW)
