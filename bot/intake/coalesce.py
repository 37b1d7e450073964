"""What many updates ask of the database at once, asked once for all of them.

Nearly every update looks its sender up (bot/services/people.py), and a location or
`/hadir` asks what the bot waits for from its sender (bot/services/chatstate.py):
`arrivals` asks both for the updates of the moment in one transaction.
Most locations are check-ins (bot/services/checkin/): `checkins` makes
those of the moment together. Under load updates come in bunches: a poll
returns up to a hundred, a webhook worker's queue fills while the loop is
busy. A `Coalescer` sends the keys asked for while its previous call was on
its way in one call. Nothing is held back on purpose: a key asked for when
the coalescer is idle goes at once, alone.

Only the waiting lives in memory: an update is stored before it is
accepted (bot/intake/updater.py), so a restart loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import CheckinSettings
from bot.intake.handling import HANDLING, Mark
from bot.services.chatstate import Waiting, waiting_for_each
from bot.services.checkin import CheckinResult, Presence, check_in_all
from bot.services.people import Actor, actors_for
from bot.services.updates import claim_updates
from bot.storage.db import quick

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """`await coalescer(key)`: `run` answers a list of keys with a list of values, in order.

    `run` works under the marks of all its callers' updates (bot/intake/handling.py):
    the transaction that commits the bunch's effect marks each of them handled.
    """

    def __init__(self, run: Callable[[list[K]], Awaitable[list[V]]]) -> None:
        self._run = run
        self._waiting: list[tuple[K, asyncio.Future[V], Mark | None]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, key: K) -> V:
        answer: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, answer, HANDLING.get()))
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

    async def _answer(self, batch: list[tuple[K, asyncio.Future[V], Mark | None]]) -> None:
        token = HANDLING.set(Mark.of([mark for _, _, mark in batch]))
        try:
            values = await self._run([key for key, _, _ in batch])
        except asyncio.CancelledError:  # shutting down: the callers stop too, none left waiting
            for _, answer, _ in batch:
                answer.cancel()
            raise
        except Exception as error:  # each update's own error handler answers its sender
            for _, answer, _ in batch:
                if not answer.done():
                    answer.set_exception(error)
            return
        finally:
            HANDLING.reset(token)
        for (_, answer, _), value in zip(batch, values, strict=True):
            if not answer.done():
                answer.set_result(value)


@dataclass(frozen=True)
class Arrival:
    """What an update's handlers need first: is it new, who sent it, and what the bot waits for from them."""

    first: bool
    sender: Actor | None
    waiting: Waiting | None


def arrivals(
    sessions: async_sessionmaker[AsyncSession], now: Callable[[], datetime], *, claim: bool = False
) -> Coalescer[tuple[int, int | None], Arrival]:
    """Keys are (update id, sender's Telegram id or None); a second copy of an update in one bunch is not first.

    The durable intake (bot/intake/updater.py) stores each update once, so what
    reaches the handlers is first by construction. Without it (`claim`, the
    benchmark's baseline) the claims' insert-or-ignore comes first in the
    same transaction (on SQLite a transaction that begins by writing holds
    the writer's turn and never has to upgrade a read).
    """

    async def arrive(keys: list[tuple[int, int | None]]) -> list[Arrival]:
        users = list({user_id for _, user_id in keys if user_id is not None})
        ids = [update_id for update_id, _ in keys]
        async with quick(sessions) as session:
            unseen = await claim_updates(session, update_ids=ids, now=now()) if claim else set(ids)
            senders = await actors_for(session, telegram_user_ids=users, now=now()) if users else {}
            waits = await waiting_for_each(session, telegram_user_ids=users, now=now()) if users else {}
            if claim:
                await session.commit()
        found = []
        for update_id, user_id in keys:
            if user_id is None:
                found.append(Arrival(update_id in unseen, None, None))
            else:
                found.append(Arrival(update_id in unseen, senders.get(user_id), waits.get(user_id)))
            unseen.discard(update_id)
        return found

    return Coalescer(arrive)


def checkins(
    sessions: async_sessionmaker[AsyncSession], now: Callable[[], datetime], settings: CheckinSettings
) -> Coalescer[Presence, CheckinResult]:
    """Locations shared at the same moment, checked in together; each answered as if alone."""

    async def check_in(presences: list[Presence]) -> list[CheckinResult]:
        async with quick(sessions) as session:
            return await check_in_all(session, presences, now=now(), settings=settings)

    return Coalescer(check_in)
