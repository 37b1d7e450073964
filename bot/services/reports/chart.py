"""The `/rekap` chart: check-ins per 15 minutes against the assigned, and a bar per unit, as a PNG."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, SQLColumnExpression, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.status import (
    Figures,
    ShiftRef,
    scope_units,
)
from models import Checkin, Personnel

BIN = timedelta(minutes=15)
MAX_BARS = 40


def _epoch(column: SQLColumnExpression[datetime], dialect: str) -> ColumnElement[int]:
    if dialect == "sqlite":  # stored as naive UTC text
        return cast(func.strftime("%s", column), Integer)
    return cast(func.extract("epoch", column), Integer)


async def checkins_per_bin(
    session: AsyncSession, *, shift_id: int, scope: int | None, start: datetime
) -> dict[int, int]:
    """Check-ins of the scope's people per 15 minutes since `start` (bin 0), counted by the database."""
    dialect = session.get_bind().dialect.name
    index = (_epoch(Checkin.checked_in_at, dialect) - int(start.timestamp())) / int(BIN.total_seconds())
    binned = cast(func.floor(index), Integer) if dialect != "sqlite" else cast(index, Integer)
    query = (
        select(binned.label("bin"), func.count())
        .join(Personnel, Personnel.id == Checkin.personnel_id)
        .where(Checkin.shift_id == shift_id)
        .group_by(binned)
    )
    if scope is not None:
        query = query.where(Personnel.unit_id.in_(scope_units(scope)))
    return {int(row[0]): int(row[1]) for row in await session.execute(query)}


def draw_chart(
    *,
    shift: ShiftRef,
    start: datetime,
    until: datetime,
    bins: dict[int, int],
    assigned: int,
    bars: Sequence[tuple[str, Figures]],
    zone: ZoneInfo,
    title: str,
) -> bytes:
    """Cumulative check-ins per 15 minutes, and TPS covered / people checked in per child unit."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure

    last = max(0, int((max(until, start) - start) / BIN))
    edges = [start + BIN * i for i in range(last + 2)]
    counts = [sum(n for b, n in bins.items() if b <= i) for i in range(last + 1)]
    figure = Figure(figsize=(10, 9 if bars else 5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2 if bars else 1, 1, squeeze=False)[:, 0]
    timeline = axes[0]
    timeline.plot(
        [e.astimezone(zone).replace(tzinfo=None) for e in edges[1:]], counts, marker=".", label="hadir / checked in"
    )
    if assigned:
        timeline.axhline(assigned, linestyle="--", color="grey", label=f"bertugas / on duty ({assigned})")
    timeline.axvline(shift.starts_at.astimezone(zone).replace(tzinfo=None), color="red", linewidth=0.8)
    timeline.set_title(f"{title} {shift.name} — check-in kumulatif / cumulative (per 15 min)".strip())
    timeline.legend(loc="lower right")
    timeline.grid(alpha=0.3)
    timeline.xaxis.set_major_formatter(DateFormatter("%H:%M"))
    if bars:
        _bars(axes[1], bars)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _bars(axis: Any, bars: Sequence[tuple[str, Figures]]) -> None:
    labels = [code for code, _ in bars]
    covered = [_pct(f.coverage.covered, f.coverage.total) for _, f in bars]
    present = [_pct(f.people.checked_in, f.people.assigned) for _, f in bars]
    positions = range(len(bars))
    axis.barh([p - 0.2 for p in positions], covered, height=0.4, label="TPS terjaga / covered %")
    axis.barh([p + 0.2 for p in positions], present, height=0.4, label="hadir / checked in %")
    axis.set_yticks(list(positions), labels, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, 100)
    axis.set_title("Per satuan / by unit")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.05), ncols=2)
    axis.grid(axis="x", alpha=0.3)


def _pct(part: int, whole: int) -> float:
    return 100 * part / whole if whole else 0.0
