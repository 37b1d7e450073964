"""The recap workbook's sheets, one row list each, written as text cells so nothing typed becomes a formula."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.services.status import (
    Coverage,
    Figures,
    People,
    ShiftRef,
    UnitRef,
    scope_units,
)
from models import Assignment, Checkin, Contingency, ContingencyStep, Personnel, Sitrep, Tps, Unit

CELL_LIMIT = 32_767
FORMULA_STARTS = ("=", "+", "-", "@")

Row = list[Any]


def local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """Excel has no time zones: local wall time, the header says which zone."""
    return moment.astimezone(zone).replace(tzinfo=None) if moment else None


def in_shift(shift: ShiftRef, shift_column: Any, created_column: Any) -> ColumnElement[bool]:
    """Of this shift, or sent without one while it ran."""
    return or_(
        shift_column == shift.id,
        and_(shift_column.is_(None), created_column >= shift.starts_at, created_column < shift.ends_at),
    )


def summary_rows(shift: ShiftRef, unit: UnitRef | None, now: datetime, zone: ZoneInfo, figures: Figures) -> list[Row]:
    people, tps = figures.people, figures.coverage
    rows: list[Row] = [
        ["field", "value"],
        ["unit", unit.code if unit else "(all)"],
        ["unit_name", unit.name if unit else ""],
        ["shift", shift.code],
        ["shift_name", shift.name],
        ["phase", shift.phase],
        ["starts_at_local", local(shift.starts_at, zone)],
        ["ends_at_local", local(shift.ends_at, zone)],
        ["as_of_local", local(now, zone)],
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


async def checkin_rows(session: AsyncSession, *, shift: ShiftRef, scope: int | None, zone: ZoneInfo) -> list[Row]:
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
                local(checked_in_at, zone),
                tps,
                round(distance) if distance is not None else None,
                None if far is None else bool(far),
                None if late is None else bool(late),
                local(checked_out_at, zone),
            ]
        )
    return rows


async def sitrep_rows(session: AsyncSession, *, shift: ShiftRef, scope: int | None, zone: ZoneInfo) -> list[Row]:
    verifier = aliased(Personnel)
    query = (
        select(Sitrep, Unit.code, Tps.code, Personnel.rank, Personnel.name, verifier.name)
        .join(Unit, Unit.id == Sitrep.unit_id)
        .join(Personnel, Personnel.id == Sitrep.personnel_id)
        .outerjoin(Tps, Tps.id == Sitrep.tps_id)
        .outerjoin(verifier, verifier.id == Sitrep.verified_by_id)
        .where(Sitrep.filed_at.is_not(None), in_shift(shift, Sitrep.shift_id, Sitrep.created_at))
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
                local(sitrep.filed_at, zone),
                unit,
                tps,
                f"{rank} {name}".strip(),
                sitrep.category,
                sitrep.phase,
                sitrep.text,
                sitrep.lat,
                sitrep.lon,
                sitrep.photo_file_id is not None,
                local(sitrep.verified_at, zone),
                verified_by,
            ]
        )
    return rows


BOT_REPORTER = "Siaga"
"""The reporter of a contingency the bot raised itself (an escort's alert)."""


async def contingency_rows(session: AsyncSession, *, shift: ShiftRef, scope: int | None, zone: ZoneInfo) -> list[Row]:
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
        .outerjoin(reporter, reporter.id == Contingency.reporter_id)
        .outerjoin(Tps, Tps.id == Contingency.tps_id)
        .outerjoin(ContingencyStep, ContingencyStep.contingency_id == Contingency.id)
        .outerjoin(step_unit, step_unit.id == ContingencyStep.unit_id)
        .outerjoin(step_actor, step_actor.id == ContingencyStep.actor_id)
        .where(in_shift(shift, Contingency.shift_id, Contingency.created_at))
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
                local(item.raised_at or item.created_at, zone),
                item.severity,
                item.state,
                unit,
                tps,
                f"{rank} {name}".strip() if item.reporter_id is not None else BOT_REPORTER,
                item.text,
                version,
                kind,
                where,
                actor,
                local(at, zone),
            ]
        )
    return rows


def coverage_rows(units: Iterable[UnitRef], figures: dict[int, Figures]) -> list[Row]:
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
