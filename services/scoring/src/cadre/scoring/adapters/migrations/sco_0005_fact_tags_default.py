"""Facts' `tags` default to no tags.

Most facts have none (four in five of a replay's), and a replay copies its facts into the
table with COPY: a column it can leave out costs nothing to send, where asyncpg encodes
an empty text[] for 0.43 µs, as much as the other columns of the row together but the
time. A fact with tags is copied with them, as before.

Revision ID: sco_0005
Revises: sco_0004
"""

from alembic import op

revision = "sco_0005"
down_revision = "sco_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # On the partitioned table: PostgreSQL sets it on every partition, and a partition
    # made later takes it from there.
    op.execute("ALTER TABLE facts ALTER COLUMN tags SET DEFAULT '{}'")


def downgrade() -> None:
    op.execute("ALTER TABLE facts ALTER COLUMN tags DROP DEFAULT")
