"""Notify tables: directory replica, remembered leave/task/journal state, inbox,
preferences, webhooks and deliveries.

Revision ID: ntf_0001
Revises: spine_0001
"""

from alembic import op

from cadre.notify.adapters.tables import METADATA

revision = "ntf_0001"
down_revision = "spine_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    METADATA.create_all(op.get_bind())


def downgrade() -> None:
    METADATA.drop_all(op.get_bind())
