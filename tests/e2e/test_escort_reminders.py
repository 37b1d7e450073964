"""Escort reminders end to end: the reminder pass, the outbox and the dispatcher to the member's chat.

tests/factories.py `build_escorts`, planned an hour ahead: KWL-1 (Budi ketua, Citra) leaves in an
hour, KWL-3 (Citra) in two. The roster's shifts have no reminder due within these two hours (the
morning one began an hour ago, the evening one starts in five), so what the members get is the
escorts'.
"""

from __future__ import annotations

from datetime import timedelta

from bot.emulator import SimUser
from bot.ops.scheduler import REMINDERS, run_sweep
from bot.render import local_time
from tests.e2e.conftest import World, no_more_messages
from tests.factories import build_escorts


async def _pass(world: World, minutes: float = 0) -> None:
    world.clock.advance(timedelta(minutes=minutes))
    await run_sweep(REMINDERS, world.runtime)
    await world.outbox_drained()


async def _has(world: World, user: SimUser, count: int) -> list[str]:
    await world.eventually(lambda: world.emu.count(user) >= count)
    await no_more_messages(world, user, count)
    return world.texts(user)


async def test_each_member_is_reminded_once_at_each_offset_and_not_after_leaving(world: World) -> None:
    start = world.clock()
    async with world.sessions() as session:
        escorts = await build_escorts(session, world.roster, now=start + timedelta(hours=1))
    budi, citra = await world.registered("budi"), await world.registered("citra")
    depart = local_time(escorts["KWL-1"].depart_at, world.settings.operation.zone, "id")
    due = local_time(escorts["KWL-1"].arrive_by, world.settings.operation.zone, "id")

    await _pass(world)  # the 60-minute reminders of KWL-1 are due now
    [first] = await _has(world, budi, 1)
    assert "Pengingat pengawalan KWL-1" in first and "12 kotak suara · ketua" in first
    assert "PPS Desa Uji → PPK Kec. Uji" in first and "lewat Dermaga Uji" in first
    assert f"berangkat {depart} · tiba paling lambat {due}" in first
    assert "Bagikan Lokasi Langsung" in first
    assert ["KWL-1" in text for text in await _has(world, citra, 1)] == [True]

    await _pass(world, 1)
    await _pass(world, 29)
    await no_more_messages(world, budi, 1)
    await citra.send("/kawal")
    await world.eventually(lambda: world.emu.count(citra) == 2)
    menu = world.emu.sent_to(citra)[-1]
    press = await citra.press(menu, "🚚 Berangkat KWL-3")
    assert "KWL-3 berangkat" in ((await press.answer()).text or "")
    await _pass(world)

    await _pass(world, 30)  # KWL-1 leaves now; KWL-3 would have had its 60-minute one, but it left
    budi_texts = await _has(world, budi, 2)
    assert "Pengingat pengawalan KWL-1" in budi_texts[1] and f"berangkat {depart}" in budi_texts[1]
    citra_texts = await _has(world, citra, 3)
    assert "Pengingat pengawalan KWL-1" in citra_texts[2] and all(
        "Pengingat pengawalan KWL-3" not in t for t in citra_texts
    )
    await _pass(world, 60)
    await no_more_messages(world, budi, 2)
    await no_more_messages(world, citra, 3)


async def test_a_reminder_still_waiting_is_cancelled_by_the_departure_itself(world: World) -> None:
    """No pass runs between the press and the reminder's time: the departure cancels it on its own."""
    start = world.clock()
    async with world.sessions() as session:
        await build_escorts(session, world.roster, now=start + timedelta(hours=1))
    budi = await world.registered("budi")
    await _pass(world)  # KWL-1's 60-minute reminder goes now; the 0-minute one waits for the departure
    await _has(world, budi, 1)

    world.clock.advance(timedelta(minutes=50))
    await budi.send("/kawal")
    await world.eventually(lambda: world.emu.count(budi) == 2)
    press = await budi.press(world.emu.sent_to(budi)[-1], "🚚 Berangkat KWL-1")
    assert "KWL-1 berangkat" in ((await press.answer()).text or "")

    world.clock.advance(timedelta(minutes=15))  # past the departure time, and no reminder pass since the press
    await world.outbox_drained()
    await no_more_messages(world, budi, 2)
    assert all("Pengingat pengawalan" not in text for text in world.texts(budi)[1:])
