"""`/status` counting: check-in and coverage of one unit's subtree, computed from the database on every call.

Nothing here is cached: a commander's screen says "as of HH:MM:SS" and every
number on it was counted by the statements of that one request. The counts
come from a single SQL statement (people, TPS and contingencies rolled up
through `unit_closure`), so they are one snapshot on both engines.

People and TPS figures are read from live tallies (models/tally.py), which
every check-in, check-out, registration and reachability change adjusts in
its own transaction (bot/services/tally.py): a national head's `/status`
sums a few thousand rows instead of counting 1.7 million people. A shift
whose tallies were never built, or were built against another staffing
pattern, is counted from the source tables with the same definitions.

Definitions (what the numbers mean, precisely):
- The shift is the one running now (the latest started if two overlap),
  else the next to start, else the last one that ended.
- People are counted in the unit that commands them (`personnel.unit_id`):
  "assigned" is everyone of the subtree with at least one assignment in the
  shift; registered, checked in, late, far, checked out and unreachable
  (registered but the bot cannot reach them) are among those.
- TPS are counted in their primary unit (`tps.unit_id`). A TPS is covered
  when at least one police or TNI member assigned to it for the shift is
  checked in and not checked out (anywhere: a pair guarding five TPS checks
  in at one of them; a far check-in still covers, and is counted as far).
  Linmas do not cover a TPS.
- A TPS meets the staffing pattern (`settings.staffing`, police per TPS by
  kerawanan) when its checked-in police share reaches the pattern: every
  covering member adds 1/n, n being the TPS they are assigned in the shift,
  and a sangat_rawan TPS needs 2/1, rawan 2/2, kurang_rawan 2/5 by default.
- Open contingencies are those raised (severity chosen: `raised_at` set) and not resolved,
  whatever their shift, counted in `contingency.unit_id`.

Who may ask about which unit (`authorize`) and which shift is meant
(`pick_shift`) are decided here as well, because every count is asked of
one unit and one shift; the recap (bot/services/reports.py) asks the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CTE,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    SQLColumnExpression,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import StaffingSettings
from bot.services.people import Actor, commands_unit, group_unit, unit_by_code
from bot.services.units import is_within
from models import (
    Assignment,
    Checkin,
    Contingency,
    Personnel,
    Shift,
    TallyShift,
    Tps,
    Unit,
    UnitClosure,
    UnitShiftTally,
    UnitShiftTpsTally,
)
from models.enums import ContingencyState, Force, Kerawanan, Severity

SECURITY = (Force.polri.value, Force.tni.value)
EPSILON = 1e-9  # shares are sums of 1/n: 1/5 + 1/5 must meet 2/5


class Refusal(StrEnum):
    not_registered = "not_registered"
    not_commander = "not_commander"
    unregistered_group = "unregistered_group"
    unknown_unit = "unknown_unit"
    outside = "outside"


@dataclass(frozen=True)
class Viewer:
    """Who asks: a person in a private chat, or (with `group_chat_id`) anyone in a command group."""

    actor: Actor | None
    group_chat_id: int | None = None


@dataclass(frozen=True)
class UnitRef:
    id: int
    code: str
    name: str
    kind: str


@dataclass(frozen=True)
class ShiftRef:
    id: int
    code: str
    name: str
    phase: str
    starts_at: datetime
    ends_at: datetime

    def started(self, now: datetime) -> bool:
        return self.starts_at <= now


@dataclass(frozen=True)
class People:
    assigned: int = 0
    registered: int = 0
    checked_in: int = 0
    late: int = 0
    far: int = 0
    checked_out: int = 0
    unreachable: int = 0

    @property
    def missing(self) -> int:
        return self.assigned - self.checked_in


@dataclass(frozen=True)
class Coverage:
    total: int = 0
    covered: int = 0
    meets_pattern: int = 0

    @property
    def uncovered(self) -> int:
        return self.total - self.covered

    def __add__(self, other: Coverage) -> Coverage:
        return Coverage(
            self.total + other.total, self.covered + other.covered, self.meets_pattern + other.meets_pattern
        )


@dataclass(frozen=True)
class Figures:
    people: People = People()
    tps: dict[str, Coverage] = field(default_factory=dict)  # by kerawanan
    contingencies: dict[str, int] = field(default_factory=dict)  # open, by severity

    @property
    def coverage(self) -> Coverage:
        return sum(self.tps.values(), Coverage())

    @property
    def open_contingencies(self) -> int:
        return sum(self.contingencies.values())


# --- who may see what -----------------------------------------------------------------------------


async def authorize(
    session: AsyncSession, *, viewer: Viewer, unit_code: str | None = None, unit_id: int | None = None
) -> UnitRef | Refusal:
    """The unit to show, or why not; asked again on every command and every button press.

    In a command group anyone may ask, within the group's unit; in private a
    komandan within their own subtree, an admin anywhere, an anggota nowhere.
    """
    if viewer.group_chat_id is None and viewer.actor is None:
        return Refusal.not_registered
    if viewer.group_chat_id is None and viewer.actor is not None and not viewer.actor.is_commander:
        return Refusal.not_commander
    home_id = await _home_id(session, viewer)
    if home_id is None:
        return Refusal.unregistered_group
    if unit_code:
        target = await unit_by_code(session, code=unit_code)
    else:
        target = await session.get(Unit, unit_id if unit_id is not None else home_id)
    if target is None:
        return Refusal.unknown_unit
    if not await _may_see(session, viewer=viewer, unit_id=target.id, home_id=home_id):
        return Refusal.outside
    return UnitRef(target.id, target.code, target.name, target.kind)


async def _home_id(session: AsyncSession, viewer: Viewer) -> int | None:
    """The unit a viewer speaks for: the command group's, or the person's own."""
    if viewer.group_chat_id is not None:
        home = await group_unit(session, chat_id=viewer.group_chat_id)
        return home.id if home else None
    return viewer.actor.unit_id if viewer.actor else None


async def _may_see(session: AsyncSession, *, viewer: Viewer, unit_id: int, home_id: int) -> bool:
    if viewer.group_chat_id is not None:
        return await is_within(session, unit_id, home_id)
    assert viewer.actor is not None
    return await commands_unit(session, actor=viewer.actor, unit_id=unit_id)


# --- the shift --------------------------------------------------------------------------------------


async def pick_shift(session: AsyncSession, *, now: datetime, code: str | None = None) -> ShiftRef | None:
    """The named shift; else the running one, else the next, else the last that ended."""
    if code is not None:
        candidates = [select(Shift).where(Shift.code == code)]
    else:
        candidates = [
            select(Shift).where(Shift.starts_at <= now, Shift.ends_at > now).order_by(Shift.starts_at.desc()),
            select(Shift).where(Shift.starts_at > now).order_by(Shift.starts_at),
            select(Shift).where(Shift.ends_at <= now).order_by(Shift.ends_at.desc()),
        ]
    for query in candidates:
        row = await session.scalar(query.order_by(Shift.id).limit(1))
        if row is not None:
            return ShiftRef(row.id, row.code, row.name, row.phase, row.starts_at, row.ends_at)
    return None


# --- the counting statement -------------------------------------------------------------------------


def scope_units(scope: int | None) -> Select[int]:
    """Unit ids of a subtree (None: every unit)."""
    if scope is None:
        return select(Unit.id)
    return select(UnitClosure.unit_id).where(UnitClosure.ancestor_id == scope)


def children_and_self(unit_id: int) -> Select[int]:
    return select(Unit.id).where(or_(Unit.id == unit_id, Unit.parent_id == unit_id))


def _need(staffing: StaffingSettings) -> ColumnElement[float]:
    """Police per TPS the pattern asks for, by the TPS's kerawanan."""
    pattern = {level.value: staffing.for_kerawanan(level.value) for level in Kerawanan}
    return case(*((Tps.kerawanan == level, p.police / p.tps - EPSILON) for level, p in pattern.items()), else_=0.0)


def guard_shares(*, shift_id: int, scope: int | None, narrow: bool) -> CTE:
    """Per TPS with police/TNI present in the shift: (tps_id, present, share).

    `guards` are the checked-in, not checked-out police/TNI of the shift: all
    of them for a whole tree (one pass over personnel beats a probe per
    assignment), only those holding a TPS of the scope when `narrow` (a
    Polsek touches a few hundred rows). `duty` spreads each guard over every
    TPS they hold this shift (1/n each, counted everywhere, so a share is the
    same whoever asks). `tally.rebuild` stores exactly these rows.
    """
    present = exists().where(
        Checkin.personnel_id == Personnel.id, Checkin.shift_id == shift_id, Checkin.checked_out_at.is_(None)
    )
    guards = select(Personnel.id).where(Personnel.force.in_(SECURITY), present)
    if narrow:
        scope_tps = select(Tps.id).where(Tps.unit_id.in_(scope_units(scope)))
        holders = select(Assignment.personnel_id).where(
            Assignment.shift_id == shift_id, Assignment.tps_id.in_(scope_tps)
        )
        guards = guards.where(Personnel.id.in_(holders))
    duty = (
        select(
            Assignment.tps_id,
            (literal(1.0) / func.count().over(partition_by=Assignment.personnel_id)).label("part"),
        )
        .where(Assignment.shift_id == shift_id, Assignment.personnel_id.in_(guards))
        .subquery("duty")
    )
    return (
        select(duty.c.tps_id, func.count().label("present"), func.sum(duty.c.part).label("share"))
        .group_by(duty.c.tps_id)
        .cte("share")
    )


def tps_facts(*, shift_id: int, scope: int | None, staffing: StaffingSettings, narrow: bool) -> CTE:
    """One row per TPS of the scope: (tps_id, unit_id, kerawanan, covered 0/1, meets 0/1)."""
    in_scope = Tps.unit_id.in_(scope_units(scope)) if scope is not None else true()
    share = guard_shares(shift_id=shift_id, scope=scope, narrow=narrow)
    return (
        select(
            Tps.id.label("tps_id"),
            Tps.unit_id,
            Tps.kerawanan,
            case((share.c.tps_id.is_not(None), 1), else_=0).label("covered"),
            case((share.c.share >= _need(staffing), 1), else_=0).label("meets"),
        )
        .outerjoin(share, share.c.tps_id == Tps.id)
        .where(in_scope)
        .cte("tps_facts")
    )


async def is_narrow(session: AsyncSession, scope: int | None) -> bool:
    """A unit with a parent is a part of its tree: count from its TPS rather than from everyone."""
    if scope is None:
        return False
    return await session.scalar(select(Unit.parent_id.is_not(None)).where(Unit.id == scope)) or False


def people_by_unit(shift_id: int, scope: int | None) -> CTE:
    on_duty = exists().where(Assignment.shift_id == shift_id, Assignment.personnel_id == Personnel.id)
    query = (
        select(
            Personnel.unit_id,
            func.count().label("assigned"),
            _count(Personnel.telegram_user_id.is_not(None)).label("registered"),
            func.count(Checkin.id).label("checked_in"),
            _count(Checkin.late).label("late"),
            _count(Checkin.far).label("far"),
            _count(Checkin.checked_out_at.is_not(None)).label("checked_out"),
            _count(and_(Personnel.telegram_user_id.is_not(None), not_(Personnel.reachable))).label("unreachable"),
        )
        .outerjoin(Checkin, and_(Checkin.personnel_id == Personnel.id, Checkin.shift_id == shift_id))
        .where(on_duty)
        .group_by(Personnel.unit_id)
    )
    if scope is not None:
        query = query.where(Personnel.unit_id.in_(scope_units(scope)))
    return query.cte("people")


def _count(condition: SQLColumnExpression[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _open_by_unit(scope: int | None) -> CTE:
    query = (
        select(Contingency.unit_id, Contingency.severity, func.count().label("open"))
        .where(Contingency.state != ContingencyState.resolved.value, Contingency.raised_at.is_not(None))
        .group_by(Contingency.unit_id, Contingency.severity)
    )
    if scope is not None:
        query = query.where(Contingency.unit_id.in_(scope_units(scope)))
    return query.cte("open_contingencies")


PEOPLE_COLUMNS = ("assigned", "registered", "checked_in", "late", "far", "checked_out", "unreachable")


def _rolled(kind: str, table: CTE, key: ColumnElement[str] | None, values: list[str], groups: Select[int]) -> Select:
    """Sum a per-unit table into each group unit through the closure, padded to one row shape."""
    sums: list[ColumnElement[int]] = [cast(func.sum(table.c[name]), Integer) for name in values]
    sums += [literal(0, Integer)] * (len(PEOPLE_COLUMNS) - len(values))
    key_column = cast(key, String) if key is not None else cast(literal(None), String)
    query = (
        select(
            literal(kind, String).label("kind"),
            UnitClosure.ancestor_id.label("unit_id"),
            key_column.label("key"),
            *sums,
        )
        .join(UnitClosure, UnitClosure.unit_id == table.c.unit_id)
        .where(UnitClosure.ancestor_id.in_(groups))
        .group_by(UnitClosure.ancestor_id)
    )
    return query.group_by(key) if key is not None else query


async def figures_by_unit(
    session: AsyncSession, *, shift_id: int, scope: int | None, groups: Select[int], staffing: StaffingSettings
) -> dict[int, Figures]:
    """People, TPS coverage and open contingencies of `scope`, summed into each unit of `groups`.

    From the live tallies when the shift has them, built against the
    configured staffing pattern (one statement reads the tallies and the
    pattern they were counted with, so both are one snapshot); else from
    the source tables (one statement too). Either way nothing is cached.
    """
    rows = (await session.execute(tally_statement(shift_id=shift_id, scope=scope, groups=groups))).all()
    if any(row.kind == "n" and row.key == staffing_pattern(staffing) for row in rows):
        return _collect(row for row in rows if row.kind != "n")
    return await direct_figures(session, shift_id=shift_id, scope=scope, groups=groups, staffing=staffing)


async def direct_figures(
    session: AsyncSession, *, shift_id: int, scope: int | None, groups: Select[int], staffing: StaffingSettings
) -> dict[int, Figures]:
    """The same figures counted from the source tables: the fallback, and the reference the tallies are tested against."""
    statement = await direct_statement(session, shift_id=shift_id, scope=scope, groups=groups, staffing=staffing)
    return _collect(await session.execute(statement))


async def figures_statement(
    session: AsyncSession, *, shift_id: int, scope: int | None, groups: Select[int], staffing: StaffingSettings
) -> CompoundSelect:
    """The statement `figures_by_unit` counts with now (the benchmark prints its plan)."""
    built = await session.scalar(select(TallyShift.pattern).where(TallyShift.shift_id == shift_id))
    if built == staffing_pattern(staffing):
        return tally_statement(shift_id=shift_id, scope=scope, groups=groups)
    return await direct_statement(session, shift_id=shift_id, scope=scope, groups=groups, staffing=staffing)


def staffing_pattern(staffing: StaffingSettings) -> str:
    """The police part of the staffing pattern as canonical text: what the tallies' `meets` were counted against."""
    return ";".join(
        f"{level.value}={p.police}/{p.tps}" for level in Kerawanan for p in [staffing.for_kerawanan(level.value)]
    )


def tally_statement(*, shift_id: int, scope: int | None, groups: Select[int]) -> CompoundSelect:
    """Sums of the live tallies (bot/services/tally.py) and open contingencies, plus an `n` row: the pattern.

    A few thousand tally rows joined to the closure, whatever the size of the roster. No scope filter
    on the tallies: every unit of `groups` lies within the scope, so the closure join keeps only its rows.
    """
    people = (
        select(UnitShiftTally.unit_id, *(UnitShiftTally.__table__.c[name] for name in PEOPLE_COLUMNS))
        .where(UnitShiftTally.shift_id == shift_id)
        .cte("people")
    )
    tps_by_unit = (
        select(
            UnitShiftTpsTally.unit_id,
            UnitShiftTpsTally.kerawanan,
            UnitShiftTpsTally.tps_total.label("total"),
            UnitShiftTpsTally.covered,
            UnitShiftTpsTally.meets,
        )
        .where(UnitShiftTpsTally.shift_id == shift_id)
        .cte("tps_by_unit")
    )
    contingencies = _open_by_unit(scope)
    built = select(
        literal("n", String).label("kind"),
        literal(0, Integer).label("unit_id"),
        cast(TallyShift.pattern, String).label("key"),
        *[literal(0, Integer)] * len(PEOPLE_COLUMNS),
    )
    return union_all(
        _rolled("p", people, None, list(PEOPLE_COLUMNS), groups),
        _rolled("t", tps_by_unit, tps_by_unit.c.kerawanan, ["total", "covered", "meets"], groups),
        _rolled("c", contingencies, contingencies.c.severity, ["open"], groups),
        built.where(TallyShift.shift_id == shift_id),
    )


async def direct_statement(
    session: AsyncSession, *, shift_id: int, scope: int | None, groups: Select[int], staffing: StaffingSettings
) -> CompoundSelect:
    """The same figures counted from assignments, check-ins, personnel and TPS (the definitions above)."""
    facts = tps_facts(shift_id=shift_id, scope=scope, staffing=staffing, narrow=await is_narrow(session, scope))
    tps_by_unit = (
        select(
            facts.c.unit_id,
            facts.c.kerawanan,
            func.count().label("total"),
            func.sum(facts.c.covered).label("covered"),
            func.sum(facts.c.meets).label("meets"),
        )
        .group_by(facts.c.unit_id, facts.c.kerawanan)
        .cte("tps_by_unit")
    )
    people = people_by_unit(shift_id, scope)
    contingencies = _open_by_unit(scope)
    return union_all(
        _rolled("p", people, None, list(PEOPLE_COLUMNS), groups),
        _rolled("t", tps_by_unit, tps_by_unit.c.kerawanan, ["total", "covered", "meets"], groups),
        _rolled("c", contingencies, contingencies.c.severity, ["open"], groups),
    )


def _collect(rows: Iterable[tuple]) -> dict[int, Figures]:
    people: dict[int, People] = {}
    tps: dict[int, dict[str, Coverage]] = {}
    open_: dict[int, dict[str, int]] = {}
    for kind, unit_id, key, *values in rows:
        numbers = [int(value or 0) for value in values]
        if kind == "p":
            people[unit_id] = People(*numbers)
        elif kind == "t":
            tps.setdefault(unit_id, {})[key] = Coverage(*numbers[:3])
        else:
            open_.setdefault(unit_id, {})[key] = numbers[0]
    units = people.keys() | tps.keys() | open_.keys()
    return {
        unit: Figures(
            people.get(unit, People()), _ordered(tps.get(unit, {}), Kerawanan), _ordered(open_.get(unit, {}), Severity)
        )
        for unit in units
    }


def _ordered(values: dict, order: type[StrEnum]) -> dict:
    """Most serious first, every level present, so renderers need no defaults."""
    empty: object = Coverage() if order is Kerawanan else 0
    return {level.value: values.get(level.value, empty) for level in reversed(list(order))}
