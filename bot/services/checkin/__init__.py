"""Check-in and check-out: presence at a TPS, with where the person actually stood, when they were there.

A check-in far from the TPS is kept and flagged (the commander decides what
it means); a forwarded location is refused, because it says where someone
else was. A location counts at the time it was sent (`message.date`), not
at the time the bot read it: one that waited at Telegram while the bot was
down is recorded at that time, and that time decides the shift and whether
it was late. It is too old (`stale`) only when it was sent after its shift
ended, before its shift opened for check-in (and read once it had), or
longer ago than Telegram keeps an update. Check-out counts at the time sent
too.

The package reads, then decides, then writes (`reading`, `deciding`,
`writing`); `results` holds what it answers and `checkout` the end of a
shift. Callers import from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import CheckinSettings
from bot.services.checkin.checkout import CheckoutOutcome, CheckoutResult, check_out
from bot.services.checkin.deciding import Decisions, decide
from bot.services.checkin.reading import read
from bot.services.checkin.results import (
    TELEGRAM_KEEPS,
    CheckinOutcome,
    CheckinResult,
    Key,
    Presence,
    StaleReason,
    sent_time,
)
from bot.services.checkin.writing import write

__all__ = [
    "TELEGRAM_KEEPS",
    "CheckinOutcome",
    "CheckinResult",
    "CheckoutOutcome",
    "CheckoutResult",
    "Presence",
    "StaleReason",
    "check_in",
    "check_in_all",
    "check_out",
    "decide",
    "sent_time",
]


async def check_in(
    session: AsyncSession,
    *,
    personnel_id: int,
    lat: float,
    lon: float,
    sent_at: datetime,
    forwarded: bool,
    now: datetime,
    settings: CheckinSettings,
) -> CheckinResult:
    """Record presence for the shift open when the location was sent, at the nearest assigned TPS.

    A second check-in for the same shift changes nothing unless it is closer
    to the TPS (someone who checked in from the road and then arrived).
    """
    presence = Presence(personnel_id, lat, lon, sent_at, forwarded)
    return (await check_in_all(session, [presence], now=now, settings=settings))[0]


async def check_in_all(
    session: AsyncSession, presences: Sequence[Presence], *, now: datetime, settings: CheckinSettings
) -> list[CheckinResult]:
    """`check_in` for locations read at the same moment (`now`), each judged at the time it was sent; in order.

    Read, decide, write. Everything the bunch needs is read first (the
    shifts open at any of its sent times and their check-ins, one query
    each), every location is then decided in plain Python (`decide`), and
    what that asks is written last: the first check-ins in one insert, each
    tally row changed once, in one transaction; each move closer in its own
    after it. A first check-in that another transaction wrote first is
    decided again, with every answer of the bunch that rested on it, against
    the row that won.
    """
    bunch = [(presence, sent_time(presence.sent_at, now)) for presence in presences]
    seen = await read(session, bunch, now=now, settings=settings)
    decisions = decide(bunch, seen, now=now, settings=settings)
    lost = await write(session, decisions, now=now)
    if not lost:
        return decisions.results
    return await _decide_again(session, presences, decisions, lost, now=now, settings=settings)


async def _decide_again(
    session: AsyncSession,
    presences: Sequence[Presence],
    decisions: Decisions,
    lost: set[Key],
    *,
    now: datetime,
    settings: CheckinSettings,
) -> list[CheckinResult]:
    """The answers that rested on a row another transaction wrote first, decided again now that it can be read."""
    again = [index for index, key in enumerate(decisions.rests_on) if key in lost]
    redone = await check_in_all(session, [presences[index] for index in again], now=now, settings=settings)
    results = list(decisions.results)
    for index, result in zip(again, redone, strict=True):
        results[index] = result
    return results
