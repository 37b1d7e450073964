"""`/rekap` and `siaga export`: the shift as a chart, a workbook and a map layer.

Everything is counted by SQL (the figures of bot/services/status/counting.py, the
check-ins per 15 minutes) and only written out here, as bytes: a PNG
(matplotlib, Agg, drawn off the event loop), an .xlsx workbook and a
GeoJSON FeatureCollection. Text a person typed goes into the workbook as a
text cell (`data_type = "s"`), so `=HYPERLINK(...)` in a sitrep stays words
and never becomes a formula in Excel or LibreOffice.

The package: `chart`, `workbook` and `geojson` each write one of the
files; `escorts` reads the shift's escorts for the workbook's escorts sheet
and the map's tracks; `build` counts once and hands each its figures.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.services.reports.chart import MAX_BARS, checkins_per_bin, draw_chart
from bot.services.reports.escorts import escort_rows, escorts_of_export, place_features, track_features
from bot.services.reports.geojson import contingency_features, geojson_bytes, tps_features
from bot.services.reports.workbook import (
    checkin_rows,
    contingency_rows,
    coverage_rows,
    sitrep_rows,
    summary_rows,
    write_workbook,
)
from bot.services.status import (
    Coverage,
    Figures,
    People,
    Refusal,
    ShiftRef,
    UnitRef,
    Viewer,
    authorize,
    figures_by_unit,
    pick_shift,
    scope_units,
)
from models import Unit


class ExportError(ValueError):
    """Nothing to export (no such shift, no shift at all), worded for the operator."""


@dataclass(frozen=True)
class ExportFiles:
    shift: ShiftRef
    unit: UnitRef | None  # None: the whole tree
    as_of: datetime
    chart: bytes  # PNG
    workbook: bytes  # .xlsx
    geojson: bytes
    stem: str  # a file name without extension: rekap-<unit>-<shift>-<yyyymmdd-hhmm>


async def export_shift(
    session: AsyncSession, *, shift_code: str | None, now: datetime, settings: Settings
) -> ExportFiles:
    """`siaga export [--shift CODE] FILE`: the whole tree, the named shift or the one `/status` shows."""
    shift = await pick_shift(session, now=now, code=shift_code)
    if shift is None:
        raise ExportError(f"no shift with code {shift_code!r}" if shift_code else "no shift is planned")
    return await build(session, shift=shift, unit=None, now=now, settings=settings)


async def recap_for(
    session: AsyncSession, *, viewer: Viewer, now: datetime, settings: Settings, unit_code: str | None = None
) -> ExportFiles | Refusal | None:
    """`/rekap [UNIT]`: who may ask is decided as for `/status`; None when no shift is planned."""
    unit = await authorize(session, viewer=viewer, unit_code=unit_code)
    if isinstance(unit, Refusal):
        return unit
    shift = await pick_shift(session, now=now)
    if shift is None:
        return None
    return await build(session, shift=shift, unit=unit, now=now, settings=settings)


async def build(
    session: AsyncSession, *, shift: ShiftRef, unit: UnitRef | None, now: datetime, settings: Settings
) -> ExportFiles:
    """Count once (one statement, every unit of the scope), then write the three files."""
    scope = unit.id if unit else None
    zone = settings.operation.zone
    start = shift.starts_at - timedelta(minutes=settings.checkin.opens_before_minutes)
    bins = await checkins_per_bin(session, shift_id=shift.id, scope=scope, start=start)
    by_unit = await figures_by_unit(
        session, shift_id=shift.id, scope=scope, groups=scope_units(scope), staffing=settings.staffing
    )
    tree = await _tree(session, scope)
    roots = {ref.id for ref, parent in tree if parent is None}
    total = by_unit.get(scope, Figures()) if scope else _total([by_unit[r] for r in roots if r in by_unit])
    top = {scope} if scope else roots  # the bars: one level below the scope (below the roots for everything)
    bars = [
        (ref.code, by_unit[ref.id])
        for ref, parent in tree
        if parent in top and ref.id in by_unit and (by_unit[ref.id].coverage.total or by_unit[ref.id].people.assigned)
    ][:MAX_BARS]
    escorts = await escorts_of_export(session, shift=shift, scope=scope, now=now)
    sheets = {
        "summary": summary_rows(shift, unit, now, zone, total),
        "checkins": await checkin_rows(session, shift=shift, scope=scope, zone=zone),
        "sitreps": await sitrep_rows(session, shift=shift, scope=scope, zone=zone),
        "contingencies": await contingency_rows(session, shift=shift, scope=scope, zone=zone),
        "coverage": coverage_rows([ref for ref, _ in tree], by_unit),
        "escorts": escort_rows(escorts, zone),
    }
    features = await tps_features(session, shift=shift, scope=scope, settings=settings)
    features += await contingency_features(session, shift=shift, scope=scope)
    features += place_features(escorts) + await track_features(session, escorts)
    chart = await asyncio.to_thread(
        draw_chart,
        shift=shift,
        start=start,
        until=min(now, shift.ends_at),
        bins=bins,
        assigned=total.people.assigned,
        bars=bars,
        zone=zone,
        title=unit.code if unit else "",
    )
    workbook = await asyncio.to_thread(write_workbook, sheets)
    stem = f"rekap-{unit.code if unit else 'all'}-{shift.code}-{now.astimezone(zone):%Y%m%d-%H%M}"
    return ExportFiles(shift, unit, now, chart, workbook, geojson_bytes(features), stem)


async def _tree(session: AsyncSession, scope: int | None) -> list[tuple[UnitRef, int | None]]:
    """The scope's units by code, each with its parent."""
    rows = await session.execute(
        select(Unit.id, Unit.code, Unit.name, Unit.kind, Unit.parent_id)
        .where(Unit.id.in_(scope_units(scope)))
        .order_by(Unit.code)
    )
    return [(UnitRef(id_, code, name, kind), parent) for id_, code, name, kind, parent in rows]


def _total(roots: list[Figures]) -> Figures:
    """Several trees: add them up (no person and no TPS belongs to two)."""
    people = People(*(sum(getattr(f.people, name) for f in roots) for name in People.__dataclass_fields__))
    levels: dict[str, Coverage] = {}
    opened: dict[str, int] = {}
    for item in roots:
        for level, coverage in item.tps.items():
            levels[level] = levels.get(level, Coverage()) + coverage
        for severity, count in item.contingencies.items():
            opened[severity] = opened.get(severity, 0) + count
    return Figures(people, levels, opened)
