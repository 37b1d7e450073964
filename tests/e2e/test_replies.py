"""A burst of people answered within Telegram's flood control: late by a second, never lost."""

from __future__ import annotations

import time

import pytest

from bot.emulator import Limits
from tests.e2e.conftest import World, no_more_messages


@pytest.fixture
def emulator_limits() -> Limits:
    return Limits()


async def test_a_burst_of_ninety_greetings_is_answered_once_each_through_flood_control(world: World) -> None:
    people = [world.emu.user(f"Tamu{i}") for i in range(90)]
    started = time.monotonic()
    for person in people:
        await person.send("/start")
    await world.eventually(lambda: all(world.emu.count(p) >= 1 for p in people), timeout=20)
    elapsed = time.monotonic() - started
    await no_more_messages(world, people[0], 1)
    assert [world.emu.count(p) for p in people] == [1] * 90, "every greeting once"
    assert elapsed >= 2.0, "90 messages at 30 a second cannot take less than two seconds"
    rejected = [r for r in world.emu.rejections if r.status == 429]
    assert 0 < len(rejected) < 90, "flood control was met and obeyed, not hammered"
    assert all("Selamat datang" in (world.emu.last(p).text or "") for p in people)


async def test_a_contingency_alert_is_not_starved_by_a_burst_of_replies(world: World) -> None:
    """Replies go first but must leave room: the alert still lands within seconds."""
    group = await world.command_group("POLSEK-A1")
    budi = await world.registered("budi")
    await budi.send("/darurat Massa menghadang kotak suara")
    question = await budi.next_message()
    crowd = [world.emu.user(f"Tamu{i}") for i in range(120)]
    for person in crowd:
        await person.send("/start")
    started = time.monotonic()
    await (await budi.press(question, "🔴 Tinggi")).answer(timeout=10)
    await world.eventually(lambda: any("KONTINJENSI" in (m.text or "") for m in world.emu.sent_to(group)), timeout=10)
    assert time.monotonic() - started < 6.0
    await world.eventually(lambda: all(world.emu.count(p) >= 1 for p in crowd), timeout=30)
