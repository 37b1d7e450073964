"""The command group's live location of an escort: which position it shows, and whether it was stopped.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("live_shown_at", "live_stopped_at")


def upgrade() -> None:
    with op.batch_alter_table("escorts") as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("escorts") as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
