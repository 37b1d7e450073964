"""`/rekap` and `siaga export`: the shift as a chart, a workbook and a map layer.

Everything is counted by SQL (the figures of bot/services/status/counting.py, the
check-ins per 15 minutes) and only written out here, as bytes: a PNG
(matplotlib, Agg, drawn off the event loop), an .xlsx workbook and a
GeoJSON FeatureCollection. Text a person typed goes into the workbook as a
text cell (`data_type = "s"`), so `=HYPERLINK(...)` in a sitrep stays words
and never becomes a formula in Excel or LibreOffice.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, SQLColumnExpression, and_, cast, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.config import Settings
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
    is_narrow,
    pick_shift,
    scope_units,
    tps_facts,
)
from models import Assignment, Checkin, Contingency, ContingencyStep, Personnel, Sitrep, Tps, Unit
from models.enums import ContingencyState

BIN = timedelta(minutes=15)
MAX_BARS = 40
CELL_LIMIT = 32_767
FORMULA_STARTS = ("=", "+", "-", "@")


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
    sheets = {
        "summary": _summary(shift, unit, now, zone, total),
        "checkins": await _checkin_rows(session, shift=shift, scope=scope, zone=zone),
        "sitreps": await _sitrep_rows(session, shift=shift, scope=scope, zone=zone),
        "contingencies": await _contingency_rows(session, shift=shift, scope=scope, zone=zone),
        "coverage": _coverage_rows([ref for ref, _ in tree], by_unit),
    }
    features = await _tps_features(session, shift=shift, scope=scope, settings=settings)
    features += await _contingency_features(session, shift=shift, scope=scope)
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


# --- check-ins over time ----------------------------------------------------------------------------


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


# --- the workbook ------------------------------------------------------------------------------------

Row = list[Any]


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """Excel has no time zones: local wall time, the header says which zone."""
    return moment.astimezone(zone).replace(tzinfo=None) if moment else None


def _in_shift(shift: ShiftRef, shift_column: Any, created_column: Any) -> ColumnElement[bool]:
    """Of this shift, or sent without one while it ran."""
    return or_(
        shift_column == shift.id,
        and_(shift_column.is_(None), created_column >= shift.starts_at, created_column < shift.ends_at),
    )


def _summary(shift: ShiftRef, unit: UnitRef | None, now: datetime, zone: ZoneInfo, figures: Figures) -> list[Row]:
    people, tps = figures.people, figures.coverage
    rows: list[Row] = [
        ["field", "value"],
        ["unit", unit.code if unit else "(all)"],
        ["unit_name", unit.name if unit else ""],
        ["shift", shift.code],
        ["shift_name", shift.name],
        ["phase", shift.phase],
        ["starts_at_local", _local(shift.starts_at, zone)],
        ["ends_at_local", _local(shift.ends_at, zone)],
        ["as_of_local", _local(now, zone)],
        ["time_zone", str(zone)],
    ]
    rows += [[f"people_{name}", getattr(people, name)] for name in People.__dataclass_fields__]
    rows += [
        ["tps_total", tps.total],
        ["tps_covered", tps.covered],
        ["tps_uncovered", tps.uncovered],
        ["tps_meeting_pattern", tps.meets_pattern],
    ]
    rows += [[f"open_contingencies_{level}", count] for level, count in figures.contingencies.items()]
    return rows


async def _checkin_rows(session: AsyncSession, *, shift: ShiftRef, scope: int | None, zone: ZoneInfo) -> list[Row]:
    """Everyone on duty in the shift, checked in or not."""
    posts = (
        select(Assignment.personnel_id, func.aggregate_strings(Tps.code, ";").label("codes"))
        .join(Tps, Tps.id == Assignment.tps_id)
        .where(Assignment.shift_id == shift.id)
        .group_by(Assignment.personnel_id)
        .subquery("posts")
    )
    at = aliased(Tps)
    query = (
        select(
            Unit.code,
            Personnel.nrp,
            Personnel.rank,
            Personnel.name,
            Personnel.force,
            posts.c.codes,
            Personnel.telegram_user_id.is_not(None),
            Personnel.reachable,
            Checkin.checked_in_at,
            at.code,
            Checkin.distance_m,
            Checkin.far,
            Checkin.late,
            Checkin.checked_out_at,
        )
        .join(posts, posts.c.personnel_id == Personnel.id)
        .join(Unit, Unit.id == Personnel.unit_id)
        .outerjoin(Checkin, and_(Checkin.personnel_id == Personnel.id, Checkin.shift_id == shift.id))
        .outerjoin(at, at.id == Checkin.tps_id)
        .order_by(Unit.code, Personnel.name, Personnel.id)
    )
    if scope is not None:
        query = query.where(Personnel.unit_id.in_(scope_units(scope)))
    rows: list[Row] = [
        [
            "unit",
            "nrp",
            "rank",
            "name",
            "force",
            "assigned_tps",
            "registered",
            "reachable",
            f"checked_in_at ({zone})",
            "checkin_tps",
            "distance_m",
            "far",
            "late",
            f"checked_out_at ({zone})",
        ]
    ]
    for (
        unit,
        nrp,
        rank,
        name,
        force,
        codes,
        registered,
        reachable,
        checked_in_at,
        tps,
        distance,
        far,
        late,
        checked_out_at,
    ) in await session.execute(query):
        rows.append(
            [
                unit,
                nrp,
                rank,
                name,
                force,
                ";".join(sorted(codes.split(";"))),
                bool(registered),
                bool(reachable),
                _local(checked_in_at, zone),
                tps,
                round(distance) if distance is not None else None,
                None if far is None else bool(far),
                None if late is None else bool(late),
                _local(checked_out_at, zone),
            ]
        )
    return rows


async def _sitrep_rows(session: AsyncSession, *, shift: ShiftRef, scope: int | None, zone: ZoneInfo) -> list[Row]:
    verifier = aliased(Personnel)
    query = (
        select(Sitrep, Unit.code, Tps.code, Personnel.rank, Personnel.name, verifier.name)
        .join(Unit, Unit.id == Sitrep.unit_id)
        .join(Personnel, Personnel.id == Sitrep.personnel_id)
        .outerjoin(Tps, Tps.id == Sitrep.tps_id)
        .outerjoin(verifier, verifier.id == Sitrep.verified_by_id)
        .where(Sitrep.filed_at.is_not(None), _in_shift(shift, Sitrep.shift_id, Sitrep.created_at))
        .order_by(Sitrep.filed_at, Sitrep.id)
    )
    if scope is not None:
        query = query.where(Sitrep.unit_id.in_(scope_units(scope)))
    rows: list[Row] = [
        [
            "id",
            f"filed_at ({zone})",
            "unit",
            "tps",
            "reporter",
            "category",
            "phase",
            "text",
            "lat",
            "lon",
            "photo",
            f"verified_at ({zone})",
            "verified_by",
        ]
    ]
    for sitrep, unit, tps, rank, name, verified_by in await session.execute(query):
        rows.append(
            [
                sitrep.id,
                _local(sitrep.filed_at, zone),
                unit,
                tps,
                f"{rank} {name}".strip(),
                sitrep.category,
                sitrep.phase,
                sitrep.text,
                sitrep.lat,
                sitrep.lon,
                sitrep.photo_file_id is not None,
                _local(sitrep.verified_at, zone),
                verified_by,
            ]
        )
    return rows


async def _contingency_rows(session: AsyncSession, *, shift: ShiftRef, scope: int | None, zone: ZoneInfo) -> list[Row]:
    """One row per escalation step (a contingency without steps: one row), the contingency repeated."""
    step_unit, step_actor, reporter = aliased(Unit), aliased(Personnel), aliased(Personnel)
    query = (
        select(
            Contingency,
            Unit.code,
            Tps.code,
            reporter.rank,
            reporter.name,
            ContingencyStep.version,
            ContingencyStep.kind,
            step_unit.code,
            step_actor.name,
            ContingencyStep.at,
        )
        .join(Unit, Unit.id == Contingency.unit_id)
        .join(reporter, reporter.id == Contingency.reporter_id)
        .outerjoin(Tps, Tps.id == Contingency.tps_id)
        .outerjoin(ContingencyStep, ContingencyStep.contingency_id == Contingency.id)
        .outerjoin(step_unit, step_unit.id == ContingencyStep.unit_id)
        .outerjoin(step_actor, step_actor.id == ContingencyStep.actor_id)
        .where(_in_shift(shift, Contingency.shift_id, Contingency.created_at))
        .order_by(Contingency.id, ContingencyStep.version)
    )
    if scope is not None:
        query = query.where(Contingency.unit_id.in_(scope_units(scope)))
    rows: list[Row] = [
        [
            "id",
            f"raised_at ({zone})",
            "severity",
            "state",
            "unit",
            "tps",
            "reporter",
            "text",
            "step",
            "step_kind",
            "step_unit",
            "step_actor",
            f"step_at ({zone})",
        ]
    ]
    for item, unit, tps, rank, name, version, kind, where, actor, at in await session.execute(query):
        rows.append(
            [
                item.id,
                _local(item.raised_at or item.created_at, zone),
                item.severity,
                item.state,
                unit,
                tps,
                f"{rank} {name}".strip(),
                item.text,
                version,
                kind,
                where,
                actor,
                _local(at, zone),
            ]
        )
    return rows


def _coverage_rows(units: Iterable[UnitRef], figures: dict[int, Figures]) -> list[Row]:
    """Every unit of the scope with its subtree's figures (a Polres row includes its Polsek)."""
    levels = ("sangat_rawan", "rawan", "kurang_rawan")
    rows: list[Row] = [
        [
            "unit",
            "name",
            "kind",
            *People.__dataclass_fields__,
            "tps_total",
            "tps_covered",
            "tps_uncovered",
            "tps_meeting_pattern",
            *(f"{level}_{what}" for level in levels for what in ("total", "covered", "meeting_pattern")),
            "open_contingencies",
        ]
    ]
    for unit in units:
        item = figures.get(unit.id, Figures())
        tps = item.coverage
        by_level = [
            getattr(item.tps.get(level, Coverage()), what)
            for level in levels
            for what in ("total", "covered", "meets_pattern")
        ]
        rows.append(
            [
                unit.code,
                unit.name,
                unit.kind,
                *(getattr(item.people, name) for name in People.__dataclass_fields__),
                tps.total,
                tps.covered,
                tps.uncovered,
                tps.meets_pattern,
                *by_level,
                item.open_contingencies,
            ]
        )
    return rows


def write_workbook(sheets: dict[str, list[Row]]) -> bytes:
    """An .xlsx, streamed (write-only); text that looks like a formula is forced to a text cell."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append([_cell(sheet, value) if isinstance(value, str) else value for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _cell(sheet: Any, value: str) -> Any:
    """Plain text stays a plain value (openpyxl writes it as a string); `= + - @` first gets data_type "s"."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    value = ILLEGAL_CHARACTERS_RE.sub("", value)[:CELL_LIMIT]
    if not value.startswith(FORMULA_STARTS):
        return value
    cell = WriteOnlyCell(sheet, value=None)
    cell.value, cell.data_type = value, "s"
    return cell


# --- the map layer -----------------------------------------------------------------------------------


async def _tps_features(
    session: AsyncSession, *, shift: ShiftRef, scope: int | None, settings: Settings
) -> list[dict[str, Any]]:
    """Every TPS of the scope: covered, uncovered, or contingency (an unresolved one at it)."""
    facts = tps_facts(
        shift_id=shift.id, scope=scope, staffing=settings.staffing, narrow=await is_narrow(session, scope)
    )
    troubled = exists().where(
        Contingency.tps_id == Tps.id,
        Contingency.state != ContingencyState.resolved.value,
        Contingency.raised_at.is_not(None),
    )
    query = (
        select(
            Tps.code,
            Tps.number,
            Tps.village,
            Tps.lat,
            Tps.lon,
            Tps.kerawanan,
            Unit.code,
            facts.c.covered,
            facts.c.meets,
            troubled,
        )
        .join(facts, facts.c.tps_id == Tps.id)
        .join(Unit, Unit.id == Tps.unit_id)
        .order_by(Tps.code)
    )
    features = []
    for code, number, village, lat, lon, kerawanan, unit, covered, meets, trouble in await session.execute(query):
        state = "contingency" if trouble else "covered" if covered else "uncovered"
        features.append(
            _point(
                lat,
                lon,
                {
                    "kind": "tps",
                    "code": code,
                    "number": number,
                    "village": village,
                    "unit": unit,
                    "kerawanan": kerawanan,
                    "state": state,
                    "meets_pattern": bool(meets),
                },
            )
        )
    return features


async def _contingency_features(session: AsyncSession, *, shift: ShiftRef, scope: int | None) -> list[dict[str, Any]]:
    """The shift's contingencies and every unresolved one, where they were sent from (else at their TPS)."""
    query = (
        select(Contingency, Tps.code, Tps.lat, Tps.lon, Unit.code)
        .join(Unit, Unit.id == Contingency.unit_id)
        .outerjoin(Tps, Tps.id == Contingency.tps_id)
        .where(Contingency.raised_at.is_not(None))
        .where(
            or_(
                _in_shift(shift, Contingency.shift_id, Contingency.created_at),
                Contingency.state != ContingencyState.resolved.value,
            )
        )
        .order_by(Contingency.id)
    )
    if scope is not None:
        query = query.where(Contingency.unit_id.in_(scope_units(scope)))
    features = []
    for item, tps, tps_lat, tps_lon, unit in await session.execute(query):
        lat, lon = (item.lat, item.lon) if item.lat is not None and item.lon is not None else (tps_lat, tps_lon)
        if lat is None or lon is None:
            continue
        features.append(
            _point(
                lat,
                lon,
                {
                    "kind": "contingency",
                    "id": item.id,
                    "severity": item.severity,
                    "state": item.state,
                    "tps": tps,
                    "unit": unit,
                    "text": item.text[:500],
                    "raised_at": (item.raised_at or item.created_at).isoformat(),
                },
            )
        )
    return features


def _point(lat: float, lon: float, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
        "properties": properties,
    }


def geojson_bytes(features: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"type": "FeatureCollection", "features": features}, ensure_ascii=False, separators=(",", ":")
    ).encode()
