"""Escorts in chat, end to end: `/kawal`, the depart and arrive buttons, positions, `/terima`.

The escorts are tests/factories.py `build_escorts`: KWL-1 PPS-A1 -> DERMAGA-A1 -> PPK-A2 (Budi ketua,
Citra), KWL-2 TPS-A1-001 -> PPS-A1 (Dedi), KWL-3 PPS-A1 -> TPS-A2-001 an hour later (Citra). All on
the latitude -3.0 but KWL-2's start; 0.01 degree of longitude there is 1.11 km.

The clock is put ten minutes behind the wall before the escorts are planned: a live location's move
is stamped by the emulator with the wall clock, and a position counts at the time it was taken capped
at the bot's now, so each move counts at the bot's clock, which the test moves on between moves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from bot.emulator import SentMessage, SimUser
from bot.render import MAX_TEXT, local_time
from models import AuditLog, Checkin, Escort, EscortMember, EscortTrackPoint, Outbox, Personnel
from tests.e2e.conftest import World, no_more_messages
from tests.factories import TPS_PLACES, build_escorts

LAT = -3.0
PPS, DERMAGA, PPK = 104.70, 104.75, 104.80


@pytest.fixture
async def escorted(world: World) -> AsyncIterator[World]:
    world.clock.current -= timedelta(minutes=10)
    async with world.sessions() as session:
        await build_escorts(session, world.roster, now=world.clock())
    yield world


def _buttons(message: SentMessage) -> list[str]:
    return [b["text"] for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]


def _at(world: World, moment: Any, lang: str = "id") -> str:
    return local_time(moment, world.settings.operation.zone, lang)


async def _count(world: World, model: Any, *where: Any) -> int:
    async with world.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _escort(world: World, code: str) -> Escort:
    async with world.sessions() as session:
        found = await session.scalar(select(Escort).where(Escort.code == code))
        assert found is not None
        return found


async def _kawal(world: World, user: SimUser, command: str = "/kawal") -> SentMessage:
    return await world.reply(user, command)


async def _press(user: SimUser, message: SentMessage, button: str) -> str:
    press = await user.press(message, button)
    return (await press.answer()).text or ""


async def _users(world: World, *keys: str) -> dict[str, SimUser]:
    return {key: await world.registered(key) for key in keys}


# -- /kawal for a member -----------------------------------------------------------------------------


async def test_a_member_sees_their_escorts_buttons_and_how_to_share_a_live_location(escorted: World) -> None:
    world = escorted
    citra = await world.registered("citra")
    reply = await _kawal(world, citra)
    text = reply.text or ""
    kwl1 = await _escort(world, "KWL-1")
    assert "Pengawalan Anda" in text
    assert text.index("KWL-1") < text.index("KWL-3"), "the one leaving first comes first"
    assert "12 kotak suara" in text and "PPS Desa Uji → PPK Kec. Uji" in text and "lewat Dermaga Uji" in text
    assert f"berangkat {_at(world, kwl1.depart_at)} · tiba paling lambat {_at(world, kwl1.arrive_by)}" in text
    assert "Status: terjadwal" in text and "Bripda Budi (ketua), Briptu Citra" in text
    assert "Bagikan Lokasi Langsung" in text and "hanya dapat mengirim lokasi sekali" in text
    assert _buttons(reply) == ["🚚 Berangkat KWL-1", "🏁 Tiba KWL-1", "🚚 Berangkat KWL-3", "🏁 Tiba KWL-3"]
    assert len(text) <= MAX_TEXT
    await no_more_messages(world, citra, 1)


async def test_in_english_and_for_someone_on_no_escort(escorted: World) -> None:
    world = escorted
    users = await _users(world, "budi", "eko")
    async with world.sessions() as session:
        await session.execute(
            update(Personnel).where(Personnel.id == world.roster.person("budi").id).values(language="en")
        )
        await session.commit()
    english = await _kawal(world, users["budi"], "/escort")
    assert "Your escorts" in (english.text or "") and "Share Live Location" in (english.text or "")
    assert "only send a one-off location" in (english.text or "")
    assert _buttons(english) == ["🚚 Depart KWL-1", "🏁 Arrive KWL-1"]
    assert "tidak sedang bertugas dalam pengawalan" in ((await _kawal(world, users["eko"])).text or "")
    stranger = world.user("fajar")
    assert "belum terdaftar" in ((await _kawal(world, stranger)).text or "")
    assert "belum terdaftar" in ((await world.reply(stranger, "/terima KWL-1")).text or "")


async def test_depart_pressed_twice_and_by_two_members_departs_once(escorted: World) -> None:
    world = escorted
    users = await _users(world, "budi", "citra")
    first, second = await _kawal(world, users["budi"]), await _kawal(world, users["budi"])
    said = await _press(users["budi"], first, "🚚 Berangkat KWL-1")
    assert f"KWL-1 berangkat {_at(world, world.clock())}" in said
    await world.eventually(lambda: "🚚 Berangkat KWL-1" not in _buttons(world.emu.sent_to(users["budi"])[0]))
    assert "Status: berangkat sejak" in (world.emu.sent_to(users["budi"])[0].text or "")
    assert "sudah berangkat" in await _press(users["budi"], second, "🚚 Berangkat KWL-1")
    citra = await _kawal(world, users["citra"])
    assert "🚚 Berangkat KWL-1" not in _buttons(citra) and "🏁 Tiba KWL-1" in _buttons(citra)
    assert await _count(world, AuditLog, AuditLog.action == "escort.departed") == 1
    assert await _count(world, Outbox) == 0
    await no_more_messages(world, users["budi"], 2)


async def test_a_press_by_someone_no_longer_on_the_escort_is_refused(escorted: World) -> None:
    world = escorted
    budi = await world.registered("budi")
    reply = await _kawal(world, budi)
    async with world.sessions() as session:
        await session.execute(delete(EscortMember).where(EscortMember.personnel_id == world.roster.person("budi").id))
        await session.commit()
    assert "bukan anggota pengawalan" in await _press(budi, reply, "🏁 Tiba KWL-1")
    assert (await _escort(world, "KWL-1")).state == "terjadwal"
    await no_more_messages(world, budi, 1)


async def test_arrive_button_tells_the_member_and_the_lead_once(escorted: World) -> None:
    world = escorted
    users = await _users(world, "budi", "citra")
    menu = await _kawal(world, users["citra"])
    stale = await _kawal(world, users["citra"])
    world.clock.advance(timedelta(minutes=5))
    await _press(users["citra"], menu, "🏁 Tiba KWL-1")
    told = await users["citra"].next_message()
    arrived_at = _at(world, world.clock())
    assert f"KWL-1 tiba di PPK Kec. Uji {arrived_at}" in (told.text or "")
    assert "/terima KWL-1" in (told.text or "")
    await world.outbox_drained()
    lead = await users["budi"].next_message()
    assert "KWL-1" in (lead.text or "") and "dilaporkan oleh Briptu Citra" in (lead.text or "")
    assert "12 kotak suara" in (lead.text or "") and arrived_at in (lead.text or "")
    assert "sudah tiba" in await _press(users["citra"], stale, "🏁 Tiba KWL-1")
    await world.outbox_drained()
    await no_more_messages(world, users["budi"], 1)
    await no_more_messages(world, users["citra"], 3)
    assert await _count(world, AuditLog, AuditLog.action == "escort.arrived") == 1


# -- positions -----------------------------------------------------------------------------------------


async def test_a_live_share_tracks_the_escort_answering_only_what_matters(escorted: World) -> None:
    """Departure, the first position of the share, the via and the arrival are answered; plain moves are not."""
    world = escorted
    users = await _users(world, "budi", "citra")
    await world.send_location_now(users["citra"], LAT, PPS + 0.01)
    assert "berangkat" in ((await users["citra"].next_message()).text or "")
    world.clock.advance(timedelta(minutes=1))
    live = await users["citra"].send_location(LAT, PPS + 0.02, live_period=3600, date=world.clock())
    started = (await users["citra"].next_message()).text or ""
    assert "Lokasi langsung diterima untuk KWL-1" in started and "Sisa 8.9 km ke PPK Kec. Uji" in started
    for lon in (PPS + 0.03, PPS + 0.04):
        world.clock.advance(timedelta(minutes=1))
        await users["citra"].move_live_location(live, LAT, lon)
    world.clock.advance(timedelta(minutes=1))
    await users["citra"].move_live_location(live, LAT, DERMAGA)
    assert "Melewati Dermaga Uji" in ((await users["citra"].next_message()).text or "")
    world.clock.advance(timedelta(minutes=1))
    await users["citra"].move_live_location(live, LAT, PPK - 0.001)
    arrived = (await users["citra"].next_message()).text or ""
    assert "KWL-1 tiba di PPK Kec. Uji" in arrived and "/terima KWL-1" in arrived
    await world.outbox_drained()
    assert "dilaporkan oleh Briptu Citra" in ((await users["budi"].next_message()).text or "")
    await no_more_messages(world, users["citra"], 4)
    await no_more_messages(world, users["budi"], 1)
    assert await _count(world, Checkin) == 0, "an escort's position is not a check-in"
    kwl1 = await _escort(world, "KWL-1")
    assert kwl1.state == "tiba" and await _count(world, EscortTrackPoint, EscortTrackPoint.escort_id == kwl1.id) == 6


async def test_a_location_no_escort_takes_is_a_check_in_as_before(escorted: World) -> None:
    world = escorted
    users = await _users(world, "dedi", "eko")
    lat, lon = TPS_PLACES["TPS-A1-001"]
    await world.reply(users["dedi"], "/hadir")
    await world.send_location_now(users["dedi"], lat, lon)  # KWL-2 starts here: not yet a journey
    assert "Hadir tercatat" in ((await users["dedi"].next_message()).text or "")
    lat, lon = TPS_PLACES["TPS-A2-001"]
    await world.send_location_now(users["eko"], lat, lon)
    assert "Hadir tercatat" in ((await users["eko"].next_message()).text or "")
    live = await users["eko"].send_location(lat, lon, live_period=600, date=world.clock())
    await users["eko"].next_message()
    await users["eko"].move_live_location(live, lat, lon + 0.001)
    await no_more_messages(world, users["eko"], 2)
    assert await _count(world, Checkin) == 2
    assert (await _escort(world, "KWL-2")).state == "terjadwal"


# -- /terima -------------------------------------------------------------------------------------------


async def test_serah_terima_refusals_then_both_sides_confirmed_then_already(escorted: World) -> None:
    world = escorted
    users = await _users(world, "budi", "eko", "kapolsek_a1", "kapolsek_a2")
    assert "Format: /terima KODE" in ((await world.reply(users["eko"], "/terima")).text or "")
    assert "Tidak ada pengawalan dengan kode NOPE" in ((await world.reply(users["eko"], "/terima NOPE")).text or "")
    assert "KWL-3 belum berangkat" in ((await world.reply(users["eko"], "/terima KWL-3")).text or "")
    await world.send_location_now(users["budi"], LAT, PPK)
    assert "KWL-1 tiba di PPK Kec. Uji" in ((await users["budi"].next_message()).text or "")
    assert "Anda anggota pengawalan KWL-1" in ((await world.reply(users["budi"], "/terima KWL-1")).text or "")
    refused = (await world.reply(users["kapolsek_a1"], "/terima KWL-1")).text or ""
    assert "hanya oleh personel satuan tujuan" in refused
    world.clock.advance(timedelta(minutes=3))
    received_at = _at(world, world.clock())
    confirmed = (await world.reply(users["eko"], "/terima kwl-1")).text or ""
    assert f"12 kotak suara diterima oleh Anda dari Bripda Budi {received_at} di PPK Kec. Uji" in confirmed
    await world.outbox_drained()
    lead = (await users["budi"].next_message()).text or ""
    assert f"12 kotak suara diterima oleh Bripka Eko {received_at} di PPK Kec. Uji" in lead
    world.clock.advance(timedelta(minutes=1))
    again = (await world.reply(users["kapolsek_a2"], "/terima KWL-1")).text or ""
    assert f"KWL-1 sudah diterima oleh Bripka Eko {received_at}" in again
    await world.outbox_drained()
    await no_more_messages(world, users["budi"], 3)
    assert (await _escort(world, "KWL-1")).state == "diterima"
    assert await _count(world, AuditLog, AuditLog.action == "escort.received") == 1


# -- /kawal for commanders and groups ------------------------------------------------------------------


async def test_a_commander_reads_the_subtree_underway_first_and_drills_down(escorted: World) -> None:
    world = escorted
    users = await _users(world, "budi", "kapolres")
    await world.send_location_now(users["budi"], LAT, PPS + 0.01)
    await users["budi"].next_message()
    world.clock.advance(timedelta(minutes=3))
    board = await _kawal(world, users["kapolres"])
    text = board.text or ""
    assert "Pengawalan POLRES-A" in text
    assert "Berangkat 1 · terjadwal 2 · tiba 0 · diterima 0 · ⚠️ dengan alert 0" in text
    assert text.index("KWL-1") < text.index("KWL-2") < text.index("KWL-3"), "underway first, then by departure"
    assert "KWL-1 · berangkat · 12 kotak suara" in text
    assert "posisi 3 mnt lalu · sisa 10.0 km" in text
    assert _buttons(board) == ["🔎 KWL-1", "🔎 KWL-2", "🔎 KWL-3", "⬇️ POLSEK-A1", "⬇️ POLSEK-A2", "🔄 Perbarui"]
    await _press(users["kapolres"], board, "⬇️ POLSEK-A2")
    below = (await users["kapolres"].next_message()).text or ""
    assert "Pengawalan POLSEK-A2" in below and "Tidak ada pengawalan di satuan ini" in below
    await _press(users["kapolres"], board, "🔎 KWL-1")
    detail = (await users["kapolres"].next_message()).text or ""
    assert "PPS Desa Uji → Dermaga Uji → PPK Kec. Uji" in detail and "Bripda Budi (ketua), Briptu Citra" in detail
    assert "1 titik jejak" in detail
    await no_more_messages(world, users["kapolres"], 3)


async def test_a_big_subtree_is_paged_under_telegrams_limit(escorted: World) -> None:
    world = escorted
    kapolsek = await world.registered("kapolsek_a1")
    async with world.sessions() as session:
        kwl2 = await session.scalar(select(Escort).where(Escort.code == "KWL-2"))
        assert kwl2 is not None
        for n in range(30):
            session.add(
                Escort(
                    code=f"KWL-X{n:02d}",
                    kind="logistik",
                    cargo=("kotak suara <DPR> " * 11)[:200],
                    unit_id=kwl2.unit_id,
                    from_tps_id=kwl2.from_tps_id,
                    to_place_id=kwl2.to_place_id,
                    depart_at=kwl2.depart_at + timedelta(minutes=n + 1),
                    arrive_by=kwl2.arrive_by + timedelta(hours=2),
                    access="darat",
                )
            )
        await session.commit()
    board = await _kawal(world, kapolsek)
    assert "hal. 1/4" in (board.text or "") and len(board.text or "") <= MAX_TEXT
    assert "kotak suara <DPR>" in (board.text or "")
    assert "KWL-1" in (board.text or "") and "KWL-X09" not in (board.text or "")
    await _press(kapolsek, board, "▶️")
    await world.eventually(lambda: "hal. 2/4" in (world.emu.sent_to(kapolsek)[0].text or ""))
    second = world.emu.sent_to(kapolsek)[0].text or ""
    assert "KWL-X08" in second and "KWL-X17" in second and "KWL-1 · terjadwal" not in second
    assert len(second) <= MAX_TEXT
    await no_more_messages(world, kapolsek, 1)


async def test_in_a_command_group_and_in_an_unregistered_one(escorted: World) -> None:
    world = escorted
    dedi = await world.registered("dedi")
    group = await world.command_group("POLSEK-A1", members=[dedi])
    await dedi.send_in(group, "/kawal", mention_bot=True)
    board = (await group.next_message()).text or ""
    assert "Pengawalan POLSEK-A1" in board and "KWL-1" in board and "KWL-3" in board
    other = world.emu.group("Warung", members=[dedi])
    await dedi.send_in(other, "/kawal", mention_bot=True)
    assert "belum terdaftar sebagai grup komando" in ((await other.next_message()).text or "")
    await no_more_messages(world, group, 1)


async def test_help_lists_the_escort_commands(escorted: World) -> None:
    world = escorted
    budi = await world.registered("budi")
    text = (await world.reply(budi, "/bantuan")).text or ""
    assert "/kawal (/escort)" in text and "/terima (/receive)" in text


# -- alerts a position opens or ends -------------------------------------------------------------------


async def test_off_the_corridor_raises_one_alert_and_back_on_the_route_ends_it(escorted: World) -> None:
    """The episode is raised once in the escort unit's group however long it lasts, and its copy says it ended."""
    world = escorted
    citra, kapolsek = await world.registered("citra"), await world.registered("kapolsek_a1")
    group = await world.command_group("POLSEK-A1", members=[kapolsek])
    await world.send_location_now(citra, LAT, PPS + 0.01)
    await citra.next_message()
    world.clock.advance(timedelta(minutes=1))
    live = await citra.send_location(LAT, PPS + 0.02, live_period=3600, date=world.clock())
    await citra.next_message()

    def alerts() -> list[SentMessage]:
        return [m for m in world.emu.sent_to(group) if "MENYIMPANG" in (m.text or "")]

    for off in (0.05, 0.06):
        world.clock.advance(timedelta(minutes=1))
        await citra.move_live_location(live, LAT - off, PPS + 0.03)
    await world.outbox_drained()
    await world.eventually(lambda: len(alerts()) == 1)
    assert "KWL-1" in (alerts()[0].text or "")
    world.clock.advance(timedelta(minutes=1))
    await citra.move_live_location(live, LAT, PPS + 0.04)
    await world.outbox_drained()
    await world.eventually(lambda: "kembali ke rute" in (alerts()[0].text or ""))
    assert "Berakhir sendiri" in (alerts()[0].text or "") and len(alerts()) == 1
    await no_more_messages(world, citra, 2)


async def test_status_has_the_escort_line_and_a_button_to_the_board(escorted: World) -> None:
    world = escorted
    users = await _users(world, "budi", "kapolsek_a1", "kapolsek_a2")
    await world.send_location_now(users["budi"], LAT, PPS + 0.01)
    await users["budi"].next_message()
    status = await world.reply(users["kapolsek_a1"], "/status")
    line = "🚚 Pengawalan 3: berangkat 1 · terjadwal 2 · tiba 0 · diterima 0 · ⚠️ dengan alert 0"
    assert line in (status.text or "")
    await _press(users["kapolsek_a1"], status, "🚚 Pengawalan (3)")
    board = (await users["kapolsek_a1"].next_message()).text or ""
    assert "Pengawalan POLSEK-A1" in board and board.index("KWL-1") < board.index("KWL-2")
    other = (await world.reply(users["kapolsek_a2"], "/status")).text or ""
    assert "Pengawalan" not in other, "POLSEK-A2 has no escort of its own"


async def test_a_commander_who_rides_an_escort_gets_their_own_then_the_board(escorted: World) -> None:
    world = escorted
    kapolsek = await world.registered("kapolsek_a1")
    kwl2 = await _escort(world, "KWL-2")
    async with world.sessions() as session:
        session.add(EscortMember(escort_id=kwl2.id, personnel_id=world.roster.person("kapolsek_a1").id, role="anggota"))
        await session.commit()
    own = await _kawal(world, kapolsek)
    assert "Pengawalan Anda" in (own.text or "") and _buttons(own) == ["🚚 Berangkat KWL-2", "🏁 Tiba KWL-2"]
    board = await kapolsek.next_message()
    assert "Pengawalan POLSEK-A1" in (board.text or "") and "KWL-3" in (board.text or "")
    named = (await world.reply(kapolsek, "/kawal POLSEK-A2")).text or ""
    assert "POLSEK-A2 di luar satuan Anda" in named
    await no_more_messages(world, kapolsek, 3)
