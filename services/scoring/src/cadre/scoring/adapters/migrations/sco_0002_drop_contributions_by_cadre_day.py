"""Drop the index contributions_by_cadre_day (generation, tenant, cadre_id, day): the primary
key starts with (generation, tenant, cadre_id), so it already finds a cadre's contributions,
and keeping a second index of every contribution cost a replay's derive phase a tenth of
its time (24-26 s against 21.6 s at 10,000 cadres x 90 days).

Revision ID: sco_0002
Revises: sco_0001
"""

from alembic import op

revision = "sco_0002"
down_revision = "sco_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database created at this revision never had it: sco_0001 builds today's tables.
    op.execute("DROP INDEX IF EXISTS contributions_by_cadre_day")


def downgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS contributions_by_cadre_day"
        " ON contributions (generation, tenant, cadre_id, day)"
    )
