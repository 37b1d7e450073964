"""`/status` counting: every number checked against a plain-Python oracle over the same rows.

The oracle (`expected`) reads the factory roster and the check-ins a test
made with simple selects and applies the definitions of
bot/services/status/counting.py in Python; the service must agree with it for every
unit of every level, after every change a test makes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import StaffingSettings
from bot.render.status import CHILDREN_PER_PAGE, missing_keyboard, missing_text, status_keyboard, status_text
from bot.services import status
from bot.services.people import actor_for
from bot.services.status import (
    ChildStatus,
    Coverage,
    Figures,
    MissingPage,
    MissingPerson,
    People,
    Refusal,
    ShiftRef,
    SitrepLine,
    UnitRef,
    UnitStatus,
    Viewer,
)
from models import Assignment, Checkin, CommandGroup, Contingency, Personnel, Shift, Sitrep, Tps, Unit
from tests.factories import NOW, Roster, build_roster, link

STAFFING = StaffingSettings()


@dataclass(frozen=True)
class Expected:
    people: People
    tps: dict[str, Coverage]
    open: dict[str, int]


async def expected(
    session: AsyncSession, *, unit_code: str, shift_code: str, staffing: StaffingSettings = STAFFING
) -> Expected:
    """The definitions of bot/services/status/counting.py, applied row by row in Python."""
    units = {u.id: u for u in (await session.scalars(select(Unit))).all()}
    root = next(u.id for u in units.values() if u.code == unit_code)

    def inside(unit_id: int | None) -> bool:
        while unit_id is not None:
            if unit_id == root:
                return True
            unit_id = units[unit_id].parent_id
        return False

    shift = (await session.scalars(select(Shift).where(Shift.code == shift_code))).one()
    people = {p.id: p for p in (await session.scalars(select(Personnel))).all()}
    duties = [
        (a.personnel_id, a.tps_id) for a in (await session.scalars(select(Assignment))).all() if a.shift_id == shift.id
    ]
    checkins = {c.personnel_id: c for c in (await session.scalars(select(Checkin))).all() if c.shift_id == shift.id}
    posts: dict[int, list[int]] = defaultdict(list)
    for person, tps in duties:
        posts[person].append(tps)
    mine = [people[p] for p in posts if inside(people[p].unit_id)]
    counted = People(
        assigned=len(mine),
        registered=sum(p.telegram_user_id is not None for p in mine),
        checked_in=sum(p.id in checkins for p in mine),
        late=sum(p.id in checkins and checkins[p.id].late for p in mine),
        far=sum(p.id in checkins and checkins[p.id].far for p in mine),
        checked_out=sum(p.id in checkins and checkins[p.id].checked_out_at is not None for p in mine),
        unreachable=sum(p.telegram_user_id is not None and not p.reachable for p in mine),
    )
    share: dict[int, float] = defaultdict(float)
    for person, tps in duties:
        present = person in checkins and checkins[person].checked_out_at is None
        if present and people[person].force in ("polri", "tni"):
            share[tps] += 1 / len(posts[person])
    levels: dict[str, Coverage] = {level: Coverage() for level in ("sangat_rawan", "rawan", "kurang_rawan")}
    for tps in (await session.scalars(select(Tps))).all():
        if inside(tps.unit_id):
            pattern = staffing.for_kerawanan(tps.kerawanan)
            meets = share[tps.id] * pattern.tps >= pattern.police - 1e-9
            levels[tps.kerawanan] += Coverage(1, int(tps.id in share), int(meets))
    opened = {"tinggi": 0, "sedang": 0, "rendah": 0}
    for item in (await session.scalars(select(Contingency))).all():
        if item.raised_at is not None and item.state != "resolved" and inside(item.unit_id) and item.severity:
            opened[item.severity] += 1
    return Expected(counted, levels, opened)


async def checkin(
    session: AsyncSession,
    roster: Roster,
    key: str,
    tps: str,
    *,
    shift: str = "PAGI",
    late: bool = False,
    far: bool = False,
    out: bool = False,
    at: datetime = NOW,
) -> None:
    session.add(
        Checkin(
            personnel_id=roster.person(key).id,
            shift_id=roster.shifts[shift].id,
            tps_id=roster.tps[tps].id,
            checked_in_at=at,
            lat=0.0,
            lon=0.0,
            distance_m=900.0 if far else 20.0,
            far=far,
            late=late,
            checked_out_at=at + timedelta(hours=1) if out else None,
        )
    )
    await session.commit()


async def morning(session: AsyncSession) -> Roster:
    """Budi (two TPS) late, Dedi (Linmas) far, Eko in, Fajar (TNI) in and already out; Citra missing."""
    roster = await build_roster(session)
    for number, key in enumerate(
        ["kapolda", "kapolres", "kapolsek_a1", "kapolsek_a2", "budi", "dedi", "eko", "ani"], 1
    ):
        await link(session, roster.person(key), 500 + number)
    eko = await session.get(Personnel, roster.person("eko").id)
    assert eko
    eko.reachable = False
    await checkin(session, roster, "budi", "TPS-A1-001", late=True)
    await checkin(session, roster, "dedi", "TPS-A1-001", far=True)
    await checkin(session, roster, "eko", "TPS-A2-001")
    await checkin(session, roster, "fajar", "TPS-A2-001", out=True)
    return roster


async def viewer(session: AsyncSession, telegram_user_id: int, *, group_chat_id: int | None = None) -> Viewer:
    return Viewer(await actor_for(session, telegram_user_id=telegram_user_id, now=NOW), group_chat_id=group_chat_id)


async def test_every_level_matches_the_oracle(session: AsyncSession) -> None:
    await morning(session)
    for user, code in [(501, "POLDA-X"), (502, "POLRES-A"), (503, "POLSEK-A1"), (504, "POLSEK-A2")]:
        view = await status.status_for(session, viewer=await viewer(session, user), now=NOW, staffing=STAFFING)
        assert not isinstance(view, Refusal)
        want = await expected(session, unit_code=code, shift_code="PAGI")
        assert view.unit.code == code and view.shift and view.shift.code == "PAGI"
        assert (view.figures.people, view.figures.tps, view.figures.contingencies) == (
            want.people,
            want.tps,
            want.open,
        ), code
        for child in view.children:
            mine = await expected(session, unit_code=child.unit.code, shift_code="PAGI")
            assert (child.figures.people, child.figures.tps) == (mine.people, mine.tps), child.unit.code


async def test_the_numbers_of_the_morning_by_hand(session: AsyncSession) -> None:
    """The oracle itself, pinned once: what a commander would count on paper."""
    await morning(session)
    view = await status.status_for(session, viewer=await viewer(session, 502), now=NOW, staffing=STAFFING)
    assert not isinstance(view, Refusal)
    assert view.figures.people == People(
        assigned=5, registered=3, checked_in=4, late=1, far=1, checked_out=1, unreachable=1
    )
    # Budi covers A1-001 and A1-002 (1/2 each); Fajar left, Eko stays alone at A2-001 (1 of 2/5 needed).
    assert view.figures.tps == {
        "sangat_rawan": Coverage(1, 1, 0),
        "rawan": Coverage(1, 1, 0),
        "kurang_rawan": Coverage(1, 1, 1),
    }
    a1, a2 = view.children
    assert (a1.unit.code, a1.figures.people.checked_in, a1.figures.people.assigned) == ("POLSEK-A1", 2, 3)
    assert (a2.unit.code, a2.figures.people.checked_in, a2.figures.coverage.covered) == ("POLSEK-A2", 2, 1)


async def test_the_pattern_counts_shares_not_heads(session: AsyncSession) -> None:
    """Citra (one TPS) and Budi (half of it) make 1.5 of the 2 a sangat_rawan TPS needs; a looser pattern is met."""
    roster = await morning(session)
    await checkin(session, roster, "citra", "TPS-A1-002")
    loose = StaffingSettings(sangat_rawan={"police": 3, "linmas": 2, "tps": 2})
    for staffing, meets in [(STAFFING, 0), (loose, 1)]:
        view = await status.status_for(session, viewer=await viewer(session, 503), now=NOW, staffing=staffing)
        assert not isinstance(view, Refusal)
        assert view.figures.tps["sangat_rawan"] == Coverage(1, 1, meets)
        want = await expected(session, unit_code="POLSEK-A1", shift_code="PAGI", staffing=staffing)
        assert view.figures.tps == want.tps


async def test_open_contingencies_by_severity_and_latest_sitreps(session: AsyncSession) -> None:
    roster = await morning(session)
    a1, a2 = roster.units["POLSEK-A1"].id, roster.units["POLSEK-A2"].id
    reporter = roster.person("budi").id
    for unit, severity, state, raised in [
        (a1, "tinggi", "open", True),
        (a1, "rendah", "acknowledged", True),
        (a2, "sedang", "open", True),
        (a1, "tinggi", "resolved", True),
        (a1, None, "open", False),
    ]:
        session.add(
            Contingency(
                reporter_id=reporter,
                unit_id=unit,
                level_unit_id=unit,
                severity=severity,
                text="x",
                state=state,
                raised_at=NOW if raised else None,
                created_at=NOW,
            )
        )
    for minute in range(5):
        session.add(
            Sitrep(
                personnel_id=reporter,
                unit_id=a1,
                text=f"laporan {minute}",
                category="aman",
                created_at=NOW,
                filed_at=NOW + timedelta(minutes=minute),
            )
        )
    session.add(Sitrep(personnel_id=reporter, unit_id=a2, text="draft", created_at=NOW))
    await session.commit()
    view = await status.status_for(session, viewer=await viewer(session, 502), now=NOW, staffing=STAFFING)
    assert not isinstance(view, Refusal)
    assert view.figures.contingencies == {"tinggi": 1, "sedang": 1, "rendah": 1}
    assert view.figures.contingencies == (await expected(session, unit_code="POLRES-A", shift_code="PAGI")).open
    assert [item.text for item in view.sitreps] == ["laporan 4", "laporan 3", "laporan 2"]
    sibling = await status.status_for(session, viewer=await viewer(session, 504), now=NOW, staffing=STAFFING)
    assert not isinstance(sibling, Refusal)
    assert sibling.figures.contingencies == {"tinggi": 0, "sedang": 1, "rendah": 0} and sibling.sitreps == []


async def test_who_may_see_what(session: AsyncSession) -> None:
    roster = await morning(session)
    await link(session, roster.person("citra"), 599)
    kapolsek_a1, anggota, ani = await viewer(session, 503), await viewer(session, 599), await viewer(session, 508)
    seen = await status.status_for(session, viewer=kapolsek_a1, unit_code="polsek-a2", now=NOW, staffing=STAFFING)
    assert seen is Refusal.outside
    assert (
        await status.status_for(session, viewer=kapolsek_a1, unit_code="POLRES-A", now=NOW, staffing=STAFFING)
        is Refusal.outside
    )
    assert (
        await status.status_for(session, viewer=kapolsek_a1, unit_code="NOPE", now=NOW, staffing=STAFFING)
        is Refusal.unknown_unit
    )
    assert await status.status_for(session, viewer=anggota, now=NOW, staffing=STAFFING) is Refusal.not_commander
    assert await status.status_for(session, viewer=Viewer(None), now=NOW, staffing=STAFFING) is Refusal.not_registered
    for code in ["KODIM-X", "POLSEK-A2"]:  # an admin sees every tree
        view = await status.status_for(session, viewer=ani, unit_code=code, now=NOW, staffing=STAFFING)
        assert not isinstance(view, Refusal) and view.unit.code == code
    own = await status.status_for(session, viewer=kapolsek_a1, now=NOW, staffing=STAFFING)
    assert not isinstance(own, Refusal) and own.parent is None and own.children == []
    down = await status.status_for(
        session, viewer=await viewer(session, 502), unit_code="POLSEK-A1", now=NOW, staffing=STAFFING
    )
    assert not isinstance(down, Refusal) and down.parent and down.parent.code == "POLRES-A"


async def test_in_a_command_group_anyone_sees_the_groups_unit(session: AsyncSession) -> None:
    roster = await morning(session)
    session.add(CommandGroup(unit_id=roster.units["POLSEK-A1"].id, chat_id=-100))
    await session.commit()
    stranger = Viewer(None, group_chat_id=-100)
    view = await status.status_for(session, viewer=stranger, now=NOW, staffing=STAFFING)
    assert not isinstance(view, Refusal) and view.unit.code == "POLSEK-A1"
    assert (
        await status.status_for(session, viewer=stranger, unit_code="POLSEK-A2", now=NOW, staffing=STAFFING)
        is Refusal.outside
    )
    kapolda_elsewhere = await viewer(session, 501, group_chat_id=-100)  # a group sees its unit, whoever asks
    assert (
        await status.status_for(session, viewer=kapolda_elsewhere, unit_code="POLRES-A", now=NOW, staffing=STAFFING)
        is Refusal.outside
    )
    unregistered = Viewer(None, group_chat_id=-200)
    assert (
        await status.status_for(session, viewer=unregistered, now=NOW, staffing=STAFFING) is Refusal.unregistered_group
    )


async def test_before_the_shift_the_next_one_and_readiness(session: AsyncSession) -> None:
    roster = await morning(session)
    later = NOW + timedelta(hours=5, minutes=-30)  # PAGI running; SORE half an hour away
    view = await status.status_for(session, viewer=await viewer(session, 502), now=later, staffing=STAFFING)
    assert not isinstance(view, Refusal) and view.shift and view.shift.code == "PAGI"
    after = NOW + timedelta(hours=5)
    view = await status.status_for(session, viewer=await viewer(session, 502), now=after, staffing=STAFFING)
    assert not isinstance(view, Refusal) and view.shift and view.shift.code == "SORE"
    assert view.figures.people == People(assigned=5, registered=3, unreachable=1)
    assert view.figures.people == (await expected(session, unit_code="POLRES-A", shift_code="SORE")).people
    await session.delete(await session.get(Shift, roster.shifts["SORE"].id))
    await session.commit()
    ended = await status.status_for(
        session, viewer=await viewer(session, 502), now=NOW + timedelta(days=1), staffing=STAFFING
    )
    assert not isinstance(ended, Refusal) and ended.shift and ended.shift.code == "PAGI"


async def test_missing_list_pages_and_marks(session: AsyncSession) -> None:
    roster = await morning(session)
    kapolres = await viewer(session, 502)
    page = await status.missing_for(session, viewer=kapolres, unit_id=roster.units["POLRES-A"].id, page=0, now=NOW)
    assert not isinstance(page, Refusal)
    assert [(p.title, p.tps_codes, p.registered) for p in page.people] == [("Briptu Citra", ("TPS-A1-002",), False)]
    await session.execute(Checkin.__table__.delete())
    await session.commit()
    small = await status.missing_for(
        session, viewer=kapolres, unit_id=roster.units["POLRES-A"].id, page=1, now=NOW, page_size=2
    )
    assert not isinstance(small, Refusal)
    assert (small.total, small.pages, small.page, small.offset) == (5, 3, 1, 2)
    assert [p.title for p in small.people] == ["Linmas Dedi", "Bripka Eko"]
    assert [p.reachable for p in small.people] == [True, False]
    budi = await status.missing_for(session, viewer=kapolres, unit_id=roster.units["POLSEK-A1"].id, page=0, now=NOW)
    assert not isinstance(budi, Refusal) and budi.people[0].tps_codes == ("TPS-A1-001", "TPS-A1-002")
    sibling = await status.missing_for(
        session, viewer=await viewer(session, 503), unit_id=roster.units["POLSEK-A2"].id, page=0, now=NOW
    )
    assert sibling is Refusal.outside


def test_many_children_are_paged_and_every_button_fits_telegram() -> None:
    """Forty Polres: eight buttons a page, arrows that wrap, callback data far under 64 bytes, text under 4096."""
    zone = ZoneInfo("Asia/Jakarta")
    shift = ShiftRef(1, "PAGI", "Pemungutan", "pemungutan", NOW - timedelta(hours=1), NOW + timedelta(hours=5))
    children = [
        ChildStatus(UnitRef(10_000_000 + i, f"POLRES-{i:02d}-KABUPATEN-PANJANG", "x", "polres"), Figures())
        for i in range(40)
    ]
    sitreps = [SitrepLine(i, NOW, "aman", "POLSEK", "TPS-1", "Bripda <b>", "<script>" * 100) for i in range(3)]
    view = UnitStatus(
        UnitRef(9_999_999, "POLDA-X", "Polda <X>", "polda"),
        UnitRef(1, "MABES", "Mabes", "other"),
        shift,
        NOW,
        Figures(People(assigned=10, checked_in=4)),
        children,
        sitreps,
    )
    for page in range(5):
        text, keyboard = status_text(view, "id", zone, page=page), status_keyboard(view, "id", page=page)
        assert len(text) <= 4096 and "&lt;script&gt;" in text and "Polda &lt;X&gt;" in text
        buttons = [b for row in keyboard.inline_keyboard for b in row]
        codes = [b.text.split()[0] for b in buttons if b.text.startswith("POLRES")]
        assert codes == [c.unit.code for c in children[page * CHILDREN_PER_PAGE : (page + 1) * CHILDREN_PER_PAGE]]
        assert all(len((b.callback_data or "").encode()) < 64 for b in buttons)
        assert f"(hal. {page + 1}/5)" in text
    arrows = {b.text: b.callback_data for row in status_keyboard(view, "en", page=0).inline_keyboard for b in row}
    assert arrows["◀️"] == "st:r:9999999:4" and arrows["▶️"] == "st:r:9999999:1" and arrows["⬆️ MABES"] == "st:u:1"
    people = [
        MissingPerson(
            i,
            "Bripda " + "Nama " * 20,
            "polri",
            "POLSEK-X",
            tuple(f"TPS-{n}" for n in range(15)),
            i % 2 == 0,
            i % 3 == 0,
        )
        for i in range(25)
    ]
    page = MissingPage(view.unit, shift, NOW, 3, 9, 220, 75, people)
    text = missing_text(page, "en", zone)
    assert len(text) <= 4096 and text.count("\n76. ") == 1 and "+12" in text
    assert "✉️ not registered" in text and "📵 unreachable" in text
    nav = [b.callback_data for row in missing_keyboard(page, "en").inline_keyboard for b in row]
    assert nav == ["st:mp:9999999:2", "st:mp:9999999:3", "st:mp:9999999:4", "st:u:9999999"]


async def test_before_the_shift_the_summary_leads_with_readiness(session: AsyncSession) -> None:
    await morning(session)
    early = NOW - timedelta(hours=3)  # two hours before PAGI starts
    view = await status.status_for(session, viewer=await viewer(session, 502), now=early, staffing=STAFFING)
    assert not isinstance(view, Refusal) and view.shift and view.shift.code == "PAGI"
    text = status_text(view, "id", ZoneInfo("Asia/Jakarta"))
    assert "belum dimulai" in text and "Kesiapan: <b>3/5</b> personel terdaftar di bot (60%)" in text
    assert "per 05:00:00 WIB" in text
