"""The roster: the unit tree, personnel, TPS, shifts and who guards what when.

Imported from the operations officer's spreadsheets and changed only by import,
so every row here is keyed by the code or NRP the spreadsheet uses.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigId, one_of, utcnow
from models.enums import Access, Force, Kerawanan, Language, Phase, Role, UnitKind


class Unit(Base):
    """A command (Polda, Polres, Polsek, Kodim, ...); units form a tree."""

    __tablename__ = "units"
    __table_args__ = (one_of("kind", UnitKind), one_of("force", Force))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    force: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    region: Mapped[str] = mapped_column(String(200), default="")
    depth: Mapped[int] = mapped_column(default=0)
    timezone: Mapped[str | None] = mapped_column(String(64))

    parent: Mapped[Unit | None] = relationship(remote_side=[id])


class UnitClosure(Base):
    """Every (ancestor, descendant) pair, a unit being its own ancestor at distance 0.

    A subtree is one indexed lookup on any engine, which `/status` and every
    authorization check need for trees of thousands of units.
    """

    __tablename__ = "unit_closure"

    ancestor_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True, index=True)
    distance: Mapped[int] = mapped_column(default=0)


class Personnel(Base):
    """A person on the roster; `unit` commands them, `home_unit` is where a BKO member comes from."""

    __tablename__ = "personnel"
    __table_args__ = (one_of("force", Force), one_of("role", Role), one_of("language", Language))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    nrp: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    rank: Mapped[str] = mapped_column(String(64), default="")
    force: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    home_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    role: Mapped[str] = mapped_column(String(16), default=Role.anggota.value)
    phone: Mapped[str] = mapped_column(String(32), default="")
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    language: Mapped[str] = mapped_column(String(8), default="id")
    registered_at: Mapped[datetime | None]
    reachable: Mapped[bool] = mapped_column(default=True)
    unreachable_reason: Mapped[str | None] = mapped_column(String(200))

    unit: Mapped[Unit] = relationship(foreign_keys=[unit_id])
    home_unit: Mapped[Unit | None] = relationship(foreign_keys=[home_unit_id])

    @property
    def is_bko(self) -> bool:
        return self.home_unit_id is not None and self.home_unit_id != self.unit_id


class Tps(Base):
    """A polling station; `unit` is its primary command, border TPS have secondary ones."""

    __tablename__ = "tps"
    __table_args__ = (
        one_of("kerawanan", Kerawanan),
        one_of("access", Access),
        Index("ix_tps_unit_kerawanan", "unit_id", "kerawanan"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    number: Mapped[str] = mapped_column(String(16))
    village: Mapped[str] = mapped_column(String(200), default="")
    district: Mapped[str] = mapped_column(String(200), default="")
    regency: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    kerawanan: Mapped[str] = mapped_column(String(16))
    access: Mapped[str] = mapped_column(String(16), default=Access.darat.value)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    relocated_at: Mapped[datetime | None]

    unit: Mapped[Unit] = relationship()

    @property
    def address(self) -> str:
        return ", ".join(part for part in (self.village, self.district, self.regency) if part)


class TpsSecondaryUnit(Base):
    """A border TPS's other commands: its contingencies reach their groups too."""

    __tablename__ = "tps_secondary_units"

    tps_id: Mapped[int] = mapped_column(ForeignKey("tps.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True, index=True)


class TpsLocation(Base):
    """Where a TPS stood before it moved (flood-prone TPS are relocated); never updated."""

    __tablename__ = "tps_locations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tps_id: Mapped[int] = mapped_column(ForeignKey("tps.id", ondelete="CASCADE"), index=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    village: Mapped[str] = mapped_column(String(200), default="")
    valid_until: Mapped[datetime] = mapped_column(default=utcnow)


class Shift(Base):
    __tablename__ = "shifts"
    __table_args__ = (one_of("phase", Phase),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phase: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]


class Assignment(Base):
    """One person at one TPS for one shift; two police may cover five TPS, hence many rows."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("personnel_id", "tps_id", "shift_id", name="uq_assignments_person_tps_shift"),
        Index("ix_assignments_shift_tps_person", "shift_id", "tps_id", "personnel_id"),
        Index("ix_assignments_shift_person_tps", "shift_id", "personnel_id", "tps_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    personnel_id: Mapped[int] = mapped_column(ForeignKey("personnel.id", ondelete="CASCADE"))
    tps_id: Mapped[int] = mapped_column(ForeignKey("tps.id", ondelete="CASCADE"), index=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"))


class RegistrationCode(Base):
    """A one-time code bound to one NRP; only its hash is kept."""

    __tablename__ = "registration_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    personnel_id: Mapped[int] = mapped_column(ForeignKey("personnel.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class RegistrationFailure(Base):
    """A failed registration attempt, counted per Telegram account to stop guessing."""

    __tablename__ = "registration_failures"
    __table_args__ = (Index("ix_registration_failures_user_at", "telegram_user_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(default=utcnow)
