"""This worker's heartbeat, and taking back what dead workers held (bot/services/workers.py).

Every `workers.BEAT` the worker writes its beat and, in the same
transaction, returns to pending the outbox rows of workers whose beat
stopped, takes the open inbox updates of those workers for itself (they are
fed to the Application again), and closes the ones whose effect a dead
worker had committed. A dead worker's claims are back within
`workers.EXPIRY` plus one beat; a live worker's are never touched, so a
long outbox lease stays safe. A single SQLite process takes back every
claim when it starts: there is no one else.

After its own beat failed (the database was away), a worker judges nobody
dead until it has beaten again for `workers.EXPIRY`: the others' beats
stopped for the same reason, and they are alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import system_clock
from bot.services import updates, workers
from bot.services.updates import Incoming
from bot.storage.db import transaction

log = logging.getLogger("siaga.liveness")


class Liveness:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        worker: str,
        *,
        take_back: Callable[[list[Incoming]], None],
        on_released: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessions, self.worker = sessions, worker
        self.take_back, self.on_released = take_back, on_released
        self._task: asyncio.Task[None] | None = None
        self._steady_since = time.monotonic() - workers.EXPIRY.total_seconds()

    async def start(self) -> None:
        """The first beat, then (alone on SQLite) everything held before this start, then the loop."""
        async with transaction(self.sessions) as session:
            await workers.beat(session, worker=self.worker, now=system_clock())
            alone = session.get_bind().dialect.name == "sqlite"
        if alone:
            await self._recover(everything=True)
        self._task = asyncio.create_task(self._loop(), name=f"liveness-{self.worker}")

    async def stop(self) -> None:
        """Stop beating and leave: the outbox rows still held are free at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with transaction(self.sessions) as session:
                await workers.leave(session, worker=self.worker)
        except Exception as error:
            log.warning(
                "could not leave the workers table (%s); others take over after the beat expires", type(error).__name__
            )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(workers.BEAT.total_seconds())
            steady = time.monotonic() - self._steady_since >= workers.EXPIRY.total_seconds()
            try:
                await self._recover(everything=False, judge=steady)
            except Exception as error:  # the database is away: beat again next time
                self._steady_since = time.monotonic() + workers.BEAT.total_seconds()
                log.warning("heartbeat not written (%s)", type(error).__name__)

    async def _recover(self, *, everything: bool, judge: bool = True) -> None:
        now = system_clock()
        dead_at = None if everything else now
        async with transaction(self.sessions) as session:
            await workers.beat(session, worker=self.worker, now=now)
            if not judge:
                return
            released = await workers.release_outbox(session, now=dead_at)
            closed = await updates.finish_handled(session, now=dead_at, at=now)
            taken = await updates.take_back(session, worker=self.worker, now=dead_at)
        if released:
            log.info("%d outbox row(s) of stopped workers are pending again", released)
            self.on_released()
        if closed:
            log.warning("%d update(s) of stopped workers had their effect saved; their answers may be lost", closed)
        if taken:
            self.take_back(taken)


__all__ = ["Liveness"]
