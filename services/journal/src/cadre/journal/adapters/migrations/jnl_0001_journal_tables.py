"""Journal tables: directory replica, leaves, missed days, entries, attachments, reactions,
endorsements, tasks and study.

Revision ID: jnl_0001
Revises: spine_0001
"""

from alembic import op

from cadre.journal.adapters.tables import METADATA

revision = "jnl_0001"
down_revision = "spine_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    METADATA.create_all(op.get_bind())


def downgrade() -> None:
    METADATA.drop_all(op.get_bind())
