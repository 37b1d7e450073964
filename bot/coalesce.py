"""What many updates ask of the database at once, asked once for all of them.

Every update is claimed (exactly-once, bot/services/updates.py), nearly
every one looks its sender up (bot/services/people.py) before anything
else, every location and `/hadir` asks what the bot waits for from
its sender (bot/services/chatstate.py), and most locations are check-ins
(bot/services/checkin.py). Under load updates come in bunches: a poll returns up to a hundred, a
webhook worker's queue fills while the loop is busy. A `Coalescer` sends
the keys asked for while its previous call was on its way in one call, one
statement for the lot. Nothing is held back on purpose: a key asked for
when the coalescer is idle goes at once, alone.

Only the waiting lives in memory. A claim is answered after its commit, so
a restart loses nothing: an unanswered update is delivered again and
claimed then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import CheckinSettings
from bot.db import quick
from bot.services.chatstate import Waiting, waiting_for_each
from bot.services.checkin import CheckinResult, Presence, check_in_all
from bot.services.people import Actor, actors_for
from bot.services.updates import claim_updates

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """`await coalescer(key)`: `run` answers a list of keys with a list of values, in order."""

    def __init__(self, run: Callable[[list[K]], Awaitable[list[V]]]) -> None:
        self._run = run
        self._waiting: list[tuple[K, asyncio.Future[V]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, key: K) -> V:
        answer: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, answer))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await answer

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._answer(batch)
        finally:
            self._task = None

    async def _answer(self, batch: list[tuple[K, asyncio.Future[V]]]) -> None:
        try:
            values = await self._run([key for key, _ in batch])
        except asyncio.CancelledError:  # shutting down: the callers stop too, none left waiting
            for _, answer in batch:
                answer.cancel()
            raise
        except Exception as error:  # each update's own error handler answers its sender
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(error)
            return
        for (_, answer), value in zip(batch, values, strict=True):
            if not answer.done():
                answer.set_result(value)


def update_claims(sessions: async_sessionmaker[AsyncSession], now: Callable[[], datetime]) -> Coalescer[int, bool]:
    """True for the first copy of an update anywhere; False for a redelivery, and for a second copy in one bunch."""

    async def claim(update_ids: list[int]) -> list[bool]:
        async with quick(sessions) as session:
            unseen = await claim_updates(session, update_ids=update_ids, now=now())
        firsts = []
        for update_id in update_ids:
            firsts.append(update_id in unseen)
            unseen.discard(update_id)
        return firsts

    return Coalescer(claim)


def senders(sessions: async_sessionmaker[AsyncSession]) -> Coalescer[int, Actor | None]:
    """The registered person behind a Telegram user id, None for a stranger."""
    return _by_user(sessions, lambda session, ids: actors_for(session, telegram_user_ids=ids))


def waits(sessions: async_sessionmaker[AsyncSession], now: Callable[[], datetime]) -> Coalescer[int, Waiting | None]:
    """What the bot waits for from a Telegram user (a report's location or photo), None for nothing."""
    return _by_user(sessions, lambda session, ids: waiting_for_each(session, telegram_user_ids=ids, now=now()))


def _by_user(
    sessions: async_sessionmaker[AsyncSession], fetch: Callable[[AsyncSession, list[int]], Awaitable[dict[int, V]]]
) -> Coalescer[int, V | None]:
    """A lookup by Telegram user id, None for whoever `fetch` does not find."""

    async def look_up(telegram_user_ids: list[int]) -> list[V | None]:
        async with quick(sessions) as session:
            found = await fetch(session, telegram_user_ids)
        return [found.get(user_id) for user_id in telegram_user_ids]

    return Coalescer(look_up)


def checkins(
    sessions: async_sessionmaker[AsyncSession], now: Callable[[], datetime], settings: CheckinSettings
) -> Coalescer[Presence, CheckinResult]:
    """Locations shared at the same moment, checked in together; each answered as if alone."""

    async def check_in(presences: list[Presence]) -> list[CheckinResult]:
        async with quick(sessions) as session:
            return await check_in_all(session, presences, now=now(), settings=settings)

    return Coalescer(check_in)
