"""Claims of updates that arrive together, written in one statement.

Every update is claimed before anything else runs (exactly-once, see
bot/services/updates.py). Under load updates come in bunches: a poll
returns up to a hundred, a webhook worker's queue fills while the loop is
busy. Each claim waits for the write that carries it; a claim asked for
while a write is on its way goes in the next one. Nothing is held back on
purpose: an update that arrives alone is written at once, alone.

Only the waiting lives in memory. A claim is answered after its commit, so
a restart loses nothing: an unanswered update is delivered again and
claimed then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import quick
from bot.services.updates import claim_updates


class UpdateClaims:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], now: Callable[[], datetime]) -> None:
        self._sessions = sessions
        self._now = now
        self._waiting: list[tuple[int, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def claim(self, update_id: int) -> bool:
        """True for the first copy of this update anywhere; False for a redelivery."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((update_id, answer))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return await answer

    async def _write(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._claim(batch)
        finally:
            self._writer = None

    async def _claim(self, batch: list[tuple[int, asyncio.Future[bool]]]) -> None:
        try:
            async with quick(self._sessions) as session:
                claimed = await claim_updates(session, update_ids=[update_id for update_id, _ in batch], now=self._now())
        except Exception as error:  # each update's own error handler answers its sender
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(error)
            return
        for update_id, answer in batch:
            first = update_id in claimed
            claimed.discard(update_id)  # the same update twice in one batch: the second is a redelivery
            if not answer.done():
                answer.set_result(first)
