"""`siaga check`: which TPS are under-staffed for their kerawanan, per shift and per Polres.

The staffing pattern (configuration `staffing`) says that `police` Polri/TNI
and `linmas` Linmas guard `tps` polling stations together: each TPS of that
level needs police/tps police and linmas/tps Linmas, fractions allowed
(kurang rawan: 2 police for 5 TPS is 0.4 police per TPS).

The rule, per shift:
- a person assigned to k TPS in the shift counts 1/k at each of them, so a
  pair covering five TPS gives each 2/5 police, exactly the pattern;
- TNI count as police (they serve on BKO beside Polri), Linmas as Linmas;
- a TPS is under-staffed when its police share is below police/tps or its
  Linmas share below linmas/tps (with a 1e-9 tolerance for float sums);
- Linmas are needed only in the shifts they spend at the TPS, the voting and
  counting phases (`linmas_phases`); logistics and escort shifts need police
  only;
- a unit's "missing" is the sum of its TPS's shortfalls, rounded up to whole
  people; its "assigned" counts distinct people at its TPS.

TPS are summarised under their nearest unit of kind `group_kind` (Polres by
default; a TPS with no such unit above it under its own unit). Shares and
shortfalls are computed in SQL, so a Sumsel-sized roster takes seconds.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Float, and_, case, func, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import StaffingSettings
from models import Assignment, Personnel, Shift, Tps, Unit, UnitClosure
from models.enums import Force, Kerawanan, Phase

TOLERANCE = 1e-9
POLICE_FORCES = (Force.polri.value, Force.tni.value)
LINMAS_PHASES = (Phase.pemungutan.value, Phase.penghitungan.value)


@dataclass(frozen=True)
class UnderStaffedTps:
    shift_code: str
    tps_code: str
    unit_code: str
    kerawanan: str
    police: float
    police_needed: float
    linmas: float
    linmas_needed: float


@dataclass
class UnitSummary:
    """One shift at one Polres (or other `group_kind` unit)."""

    shift_code: str
    unit_code: str
    unit_name: str
    tps: int = 0
    understaffed: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in Kerawanan})
    police_assigned: int = 0
    linmas_assigned: int = 0
    police_shortfall: float = 0.0
    linmas_shortfall: float = 0.0

    @property
    def police_missing(self) -> int:
        return math.ceil(self.police_shortfall - TOLERANCE) if self.police_shortfall > TOLERANCE else 0

    @property
    def linmas_missing(self) -> int:
        return math.ceil(self.linmas_shortfall - TOLERANCE) if self.linmas_shortfall > TOLERANCE else 0

    @property
    def understaffed_total(self) -> int:
        return sum(self.understaffed.values())


@dataclass
class StaffingReport:
    scope: str
    shifts: list[tuple[str, str]] = field(default_factory=list)  # (code, name) in time order
    summaries: list[UnitSummary] = field(default_factory=list)
    understaffed: list[UnderStaffedTps] = field(default_factory=list)
    problem: str | None = None  # an unknown unit or shift code


async def understaffed_report(
    session: AsyncSession,
    *,
    staffing: StaffingSettings,
    unit_code: str | None = None,
    shift_code: str | None = None,
    group_kind: str = "polres",
    linmas_phases: Collection[str] = LINMAS_PHASES,
) -> StaffingReport:
    """Under-staffed TPS of a subtree (default: the whole tree) for one shift (default: all)."""
    report = StaffingReport(scope=unit_code or "all units")
    root_id = None
    if unit_code is not None:
        root_id = await session.scalar(select(Unit.id).where(Unit.code == unit_code))
        if root_id is None:
            report.problem = f"unknown unit {unit_code!r}"
            return report
    shift_query = select(Shift.id, Shift.code, Shift.name, Shift.phase).order_by(Shift.starts_at, Shift.code)
    if shift_code is not None:
        shift_query = shift_query.where(Shift.code == shift_code)
    shifts = (await session.execute(shift_query)).all()
    if shift_code is not None and not shifts:
        report.problem = f"unknown shift {shift_code!r}"
        return report
    report.shifts = [(s.code, s.name) for s in shifts]
    if not shifts:
        return report
    shift_ids = [s.id for s in shifts]
    shift_code_of = {s.id: s.code for s in shifts}
    linmas_shifts = [s.id for s in shifts if s.phase in linmas_phases]
    units = {u.id: u for u in await session.execute(select(Unit.id, Unit.code, Unit.name, Unit.kind, Unit.parent_id))}
    group_of = _groups(units, group_kind)
    per_tps = _per_tps(staffing, shift_ids, linmas_shifts, root_id)
    summaries: dict[tuple[int, int], UnitSummary] = {}

    def summary(shift_id: int, group: int) -> UnitSummary:
        key = (shift_id, group)
        if key not in summaries:
            summaries[key] = UnitSummary(shift_code_of[shift_id], units[group].code, units[group].name)
        return summaries[key]

    for row in await session.execute(_totals(per_tps)):
        entry = summary(row.shift_id, group_of[row.unit_id])
        entry.tps += row.tps
        entry.understaffed[row.kerawanan] += int(row.under or 0)
        entry.police_shortfall += float(row.police_gap or 0)
        entry.linmas_shortfall += float(row.linmas_gap or 0)
    people = await _people(session, shift_ids, root_id, group_of)
    for (shift_id, group), (police, linmas) in people.items():
        entry = summary(shift_id, group)
        entry.police_assigned, entry.linmas_assigned = len(police), len(linmas)
    listed = select(per_tps).where(per_tps.c.under == 1).order_by(per_tps.c.shift_order, per_tps.c.code)
    report.understaffed = [
        UnderStaffedTps(
            shift_code_of[row.shift_id],
            row.code,
            units[row.unit_id].code,
            row.kerawanan,
            float(row.police),
            float(row.police_needed),
            float(row.linmas),
            float(row.linmas_needed),
        )
        for row in await session.execute(listed)
    ]
    order = {code: index for index, (code, _) in enumerate(report.shifts)}
    report.summaries = sorted(summaries.values(), key=lambda s: (order[s.shift_code], s.unit_code))
    return report


def _totals(per_tps: Any) -> Any:
    """TPS, under-staffed TPS and shortfalls per (shift, unit, kerawanan): a few hundred rows at Sumsel scale."""
    c = per_tps.c
    return select(
        c.shift_id,
        c.unit_id,
        c.kerawanan,
        func.count().label("tps"),
        func.sum(c.under).label("under"),
        func.sum(c.police_gap).label("police_gap"),
        func.sum(c.linmas_gap).label("linmas_gap"),
    ).group_by(c.shift_id, c.unit_id, c.kerawanan)


def _groups(units: dict[int, Any], group_kind: str) -> dict[int, int]:
    """Unit id -> the nearest unit of `group_kind` at or above it (itself if there is none)."""
    groups: dict[int, int] = {}
    for unit_id in units:
        node: int | None = unit_id
        seen = 0
        while node is not None and units[node].kind != group_kind and seen <= len(units):
            node, seen = units[node].parent_id, seen + 1
        groups[unit_id] = node if node is not None and units[node].kind == group_kind else unit_id
    return groups


def _in_scope(root_id: int | None) -> Any:
    if root_id is None:
        return true()
    return Tps.unit_id.in_(select(UnitClosure.unit_id).where(UnitClosure.ancestor_id == root_id))


def _per_tps(staffing: StaffingSettings, shift_ids: list[int], linmas_shifts: list[int], root_id: int | None) -> Any:
    """One row per (TPS, shift) in scope: shares, needs, shortfalls and the under-staffed flag."""
    load = (
        select(Assignment.shift_id, Assignment.personnel_id, func.count().label("k"))
        .where(Assignment.shift_id.in_(shift_ids))
        .group_by(Assignment.shift_id, Assignment.personnel_id)
        .subquery("load")
    )
    weight = literal(1.0, Float) / load.c.k
    share = (
        select(
            Assignment.shift_id,
            Assignment.tps_id,
            func.sum(case((Personnel.force.in_(POLICE_FORCES), weight), else_=0.0)).label("police"),
            func.sum(case((Personnel.force == Force.linmas.value, weight), else_=0.0)).label("linmas"),
        )
        .join(load, and_(load.c.shift_id == Assignment.shift_id, load.c.personnel_id == Assignment.personnel_id))
        .join(Personnel, Personnel.id == Assignment.personnel_id)
        .group_by(Assignment.shift_id, Assignment.tps_id)
        .subquery("share")
    )
    police_need = _need(staffing, "police")
    linmas_need = case((Shift.id.in_(linmas_shifts), _need(staffing, "linmas")), else_=literal(0.0, Float))
    police = func.coalesce(share.c.police, 0.0)
    linmas = func.coalesce(share.c.linmas, 0.0)
    police_short = police < police_need - TOLERANCE
    linmas_short = linmas < linmas_need - TOLERANCE
    shift_order = case({shift_id: index for index, shift_id in enumerate(shift_ids)}, value=Shift.id, else_=0)
    return (
        select(
            Tps.id.label("tps_id"),
            Tps.code,
            Tps.unit_id,
            Tps.kerawanan,
            Shift.id.label("shift_id"),
            shift_order.label("shift_order"),
            police.label("police"),
            linmas.label("linmas"),
            police_need.label("police_needed"),
            linmas_need.label("linmas_needed"),
            case((or_(police_short, linmas_short), 1), else_=0).label("under"),
            case((police_short, police_need - police), else_=0.0).label("police_gap"),
            case((linmas_short, linmas_need - linmas), else_=0.0).label("linmas_gap"),
        )
        .select_from(Tps)
        .join(Shift, Shift.id.in_(shift_ids))
        .outerjoin(share, and_(share.c.tps_id == Tps.id, share.c.shift_id == Shift.id))
        .where(_in_scope(root_id))
        .subquery("per_tps")
    )


def _need(staffing: StaffingSettings, kind: str) -> Any:
    """Per-TPS need by kerawanan, as a SQL CASE over the configured pattern."""
    patterns = {level.value: staffing.for_kerawanan(level.value) for level in Kerawanan}
    whens = {level: literal(getattr(pattern, kind) / pattern.tps, Float) for level, pattern in patterns.items()}
    return case(whens, value=Tps.kerawanan, else_=literal(0.0, Float))


async def _people(
    session: AsyncSession, shift_ids: list[int], root_id: int | None, group_of: dict[int, int]
) -> dict[tuple[int, int], tuple[set[int], set[int]]]:
    """(shift, group) -> distinct (police, Linmas) ids at the group's TPS; one spanning two groups counts in both."""
    query = (
        select(Assignment.shift_id, Assignment.personnel_id, Tps.unit_id, Personnel.force)
        .join(Tps, Tps.id == Assignment.tps_id)
        .join(Personnel, Personnel.id == Assignment.personnel_id)
        .where(Assignment.shift_id.in_(shift_ids), _in_scope(root_id))
        .distinct()
    )
    people: dict[tuple[int, int], tuple[set[int], set[int]]] = {}
    for shift_id, person_id, unit_id, force in await session.execute(query):
        police, linmas = people.setdefault((shift_id, group_of[unit_id]), (set(), set()))
        (linmas if force == Force.linmas.value else police).add(person_id)
    return people


def format_report(report: StaffingReport, *, limit: int = 50) -> str:
    """Plain text for `siaga check`: a table per shift, then the under-staffed TPS."""
    if report.problem:
        return f"Staffing check: {report.problem}"
    if not report.shifts:
        return "Staffing check: no shifts imported yet."
    lines = [f"Staffing check: {report.scope}, {len(report.shifts)} shift(s)."]
    header = f"  {'unit':<28} {'TPS':>6} {'under kr/r/sr':>15} {'police':>7} {'linmas':>7} {'missing p/l':>12}"
    for code, name in report.shifts:
        rows = [s for s in report.summaries if s.shift_code == code]
        lines.append(f"Shift {code} ({name}):")
        if not rows:
            lines.append("  no TPS in scope")
            continue
        lines.append(header)
        for s in rows:
            u = s.understaffed
            under = f"{u['kurang_rawan']}/{u['rawan']}/{u['sangat_rawan']}"
            missing = f"{s.police_missing}/{s.linmas_missing}"
            lines.append(
                f"  {s.unit_code:<28} {s.tps:>6} {under:>15} {s.police_assigned:>7} "
                f"{s.linmas_assigned:>7} {missing:>12}"
            )
    total = len(report.understaffed)
    if total == 0:
        lines.append("No TPS is under-staffed.")
        return "\n".join(lines)
    lines.append(f"Under-staffed TPS ({total}{f', first {limit} shown' if total > limit else ''}):")
    for t in report.understaffed[:limit]:
        lines.append(
            f"  {t.shift_code} {t.tps_code} ({t.unit_code}, {t.kerawanan}): "
            f"police {t.police:.2f}/{t.police_needed:.2f}, linmas {t.linmas:.2f}/{t.linmas_needed:.2f}"
        )
    return "\n".join(lines)
