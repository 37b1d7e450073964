"""Live tallies: after every change they hold exactly what a full recompute and the direct definitions give.

Random sequences of the real services (check-in near or far, on time or
late, moved closer; check-out; registration) and of the reachability change
the outbox makes, on the factory roster with a few more duties (Kapolres on
all three TPS, so shares of 1/3 and 1/2 meet looser patterns). After each
step: the tally rows equal a `rebuild` from scratch (made in a scratch
transaction, rolled back), and every unit's figures read from the tallies
equal status.py's direct statement and the Python oracle of test_status.py.
On PostgreSQL, concurrent check-ins, check-outs and a rebuild at the same
TPS flip its coverage and pattern exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import models
from bot.config import CheckinSettings, StaffingSettings
from bot.services import status, tally
from bot.services.checkin import CheckinOutcome, CheckoutOutcome, Presence, check_in, check_in_all, check_out
from bot.services.people import Actor
from bot.services.registration import issue_codes, register
from bot.services.units import rebuild_closure
from models import Assignment, Personnel, TallyShift, TpsShiftTally, Unit, UnitShiftTally, UnitShiftTpsTally
from tests.factories import NOW, TPS_PLACES, build_roster
from tests.test_status import expected

CHECKIN = CheckinSettings()
DEFAULT = StaffingSettings()
LOOSE = StaffingSettings(
    kurang_rawan={"police": 1, "linmas": 10, "tps": 5},
    rawan={"police": 1, "linmas": 4, "tps": 2},
    sangat_rawan={"police": 1, "linmas": 2, "tps": 2},
)
EXTRA = [
    ("kapolres", "TPS-A1-001", "PAGI"),
    ("kapolres", "TPS-A1-002", "PAGI"),
    ("kapolres", "TPS-A2-001", "PAGI"),
    ("kapolsek_a1", "TPS-A1-001", "PAGI"),
    ("kapolsek_a1", "TPS-A1-001", "SORE"),
]
POLICE_UNITS = ("POLDA-X", "POLRES-A", "POLSEK-A1", "POLSEK-A2")
telegram_ids = itertools.count(9_000)


@dataclass(frozen=True)
class World:
    """Plain ids of the roster (ORM objects expire between sessions)."""

    people: dict[str, int]
    nrps: dict[str, str]
    units: dict[str, int]
    shifts: dict[str, int]
    starts: dict[str, datetime]
    crowd: list[int]


async def reset(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(
                text(f"TRUNCATE {', '.join(models.Base.metadata.tables)} RESTART IDENTITY CASCADE")
            )
        else:
            await connection.run_sync(models.Base.metadata.drop_all)
            await connection.run_sync(models.Base.metadata.create_all)


async def prepare(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], staffing: StaffingSettings, *, crowd: int = 0
) -> World:
    """The factory roster, the extra duties, `crowd` more police under POLSEK-A2 at TPS-A2-001 (every other one also
    at A1-001), tallies built."""
    await reset(engine)
    async with sessions() as session:
        roster = await build_roster(session)
        for key, tps, shift in EXTRA:
            session.add(
                Assignment(
                    personnel_id=roster.person(key).id, tps_id=roster.tps[tps].id, shift_id=roster.shifts[shift].id
                )
            )
        posts = [
            Unit(code=f"POS-{n}", name=f"Pos {n}", kind="other", force="polri", parent=roster.units["POLSEK-A2"])
            for n in range(crowd)
        ]  # a unit each: no shared people row to queue them behind one another
        extra = [
            Personnel(nrp=f"C{n:04d}", name=f"Crowd {n}", force="polri", unit=post) for n, post in enumerate(posts)
        ]
        session.add_all([*posts, *extra])
        await session.flush()
        await rebuild_closure(session)
        for n, person in enumerate(extra):
            for tps in ["TPS-A2-001"] + (["TPS-A1-001"] if n % 2 else []):
                session.add(
                    Assignment(personnel_id=person.id, tps_id=roster.tps[tps].id, shift_id=roster.shifts["PAGI"].id)
                )
        await session.flush()
        await tally.rebuild(session, staffing=staffing)
        await session.commit()
        return World(
            {k: p.id for k, p in roster.people.items()},
            {k: p.nrp for k, p in roster.people.items()},
            {k: u.id for k, u in roster.units.items()},
            {k: s.id for k, s in roster.shifts.items()},
            {k: s.starts_at for k, s in roster.shifts.items()},
            [p.id for p in extra],
        )


async def snapshot(session: AsyncSession) -> dict[str, set[tuple]]:
    """Every tally row that says something (a row of zeros and no row mean the same)."""
    people = {
        tuple(getattr(r, c) for c in ("shift_id", "unit_id", *status.PEOPLE_COLUMNS))
        for r in await session.scalars(select(UnitShiftTally))
    }
    shares = {
        (r.shift_id, r.tps_id, r.present, round(r.share, 9)) for r in await session.scalars(select(TpsShiftTally))
    }
    units = {
        (r.shift_id, r.unit_id, r.kerawanan, r.tps_total, r.covered, r.meets)
        for r in await session.scalars(select(UnitShiftTpsTally))
    }
    built = {(r.shift_id, r.pattern) for r in await session.scalars(select(TallyShift))}
    return {
        "people": {r for r in people if any(r[2:])},
        "shares": {r for r in shares if any(r[2:])},
        "units": {r for r in units if any(r[3:])},
        "built": built,
    }


async def check(sessions: async_sessionmaker[AsyncSession], world: World, staffing: StaffingSettings) -> None:
    """Tallies == rebuild from scratch; tally figures == direct figures == the oracle, every unit, both shifts."""
    async with sessions() as scratch:
        live = await snapshot(scratch)
        await tally.rebuild(scratch, staffing=staffing)
        assert live == await snapshot(scratch)
        await scratch.rollback()
    async with sessions() as session:
        for shift_code, shift_id in world.shifts.items():
            for code in POLICE_UNITS:
                unit = world.units[code]
                groups = status.children_and_self(unit)
                counted = {"shift_id": shift_id, "scope": unit, "groups": groups, "staffing": staffing}
                built = await session.scalar(select(TallyShift.pattern).where(TallyShift.shift_id == shift_id))
                assert built == status.staffing_pattern(staffing)  # so figures_by_unit reads the tallies
                tallied = await status.figures_by_unit(session, **counted)
                assert tallied == await status.direct_figures(session, **counted), (shift_code, code)
                want = await expected(session, unit_code=code, shift_code=shift_code, staffing=staffing)
                assert tallied[unit].people == want.people, (shift_code, code)
                # The oracle's `covered` counts every TPS (its defaultdict is probed before `in`): total and meets only.
                assert {k: (c.total, c.meets_pattern) for k, c in tallied[unit].tps.items()} == {
                    k: (c.total, c.meets_pattern) for k, c in want.tps.items()
                }, (shift_code, code)


WHO = st.sampled_from(["budi", "citra", "dedi", "eko", "fajar", "kapolres", "kapolsek_a1", "ani"])
SHIFT = st.sampled_from(["PAGI", "SORE"])
STEP = st.one_of(
    st.tuples(
        st.just("checkin"),
        WHO,
        SHIFT,
        st.sampled_from(sorted(TPS_PLACES)),
        st.integers(0, 3),
        st.booleans(),
        st.sampled_from([0, 25]),
    ),  # minutes the location waited before the bot read it
    st.tuples(st.just("checkout"), WHO, SHIFT),
    st.tuples(st.just("register"), WHO),
    st.tuples(st.just("reachable"), WHO, st.booleans()),
)


async def apply(sessions: async_sessionmaker[AsyncSession], world: World, step: tuple) -> None:
    """One change through the service that makes it in production (reachability: as the outbox will)."""
    kind, who = step[0], world.people[step[1]]
    async with sessions() as session:
        if kind == "checkin":
            _, _, shift, place, offset, late, waited = step
            sent = world.starts[shift] + timedelta(minutes=30 if late else 5)
            lat, lon = TPS_PLACES[place]
            await check_in(
                session,
                personnel_id=who,
                lat=lat + 0.01 * offset,
                lon=lon,
                sent_at=sent,
                forwarded=False,
                now=sent + timedelta(minutes=waited),
                settings=CHECKIN,
            )
        elif kind == "checkout":
            await check_out(session, personnel_id=who, now=world.starts[step[2]] + timedelta(hours=1), settings=CHECKIN)
        elif kind == "register":
            [invitation] = await issue_codes(session, nrps=[world.nrps[step[1]]], now=NOW, ttl=timedelta(hours=1))
            assert invitation.code
            await register(
                session,
                telegram_user_id=next(telegram_ids),
                code=invitation.code,
                nrp=None,
                now=NOW,
                max_failures_per_hour=1_000,
            )
        else:
            await mark_reachable(session, who, step[2])


async def mark_reachable(session: AsyncSession, personnel_id: int, reachable: bool) -> None:
    """What the outbox does when Telegram says a person blocked the bot (and back)."""
    await tally.on_reachability(session, personnel_id=personnel_id, reachable=reachable)
    await session.execute(update(Personnel).where(Personnel.id == personnel_id).values(reachable=reachable))
    await session.commit()


SLOW_EXAMPLES = settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
"""Each example builds a roster in the database: no deadline, and the fixtures are reset by `prepare`."""


@settings(SLOW_EXAMPLES, max_examples=25)
@given(steps=st.lists(STEP, min_size=1, max_size=14), loose=st.booleans())
async def test_tallies_stay_equal_to_a_recount(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], steps: list[tuple], loose: bool
) -> None:
    staffing = LOOSE if loose else DEFAULT
    world = await prepare(engine, sessions, staffing)
    await check(sessions, world, staffing)
    for step in steps:
        await apply(sessions, world, step)
        await check(sessions, world, staffing)


PRESENCE = st.tuples(WHO, st.sampled_from(sorted(TPS_PLACES)), st.integers(0, 3))
BUNCH = st.tuples(SHIFT, st.booleans(), st.lists(PRESENCE, min_size=1, max_size=8))


@settings(SLOW_EXAMPLES, max_examples=20)
@given(bunches=st.lists(BUNCH, min_size=1, max_size=5), loose=st.booleans())
async def test_check_ins_in_bunches_keep_the_tallies_equal_to_a_recount(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], bunches: list[tuple], loose: bool
) -> None:
    """Locations of the moment checked in together (the same person twice, near and far, late or not)."""
    staffing = LOOSE if loose else DEFAULT
    world = await prepare(engine, sessions, staffing)
    for shift, late, presences in bunches:
        now = world.starts[shift] + timedelta(minutes=30 if late else 5)
        bunch = [
            Presence(world.people[who], TPS_PLACES[place][0] + 0.01 * offset, TPS_PLACES[place][1], now, False)
            for who, place, offset in presences
        ]
        async with sessions() as session:
            before = await session.scalar(select(func.count()).select_from(models.Checkin))
            results = await check_in_all(session, bunch, now=now, settings=CHECKIN)
            after = await session.scalar(select(func.count()).select_from(models.Checkin))
        assert [r.outcome for r in results].count(CheckinOutcome.checked_in) == (after or 0) - (before or 0)
        await check(sessions, world, staffing)


async def test_lateness_is_counted_by_the_time_a_location_was_sent(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Eko's location, sent 5 min into PAGI, read 35 min later (an outage) is on time; Fajar's, sent after the
    grace and read at once, is late: the tallies say what the check-in rows say."""
    world = await prepare(engine, sessions, DEFAULT)
    start, lat, lon = world.starts["PAGI"], *TPS_PLACES["TPS-A2-001"]
    async with sessions() as session:
        for key, sent, read in [
            ("eko", start + timedelta(minutes=5), start + timedelta(minutes=40)),
            ("fajar", start + timedelta(minutes=20), start + timedelta(minutes=21)),
        ]:
            result = await check_in(
                session,
                personnel_id=world.people[key],
                lat=lat,
                lon=lon,
                sent_at=sent,
                forwarded=False,
                now=read,
                settings=CHECKIN,
            )
            assert result.outcome is CheckinOutcome.checked_in, key
        row = await session.scalar(
            select(UnitShiftTally).where(
                UnitShiftTally.shift_id == world.shifts["PAGI"], UnitShiftTally.unit_id == world.units["POLSEK-A2"]
            )
        )
        assert row is not None and (row.checked_in, row.late) == (2, 1)
    await check(sessions, world, DEFAULT)


async def test_status_reads_the_tallies_and_falls_back_when_they_do_not_apply(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await prepare(engine, sessions, DEFAULT)
    pagi, a1 = world.shifts["PAGI"], world.units["POLSEK-A1"]
    async with sessions() as session:
        await session.execute(
            update(UnitShiftTally)
            .where(UnitShiftTally.shift_id == pagi, UnitShiftTally.unit_id == a1)
            .values(assigned=UnitShiftTally.assigned + 100)
        )  # a planted lie, to see who is read
        await session.commit()
        actor = Actor(
            world.people["kapolres"], "Kapolres", "AKBP", "komandan", world.units["POLRES-A"], "POLRES-A", "", "id"
        )
        view = await status.status_for(session, viewer=status.Viewer(actor), now=NOW, staffing=DEFAULT)
        assert isinstance(view, status.UnitStatus) and view.figures.people.assigned == 107
        view = await status.status_for(session, viewer=status.Viewer(actor), now=NOW, staffing=LOOSE)
        assert isinstance(view, status.UnitStatus) and view.figures.people.assigned == 7  # another pattern: counted
        await session.execute(TallyShift.__table__.delete().where(TallyShift.shift_id == pagi))
        await session.commit()
        view = await status.status_for(session, viewer=status.Viewer(actor), now=NOW, staffing=DEFAULT)
        assert isinstance(view, status.UnitStatus) and view.figures.people.assigned == 7  # not built: counted


async def test_ensure_builds_what_is_missing_or_counted_against_another_pattern(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await prepare(engine, sessions, DEFAULT)
    async with sessions() as session:
        assert await tally.ensure(session, staffing=DEFAULT) == []
        await session.execute(TallyShift.__table__.delete().where(TallyShift.shift_id == world.shifts["SORE"]))
        assert await tally.ensure(session, staffing=DEFAULT) == [world.shifts["SORE"]]
        assert await tally.ensure(session, staffing=LOOSE) == sorted(world.shifts.values())
        await session.commit()
    await check(sessions, world, LOOSE)


# --- PostgreSQL: concurrent writers ------------------------------------------------------------------


@pytest.fixture
def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite has one writer)")


STRICT = StaffingSettings(
    kurang_rawan={"police": 10, "linmas": 10, "tps": 1}, rawan={"police": 3, "linmas": 4, "tps": 1}
)
CROWD = 24


async def _unit_tps(session: AsyncSession, world: World, unit: str, kerawanan: str) -> tuple[int, int]:
    row = (
        await session.execute(
            select(UnitShiftTpsTally.covered, UnitShiftTpsTally.meets).where(
                UnitShiftTpsTally.shift_id == world.shifts["PAGI"],
                UnitShiftTpsTally.unit_id == world.units[unit],
                UnitShiftTpsTally.kerawanan == kerawanan,
            )
        )
    ).one()
    return row.covered, row.meets


async def _people_sums(session: AsyncSession, world: World, *columns: str) -> tuple[int, ...]:
    """The crowd's people tallies, summed over their units."""
    row = (
        await session.execute(
            select(*(func.sum(UnitShiftTally.__table__.c[c]) for c in columns))
            .join(Unit, Unit.id == UnitShiftTally.unit_id)
            .where(UnitShiftTally.shift_id == world.shifts["PAGI"], Unit.code.like("POS-%"))
        )
    ).one()
    return tuple(int(value) for value in row)


async def _check_in_at_a2(
    sessions: async_sessionmaker[AsyncSession], world: World, personnel_id: int
) -> CheckinOutcome:
    now = world.starts["PAGI"] + timedelta(minutes=5)
    lat, lon = TPS_PLACES["TPS-A2-001"]
    async with sessions() as session:
        result = await check_in(
            session,
            personnel_id=personnel_id,
            lat=lat,
            lon=lon,
            sent_at=now,
            forwarded=False,
            now=now,
            settings=CHECKIN,
        )
    return result.outcome


async def _check_out(sessions: async_sessionmaker[AsyncSession], world: World, personnel_id: int) -> CheckoutOutcome:
    async with sessions() as session:
        result = await check_out(
            session, personnel_id=personnel_id, now=world.starts["PAGI"] + timedelta(hours=1), settings=CHECKIN
        )
    return result.outcome


async def test_concurrent_check_ins_and_outs_flip_a_tps_once(
    postgresql_only: None, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await prepare(engine, sessions, STRICT, crowd=CROWD)
    twice = [pid for pid in world.crowd for _ in range(2)]  # everyone sends the location twice at once
    outcomes = await asyncio.gather(*(_check_in_at_a2(sessions, world, pid) for pid in twice))
    assert outcomes.count(CheckinOutcome.checked_in) == CROWD
    async with sessions() as session:
        # A2-001: 12 x 1 + 12 x 1/2 = 18 >= 10; A1-001: 12 x 1/2 = 6 >= 3. One flip each, whoever came first.
        assert await _unit_tps(session, world, "POLSEK-A2", "kurang_rawan") == (1, 1)
        assert await _unit_tps(session, world, "POLSEK-A1", "rawan") == (1, 1)
    await check(sessions, world, STRICT)
    outcomes = await asyncio.gather(*(_check_out(sessions, world, pid) for pid in twice))
    assert set(outcomes) <= {CheckoutOutcome.checked_out, CheckoutOutcome.already}
    async with sessions() as session:
        assert await _unit_tps(session, world, "POLSEK-A2", "kurang_rawan") == (0, 0)
        assert await _unit_tps(session, world, "POLSEK-A1", "rawan") == (0, 0)
        assert await _people_sums(session, world, "checked_out") == (CROWD,)
    await check(sessions, world, STRICT)


async def test_concurrent_bunches_check_everyone_in_once_and_flip_a_tps_once(
    postgresql_only: None, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Two workers each take a bunch of the same crowd (in opposite orders) while single check-ins run too."""
    world = await prepare(engine, sessions, STRICT, crowd=CROWD)
    now = world.starts["PAGI"] + timedelta(minutes=5)
    lat, lon = TPS_PLACES["TPS-A2-001"]

    async def bunch(people: list[int]) -> list[CheckinOutcome]:
        async with sessions() as session:
            results = await check_in_all(
                session, [Presence(pid, lat, lon, now, False) for pid in people], now=now, settings=CHECKIN
            )
        return [result.outcome for result in results]

    outcomes = await asyncio.gather(
        bunch(world.crowd),
        bunch(world.crowd[::-1]),
        *(_check_in_at_a2(sessions, world, pid) for pid in world.crowd[::3]),
    )
    flat = [*outcomes[0], *outcomes[1], *outcomes[2:]]
    assert flat.count(CheckinOutcome.checked_in) == CROWD
    assert set(flat) == {CheckinOutcome.checked_in, CheckinOutcome.already}
    async with sessions() as session:
        assert await _people_sums(session, world, "checked_in") == (CROWD,)
        assert await _unit_tps(session, world, "POLSEK-A2", "kurang_rawan") == (1, 1)
        assert await _unit_tps(session, world, "POLSEK-A1", "rawan") == (1, 1)
    await check(sessions, world, STRICT)


async def test_a_rebuild_amid_check_ins_and_reachability_changes_loses_nothing(
    postgresql_only: None, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = await prepare(engine, sessions, STRICT, crowd=CROWD)
    async with sessions() as session:
        for pid in world.crowd:
            await session.execute(
                update(Personnel).where(Personnel.id == pid).values(telegram_user_id=next(telegram_ids))
            )
        await tally.rebuild(session, staffing=STRICT)
        await session.commit()

    async def rebuild() -> None:
        async with sessions() as session:
            await tally.rebuild(session, staffing=STRICT)
            await session.commit()

    async def unreachable(pid: int) -> None:
        async with sessions() as session:
            await mark_reachable(session, pid, False)

    half = world.crowd[: CROWD // 2]
    await asyncio.gather(
        *(_check_in_at_a2(sessions, world, pid) for pid in world.crowd),
        rebuild(),
        *(unreachable(pid) for pid in half for _ in range(2)),
        rebuild(),
    )
    async with sessions() as session:
        crowd = await _people_sums(session, world, "checked_in", "unreachable")
        assert crowd == (CROWD, CROWD // 2)
        assert await _unit_tps(session, world, "POLSEK-A2", "kurang_rawan") == (1, 1)
    await check(sessions, world, STRICT)
