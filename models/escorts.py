"""Pengawalan: places, escorts and their members (imported), and what tracking writes on the night.

An escort goes from a place or a TPS to a place or a TPS, through `escort_vias`
in travel order. Each endpoint is one of two foreign keys (a CHECK keeps
exactly one), so a TPS stays the one row every other capability knows.

The escort row carries what each position is judged against, so that a
position reads and writes one escort row: the last position (`last_*`, the
newest taken, never moved back by a late one), the berhenti anchor
(`anchor_*`: where the escort was when it last moved beyond the stop radius)
and the last kept track point (`kept_*`, for thinning). None of these
columns is indexed, so PostgreSQL updates the row in place (HOT).

The command group's live location of the escort (bot/services/live_locations.py)
is `live_chat_id` / `live_message_id`; `live_shown_at` is the time of the
position it was last moved to (behind `last_at`: it is to move again), and
`live_stopped_at` when it was stopped on arrival.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, one_of
from models.enums import Access, AlertClearReason, EscortAlertKind, EscortKind, EscortRole, EscortState, PlaceKind


class Place(Base):
    """A KPU warehouse, a PPK, a PPS, a jetty (dermaga) or another stop, under the unit that guards it."""

    __tablename__ = "places"
    __table_args__ = (one_of("kind", PlaceKind),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)


def _one_endpoint(side: str) -> CheckConstraint:
    return CheckConstraint(f"({side}_place_id IS NULL) <> ({side}_tps_id IS NULL)", name=f"{side}_endpoint")


class Escort(Base):
    """One guarded journey of one cargo: terjadwal -> berangkat -> tiba -> diterima."""

    __tablename__ = "escorts"
    __table_args__ = (
        one_of("kind", EscortKind),
        one_of("access", Access),
        one_of("state", EscortState),
        _one_endpoint("from"),
        _one_endpoint("to"),
        Index("ix_escorts_state_arrive_by", "state", "arrive_by"),
        Index("ix_escorts_unit_state", "unit_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    cargo: Mapped[str] = mapped_column(String(200))
    from_place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"))
    from_tps_id: Mapped[int | None] = mapped_column(ForeignKey("tps.id"))
    to_place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"))
    to_tps_id: Mapped[int | None] = mapped_column(ForeignKey("tps.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    depart_at: Mapped[datetime]
    arrive_by: Mapped[datetime]
    access: Mapped[str] = mapped_column(String(16), default=Access.darat.value)
    state: Mapped[str] = mapped_column(String(16), default=EscortState.terjadwal.value)
    departed_at: Mapped[datetime | None]
    arrived_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("personnel.id"))
    last_lat: Mapped[float | None] = mapped_column(Float)
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_at: Mapped[datetime | None]
    anchor_lat: Mapped[float | None] = mapped_column(Float)
    anchor_lon: Mapped[float | None] = mapped_column(Float)
    anchor_at: Mapped[datetime | None]
    kept_lat: Mapped[float | None] = mapped_column(Float)
    kept_lon: Mapped[float | None] = mapped_column(Float)
    kept_at: Mapped[datetime | None]
    on_water: Mapped[bool] = mapped_column(default=False)
    live_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    live_message_id: Mapped[int | None] = mapped_column(BigInteger)
    live_shown_at: Mapped[datetime | None]
    live_stopped_at: Mapped[datetime | None]


class EscortVia(Base):
    """A place or TPS the escort passes, in travel order; `passed_at` once a position came within the radius."""

    __tablename__ = "escort_vias"
    __table_args__ = (CheckConstraint("(place_id IS NULL) <> (tps_id IS NULL)", name="endpoint"),)

    escort_id: Mapped[int] = mapped_column(ForeignKey("escorts.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"))
    tps_id: Mapped[int | None] = mapped_column(ForeignKey("tps.id"))
    passed_at: Mapped[datetime | None]


class EscortMember(Base):
    """A person guarding an escort; the `ketua` leads it and hands the cargo over."""

    __tablename__ = "escort_members"
    __table_args__ = (
        one_of("role", EscortRole),
        UniqueConstraint("escort_id", "personnel_id", name="uq_escort_members_escort_person"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    escort_id: Mapped[int] = mapped_column(ForeignKey("escorts.id", ondelete="CASCADE"))
    personnel_id: Mapped[int] = mapped_column(ForeignKey("personnel.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default=EscortRole.anggota.value)


class EscortTrackPoint(Base):
    """A kept position (thinned: at most one per 30 s or 50 m moved), at the time it was taken."""

    __tablename__ = "escort_track_points"
    __table_args__ = (Index("ix_escort_track_points_escort_at", "escort_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    escort_id: Mapped[int] = mapped_column(ForeignKey("escorts.id", ondelete="CASCADE"))
    personnel_id: Mapped[int | None] = mapped_column(ForeignKey("personnel.id", ondelete="SET NULL"))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime]


class EscortAlert(Base):
    """One episode of an automatic alert: opened once, open until its condition ends (or the escort arrives).

    The partial unique index is what makes an episode open once when two
    workers sweep at the same moment: the second insert is ignored.
    """

    __tablename__ = "escort_alerts"
    __table_args__ = (
        one_of("kind", EscortAlertKind),
        one_of("clear_reason", AlertClearReason),
        Index(
            "uq_escort_alerts_open",
            "escort_id",
            "kind",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
        Index("ix_escort_alerts_escort", "escort_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    escort_id: Mapped[int] = mapped_column(ForeignKey("escorts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    clear_reason: Mapped[str | None] = mapped_column(String(16))
    contingency_id: Mapped[int | None] = mapped_column(ForeignKey("contingencies.id", ondelete="SET NULL"), index=True)
