"""Scoring tables: generations and the read pointer, the directory as scoring needs it,
facts (the counters), contributions and lights.

Revision ID: sco_0001
Revises: spine_0001
"""

from alembic import op

from cadre.scoring.adapters.tables import DAILY_COUNTERS_VIEW, METADATA

revision = "sco_0001"
down_revision = "spine_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    METADATA.create_all(op.get_bind())
    op.execute(DAILY_COUNTERS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW daily_counters")
    METADATA.drop_all(op.get_bind())
