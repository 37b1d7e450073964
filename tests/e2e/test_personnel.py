"""A person at a TPS, end to end: register, see the schedule, check in, report.

Every test says who received what, and how many times.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.render import local_time
from bot.services.registration import issue_codes
from models import AuditLog, Checkin, Personnel, Sitrep
from tests.e2e.conftest import World, no_more_messages
from tests.factories import TPS_PLACES


async def _code(world: World, key: str, *, ttl: timedelta = timedelta(hours=72)) -> str:
    async with world.sessions() as session:
        [invitation] = await issue_codes(session, nrps=[world.roster.person(key).nrp], now=world.clock(), ttl=ttl)
        await session.commit()
    assert invitation.code
    return invitation.code


def _clock(world: World, moment: datetime) -> str:
    """`06:55 WIB`: a time as the bot says it to a person."""
    return local_time(moment, world.settings.operation.zone, "id", with_date=False)


async def _checkins(world: World) -> list[Checkin]:
    async with world.sessions() as session:
        return list((await session.scalars(select(Checkin).order_by(Checkin.id))).all())


async def _linked_account(world: World, key: str) -> int | None:
    async with world.sessions() as session:
        return await session.scalar(
            select(Personnel.telegram_user_id).where(Personnel.id == world.roster.person(key).id)
        )


# -- registration -------------------------------------------------------------------------------


async def test_deep_link_registers_and_sets_the_personal_menu(world: World) -> None:
    budi = world.user("budi")
    code = await _code(world, "budi")
    reply = await world.reply(budi, f"/start {code}")
    assert "Terdaftar sebagai <b>Bripda Budi</b>" in (reply.content or "") or "Bripda Budi" in (reply.text or "")
    assert await _linked_account(world, "budi") == budi.id
    menu = [entry["command"] for entry in world.emu.effective_commands(budi)]
    assert "hadir" in menu and "status" not in menu
    await no_more_messages(world, budi, 1)


async def test_daftar_with_nrp_and_code(world: World) -> None:
    kapolsek = world.user("kapolsek_a1")
    code = await _code(world, "kapolsek_a1")
    reply = await world.reply(kapolsek, f"/daftar {world.roster.person('kapolsek_a1').nrp} {code}")
    assert "Terdaftar" in (reply.text or "")
    menu = [entry["command"] for entry in world.emu.effective_commands(kapolsek)]
    assert {"hadir", "status", "insiden", "siaran"} <= set(menu)


async def test_wrong_expired_and_foreign_codes_are_refused_and_change_nothing(world: World) -> None:
    budi = world.user("budi")
    citra_code = await _code(world, "citra")
    nrp = world.roster.person("budi").nrp
    assert "tidak cocok" in ((await world.reply(budi, f"/daftar {nrp} ZZZZZZZZZZ")).text or "")
    assert "tidak cocok" in ((await world.reply(budi, f"/daftar {nrp} {citra_code}")).text or "")
    expired = await _code(world, "budi", ttl=timedelta(minutes=1))
    world.clock.advance(timedelta(minutes=2))
    assert "kedaluwarsa" in ((await world.reply(budi, f"/daftar {nrp} {expired}")).text or "")
    assert "Format" in ((await world.reply(budi, "/daftar")).text or "")
    assert await _linked_account(world, "budi") is None
    assert await _linked_account(world, "citra") is None
    await no_more_messages(world, budi, 4)


async def test_brute_force_is_throttled_even_for_the_right_code(world: World) -> None:
    budi = world.user("budi")
    nrp = world.roster.person("budi").nrp
    code = await _code(world, "budi")
    for attempt in range(5):
        await world.reply(budi, f"/daftar {nrp} GUESS{attempt:05d}")
    reply = await world.reply(budi, f"/daftar {nrp} {code}")
    assert "Terlalu banyak percobaan" in (reply.text or "")
    assert await _linked_account(world, "budi") is None


async def test_an_account_links_to_one_person_only(world: World) -> None:
    budi = await world.registered("budi")
    citra_code = await _code(world, "citra")
    reply = await world.reply(budi, f"/daftar {world.roster.person('citra').nrp} {citra_code}")
    assert "sudah terhubung ke NRP lain" in (reply.text or "")
    assert await _linked_account(world, "citra") is None


# -- language and schedule ---------------------------------------------------------------------


async def test_bahasa_switches_texts_and_menu(world: World) -> None:
    budi = await world.registered("budi")
    assert "English" in ((await world.reply(budi, "/bahasa en")).text or "")
    schedule = (await world.reply(budi, "/schedule")).text or ""
    assert "Your assignments" in schedule
    menu = [entry["command"] for entry in world.emu.effective_commands(budi)]
    assert "checkin" in menu and "hadir" not in menu
    assert "Format" in ((await world.reply(budi, "/language xx")).text or "") or "Usage" in (
        world.emu.last(budi).text or ""
    )


async def test_jadwal_lists_current_shift_first_with_water_access_note(world: World) -> None:
    budi = await world.registered("budi")
    text = (await world.reply(budi, "/jadwal")).text or ""
    assert text.index("SEKARANG") < text.index("TPS-A1-001") < text.index("Penghitungan")
    assert "lewat air" in text and "TPS-A1-002" in text
    assert text.count("TPS-A1-001") == 2, "one post per shift"


# -- check-in ----------------------------------------------------------------------------------


async def test_hadir_asks_for_location_and_records_distance(world: World) -> None:
    eko = await world.registered("eko")
    ask = await world.reply(eko, "/hadir")
    keyboard = ask.reply_markup or {}
    assert keyboard["keyboard"][0][0]["request_location"] is True
    lat, lon = TPS_PLACES["TPS-A2-001"]
    await world.send_location_now(eko, lat + 0.0005, lon)
    reply = await eko.next_message()
    assert (
        "Hadir tercatat" in (reply.text or "") and "TPS-A2-001" in (reply.text or "") and "56 m" in (reply.text or "")
    )
    assert "Tercatat terlambat" in (reply.text or ""), "the factory shift started an hour ago"
    await world.send_location_now(eko, lat, lon + 0.02)
    again = await eko.next_message()
    assert "sudah tercatat hadir" in (again.text or "")
    async with world.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Checkin)) == 1
    await no_more_messages(world, eko, 3)


async def test_far_forwarded_and_too_old_locations(world: World) -> None:
    fajar = await world.registered("fajar")
    lat, lon = TPS_PLACES["TPS-A2-001"]
    await fajar.send_location(lat, lon, forwarded=True, date=world.clock())
    assert "diteruskan" in ((await fajar.next_message()).text or "")
    await fajar.send_location(lat, lon, date=world.clock() - timedelta(hours=25))
    assert "lebih dari 24 jam" in ((await fajar.next_message()).text or "")
    opens = world.roster.shifts["PAGI"].starts_at - timedelta(hours=2)
    await fajar.send_location(lat, lon, date=opens - timedelta(minutes=10))  # read now, with check-in open
    early = (await fajar.next_message()).text or ""
    assert f"dikirim {_clock(world, opens - timedelta(minutes=10))}, sebelum hadir untuk Pemungutan dibuka" in early
    assert "Kirim lokasi Anda saat ini" in early
    await world.send_location_now(fajar, lat + 0.01, lon)
    far = (await fajar.next_message()).text or ""
    assert "lebih dari 300 m" in far and "1.1 km" in far
    async with world.sessions() as session:
        rows = (await session.scalars(select(Checkin))).all()
    assert [(row.far, round(row.distance_m)) for row in rows] == [(True, 1112)]


async def test_a_location_that_waited_out_an_outage_counts_at_the_time_it_was_sent(world: World) -> None:
    """Shared 5 minutes before the shift while the bot was down, read 10 minutes later: on time, not too old."""
    budi = await world.registered("budi")
    start = world.roster.shifts["PAGI"].starts_at
    sent = start - timedelta(minutes=5)
    world.clock.current = start + timedelta(minutes=5)
    await budi.send_location(*TPS_PLACES["TPS-A1-001"], date=sent)
    text = (await budi.next_message()).text or ""
    assert f"Hadir tercatat {_clock(world, sent)} di TPS-A1-001" in text
    assert "terlambat sampai (10 menit setelah dikirim), tetapi tetap dihitung pada waktu Anda mengirimnya" in text
    assert "Tercatat terlambat" not in text and "❌" not in text
    [row] = await _checkins(world)
    assert (row.checked_in_at, row.late) == (sent, False)
    await no_more_messages(world, budi, 1)


async def test_lateness_follows_the_time_sent_not_the_time_read(world: World) -> None:
    """Two locations read at the same moment, 40 minutes into the shift: the one sent in the grace is on time."""
    budi, eko = await world.registered("budi"), await world.registered("eko")
    start = world.roster.shifts["PAGI"].starts_at
    world.clock.current = start + timedelta(minutes=40)
    await budi.send_location(*TPS_PLACES["TPS-A1-001"], date=start + timedelta(minutes=10))
    await eko.send_location(*TPS_PLACES["TPS-A2-001"], date=start + timedelta(minutes=20))
    on_time, late = (await budi.next_message()).text or "", (await eko.next_message()).text or ""
    assert "Tercatat terlambat" not in on_time and "terlambat sampai (30 menit" in on_time
    assert "Tercatat terlambat" in late and "terlambat sampai (20 menit" in late
    rows = {row.personnel_id: (row.checked_in_at, row.late) for row in await _checkins(world)}
    assert rows == {
        world.roster.person("budi").id: (start + timedelta(minutes=10), False),
        world.roster.person("eko").id: (start + timedelta(minutes=20), True),
    }


async def test_a_location_sent_after_the_shift_ended_is_refused(world: World) -> None:
    eko = await world.registered("eko")
    end = world.roster.shifts["SORE"].ends_at
    world.clock.current = end + timedelta(minutes=3)
    await eko.send_location(*TPS_PLACES["TPS-A2-001"], date=end + timedelta(minutes=1))
    text = (await eko.next_message()).text or ""
    assert f"dikirim {_clock(world, end + timedelta(minutes=1))}, setelah shift Penghitungan berakhir" in text
    assert f"({_clock(world, end)}); tidak dihitung hadir" in text
    assert await _checkins(world) == []


async def test_a_duplicated_update_is_answered_once(world: World) -> None:
    budi = await world.registered("budi")
    await budi.send("/jadwal")
    world.emu.duplicate_last_update(same_update_id=True)
    await budi.next_message()
    await no_more_messages(world, budi, 1, settle=0.5)


async def test_selesai_closes_the_shift(world: World) -> None:
    budi = await world.registered("budi")
    assert "belum tercatat hadir" in ((await world.reply(budi, "/selesai")).text or "")
    await world.send_location_now(budi, *TPS_PLACES["TPS-A1-001"])
    await budi.next_message()
    assert "Selesai tugas tercatat" in ((await world.reply(budi, "/selesai")).text or "")
    assert "sudah selesai" in ((await world.reply(budi, "/checkout")).text or "")


async def test_selesai_read_late_counts_at_the_time_it_was_sent(world: World) -> None:
    budi = await world.registered("budi")
    await world.send_location_now(budi, *TPS_PLACES["TPS-A1-001"])
    await budi.next_message()
    sent = world.clock() + timedelta(minutes=30)
    world.clock.current = sent + timedelta(minutes=8)
    await budi.send("/selesai", date=sent)
    text = (await budi.next_message()).text or ""
    assert f"Selesai tugas tercatat {_clock(world, sent)} (Pemungutan)" in text and "terlambat sampai (8 menit" in text
    [row] = await _checkins(world)
    assert row.checked_out_at == sent


# -- situation reports ---------------------------------------------------------------------------


async def test_lapor_category_photo_and_verification(world: World) -> None:
    budi = await world.registered("budi")
    ask = await world.reply(budi, "/lapor Pemilih antre panjang & tertib <aman>")
    assert ask.button_texts == ["✅ Aman", "📦 Logistik", "⚠️ Gangguan", "🌊 Bencana", "🚧 Akses", "📝 Lainnya"]
    first = await budi.press(ask, "⚠️ Gangguan")
    second = await budi.press(ask, "✅ Aman")
    answers = [(await first.answer()).text or "", (await second.answer()).text or ""]
    assert sorted(answers) == ["", "Laporan ini sudah tercatat."], "pressed twice: filed once, the other told so"
    winner = "gangguan" if answers[0] == "" else "aman"
    await world.eventually(lambda: len(ask.versions) == 2)
    assert "Laporan #1 tercatat" in (ask.text or "")
    assert ask.buttons == [], "the keyboard is gone once the report is filed"
    await budi.send_photo(caption="antrean")
    assert "Terlampir pada laporan" in ((await budi.next_message()).text or "")

    kapolsek = await world.registered("kapolsek_a1")
    review = await world.reply(kapolsek, "/lapor")
    assert "Pemilih antre panjang &amp; tertib &lt;aman&gt;" in (
        review.content or review.text or ""
    ) or "tertib <aman>" in (review.text or "")
    [button] = review.button_texts
    answer = await (await kapolsek.press(review, button)).answer()
    assert answer.text and "diverifikasi" in answer.text

    sibling = await world.registered("kapolsek_a2")
    assert "Tidak ada laporan" in ((await world.reply(sibling, "/lapor")).text or "")
    async with world.sessions() as session:
        row = await session.scalar(select(Sitrep))
        actions = (await session.scalars(select(AuditLog.action).where(AuditLog.entity == "sitrep"))).all()
    assert row and row.category == winner and row.photo_file_id and row.verified_by_id
    assert actions == ["sitrep.drafted", "sitrep.filed", "sitrep.attached", "sitrep.verified"]


async def test_a_member_cannot_review_reports(world: World) -> None:
    budi = await world.registered("budi")
    assert "Format" in ((await world.reply(budi, "/lapor")).text or "")
