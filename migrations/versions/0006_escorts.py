"""Pengawalan: places, escorts, their vias and members, thinned tracks and alert episodes.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_DATETIME = models.base.UTCDateTime(timezone=True)
ACCESS = "access IN ('darat', 'air', 'darat_air')"


def _id() -> sa.Column:
    return sa.Column("id", BIG_ID, autoincrement=True, nullable=False)


def _ref(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, BIG_ID, nullable=nullable)


def _fk(table: str, column: str, target: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _check(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{name}"))


def upgrade() -> None:
    op.create_table(
        "places",
        _id(),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        _ref("unit_id", nullable=False),
        _check("places", "kind", "kind IN ('gudang', 'ppk', 'pps', 'dermaga', 'lainnya')"),
        _fk("places", "unit_id", "units"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_places")),
        sa.UniqueConstraint("code", name=op.f("uq_places_code")),
    )
    op.create_index(op.f("ix_places_unit_id"), "places", ["unit_id"], unique=False)
    op.create_table(
        "escorts",
        _id(),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cargo", sa.String(length=200), nullable=False),
        _ref("from_place_id"),
        _ref("from_tps_id"),
        _ref("to_place_id"),
        _ref("to_tps_id"),
        _ref("unit_id", nullable=False),
        sa.Column("depart_at", UTC_DATETIME, nullable=False),
        sa.Column("arrive_by", UTC_DATETIME, nullable=False),
        sa.Column("access", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("departed_at", UTC_DATETIME, nullable=True),
        sa.Column("arrived_at", UTC_DATETIME, nullable=True),
        sa.Column("received_at", UTC_DATETIME, nullable=True),
        _ref("received_by_id"),
        *(
            sa.Column(f"{prefix}_{axis}", sa.Float(), nullable=True)
            if axis != "at"
            else sa.Column(f"{prefix}_at", UTC_DATETIME, nullable=True)
            for prefix in ("last", "anchor", "kept")
            for axis in ("lat", "lon", "at")
        ),
        sa.Column("on_water", sa.Boolean(), nullable=False),
        sa.Column("live_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("live_message_id", sa.BigInteger(), nullable=True),
        _check("escorts", "kind", "kind IN ('logistik', 'kotak_suara')"),
        _check("escorts", "access", ACCESS),
        _check("escorts", "state", "state IN ('terjadwal', 'berangkat', 'tiba', 'diterima')"),
        _check("escorts", "from_endpoint", "(from_place_id IS NULL) <> (from_tps_id IS NULL)"),
        _check("escorts", "to_endpoint", "(to_place_id IS NULL) <> (to_tps_id IS NULL)"),
        _fk("escorts", "from_place_id", "places"),
        _fk("escorts", "from_tps_id", "tps"),
        _fk("escorts", "to_place_id", "places"),
        _fk("escorts", "to_tps_id", "tps"),
        _fk("escorts", "unit_id", "units"),
        _fk("escorts", "received_by_id", "personnel"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escorts")),
        sa.UniqueConstraint("code", name=op.f("uq_escorts_code")),
    )
    op.create_index("ix_escorts_state_arrive_by", "escorts", ["state", "arrive_by"], unique=False)
    op.create_index("ix_escorts_unit_state", "escorts", ["unit_id", "state"], unique=False)
    op.create_table(
        "escort_vias",
        _ref("escort_id", nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _ref("place_id"),
        _ref("tps_id"),
        sa.Column("passed_at", UTC_DATETIME, nullable=True),
        _check("escort_vias", "endpoint", "(place_id IS NULL) <> (tps_id IS NULL)"),
        _fk("escort_vias", "escort_id", "escorts", ondelete="CASCADE"),
        _fk("escort_vias", "place_id", "places"),
        _fk("escort_vias", "tps_id", "tps"),
        sa.PrimaryKeyConstraint("escort_id", "seq", name=op.f("pk_escort_vias")),
    )
    op.create_table(
        "escort_members",
        _id(),
        _ref("escort_id", nullable=False),
        _ref("personnel_id", nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        _check("escort_members", "role", "role IN ('ketua', 'anggota')"),
        _fk("escort_members", "escort_id", "escorts", ondelete="CASCADE"),
        _fk("escort_members", "personnel_id", "personnel", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escort_members")),
        sa.UniqueConstraint("escort_id", "personnel_id", name="uq_escort_members_escort_person"),
    )
    op.create_index(op.f("ix_escort_members_personnel_id"), "escort_members", ["personnel_id"], unique=False)
    op.create_table(
        "escort_track_points",
        _id(),
        _ref("escort_id", nullable=False),
        _ref("personnel_id"),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        _fk("escort_track_points", "escort_id", "escorts", ondelete="CASCADE"),
        _fk("escort_track_points", "personnel_id", "personnel", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escort_track_points")),
    )
    op.create_index("ix_escort_track_points_escort_at", "escort_track_points", ["escort_id", "at"], unique=False)
    op.create_table(
        "escort_alerts",
        _id(),
        _ref("escort_id", nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("opened_at", UTC_DATETIME, nullable=False),
        sa.Column("cleared_at", UTC_DATETIME, nullable=True),
        sa.Column("clear_reason", sa.String(length=16), nullable=True),
        _ref("contingency_id"),
        _check("escort_alerts", "kind", "kind IN ('berhenti', 'hilang_sinyal', 'terlambat', 'menyimpang')"),
        _check("escort_alerts", "clear_reason", "clear_reason IN ('moved', 'position', 'on_route', 'arrived')"),
        _fk("escort_alerts", "escort_id", "escorts", ondelete="CASCADE"),
        _fk("escort_alerts", "contingency_id", "contingencies", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escort_alerts")),
    )
    op.create_index("ix_escort_alerts_escort", "escort_alerts", ["escort_id"], unique=False)
    op.create_index(op.f("ix_escort_alerts_contingency_id"), "escort_alerts", ["contingency_id"], unique=False)
    op.create_index(
        "uq_escort_alerts_open",
        "escort_alerts",
        ["escort_id", "kind"],
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("escort_alerts")
    op.drop_table("escort_track_points")
    op.drop_table("escort_members")
    op.drop_table("escort_vias")
    op.drop_table("escorts")
    op.drop_table("places")
