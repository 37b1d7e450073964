"""What `/status` shows of a unit: its figures with the drill-down entries, the latest reports, the missing pages.

The numbers themselves are counted in `counting` (what they mean is defined
there); this module puts them together with what a commander reads around
them, one request at a time: the child units to drill down into, the unit
above when the viewer may see it, the newest sitreps, and who has not
checked in, a page at a time. It reads with `counting`'s subtree and access
rules and is never read by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, exists, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import StaffingSettings
from bot.services.escorts import EscortCounts, escort_counts
from bot.services.status.counting import (
    Figures,
    Refusal,
    ShiftRef,
    UnitRef,
    Viewer,
    authorize,
    children_and_self,
    figures_by_unit,
    pick_shift,
    scope_units,
)
from models import Assignment, Checkin, Personnel, Sitrep, Tps, Unit

MISSING_PAGE_SIZE = 25


@dataclass(frozen=True)
class ChildStatus:
    unit: UnitRef
    figures: Figures


@dataclass(frozen=True)
class SitrepLine:
    id: int
    filed_at: datetime
    category: str | None
    unit_code: str
    tps_code: str | None
    reporter: str
    text: str


@dataclass(frozen=True)
class UnitStatus:
    unit: UnitRef
    parent: UnitRef | None  # set only when the viewer may see it (an "up" button)
    shift: ShiftRef | None
    as_of: datetime
    figures: Figures
    children: list[ChildStatus]
    sitreps: list[SitrepLine]
    escorts: EscortCounts = EscortCounts()
    """The subtree's escorts by state, and how many have an alert open (all zero: no escort line)."""


@dataclass(frozen=True)
class MissingPerson:
    personnel_id: int
    title: str
    force: str
    unit_code: str
    tps_codes: tuple[str, ...]
    registered: bool
    reachable: bool


@dataclass(frozen=True)
class MissingPage:
    unit: UnitRef
    shift: ShiftRef | None
    as_of: datetime
    page: int
    pages: int
    total: int
    offset: int  # people before this page
    people: list[MissingPerson]


# --- the status message -----------------------------------------------------------------------------


async def status_for(
    session: AsyncSession,
    *,
    viewer: Viewer,
    now: datetime,
    staffing: StaffingSettings,
    unit_code: str | None = None,
    unit_id: int | None = None,
) -> UnitStatus | Refusal:
    """The status of the viewer's unit (or the named one, if the viewer may see it)."""
    unit = await authorize(session, viewer=viewer, unit_code=unit_code, unit_id=unit_id)
    if isinstance(unit, Refusal):
        return unit
    shift = await pick_shift(session, now=now)
    children = await child_units(session, unit_id=unit.id)
    figures: dict[int, Figures] = {}
    if shift is not None:
        figures = await figures_by_unit(
            session, shift_id=shift.id, scope=unit.id, groups=children_and_self(unit.id), staffing=staffing
        )
    return UnitStatus(
        unit=unit,
        parent=await _visible_parent(session, viewer=viewer, unit_id=unit.id),
        shift=shift,
        as_of=now,
        figures=figures.get(unit.id, Figures()),
        children=[ChildStatus(child, figures.get(child.id, Figures())) for child in children],
        sitreps=await latest_sitreps(session, scope=unit.id),
        escorts=await escort_counts(session, unit_ids=[unit.id]),
    )


async def child_units(session: AsyncSession, *, unit_id: int | None) -> list[UnitRef]:
    """Units one level down (None: the roots), by code."""
    parent = Unit.parent_id.is_(None) if unit_id is None else Unit.parent_id == unit_id
    rows = await session.execute(select(Unit.id, Unit.code, Unit.name, Unit.kind).where(parent).order_by(Unit.code))
    return [UnitRef(*row) for row in rows]


async def _visible_parent(session: AsyncSession, *, viewer: Viewer, unit_id: int) -> UnitRef | None:
    """The unit one level up, if the viewer may see it (the "up" button): asked as any unit is."""
    unit = await session.get(Unit, unit_id)
    if unit is None or unit.parent_id is None:
        return None
    parent = await authorize(session, viewer=viewer, unit_id=unit.parent_id)
    return None if isinstance(parent, Refusal) else parent


async def latest_sitreps(session: AsyncSession, *, scope: int | None, limit: int = 3) -> list[SitrepLine]:
    """The newest filed reports of the subtree."""
    query = (
        select(
            Sitrep.id,
            Sitrep.filed_at,
            Sitrep.category,
            Unit.code,
            Tps.code,
            Personnel.rank,
            Personnel.name,
            Sitrep.text,
        )
        .join(Unit, Unit.id == Sitrep.unit_id)
        .join(Personnel, Personnel.id == Sitrep.personnel_id)
        .outerjoin(Tps, Tps.id == Sitrep.tps_id)
        .where(Sitrep.filed_at.is_not(None))
        .order_by(Sitrep.filed_at.desc(), Sitrep.id.desc())
        .limit(limit)
    )
    if scope is not None:
        query = query.where(Sitrep.unit_id.in_(scope_units(scope)))
    return [
        SitrepLine(id_, filed_at, category, unit_code, tps_code, f"{rank} {name}".strip(), text)
        for id_, filed_at, category, unit_code, tps_code, rank, name, text in await session.execute(query)
        if filed_at is not None  # never, by the WHERE; says so to the type checker
    ]


# --- who is missing ---------------------------------------------------------------------------------


async def missing_for(
    session: AsyncSession, *, viewer: Viewer, unit_id: int, page: int, now: datetime, page_size: int = MISSING_PAGE_SIZE
) -> MissingPage | Refusal:
    """People of the subtree on duty this shift who have not checked in, a page at a time."""
    unit = await authorize(session, viewer=viewer, unit_id=unit_id)
    if isinstance(unit, Refusal):
        return unit
    shift = await pick_shift(session, now=now)
    if shift is None:
        return MissingPage(unit, None, now, 0, 1, 0, 0, [])
    total = await session.scalar(select(func.count()).select_from(_missing_query(shift.id, unit.id).subquery())) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(page, 0), pages - 1)
    rows = (
        await session.execute(
            _missing_query(shift.id, unit.id)
            .order_by(Unit.code, Personnel.name, Personnel.id)
            .limit(page_size)
            .offset(page * page_size)
        )
    ).all()
    posts = await _posts(session, shift_id=shift.id, personnel_ids=[row.id for row in rows])
    people = [
        MissingPerson(
            row.id,
            f"{row.rank} {row.name}".strip(),
            row.force,
            row.code,
            posts.get(row.id, ()),
            row.telegram_user_id is not None,
            row.reachable,
        )
        for row in rows
    ]
    return MissingPage(unit, shift, now, page, pages, total, page * page_size, people)


def _missing_query(shift_id: int, unit_id: int) -> Select:
    on_duty = exists().where(Assignment.shift_id == shift_id, Assignment.personnel_id == Personnel.id)
    present = exists().where(Checkin.shift_id == shift_id, Checkin.personnel_id == Personnel.id)
    return (
        select(
            Personnel.id,
            Personnel.rank,
            Personnel.name,
            Personnel.force,
            Personnel.telegram_user_id,
            Personnel.reachable,
            Unit.code,
        )
        .join(Unit, Unit.id == Personnel.unit_id)
        .where(Personnel.unit_id.in_(scope_units(unit_id)), on_duty, not_(present))
    )


async def _posts(session: AsyncSession, *, shift_id: int, personnel_ids: list[int]) -> dict[int, tuple[str, ...]]:
    if not personnel_ids:
        return {}
    rows = await session.execute(
        select(Assignment.personnel_id, Tps.code)
        .join(Tps, Tps.id == Assignment.tps_id)
        .where(Assignment.shift_id == shift_id, Assignment.personnel_id.in_(personnel_ids))
        .order_by(Tps.code)
    )
    posts: dict[int, list[str]] = {}
    for personnel_id, code in rows:
        posts.setdefault(personnel_id, []).append(code)
    return {key: tuple(codes) for key, codes in posts.items()}
