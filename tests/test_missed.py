"""Missed check-ins: one digest per command group, updates when the list changes, never one per person."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.render import MAX_TEXT
from bot.services.missed import UPDATE_EVERY
from flows.missed import sweep_missed_checkins
from models import Assignment, AuditLog, Checkin, CheckinAlert, CommandGroup, Outbox, Personnel
from models.enums import Priority
from tests.factories import NOW, TPS_PLACES, Roster, build_roster, link

SETTINGS = Settings()
A1_GROUP, POLRES_GROUP = -1001, -1002


async def _world(session: AsyncSession) -> Roster:
    """POLSEK-A1 and POLRES-A have groups (POLSEK-A2 has none); citra blocked the bot; dedi, fajar unregistered."""
    roster = await build_roster(session)
    for number, key in enumerate(["budi", "citra", "eko"], start=1):
        await link(session, roster.person(key), 600 + number)
    await session.execute(update(Personnel).where(Personnel.id == roster.person("citra").id).values(reachable=False))
    session.add_all(
        [
            CommandGroup(unit_id=roster.units["POLSEK-A1"].id, chat_id=A1_GROUP, title="Posko A1"),
            CommandGroup(unit_id=roster.units["POLRES-A"].id, chat_id=POLRES_GROUP, title="Posko Polres A"),
        ]
    )
    await session.commit()
    return roster


async def _texts(session: AsyncSession, chat_id: int) -> list[str]:
    rows = await session.scalars(select(Outbox).where(Outbox.chat_id == chat_id).order_by(Outbox.id))
    return [row.text for row in rows]


async def _check_in(session: AsyncSession, roster: Roster, key: str, tps: str, at: datetime) -> None:
    lat, lon = TPS_PLACES[tps]
    session.add(
        Checkin(
            personnel_id=roster.person(key).id,
            shift_id=roster.shifts["PAGI"].id,
            tps_id=roster.tps[tps].id,
            lat=lat,
            lon=lon,
            distance_m=5,
            checked_in_at=at,
            late=True,
        )
    )
    await session.commit()


async def test_each_group_gets_one_digest_grouped_by_tps(session: AsyncSession) -> None:
    await _world(session)
    assert await sweep_missed_checkins(session, now=NOW, settings=SETTINGS) == 2
    [a1] = await _texts(session, A1_GROUP)
    head, *blocks = a1.split("\n\n")
    assert "Belum hadir" in head and "<b>3</b> personel di 2 TPS" in head and "15 menit" in head
    # Reachable people under their TPS; who the bot cannot reach, apart, with why.
    assert blocks[0].splitlines() == [
        "📍 <b>TPS-A1-001</b> (TPS 001, Desa 001, Kec. Uji, Kab. Uji) · Polsek A1",
        "   ⚠️ belum ada satu pun yang hadir di TPS ini",
        "   • Bripda Budi",
    ]
    assert blocks[1].splitlines()[1:] == ["   ⚠️ belum ada satu pun yang hadir di TPS ini", "   • Bripda Budi"]
    assert "Tidak dapat dihubungi bot" in blocks[2]
    assert "TPS-A1-001" in blocks[3] and "Linmas Dedi (belum terdaftar)" in blocks[3] and "⚠️" not in blocks[3]
    assert "TPS-A1-002" in blocks[4] and "Briptu Citra (memblokir bot / tidak terjangkau)" in blocks[4]
    # POLSEK-A2 has no group: its TPS goes to the nearest one above, POLRES-A's, and only there.
    [polres] = await _texts(session, POLRES_GROUP)
    assert "TPS-A2-001" in polres and "Bripka Eko" in polres and "Serda Fajar (belum terdaftar)" in polres
    assert "TPS-A1" not in polres and "TPS-A2" not in a1
    rows = list(await session.scalars(select(Outbox)))
    assert {row.priority for row in rows} == {Priority.group_alert}
    assert await sweep_missed_checkins(session, now=NOW + timedelta(minutes=1), settings=SETTINGS) == 0


async def test_late_check_in_brings_one_update_after_a_pause(session: AsyncSession) -> None:
    roster = await _world(session)
    await sweep_missed_checkins(session, now=NOW, settings=SETTINGS)
    await _check_in(session, roster, "budi", "TPS-A1-001", NOW + timedelta(minutes=1))
    # Changed, but updates wait UPDATE_EVERY so a trickle of arrivals becomes one message.
    assert await sweep_missed_checkins(session, now=NOW + timedelta(minutes=2), settings=SETTINGS) == 0
    assert await sweep_missed_checkins(session, now=NOW + UPDATE_EVERY, settings=SETTINGS) == 1
    first, update_text = await _texts(session, A1_GROUP)
    assert "<b>2</b> masih belum hadir (sebelumnya 3)" in update_text
    assert "Sudah hadir sejak pesan terakhir: Bripda Budi (TPS-A1-001)" in update_text
    assert "• Bripda Budi" not in update_text and "Linmas Dedi" in update_text and "Briptu Citra" in update_text
    assert "⚠️ belum ada satu pun" not in update_text  # budi covers both his TPS
    assert len(await _texts(session, POLRES_GROUP)) == 1  # nothing changed there
    alert = await session.scalar(select(CheckinAlert).where(CheckinAlert.unit_id == roster.units["POLSEK-A1"].id))
    assert alert and (alert.revision, alert.missing) == (1, 2)
    assert await sweep_missed_checkins(session, now=NOW + 2 * UPDATE_EVERY, settings=SETTINGS) == 0
    await session.execute(
        update(Personnel).where(Personnel.id == roster.person("dedi").id).values(telegram_user_id=699)
    )
    await session.commit()  # dedi registers: he moves from the apart list into his TPS's, a second update
    assert await sweep_missed_checkins(session, now=NOW + 3 * UPDATE_EVERY, settings=SETTINGS) == 1
    third = (await _texts(session, A1_GROUP))[2]
    assert "<b>2</b> masih belum hadir (sebelumnya 2)" in third and "   • Linmas Dedi\n" in third + "\n"


async def test_everyone_present_is_said_at_once(session: AsyncSession) -> None:
    roster = await _world(session)
    await sweep_missed_checkins(session, now=NOW, settings=SETTINGS)
    await _check_in(session, roster, "eko", "TPS-A2-001", NOW + timedelta(minutes=1))
    await _check_in(session, roster, "fajar", "TPS-A2-001", NOW + timedelta(minutes=1))
    assert await sweep_missed_checkins(session, now=NOW + timedelta(minutes=2), settings=SETTINGS) == 1
    [_, done] = await _texts(session, POLRES_GROUP)
    assert "semua personel sudah hadir (sebelumnya 2 belum hadir)" in done
    assert "Bripka Eko (TPS-A2-001), Serda Fajar (TPS-A2-001)" in done


async def test_nothing_before_grace_or_after_the_shift(session: AsyncSession) -> None:
    roster = await _world(session)
    pagi = roster.shifts["PAGI"]
    assert await sweep_missed_checkins(session, now=pagi.starts_at + timedelta(minutes=14), settings=SETTINGS) == 0
    assert await sweep_missed_checkins(session, now=pagi.ends_at + timedelta(minutes=1), settings=SETTINGS) == 0
    assert await session.scalar(select(Outbox.id)) is None


async def test_an_unreachable_group_is_passed_over_for_the_next_one_up(session: AsyncSession) -> None:
    roster = await _world(session)
    await session.execute(update(CommandGroup).where(CommandGroup.chat_id == A1_GROUP).values(reachable=False))
    await session.commit()
    await sweep_missed_checkins(session, now=NOW, settings=SETTINGS)
    assert await _texts(session, A1_GROUP) == []
    [polres] = await _texts(session, POLRES_GROUP)
    assert all(code in polres for code in roster.tps)
    assert "<b>5</b> personel di 3 TPS" in polres


async def test_a_long_list_is_paged_each_page_under_the_limit(session: AsyncSession) -> None:
    roster = await _world(session)
    people = [
        Personnel(
            nrp=f"L{n:06d}",
            name=f"Anggota Linmas Dengan Nama Panjang {n:03d}",
            rank="Linmas",
            force="linmas",
            unit_id=roster.units["POLSEK-A1"].id,
        )
        for n in range(300)
    ]
    session.add_all(people)
    await session.flush()
    session.add_all(
        Assignment(personnel_id=p.id, tps_id=roster.tps["TPS-A1-001"].id, shift_id=roster.shifts["PAGI"].id)
        for p in people
    )
    await session.commit()
    await sweep_missed_checkins(session, now=NOW, settings=SETTINGS)
    pages = await _texts(session, A1_GROUP)
    assert len(pages) > 1 and all(len(page) <= MAX_TEXT for page in pages)
    assert pages[-1].endswith(f"({len(pages)}/{len(pages)})")
    joined = "\n".join(pages)
    assert all(joined.count(f"Nama Panjang {n:03d} ") == 1 for n in range(300))
    audit = list(await session.scalars(select(AuditLog).where(AuditLog.action == "checkin.missed_alert")))
    assert len(audit) == 2
