"""Automatic escort alerts are contingencies that nobody reported.

`reporter_id` may be NULL (the bot raised it), `escort_id` names the escort
the alert is about, and `position_at` is when its last position (`lat`,
`lon`) was taken, so the alert can say how old that position was.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("contingencies") as batch_op:
        batch_op.alter_column("reporter_id", existing_type=BIG_ID, nullable=True)
        batch_op.add_column(sa.Column("escort_id", BIG_ID, nullable=True))
        batch_op.add_column(sa.Column("position_at", models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_contingencies_escort_id_escorts"), "escorts", ["escort_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index(batch_op.f("ix_contingencies_escort_id"), ["escort_id"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM contingencies WHERE reporter_id IS NULL")
    with op.batch_alter_table("contingencies") as batch_op:
        batch_op.drop_index(batch_op.f("ix_contingencies_escort_id"))
        batch_op.drop_constraint(batch_op.f("fk_contingencies_escort_id_escorts"), type_="foreignkey")
        batch_op.drop_column("position_at")
        batch_op.drop_column("escort_id")
        batch_op.alter_column("reporter_id", existing_type=BIG_ID, nullable=False)
