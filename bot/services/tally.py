"""Live tallies for `/status`: rebuilt from the source tables, then kept by hooks in the transactions that change them.

The counts mean exactly what bot/services/status/counting.py defines; `rebuild`
stores that module's own statements, and the hooks apply the same
definitions one change at a time. Who calls what, in their transaction:

- `rebuild(shift_ids=...)`: the roster import, for the shifts it touched,
  at the end of its transaction; `ensure` from `siaga run` and `siaga db
  upgrade` (shifts never built, or built against another staffing pattern).
- `on_checkins`: after check-in rows are inserted (insert-or-skip, so a
  duplicate check-in is not inserted), for the rows inserted.
- `on_far_changed`, `on_checkout`, `on_registered`, `on_reachability`:
  *before* the caller writes the new value. Each locks the source row
  (`FOR NO KEY UPDATE` on PostgreSQL), compares it with the new value and
  counts only a real change, so two transactions making the same change
  (two check-outs, two dispatchers marking one person unreachable) count it
  once. SQLite has one writer at a time and needs no lock.

Tally rows change by `INSERT ... ON CONFLICT DO UPDATE SET x = x + excluded.x
RETURNING`: the row lock serialises concurrent writers and each sees the
counts right after its own change, so when fifty guards of one TPS check in
at once, exactly one of them turns it covered. Locks are taken in one order
(check-in rows by person, or the person row; people tallies by shift and
unit; TPS tallies by shift and id; unit TPS tallies by shift, unit and
kerawanan), a bunch's rows in that order too, so hooks never deadlock each other.
The price: check-ins of one unit in one shift queue for its people row from
their hook to their commit (milliseconds; a Polsek of a few hundred people
sees well under one check-in a second in the morning burst).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, case, delete, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import StaffingSettings
from bot.services import status
from bot.storage.db import dialect_insert, table_of
from models import (
    Assignment,
    Checkin,
    Personnel,
    Shift,
    TallyShift,
    Tps,
    TpsShiftTally,
    UnitShiftTally,
    UnitShiftTpsTally,
)
from models.base import utcnow

log = logging.getLogger(__name__)

PEOPLE, TPS, UNIT_TPS, BUILT = (
    table_of(UnitShiftTally),
    table_of(TpsShiftTally),
    table_of(UnitShiftTpsTally),
    table_of(TallyShift),
)
TABLES = (PEOPLE, TPS, UNIT_TPS, BUILT)
EPSILON = status.EPSILON  # the tolerance of staffing.py and status.py: 1/5 + 1/5 meets 2/5


# --- full recompute --------------------------------------------------------------------------------


async def rebuild(
    session: AsyncSession,
    *,
    shift_ids: Iterable[int] | None = None,
    staffing: StaffingSettings | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Recompute the tallies of these shifts (None: every shift) in the caller's transaction; returns their ids.

    `meets` is counted against `staffing`, or when None against the pattern
    the tallies were last built with (the import has no settings), or the
    default one. On PostgreSQL the tally tables are locked against writers
    first: a hook already past its tally write is waited for and then seen,
    one not yet there waits and adds its change on top of the rebuilt row.
    """
    started = time.perf_counter()
    await _lock(session)
    ids = sorted(set(shift_ids) if shift_ids is not None else set(await session.scalars(select(Shift.id))))
    pattern = status.staffing_pattern(staffing) if staffing is not None else await _last_pattern(session)
    for table in TABLES:
        await session.execute(delete(table).where(table.c.shift_id.in_(ids)))
    for shift_id in ids:
        await _build_shift(session, shift_id=shift_id, pattern=pattern, now=now or utcnow())
    log.info("tallies rebuilt for %d shift(s) in %.1fs", len(ids), time.perf_counter() - started)
    return ids


async def ensure(session: AsyncSession, *, staffing: StaffingSettings, now: datetime | None = None) -> list[int]:
    """Build the shifts that have no live tallies or were counted against another pattern; returns their ids.

    Cheap when everything is in line (one query): meant for `siaga run` and
    `siaga db upgrade`. Until it runs, `/status` counts such shifts directly.
    Asked again under the lock, so workers starting together rebuild once.
    """
    wanted = status.staffing_pattern(staffing)
    stale = (
        select(Shift.id)
        .outerjoin(TallyShift, TallyShift.shift_id == Shift.id)
        .where(TallyShift.pattern.is_(None) | (TallyShift.pattern != wanted))
        .order_by(Shift.id)
    )
    if not list(await session.scalars(stale)):
        return []
    await _lock(session)
    ids = list(await session.scalars(stale))
    if ids:
        await rebuild(session, shift_ids=ids, staffing=staffing, now=now)
    return ids


async def _lock(session: AsyncSession) -> None:
    """PostgreSQL: no tally writer until this transaction ends (readers go on); SQLite has one writer anyway."""
    if session.get_bind().dialect.name == "postgresql":
        names = ", ".join(table.name for table in TABLES)
        await session.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))


async def _last_pattern(session: AsyncSession) -> str:
    stored = await session.scalar(select(TallyShift.pattern).order_by(TallyShift.built_at.desc()).limit(1))
    return stored or status.staffing_pattern(StaffingSettings())


async def _build_shift(session: AsyncSession, *, shift_id: int, pattern: str, now: datetime) -> None:
    """status.py's statements for one shift, stored: people per unit, shares per TPS, then TPS per unit."""
    shift = literal(shift_id, PEOPLE.c.shift_id.type)
    people = status.people_by_unit(shift_id, None)
    columns = list(status.PEOPLE_COLUMNS)
    await session.execute(
        PEOPLE.insert().from_select(
            ["shift_id", "unit_id", *columns], select(shift, people.c.unit_id, *(people.c[c] for c in columns))
        )
    )
    shares = status.guard_shares(shift_id=shift_id, scope=None, narrow=False)
    await session.execute(
        TPS.insert().from_select(
            ["shift_id", "tps_id", "present", "share"], select(shift, shares.c.tps_id, shares.c.present, shares.c.share)
        )
    )
    await session.execute(BUILT.insert().values(shift_id=shift_id, pattern=pattern, built_at=now))
    covered = TPS.c.present > 0
    meets = and_(covered, TPS.c.share >= _need(needs_of(pattern)) - EPSILON)
    per_unit = (
        select(shift, Tps.unit_id, Tps.kerawanan, func.count(), _count(covered), _count(meets))
        .select_from(Tps)
        .outerjoin(TPS, and_(TPS.c.tps_id == Tps.id, TPS.c.shift_id == shift_id))
        .group_by(Tps.unit_id, Tps.kerawanan)
    )
    await session.execute(
        UNIT_TPS.insert().from_select(["shift_id", "unit_id", "kerawanan", "tps_total", "covered", "meets"], per_unit)
    )


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _need(needs: dict[str, float]) -> ColumnElement[float]:
    return case(*((Tps.kerawanan == level, need) for level, need in needs.items()), else_=0.0)


def needs_of(pattern: str) -> dict[str, float]:
    """`kurang_rawan=2/5;...` -> police per TPS by kerawanan."""
    needs = {}
    for part in filter(None, pattern.split(";")):
        level, ratio = part.split("=")
        police, tps = ratio.split("/")
        needs[level] = int(police) / int(tps)
    return needs


# --- hooks -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewCheckin:
    """A check-in as the tallies count it."""

    personnel_id: int
    shift_id: int
    late: bool
    far: bool


async def on_checkins(session: AsyncSession, checkins: Sequence[NewCheckin]) -> None:
    """Check-ins added together (bot/services/checkin/: check_in_all): each tally row changes once, by the sum.

    A TPS's coverage flips on the bunch's total: three guards arriving at
    an empty TPS together turn it covered once.
    """
    if not checkins:
        return
    people = {
        personnel_id: (unit_id, force)
        for personnel_id, unit_id, force in await session.execute(
            select(Personnel.id, Personnel.unit_id, Personnel.force).where(
                Personnel.id.in_({c.personnel_id for c in checkins})
            )
        )
    }
    counts: dict[tuple[int, int], dict[str, int]] = {}
    for checkin in checkins:
        row = counts.setdefault(
            (checkin.shift_id, people[checkin.personnel_id][0]), {"checked_in": 0, "late": 0, "far": 0}
        )
        row["checked_in"] += 1
        row["late"] += int(checkin.late)
        row["far"] += int(checkin.far)
    await _add_people_each(session, counts)
    guards = [(c.personnel_id, c.shift_id) for c in checkins if people[c.personnel_id][1] in status.SECURITY]
    await _move_guards(session, guards, step=1)


async def on_far_changed(session: AsyncSession, *, personnel_id: int, shift_id: int, far: bool) -> bool:
    """Before a check-in's `far` is rewritten (moved closer): count the change if the stored flag differs."""
    row = await _locked_checkin(session, personnel_id=personnel_id, shift_id=shift_id)
    if row is None or bool(row.far) == far:
        return False
    person = await _person(session, personnel_id)
    await _add_people(session, [(shift_id, person.unit_id)], far=1 if far else -1)
    return True


async def on_checkout(session: AsyncSession, *, personnel_id: int, shift_id: int) -> bool:
    """Before `checked_out_at` is written: count the check-out once, and take the guard off their TPS."""
    row = await _locked_checkin(session, personnel_id=personnel_id, shift_id=shift_id)
    if row is None or row.checked_out_at is not None:
        return False
    person = await _person(session, personnel_id)
    await _add_people(session, [(shift_id, person.unit_id)], checked_out=1)
    if person.force in status.SECURITY:
        await _move_guards(session, [(personnel_id, shift_id)], step=-1)
    return True


async def on_registered(session: AsyncSession, *, personnel_id: int) -> None:
    """Before a Telegram account is linked (registration also marks the person reachable again)."""
    row = await _locked_person(session, personnel_id)
    was_registered = row.telegram_user_id is not None
    await _add_person_shifts(
        session,
        personnel_id,
        row.unit_id,
        registered=int(not was_registered),
        unreachable=-int(was_registered and not row.reachable),
    )


async def on_reachability(session: AsyncSession, *, personnel_id: int, reachable: bool) -> bool:
    """Before `personnel.reachable` is written: count the change once; False when the flag is already so."""
    row = await _locked_person(session, personnel_id)
    if bool(row.reachable) == reachable:
        return False
    if row.telegram_user_id is not None:  # only registered people count as unreachable
        await _add_person_shifts(session, personnel_id, row.unit_id, unreachable=-1 if reachable else 1)
    return True


async def _person(session: AsyncSession, personnel_id: int) -> Row:
    query = select(Personnel.unit_id, Personnel.force).where(Personnel.id == personnel_id)
    return (await session.execute(query)).one()


async def _locked_person(session: AsyncSession, personnel_id: int) -> Row:
    query = (
        select(Personnel.unit_id, Personnel.telegram_user_id, Personnel.reachable)
        .where(Personnel.id == personnel_id)
        .with_for_update(key_share=True)
    )
    return (await session.execute(query)).one()


async def _locked_checkin(session: AsyncSession, *, personnel_id: int, shift_id: int) -> Row | None:
    query = (
        select(Checkin.far, Checkin.checked_out_at)
        .where(Checkin.personnel_id == personnel_id, Checkin.shift_id == shift_id)
        .with_for_update(key_share=True)
    )
    return (await session.execute(query)).first()


async def _add_person_shifts(session: AsyncSession, personnel_id: int, unit_id: int, **deltas: int) -> None:
    """Add to the person's unit in every shift they hold an assignment in."""
    if not any(deltas.values()):
        return
    shifts = await session.scalars(
        select(Assignment.shift_id)
        .where(Assignment.personnel_id == personnel_id)
        .distinct()
        .order_by(Assignment.shift_id)
    )
    await _add_people(session, [(shift_id, unit_id) for shift_id in shifts], **deltas)


async def _add_people(session: AsyncSession, keys: Sequence[tuple[int, int]], **deltas: int) -> None:
    """Add `deltas` to the people tallies of these (shift, unit) pairs, creating missing rows."""
    await _add_people_each(session, {key: deltas for key in keys})


async def _add_people_each(session: AsyncSession, deltas: Mapping[tuple[int, int], Mapping[str, int]]) -> None:
    """Add each (shift, unit) pair's own deltas to its people tally row, in key order (the lock order)."""
    changed = tuple(sorted({name for row in deltas.values() for name, delta in row.items() if delta}))
    if not changed:
        return
    rows = [
        {"shift_id": s, "unit_id": u, **{c: deltas[(s, u)].get(c, 0) for c in status.PEOPLE_COLUMNS}}
        for s, u in sorted(deltas)
    ]
    await session.execute(_people_upsert(dialect_insert(session), changed), rows)


async def _move_guards(session: AsyncSession, guards: Sequence[tuple[int, int]], *, step: int) -> None:
    """Guards (person, shift) arrive (+1) or leave (-1) every TPS they hold that shift; flips go to the unit TPS tallies.

    A guard of n TPS is worth 1/n at each. The TPS rows change by the sum of
    their guards and are locked in (shift, TPS) order; a flip is judged on
    the row before and after the whole change.
    """
    if not guards:
        return
    wanted = set(guards)
    posts = [
        row
        for row in await session.execute(
            select(Assignment.personnel_id, Assignment.shift_id, Assignment.tps_id, Tps.unit_id, Tps.kerawanan)
            .join(Tps, Tps.id == Assignment.tps_id)
            .where(Assignment.personnel_id.in_({p for p, _ in wanted}), Assignment.shift_id.in_({s for _, s in wanted}))
        )
        if (row[0], row[1]) in wanted
    ]
    held = Counter((personnel_id, shift_id) for personnel_id, shift_id, *_ in posts)
    moves: dict[tuple[int, int], tuple[int, float]] = {}  # (shift, tps) -> (present, share) added
    places: dict[tuple[int, int], tuple[int, str]] = {}  # (shift, tps) -> (unit, kerawanan)
    for personnel_id, shift_id, tps_id, unit_id, kerawanan in posts:
        present, share = moves.get((shift_id, tps_id), (0, 0.0))
        moves[(shift_id, tps_id)] = (present + step, share + step / held[(personnel_id, shift_id)])
        places[(shift_id, tps_id)] = (unit_id, kerawanan)
    rows = [
        {"shift_id": s, "tps_id": t, "present": moves[(s, t)][0], "share": moves[(s, t)][1]} for s, t in sorted(moves)
    ]
    after = {
        (s, t): (count, share)
        for s, t, count, share in await session.execute(_guard_upsert(dialect_insert(session)), rows)
    }
    for shift_id in sorted({s for s, _ in moves}):
        needs = await _needs(session, shift_id)  # read after the row locks: a rebuild in between is seen
        flips = _flips([(moves[(s, t)], after[(s, t)], places[(s, t)]) for s, t in moves if s == shift_id], needs)
        if flips:
            await _add_unit_tps(session, shift_id, flips)


def _flips(
    changes: Iterable[tuple[tuple[int, float], tuple[int, float], tuple[int, str]]], needs: Mapping[str, float]
) -> dict[tuple[int, str], tuple[int, int]]:
    """Per (unit, kerawanan): how many TPS turned covered and met the pattern (negative: stopped), from
    each TPS's change, its row after it, and where it stands."""
    flips: dict[tuple[int, str], tuple[int, int]] = {}
    for (moved, share_moved), (count, share), (unit_id, kerawanan) in changes:
        before_count, before_share = count - moved, share - share_moved
        covered = int(count > 0) - int(before_count > 0)
        need = needs.get(kerawanan)
        meets = 0 if need is None else int(_meets(count, share, need)) - int(_meets(before_count, before_share, need))
        if covered or meets:
            old = flips.get((unit_id, kerawanan), (0, 0))
            flips[(unit_id, kerawanan)] = (old[0] + covered, old[1] + meets)
    return flips


def _meets(present: int, share: float, need: float) -> bool:
    return present > 0 and share >= need - EPSILON


async def _needs(session: AsyncSession, shift_id: int) -> dict[str, float]:
    """The pattern the shift's tallies count against; empty when the shift has none (it is not read then)."""
    pattern = await session.scalar(select(TallyShift.pattern).where(TallyShift.shift_id == shift_id))
    return needs_of(pattern) if pattern else {}


async def _add_unit_tps(session: AsyncSession, shift_id: int, flips: dict[tuple[int, str], tuple[int, int]]) -> None:
    rows = [
        {
            "shift_id": shift_id,
            "unit_id": unit_id,
            "kerawanan": kerawanan,
            "tps_total": 0,
            "covered": covered,
            "meets": meets,
        }
        for (unit_id, kerawanan), (covered, meets) in sorted(flips.items())
    ]
    await session.execute(_unit_tps_upsert(dialect_insert(session)), rows)


# Built once per backend and kept: the same statement object is compiled once and then found in
# SQLAlchemy's cache (a multi-row `.values()` is compiled anew on every call).


@cache
def _people_upsert(insert: Callable[..., Any], changed: tuple[str, ...]) -> Any:
    statement = insert(PEOPLE)
    return statement.on_conflict_do_update(
        index_elements=["shift_id", "unit_id"],
        set_={name: PEOPLE.c[name] + statement.excluded[name] for name in changed},
    )


@cache
def _guard_upsert(insert: Callable[..., Any]) -> Any:
    statement = insert(TPS)
    present = TPS.c.present + statement.excluded.present
    return statement.on_conflict_do_update(
        index_elements=["shift_id", "tps_id"],
        set_={"present": present, "share": case((present == 0, 0.0), else_=TPS.c.share + statement.excluded.share)},
    ).returning(TPS.c.shift_id, TPS.c.tps_id, TPS.c.present, TPS.c.share)


@cache
def _unit_tps_upsert(insert: Callable[..., Any]) -> Any:
    statement = insert(UNIT_TPS)
    return statement.on_conflict_do_update(
        index_elements=["shift_id", "unit_id", "kerawanan"],
        set_={name: UNIT_TPS.c[name] + statement.excluded[name] for name in ("covered", "meets")},
    )
