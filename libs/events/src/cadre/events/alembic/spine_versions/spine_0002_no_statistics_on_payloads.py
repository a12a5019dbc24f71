"""No planner statistics on the spine's payload columns, which no query filters or joins by:
the event's envelope, and the outbox row's topic, key, value and headers. ANALYZE sampled and sorted
them all the same (thousands of JSON documents and byte strings), and autovacuum ran it on
the tables every busy service grows fastest, in bursts of CPU beside its API.

Revision ID: spine_0002
Revises: spine_0001
"""

from alembic import op

revision = "spine_0002"
down_revision = "spine_0001"
branch_labels = None
depends_on = None

UNFILTERED = {"event_store": ("envelope",), "outbox": ("topic", "key", "value", "headers")}


def upgrade() -> None:
    for table, columns in UNFILTERED.items():
        for column in columns:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS 0")


def downgrade() -> None:
    for table, columns in UNFILTERED.items():
        for column in columns:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS -1")
