"""Live tallies behind `/status`: counts kept in the same transaction as every change they count.

A national `/status` cannot count 1.7 million people and 800,000 TPS per
request, and a cache or a periodic rollup would show numbers that are no
longer true. These tables hold the counts per (shift, unit) and per
(shift, TPS) instead; every check-in, check-out, registration and
reachability change adjusts them in its own transaction
(bot/services/tally.py), so `/status` sums a few thousand rows through
`unit_closure` and every number is as true as the rows it counts.

They are derived data: `tally.rebuild` recomputes them from the roster and
the check-ins (the import calls it), and a shift without a `tally_shifts`
row is counted from the source tables instead.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, one_of, utcnow
from models.enums import Kerawanan


class UnitShiftTally(Base):
    """People commanded by one unit (`personnel.unit_id`) with an assignment in one shift, as `/status` counts them."""

    __tablename__ = "unit_shift_tally"

    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True)
    assigned: Mapped[int] = mapped_column(default=0)
    registered: Mapped[int] = mapped_column(default=0)
    checked_in: Mapped[int] = mapped_column(default=0)
    late: Mapped[int] = mapped_column(default=0)
    far: Mapped[int] = mapped_column(default=0)
    checked_out: Mapped[int] = mapped_column(default=0)
    unreachable: Mapped[int] = mapped_column(default=0)


class TpsShiftTally(Base):
    """Police/TNI present for one TPS in one shift, and their staffing share (1/k each, k = their TPS).

    Only TPS that ever had someone present have a row; no row means nobody.
    """

    __tablename__ = "tps_shift_tally"

    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"), primary_key=True)
    tps_id: Mapped[int] = mapped_column(ForeignKey("tps.id", ondelete="CASCADE"), primary_key=True)
    present: Mapped[int] = mapped_column(default=0)
    share: Mapped[float] = mapped_column(Float, default=0.0)


class UnitShiftTpsTally(Base):
    """TPS of one primary unit and kerawanan in one shift: all of them, covered, meeting the pattern."""

    __tablename__ = "unit_shift_tps_tally"
    __table_args__ = (one_of("kerawanan", Kerawanan),)

    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True)
    kerawanan: Mapped[str] = mapped_column(String(16), primary_key=True)
    tps_total: Mapped[int] = mapped_column(default=0)
    covered: Mapped[int] = mapped_column(default=0)
    meets: Mapped[int] = mapped_column(default=0)


class TallyShift(Base):
    """A shift whose tallies are live, and the staffing pattern their `meets` counts were made against.

    `pattern` is the canonical text of the police part of `settings.staffing`
    (`kurang_rawan=2/5;rawan=2/2;sangat_rawan=2/1`): `/status` uses the
    tallies only when it equals the configured one.
    """

    __tablename__ = "tally_shifts"

    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"), primary_key=True)
    pattern: Mapped[str] = mapped_column(String(200))
    built_at: Mapped[datetime] = mapped_column(default=utcnow)
