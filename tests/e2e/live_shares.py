"""Members sharing their live location in end-to-end tests: the first position starts the share, later ones move it.

Each move is an `edited_message` stamped with the bot's clock, as a phone
on that day would send it; `move` returns once the bot has applied it to
the member's escort, so a sweep run next sees it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import select

from models import Escort, EscortMember
from tests.e2e.conftest import World

Shares = dict[str, dict[str, Any]]
"""Each member's live-location message, once they started sharing."""

LIVE_PERIOD = 3 * 3600


async def move(world: World, shares: Shares, who: str, lat: float, lon: float) -> None:
    user = world.users.get(who) or await world.registered(who)
    now = world.clock()
    if who not in shares:
        shares[who] = await user.send_location(lat, lon, live_period=LIVE_PERIOD, date=now)
    else:
        await user.move_live_location(shares[who], lat, lon, date=now)
    await applied(world, who, now)


async def applied(world: World, who: str, at: datetime, timeout: float = 5.0) -> None:
    """Wait until `who`'s escort underway holds the position taken at `at`."""
    query = (
        select(Escort.last_at)
        .join(EscortMember, EscortMember.escort_id == Escort.id)
        .where(EscortMember.personnel_id == world.roster.person(who).id, Escort.state != "terjadwal")
    )
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        async with world.sessions() as session:
            if at in set((await session.scalars(query)).all()):
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the position of {who} at {at} was not applied")
