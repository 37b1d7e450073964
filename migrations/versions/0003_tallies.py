"""Live tallies for /status: per (shift, unit) people, per (shift, TPS) presence, per (shift, unit, kerawanan) TPS.

The tables start empty: a shift without a `tally_shifts` row is counted from
the source tables until `tally.rebuild` (the import, `tally.ensure`) builds it.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _shift() -> sa.Column:
    return sa.Column("shift_id", BIG_ID, nullable=False)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        "unit_shift_tally",
        _shift(),
        sa.Column("unit_id", BIG_ID, nullable=False),
        *_counts("assigned", "registered", "checked_in", "late", "far", "checked_out", "unreachable"),
        _fk("unit_shift_tally", "shift_id", "shifts"),
        _fk("unit_shift_tally", "unit_id", "units"),
        sa.PrimaryKeyConstraint("shift_id", "unit_id", name=op.f("pk_unit_shift_tally")),
    )
    op.create_table(
        "tps_shift_tally",
        _shift(),
        sa.Column("tps_id", BIG_ID, nullable=False),
        *_counts("present"),
        sa.Column("share", sa.Float(), nullable=False),
        _fk("tps_shift_tally", "shift_id", "shifts"),
        _fk("tps_shift_tally", "tps_id", "tps"),
        sa.PrimaryKeyConstraint("shift_id", "tps_id", name=op.f("pk_tps_shift_tally")),
    )
    op.create_table(
        "unit_shift_tps_tally",
        _shift(),
        sa.Column("unit_id", BIG_ID, nullable=False),
        sa.Column("kerawanan", sa.String(length=16), nullable=False),
        *_counts("tps_total", "covered", "meets"),
        sa.CheckConstraint(
            "kerawanan IN ('kurang_rawan', 'rawan', 'sangat_rawan')", name=op.f("ck_unit_shift_tps_tally_kerawanan")
        ),
        _fk("unit_shift_tps_tally", "shift_id", "shifts"),
        _fk("unit_shift_tps_tally", "unit_id", "units"),
        sa.PrimaryKeyConstraint("shift_id", "unit_id", "kerawanan", name=op.f("pk_unit_shift_tps_tally")),
    )
    op.create_table(
        "tally_shifts",
        _shift(),
        sa.Column("pattern", sa.String(length=200), nullable=False),
        sa.Column("built_at", models.base.UTCDateTime(timezone=True), nullable=False),
        _fk("tally_shifts", "shift_id", "shifts"),
        sa.PrimaryKeyConstraint("shift_id", name=op.f("pk_tally_shifts")),
    )


def downgrade() -> None:
    op.drop_table("tally_shifts")
    op.drop_table("unit_shift_tps_tally")
    op.drop_table("tps_shift_tally")
    op.drop_table("unit_shift_tally")
