"""Sitreps and contingencies keep the time they were sent (`message.date`) beside the time the bot read them.

After an outage the two differ by minutes: a command group is shown when a
contingency was sent and how late it was received. Rows written before this
revision have no sent time (NULL) and are shown at the time they were read.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("sitreps", "contingencies")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("sent_at", models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("sent_at")
