"""A burst of people answered at Telegram's rate: late by a second, never lost, never over the limit."""

from __future__ import annotations

import time

import pytest

from bot.emulator import Limits
from tests.e2e.conftest import World


@pytest.fixture
def emulator_limits() -> Limits:
    return Limits()


async def test_a_burst_of_ninety_greetings_stays_under_the_global_limit(world: World) -> None:
    people = [world.emu.user(f"Tamu{i}") for i in range(90)]
    started = time.monotonic()
    for person in people:
        await person.send("/start")
    await world.eventually(lambda: all(world.emu.count(p) == 1 for p in people), timeout=20)
    elapsed = time.monotonic() - started
    assert [r for r in world.emu.rejections if r.status == 429] == [], "the bot went past Telegram's limit"
    assert elapsed >= 2.0, "90 messages at 30 a second cannot take less than two seconds"
    assert all("Selamat datang" in (world.emu.last(p).text or "") for p in people)
