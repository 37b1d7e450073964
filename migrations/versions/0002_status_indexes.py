"""Covering indexes for /status: assignments by shift with both keys, TPS by unit and kerawanan.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch_op:
        batch_op.create_index("ix_assignments_shift_tps_person", ["shift_id", "tps_id", "personnel_id"])
        batch_op.create_index("ix_assignments_shift_person_tps", ["shift_id", "personnel_id", "tps_id"])
        batch_op.drop_index("ix_assignments_shift_tps")
        batch_op.drop_index("ix_assignments_shift_person")
    with op.batch_alter_table("tps") as batch_op:
        batch_op.create_index("ix_tps_unit_kerawanan", ["unit_id", "kerawanan"])
        batch_op.drop_index("ix_tps_unit_id")


def downgrade() -> None:
    with op.batch_alter_table("tps") as batch_op:
        batch_op.create_index("ix_tps_unit_id", ["unit_id"])
        batch_op.drop_index("ix_tps_unit_kerawanan")
    with op.batch_alter_table("assignments") as batch_op:
        batch_op.create_index("ix_assignments_shift_person", ["shift_id", "personnel_id"])
        batch_op.create_index("ix_assignments_shift_tps", ["shift_id", "tps_id"])
        batch_op.drop_index("ix_assignments_shift_person_tps")
        batch_op.drop_index("ix_assignments_shift_tps_person")
