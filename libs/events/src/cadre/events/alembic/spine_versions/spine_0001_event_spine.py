"""The event spine tables: event store, outbox, consumer dedup records, idempotency keys.

Revision ID: spine_0001
Revises:
"""

from alembic import op

from cadre.events.tables import SPINE_METADATA

revision = "spine_0001"
down_revision = None
branch_labels = ("spine",)
depends_on = None


def upgrade() -> None:
    SPINE_METADATA.create_all(op.get_bind())


def downgrade() -> None:
    SPINE_METADATA.drop_all(op.get_bind())
