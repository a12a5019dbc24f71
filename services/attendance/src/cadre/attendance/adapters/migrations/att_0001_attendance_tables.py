"""Attendance tables: directory replica, devices, check-ins, leaves, day closes.

Revision ID: att_0001
Revises: spine_0001
"""

from alembic import op

from cadre.attendance.adapters.tables import METADATA

revision = "att_0001"
down_revision = "spine_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    METADATA.create_all(op.get_bind())


def downgrade() -> None:
    METADATA.drop_all(op.get_bind())
