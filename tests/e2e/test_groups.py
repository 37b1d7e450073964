"""Command groups end to end: `/daftargrup` in a group decides where a unit's contingencies go."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from bot.emulator import SimGroup, SimUser
from models import CommandGroup
from tests.e2e.conftest import World, no_more_messages


async def _say(world: World, user: SimUser, group: SimGroup, text: str) -> str:
    await user.send_in(group, text)
    return (await group.next_message()).text or ""


async def _alert_lands_in(world: World, reporter: SimUser, group: SimGroup) -> None:
    """`/darurat` from the reporter, severity chosen: the group receives one new alert."""
    before = world.emu.count(group)
    await reporter.send("/darurat Pemilih diintimidasi")
    question = await reporter.next_message()
    await (await reporter.press(question, "🟠 Sedang")).answer()
    await reporter.next_message()  # the request for a location
    await world.outbox_drained()
    assert world.emu.count(group) == before + 1, world.texts(group)
    assert "KONTINJENSI" in world.texts(group)[-1]
    group.skip_messages()


async def _bound_chat(world: World, unit_code: str) -> int | None:
    async with world.sessions() as session:
        unit_id = world.roster.units[unit_code].id
        return await session.scalar(select(CommandGroup.chat_id).where(CommandGroup.unit_id == unit_id))


async def test_a_commander_registers_replaces_and_removes_a_group(world: World) -> None:
    kapolsek = await world.registered("kapolsek_a1")
    budi = await world.registered("budi")
    polres = await world.command_group("POLRES-A", members=[await world.registered("kapolres")])
    first = world.emu.group("Posko Satu", members=[kapolsek, budi])
    assert "hanya untuk komandan" in await _say(world, budi, first, "/daftargrup POLSEK-A1")
    assert "tidak dikenal" in await _say(world, kapolsek, first, "/daftargrup POLSEK-Z9")
    assert "sekarang grup komando Polsek A1" in await _say(world, kapolsek, first, "/daftargrup polsek-a1")
    await _alert_lands_in(world, budi, first)
    await no_more_messages(world, polres, 0)

    second = world.emu.group("Posko Dua", members=[kapolsek])
    reply = await _say(world, kapolsek, second, "/registergroup POLSEK-A1")
    assert "Posko Satu" in reply and "tidak lagi menerima" in reply
    await _alert_lands_in(world, budi, second)
    await no_more_messages(world, first, 4)  # 3 replies and 1 alert, nothing since

    assert "adalah grup komando Polsek A1" in await _say(world, kapolsek, second, "/daftargrup")
    assert "bukan lagi grup komando Polsek A1" in await _say(world, kapolsek, second, "/daftargrup hapus")
    await _alert_lands_in(world, budi, polres)
    await kapolsek.send("/daftargrup POLSEK-A1")
    assert "di dalam grup" in ((await kapolsek.next_message()).text or "")


async def test_a_sibling_commander_can_neither_take_nor_remove_a_group(world: World) -> None:
    a1 = await world.command_group("POLSEK-A1", members=[await world.registered("kapolsek_a1")])
    kapolsek_a2 = await world.registered("kapolsek_a2")
    a1.add(kapolsek_a2)
    assert "tidak berwenang atas satuan POLSEK-A1" in await _say(world, kapolsek_a2, a1, "/daftargrup POLSEK-A2")
    assert "tidak berwenang atas satuan POLSEK-A1" in await _say(world, kapolsek_a2, a1, "/daftargrup hapus")
    assert await _bound_chat(world, "POLSEK-A1") == a1.id
    assert await _bound_chat(world, "POLSEK-A2") is None


async def test_an_unregistered_group_gets_no_data(world: World) -> None:
    kapolres = await world.registered("kapolres")
    await world.command_group("POLSEK-A1", members=[kapolres])
    lobby = world.emu.group("Obrolan", members=[kapolres])
    reply = await _say(world, kapolres, lobby, "/insiden")
    assert "belum terdaftar sebagai grup komando" in reply and "#" not in reply


async def test_a_group_that_becomes_a_supergroup_keeps_its_registration(world: World) -> None:
    kapolsek = await world.registered("kapolsek_a1")
    budi = await world.registered("budi")
    old = world.emu.group("Posko A1", members=[kapolsek], supergroup=False)
    assert "sekarang grup komando" in await _say(world, kapolsek, old, "/daftargrup POLSEK-A1")
    new = world.emu.group("Posko A1", members=[kapolsek])
    old_chat = world.emu.state.chats[old.id]
    old_chat.migrated_to = new.id
    world.emu.enqueue(
        {
            "message": {
                "message_id": world.emu.state.next_message_id(old_chat),
                "from": kapolsek.user.to_json(),
                "chat": old_chat.to_json(),
                "date": int(time.time()),
                "migrate_to_chat_id": new.id,
            }
        }
    )
    for _ in range(100):
        if await _bound_chat(world, "POLSEK-A1") == new.id:
            break
        await asyncio.sleep(0.05)
    assert await _bound_chat(world, "POLSEK-A1") == new.id
    await _alert_lands_in(world, budi, new)
    await no_more_messages(world, old, 1)
