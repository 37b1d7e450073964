"""Shift reminders: once per person and offset, paced to their deadline, corrected after a change."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import DeliverySettings, Settings
from bot.render.outbox import format_outbox_stats
from bot.services import outbox
from bot.services.reminders import Key
from flows.reminders import plan_reminders
from models import Assignment, AuditLog, Checkin, Outbox, Personnel, Shift, Tps, TpsLocation
from models.enums import OutboxState, Priority
from tests.factories import NOW, Roster, build_roster, link

SETTINGS = Settings()
REMINDED = ["budi", "citra", "dedi", "eko"]  # fajar stays unregistered


async def _roster(session: AsyncSession) -> Roster:
    roster = await build_roster(session)
    for number, key in enumerate(REMINDED, start=1):
        await link(session, roster.person(key), 500 + number)
    return roster


async def _rows(session: AsyncSession, *, state: str | None = None) -> list[Outbox]:
    query = (
        select(Outbox)
        .where(Outbox.ref.like("reminder:%"))
        .order_by(Outbox.due_at, Outbox.id)
        .execution_options(populate_existing=True)
    )
    if state:
        query = query.where(Outbox.state == state)
    return list(await session.scalars(query))


def _keyed(roster: Roster, rows: list[Outbox]) -> dict[tuple[str, str], Outbox]:
    """(person, offset or `fix`) -> row, as a test can say them."""
    names = {person.id: key for key, person in roster.people.items()}
    result = {}
    for row in rows:
        key = Key.parse(row.dedup_key)
        assert key is not None
        result[(names[key.personnel_id], key.kind)] = row
    return result


def _who(roster: Roster, rows: list[Outbox]) -> dict[str, list[str]]:
    """person -> the offsets (or `fix`) of their rows."""
    result: dict[str, list[str]] = {}
    for name, kind in _keyed(roster, rows):
        result.setdefault(name, []).append(kind)
    return {name: sorted(kinds) for name, kinds in result.items()}


async def _mark_sent(session: AsyncSession, at: datetime) -> None:
    """What a dispatcher would have done by `at`: every row due by then went out."""
    await session.execute(
        update(Outbox).where(Outbox.state == "pending", Outbox.due_at <= at).values(state="sent", sent_at=at)
    )
    await session.commit()


async def test_planned_once_per_person_and_offset_even_after_a_restart(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    roster = await _roster(session)
    first = await plan_reminders(session, now=NOW, settings=SETTINGS)
    # PAGI began an hour ago (all its reminders are past); SORE starts in 5 h: its 60- and 0-minute ones.
    assert first.planned == 8
    assert _who(roster, await _rows(session)) == {name: ["0", "60"] for name in REMINDED}
    again = await plan_reminders(session, now=NOW + timedelta(minutes=1), settings=SETTINGS)
    assert (again.planned, again.cancelled, again.corrections) == (0, 0, 0)
    async with sessions() as restarted:  # a new process: nothing in memory, same database
        assert (await plan_reminders(restarted, now=NOW + timedelta(minutes=2), settings=SETTINGS)).planned == 0
    rows = await _rows(session)
    assert len(rows) == 8 and {row.priority for row in rows} == {Priority.reminder}
    assert {row.chat_id for row in rows} == {500 + i for i in range(1, 5)}


async def test_reminder_says_where_when_and_how_in_the_persons_language(session: AsyncSession) -> None:
    roster = await _roster(session)
    await session.execute(update(Personnel).where(Personnel.id == roster.person("citra").id).values(language="en"))
    await session.commit()
    await plan_reminders(session, now=NOW, settings=SETTINGS)
    rows = _keyed(roster, await _rows(session))
    budi = rows[("budi", "60")].text
    assert "Pengingat tugas" in budi and "13 Feb" not in budi
    assert "TPS-A1-001" in budi and "TPS-A1-002" in budi and "Desa 002" in budi
    assert "berangkat lebih awal" in budi  # TPS-A1-002 is reached by water
    assert "14 Feb 13:00 WIB" in budi  # SORE starts NOW + 5 h = 13:00 WIB
    citra = rows[("citra", "0")].text
    assert "Duty reminder" in citra and "starts at <b>14 Feb 13:00 WIB</b>" in citra and "leave early" in citra
    eko = rows[("eko", "60")].text
    assert "TPS-A2-001" in eko and "TPS-A1" not in eko and "lebih awal" not in eko
    assert rows[("budi", "60")].send_by == roster.shifts["SORE"].starts_at - timedelta(hours=1)
    assert rows[("budi", "60")].payload["parse_mode"] == "HTML"


async def test_only_registered_reachable_and_not_yet_present_people(session: AsyncSession) -> None:
    roster = await _roster(session)
    dedi, eko = roster.person("dedi"), roster.person("eko")
    await session.execute(update(Personnel).where(Personnel.id == dedi.id).values(reachable=False))
    session.add(
        Checkin(
            personnel_id=eko.id,
            shift_id=roster.shifts["SORE"].id,
            tps_id=roster.tps["TPS-A2-001"].id,
            lat=0.0,
            lon=0.0,
            distance_m=0.0,
            checked_in_at=NOW,
        )
    )
    await session.commit()
    await plan_reminders(session, now=NOW, settings=SETTINGS)
    assert set(_who(roster, await _rows(session))) == {"budi", "citra"}


async def test_a_late_reminder_is_skipped_but_the_start_one_comes_within_grace(session: AsyncSession) -> None:
    roster = await _roster(session)
    sore = roster.shifts["SORE"].starts_at
    result = await plan_reminders(session, now=sore + timedelta(minutes=10), settings=SETTINGS)
    assert result.skipped_late == 8  # the 1440- and 60-minute ones: a reminder hours late is none
    rows = await _rows(session)
    assert _who(roster, rows) == {name: ["0"] for name in REMINDED}
    assert all(row.due_at == sore + timedelta(minutes=10) for row in rows)
    later = await plan_reminders(session, now=sore + timedelta(minutes=10), settings=SETTINGS)
    assert later.planned == 0


async def test_past_grace_nothing_is_planned(session: AsyncSession) -> None:
    roster = await _roster(session)
    after = roster.shifts["SORE"].starts_at + timedelta(minutes=SETTINGS.checkin.grace_minutes + 1)
    assert (await plan_reminders(session, now=after, settings=SETTINGS)).planned == 0


async def test_due_times_spread_back_from_the_deadline(session: AsyncSession) -> None:
    roster = await _roster(session)
    settings = Settings(delivery=DeliverySettings(global_per_second=1))
    await plan_reminders(session, now=NOW, settings=settings)
    step = timedelta(seconds=1 / 0.8)  # 80% of the global rate, the rest kept for alerts and replies
    start = roster.shifts["SORE"].starts_at
    for offset in (timedelta(0), timedelta(hours=1)):
        dues = sorted(row.due_at for row in await _rows(session) if row.send_by == start - offset)
        assert dues == [start - offset - step * n for n in (3, 2, 1, 0)]


async def test_big_run_imported_late_is_pulled_forward_and_logged(
    session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    roster = await _roster(session)
    starts = NOW + timedelta(minutes=10)
    shift = Shift(code="KILAT", name="Kilat", phase="pemungutan", starts_at=starts, ends_at=starts + timedelta(hours=4))
    session.add(shift)
    people = [
        Personnel(
            nrp=f"L{n:06d}",
            name=f"Linmas {n}",
            force="linmas",
            unit_id=roster.units["POLSEK-A1"].id,
            telegram_user_id=700_000 + n,
            registered_at=NOW,
        )
        for n in range(600)
    ]
    session.add_all(people)
    await session.flush()
    tps_id = roster.tps["TPS-A1-001"].id
    session.add_all(Assignment(personnel_id=p.id, tps_id=tps_id, shift_id=shift.id) for p in people)
    await session.commit()
    settings = Settings(delivery=DeliverySettings(global_per_second=1), reminders={"before_minutes": [0]})
    with caplog.at_level(logging.WARNING, logger="siaga.reminders"):
        result = await plan_reminders(session, now=NOW, settings=settings)
    assert result.late_runs == 1
    # 600 messages need 750 s at 0.8/s, only 600 s remain: the first ones are due at once, the last on time.
    rows = [row for row in await _rows(session) if row.send_by == starts]
    assert len(rows) == 600 and rows[0].due_at == NOW and rows[-1].due_at == starts
    assert sum(row.due_at == NOW for row in rows) == 120
    [record] = [r for r in caplog.records if r.name == "siaga.reminders"]
    assert "KILAT-0" in record.getMessage() and "600 messages" in record.getMessage()
    assert "Linmas" not in record.getMessage() and "7000" not in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="siaga.reminders"):
        assert (await plan_reminders(session, now=NOW, settings=settings)).late_runs == 0  # said once
    assert not caplog.records


async def test_roster_changes_cancel_and_restore_without_duplicates(session: AsyncSession) -> None:
    roster = await _roster(session)
    await plan_reminders(session, now=NOW, settings=SETTINGS)
    eko_duty = (Assignment.personnel_id == roster.person("eko").id) & (Assignment.shift_id == roster.shifts["SORE"].id)
    await session.execute(delete(Assignment).where(eko_duty))
    await session.commit()
    result = await plan_reminders(session, now=NOW, settings=SETTINGS)
    assert result.cancelled == 2
    assert "eko" not in _who(roster, await _rows(session, state="pending"))
    session.add(
        Assignment(
            personnel_id=roster.person("eko").id, tps_id=roster.tps["TPS-A2-001"].id, shift_id=roster.shifts["SORE"].id
        )
    )
    await session.commit()
    assert (await plan_reminders(session, now=NOW, settings=SETTINGS)).planned == 2
    assert _who(roster, await _rows(session)) == {name: ["0", "60"] for name in REMINDED}


async def test_relocated_tps_sends_one_correction_to_those_already_reminded(session: AsyncSession) -> None:
    roster = await _roster(session)
    sore = roster.shifts["SORE"].starts_at
    await plan_reminders(session, now=sore - timedelta(hours=1), settings=SETTINGS)
    await _mark_sent(session, sore - timedelta(hours=1))  # the 60-minute reminders went out
    moved_at = sore - timedelta(minutes=40)
    tps = await session.get(Tps, roster.tps["TPS-A1-002"].id)
    assert tps is not None
    session.add(TpsLocation(tps_id=tps.id, lat=tps.lat, lon=tps.lon, village=tps.village, valid_until=moved_at))
    tps.lat, tps.lon, tps.village, tps.relocated_at = -3.02, 104.81, "Desa Baru", moved_at
    await session.commit()
    now = sore - timedelta(minutes=30)
    result = await plan_reminders(session, now=now, settings=SETTINGS)
    assert result.corrections == 2 and result.cancelled == 2 and result.planned == 2
    pending = await _rows(session, state="pending")
    assert _who(roster, pending) == {"budi": ["0", "fix"], "citra": ["0", "fix"], "dedi": ["0"], "eko": ["0"]}
    fixes = [row for row in pending if ":fix:" in row.dedup_key]
    assert all("pindah" in row.text and "Desa Baru" in row.text and "TPS-A1-001" not in row.text for row in fixes)
    assert all(row.due_at == now for row in fixes)
    assert "Desa Baru" in _keyed(roster, pending)[("budi", "0")].text  # the coming reminder says the new place
    again = await plan_reminders(session, now=now + timedelta(minutes=1), settings=SETTINGS)
    assert (again.planned, again.corrections, again.cancelled) == (0, 0, 0)
    await _mark_sent(session, now + timedelta(minutes=2))
    assert (await plan_reminders(session, now=now + timedelta(minutes=3), settings=SETTINGS)).corrections == 0


async def test_moved_start_is_corrected_with_old_and_new_time(session: AsyncSession) -> None:
    roster = await _roster(session)
    sore = roster.shifts["SORE"].starts_at
    await plan_reminders(session, now=sore - timedelta(hours=1), settings=SETTINGS)
    await _mark_sent(session, sore - timedelta(hours=1))
    await session.execute(
        update(Shift).where(Shift.id == roster.shifts["SORE"].id).values(starts_at=sore + timedelta(minutes=30))
    )
    await session.commit()
    result = await plan_reminders(session, now=sore - timedelta(minutes=45), settings=SETTINGS)
    assert result.corrections == 4
    fix = _keyed(roster, await _rows(session, state="pending"))[("eko", "fix")]
    assert "13:30 WIB" in fix.text and "sebelumnya 14 Feb 13:00 WIB" in fix.text and "TPS-A2-001" not in fix.text
    # The 0-minute reminder follows the new start; the one for the old start is cancelled.
    zero = [r for r in await _rows(session, state="pending") if ":0:" in r.dedup_key]
    assert len(zero) == 4 and {r.send_by for r in zero} == {sore + timedelta(minutes=30)}
    assert len(await _rows(session, state=OutboxState.cancelled.value)) == 4


async def test_operators_see_a_reminder_run_in_the_outbox_stats(session: AsyncSession) -> None:
    await _roster(session)
    await plan_reminders(session, now=NOW, settings=SETTINGS)
    await session.execute(update(Outbox).where(Outbox.id == 1).values(state="failed", last_error="Forbidden: blocked"))
    await session.commit()
    text = format_outbox_stats(
        await outbox.stats(session), now=NOW + timedelta(hours=5), sent_last_minute=90, rate_limited=2
    )
    lines = text.splitlines()
    assert lines[1].split() == ["priority", "pending", "sending", "sent", "failed", "cancelled"]
    assert lines[4].split() == ["2", "reminder", "7", "0", "0", "1", "0"]
    assert "waiting: 7" in text and "send rate: 1.5/s" in text and "429 answers (flood control): 2" in text
    assert "failures: 1" in text and "1  Forbidden: blocked" in text and "ago)" in text


async def test_each_run_that_changed_something_is_audited_without_names(session: AsyncSession) -> None:
    await _roster(session)
    await plan_reminders(session, now=NOW, settings=SETTINGS)
    await plan_reminders(session, now=NOW, settings=SETTINGS)
    [row] = list(await session.scalars(select(AuditLog).where(AuditLog.action == "reminders.planned")))
    assert row.actor == "scheduler" and row.detail["planned"] == 8 and row.detail["cancelled"] == 0
