"""Live locations in the emulator, through a real python-telegram-bot ``Bot``: moved, not modified, stopped."""

from __future__ import annotations

import pytest
from telegram import Bot
from telegram.error import BadRequest

from bot.emulator import Emulator


@pytest.mark.asyncio
async def test_a_live_location_moves_until_it_is_stopped(bot: Bot, emu: Emulator) -> None:
    group = emu.group("Posko")
    pin = await bot.send_location(group.id, latitude=-3.0, longitude=104.7, live_period=600)
    moved = await bot.edit_message_live_location(group.id, pin.message_id, latitude=-3.0, longitude=104.71)
    assert not isinstance(moved, bool) and moved.location is not None and moved.location.longitude == 104.71
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_live_location(group.id, pin.message_id, latitude=-3.0, longitude=104.71)
    await bot.stop_message_live_location(group.id, pin.message_id)
    with pytest.raises(BadRequest, match="can't be edited"):
        await bot.edit_message_live_location(group.id, pin.message_id, latitude=-3.0, longitude=104.72)
    [sent] = emu.sent_to(group)
    assert sent.location == {"latitude": -3.0, "longitude": 104.71, "live_period": 600}
    assert sent.live_edits == 1 and sent.live_stopped and len(sent.edits) == 2


@pytest.mark.asyncio
async def test_a_plain_location_cannot_be_moved(bot: Bot, emu: Emulator) -> None:
    group = emu.group("Posko")
    pin = await bot.send_location(group.id, latitude=-3.0, longitude=104.7)
    with pytest.raises(BadRequest, match="can't be edited"):
        await bot.edit_message_live_location(group.id, pin.message_id, latitude=-3.0, longitude=104.71)
    with pytest.raises(BadRequest, match="can't be edited"):
        await bot.stop_message_live_location(group.id, pin.message_id)
