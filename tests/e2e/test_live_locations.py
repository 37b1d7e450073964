"""The command group's live location of each escort underway, end to end: one pin per escort, moved, stopped.

The real Application sends through its dispatcher to the emulator, with
Telegram's flood limits enforced (no 429 may come back). Positions are
the members' own live locations, moved as a phone moves them; the
live-location job runs by hand after the clock moves, as the scheduler runs it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.emulator import Limits, SentMessage, SimGroup
from bot.ops.scheduler import SWEEPS, run_sweep
from models import Escort
from tests.e2e.conftest import World
from tests.e2e.live_shares import Shares, move
from tests.factories import build_escorts

LAT = -3.0


@pytest.fixture
def emulator_limits() -> Limits:
    return Limits()


@pytest.fixture
async def escorted(world: World) -> dict[str, Escort]:
    async with world.sessions() as session:
        return await build_escorts(session, world.roster, now=world.clock())


def _east(meters: float) -> float:
    return 104.700 + meters / 111_000


@pytest.fixture
def shares() -> Shares:
    return {}


async def _position(world: World, shares: Shares, who: str, meters: float, *, lat: float = LAT) -> None:
    await move(world, shares, who, lat, _east(meters))


async def _tick(world: World, seconds: float) -> None:
    world.clock.advance(timedelta(seconds=seconds))
    [sweep] = [sweep for sweep in SWEEPS if sweep.name == "live_locations"]
    await run_sweep(sweep, world.runtime)
    await world.outbox_drained()


def _pins(world: World, group: SimGroup) -> list[SentMessage]:
    return [message for message in world.emu.sent_to(group) if message.kind == "location"]


async def test_each_escort_underway_has_one_pin_that_moves_to_its_latest_position_and_stops_on_arrival(
    world: World, escorted: dict[str, Escort], shares: Shares
) -> None:
    kapolsek = await world.registered("kapolsek_a1")
    group = await world.command_group("POLSEK-A1", members=[kapolsek])
    await _position(world, shares, "budi", 1_000)  # KWL-1 leaves PPS-A1
    await _position(world, shares, "dedi", 500, lat=-2.99)  # KWL-2 leaves TPS-A1-001
    await _tick(world, 3)
    assert world.emu.count(group) == 2
    pins = _pins(world, group)
    kwl1 = next(pin for pin in pins if (pin.location or {}).get("latitude") == LAT)
    kwl2 = next(pin for pin in pins if pin is not kwl1)
    assert kwl1.location is not None and kwl1.location["longitude"] == pytest.approx(_east(1_000))
    assert kwl1.location["live_period"] >= 60 and kwl1.live_edits == 0

    for step in range(1, 4):
        await _tick(world, 26)
        await _position(world, shares, "budi", 1_000 + step * 400)
        world.clock.advance(timedelta(seconds=1))
        await _position(world, shares, "budi", 1_000 + step * 400 + 50)  # two positions between passes: the latest wins
        await _tick(world, 3)
        assert kwl1.location is not None and kwl1.location["longitude"] == pytest.approx(_east(1_050 + step * 400))
        assert kwl1.live_edits == step
    assert kwl2.live_edits == 0  # KWL-2 did not move: its pin was left alone
    assert world.emu.count(group) == 2  # moved in place: no new message

    await _tick(world, 30)
    await _position(world, shares, "budi", 10_900)  # within 300 m of PPK-A2: arrived
    await _tick(world, 3)
    assert kwl1.location is not None and kwl1.location["longitude"] == pytest.approx(_east(10_900))
    assert kwl1.live_stopped and kwl1.current.method == "stopMessageLiveLocation"
    await _tick(world, 30)
    assert kwl1.live_edits == 4 and world.emu.count(group) == 2
    assert world.emu.rejections == []  # never past the group's limit
