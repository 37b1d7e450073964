"""Escort reminders: once per member and offset before `depart_at`, none once it left, corrected after a move.

The escorts are tests/factories.py `build_escorts`, planned two hours ahead: KWL-1 (Budi ketua, Citra)
and KWL-2 (Dedi, not registered) leave at NOW + 2 h, KWL-3 (Citra) an hour later. With the default
offsets (1440, 60, 0) the day-before reminders are long past; the 60- and 0-minute ones are planned.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.services.escort_reminders import Key
from flows.escort_reminders import plan_escort_reminders
from models import Escort, EscortMember, Outbox, Personnel
from models.enums import Priority
from tests.factories import NOW, Roster, build_escorts, build_roster, link

SETTINGS = Settings()
DEPART = NOW + timedelta(hours=2)


async def _escorts(session: AsyncSession) -> tuple[Roster, dict[str, Escort]]:
    roster = await build_roster(session)
    for number, key in enumerate(["budi", "citra"], start=1):
        await link(session, roster.person(key), 600 + number)
    return roster, await build_escorts(session, roster, now=DEPART)


async def _rows(session: AsyncSession, *, state: str | None = "pending") -> list[Outbox]:
    query = (
        select(Outbox)
        .where(Outbox.ref.like("escort-reminder:%"))
        .order_by(Outbox.due_at, Outbox.id)
        .execution_options(populate_existing=True)
    )
    if state:
        query = query.where(Outbox.state == state)
    return list(await session.scalars(query))


def _who(roster: Roster, escorts: dict[str, Escort], rows: list[Outbox]) -> set[tuple[str, str, str]]:
    """(escort, person, offset or `fix`) of each row."""
    people = {person.id: key for key, person in roster.people.items()}
    codes = {escort.id: code for code, escort in escorts.items()}
    found = set()
    for row in rows:
        key = Key.parse(row.dedup_key)
        assert key is not None
        found.add((codes[key.escort_id], people[key.personnel_id], key.kind))
    return found


async def _mark_sent(session: AsyncSession, at: datetime) -> None:
    await session.execute(
        update(Outbox).where(Outbox.state == "pending", Outbox.due_at <= at).values(state="sent", sent_at=at)
    )
    await session.commit()


async def _plan(session: AsyncSession, now: datetime) -> tuple[int, int, int, int]:
    result = await plan_escort_reminders(session, now=now, settings=SETTINGS)
    return result.planned, result.cancelled, result.corrections, result.skipped_late


async def test_each_registered_member_once_per_offset_even_after_a_restart(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    roster, escorts = await _escorts(session)
    assert await _plan(session, NOW) == (6, 0, 0, 3), "the 1440-minute ones are a day late: skipped"
    assert _who(roster, escorts, await _rows(session)) == {
        (code, person, offset)
        for code, person in [("KWL-1", "budi"), ("KWL-1", "citra"), ("KWL-3", "citra")]
        for offset in ("60", "0")
    }, "Dedi is not registered"
    assert await _plan(session, NOW + timedelta(minutes=1)) == (0, 0, 0, 3)
    async with sessions() as restarted:
        assert (await plan_escort_reminders(restarted, now=NOW + timedelta(minutes=2), settings=SETTINGS)).planned == 0
    rows = await _rows(session)
    assert {row.priority for row in rows} == {Priority.reminder}
    budi = [row for row in rows if row.chat_id == 601]
    assert [row.send_by for row in budi] == [DEPART - timedelta(hours=1), DEPART]
    assert all(row.send_by - timedelta(seconds=1) < row.due_at <= row.send_by for row in budi), "paced to the offset"


async def test_the_reminder_names_cargo_route_times_and_the_live_location(session: AsyncSession) -> None:
    roster, escorts = await _escorts(session)
    await session.execute(update(Personnel).where(Personnel.id == roster.person("citra").id).values(language="en"))
    await session.commit()
    await _plan(session, NOW)
    texts = {
        (row.chat_id, row.dedup_key.split(":")[1], row.dedup_key.split(":")[2]): row.text
        for row in await _rows(session)
    }
    budi = texts[(601, str(escorts["KWL-1"].id), "60")]
    assert "Pengingat pengawalan KWL-1" in budi and "12 kotak suara · ketua" in budi
    assert "PPS Desa Uji → PPK Kec. Uji" in budi and "lewat Dermaga Uji" in budi
    assert "berangkat 14 Feb 10:00 WIB · tiba paling lambat 14 Feb 12:00 WIB" in budi
    assert "Bagikan Lokasi Langsung" in budi and "/kawal" in budi
    citra = texts[(602, str(escorts["KWL-3"].id), "0")]
    assert "Escort reminder KWL-3" in citra and "logistik TPS · lead" in citra
    assert "departs 14 Feb 11:00 WIB · due by 14 Feb 13:00 WIB" in citra and "Share Live Location" in citra


async def test_nothing_for_an_escort_that_left_or_was_received_or_a_member_taken_off(session: AsyncSession) -> None:
    roster, escorts = await _escorts(session)
    await _plan(session, NOW)
    await session.execute(
        update(Escort)
        .where(Escort.id == escorts["KWL-1"].id)
        .values(state="berangkat", departed_at=NOW + timedelta(minutes=5))
    )
    await session.execute(delete(EscortMember).where(EscortMember.escort_id == escorts["KWL-3"].id))
    await session.commit()
    assert await _plan(session, NOW + timedelta(minutes=5)) == (0, 6, 0, 0)
    assert await _rows(session) == []
    await session.execute(
        update(Escort).where(Escort.id == escorts["KWL-3"].id).values(state="diterima", received_at=NOW)
    )
    session.add(EscortMember(escort_id=escorts["KWL-3"].id, personnel_id=roster.person("budi").id))
    await session.commit()
    assert await _plan(session, NOW + timedelta(minutes=6)) == (0, 0, 0, 0)


async def test_a_moved_departure_is_planned_again_and_corrected_once(session: AsyncSession) -> None:
    roster, escorts = await _escorts(session)
    await _plan(session, NOW)
    at = DEPART - timedelta(hours=1)
    await _mark_sent(session, at)  # the 60-minute ones of KWL-1 went out
    later = DEPART + timedelta(minutes=45)
    await session.execute(update(Escort).where(Escort.id == escorts["KWL-1"].id).values(depart_at=later))
    await session.commit()
    planned, cancelled, corrections, _ = await _plan(session, at + timedelta(minutes=1))
    assert (planned, cancelled, corrections) == (2, 2, 2), "the 0-minute ones re-planned; a correction each"
    rows = await _rows(session)
    fix_ref = f"escort-reminder:{escorts['KWL-1'].id}"
    kwl1 = {entry for entry in _who(roster, escorts, rows) if entry[0] == "KWL-1"}
    assert kwl1 == {
        ("KWL-1", "budi", "0"),
        ("KWL-1", "citra", "0"),
        ("KWL-1", "budi", "fix"),
        ("KWL-1", "citra", "fix"),
    }
    assert [row.send_by for row in rows if ":0:" in row.dedup_key and row.ref == fix_ref] == [later, later]
    fix = next(row for row in rows if row.chat_id == 601 and ":fix:" in row.dedup_key)
    assert "Perubahan jadwal pengawalan KWL-1" in fix.text
    assert "Berangkat sekarang <b>14 Feb 10:45 WIB</b> (sebelumnya 14 Feb 10:00 WIB)" in fix.text
    assert await _plan(session, at + timedelta(minutes=2)) == (0, 0, 0, 3), "the 60-minute one is not sent again"
    await _mark_sent(session, at + timedelta(minutes=3))
    assert (await _plan(session, at + timedelta(minutes=4)))[2] == 0, "told once"


async def test_a_departure_moved_before_anything_went_out_is_only_planned_again(session: AsyncSession) -> None:
    roster, escorts = await _escorts(session)
    await _plan(session, NOW)
    await session.execute(
        update(Escort).where(Escort.id == escorts["KWL-3"].id).values(depart_at=DEPART + timedelta(hours=3))
    )
    await session.commit()
    assert await _plan(session, NOW + timedelta(minutes=1)) == (2, 2, 0, 3)
    citra = [row for row in await _rows(session) if row.ref == f"escort-reminder:{escorts['KWL-3'].id}"]
    assert [row.send_by for row in citra] == [DEPART + timedelta(hours=2), DEPART + timedelta(hours=3)]
