"""A person at a TPS, end to end: register, see the schedule, check in, report.

Every test says who received what, and how many times.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

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


async def _linked_account(world: World, key: str) -> int | None:
    async with world.sessions() as session:
        return await session.scalar(select(Personnel.telegram_user_id).where(Personnel.id == world.roster.person(key).id))


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
    assert "Hadir tercatat" in (reply.text or "") and "TPS-A2-001" in (reply.text or "") and "56 m" in (reply.text or "")
    assert "Tercatat terlambat" in (reply.text or ""), "the factory shift started an hour ago"
    await world.send_location_now(eko, lat, lon + 0.02)
    again = await eko.next_message()
    assert "sudah tercatat hadir" in (again.text or "")
    async with world.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Checkin)) == 1
    await no_more_messages(world, eko, 3)


async def test_far_forwarded_and_stale_locations(world: World) -> None:
    fajar = await world.registered("fajar")
    lat, lon = TPS_PLACES["TPS-A2-001"]
    await fajar.send_location(lat, lon, forwarded=True, date=world.clock())
    assert "diteruskan" in ((await fajar.next_message()).text or "")
    await fajar.send_location(lat, lon, date=world.clock() - timedelta(hours=1))
    assert "sudah lama" in ((await fajar.next_message()).text or "")
    await world.send_location_now(fajar, lat + 0.01, lon)
    far = (await fajar.next_message()).text or ""
    assert "lebih dari 300 m" in far and "1.1 km" in far
    async with world.sessions() as session:
        rows = (await session.scalars(select(Checkin))).all()
    assert [(row.far, round(row.distance_m)) for row in rows] == [(True, 1112)]


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
    assert "Pemilih antre panjang &amp; tertib &lt;aman&gt;" in (review.content or review.text or "") or "tertib <aman>" in (review.text or "")
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
