"""Durable intake: an update is accepted only once it is stored, and handled from the store.

`DurableUpdater` takes the place of python-telegram-bot's Updater (the
Application's `updater`), so `start_polling` and `start_webhook` keep their
usual callers (`siaga run`, the emulator harness):

* webhook: an aiohttp server answers Telegram 200 only after the update is
  committed to the inbox (bot/services/updates.py), 503 while the database
  cannot be reached, so Telegram keeps the update and delivers it again;
* polling: the offset that confirms a batch is sent with the next
  getUpdates only after the batch is committed; while the database is away
  the batch is held and stored again, and Telegram keeps it meanwhile.

Updates that arrive together are stored together (one insert, one commit).
A stored update goes to the Application's queue; `InboxProcessor` runs its
handlers under a `Mark` (bot/intake/handling.py), so the transaction that commits
its effect also marks it handled, and marks it done when they return. A
handler that failed because the database went away leaves its update open:
it is handled again, with a growing pause, until the database answers, and
the person who sent it is answered then. What a dead worker had accepted
is taken back by `Liveness` (bot/intake/liveness.py) and fed here again.

`settled` is set once the backlog of a start is handled: Telegram has
nothing pending for the bot (an empty getUpdates; getWebhookInfo's pending
count at zero) and every update fed here so far is done. Reminders and
missed-check-in alerts wait for it (bot/app.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Updater

from bot.clock import system_clock
from bot.intake.coalesce import Coalescer
from bot.intake.handling import HANDLING, Mark
from bot.intake.liveness import Liveness
from bot.ops.metrics import UPDATE_CONCURRENCY, ReceiptQueue, TimedUpdateProcessor
from bot.services import updates
from bot.services.updates import Incoming
from bot.storage.db import transaction

log = logging.getLogger("siaga.intake")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
BATCH = 100
SETTLE_LIMIT = 60.0
"""Seconds a start waits at most for its backlog: under a steady stream Telegram never has nothing pending."""
RETRY_PAUSES = (0.5, 1.0, 2.0, 5.0)
"""Pauses before handling again an update whose handler met a database outage, then every 5 s."""
POLL_ERROR_PAUSE = (0.5, 10.0)


@dataclass
class IntakeStats:
    """Counters since start, for the metrics endpoint."""

    stored: int = 0
    refused: int = 0
    taken_back: int = 0
    retried: int = 0
    open: int = 0
    """Updates this worker holds that are not done, read off `DurableUpdater.open` when the stats are."""


class DurableUpdater(Updater):
    """python-telegram-bot's Updater, storing every update before it is confirmed to Telegram."""

    def __init__(
        self,
        bot: Bot,
        update_queue: asyncio.Queue[object],
        *,
        sessions: async_sessionmaker[AsyncSession],
        worker: str,
        durable: bool = True,
    ) -> None:
        super().__init__(bot=bot, update_queue=update_queue)
        self.sessions, self.worker, self.durable = sessions, worker, durable
        self.settled = asyncio.Event()
        self.liveness = Liveness(sessions, worker, take_back=self._taken_back)
        self._accept: Coalescer[Incoming, bool] = Coalescer(self._store)
        self._counts = IntakeStats()
        self._open: set[int] = set()
        self._done: list[int] = []
        self._done_event = asyncio.Event()
        self._done_task: asyncio.Task[None] | None = None
        self._attempts: dict[int, int] = {}
        self._secret: str | None = None
        self._drained = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None

    # -- life cycle -----------------------------------------------------------------------------

    async def start_polling(  # type: ignore[override]
        self,
        poll_interval: float = 0.0,
        timeout: float = 10,
        bootstrap_retries: int = 0,
        allowed_updates: Any = None,
        drop_pending_updates: bool | None = None,
        **_: Any,
    ) -> asyncio.Queue[object]:
        """Poll getUpdates; each batch is stored before the next call confirms it."""
        await self._begin()
        self._spawn(self._poll(float(timeout), allowed_updates))
        self._spawn(self._settle(webhook=False))
        return self.update_queue

    async def start_webhook(  # type: ignore[override]
        self,
        listen: str = "127.0.0.1",
        port: int = 80,
        url_path: str = "",
        webhook_url: str | None = None,
        secret_token: str | None = None,
        max_connections: int = 40,
        **_: Any,
    ) -> asyncio.Queue[object]:
        """Serve the webhook (setWebhook is the caller's, bot/ops/serving.py): 200 only for what is stored."""
        await self._begin()
        server = web.Application(client_max_size=2**20)
        server.router.add_post("/" + url_path.strip("/"), self._receive)
        self._secret = secret_token
        self._runner = web.AppRunner(server, access_log=None, handle_signals=False)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, listen, port, backlog=max(128, max_connections)).start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            self._running = False
            await self.finish()
            raise
        self._spawn(self._settle(webhook=True))
        return self.update_queue

    async def _begin(self) -> None:
        self._running = True
        await self.liveness.start()
        self._done_task = asyncio.create_task(self._mark_done_loop(), name="inbox-done")

    async def stop(self) -> None:
        """No new updates; the ones stored and fed are left to the Application, which finishes its queue."""
        if not self._running:
            raise RuntimeError("This Updater is not running!")
        self._running = False
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def finish(self) -> None:
        """After the Application stopped: the last done marks written, this worker gone from the living."""
        if self._done_task is not None:
            self._done_task.cancel()
            await asyncio.gather(self._done_task, return_exceptions=True)
            self._done_task = None
        with contextlib.suppress(Exception):
            await self._write_done()
        await self.liveness.stop()

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def stats(self) -> IntakeStats:
        """The counters so far, with what this worker holds now."""
        return replace(self._counts, open=len(self._open))

    # -- storing --------------------------------------------------------------------------------

    async def _store(self, incoming: list[Incoming]) -> list[bool]:
        """One transaction for the updates of the moment; True for each one new to the inbox."""
        if not self.durable:
            return [True] * len(incoming)
        async with transaction(self.sessions) as session:
            fresh = await updates.accept(session, updates=incoming, worker=self.worker, now=system_clock())
        self._counts.stored += len(fresh)
        found = []
        for item in incoming:
            found.append(item.update_id in fresh)
            fresh.discard(item.update_id)
        return found

    def feed(self, update: Update) -> None:
        """An update this worker holds goes to the Application."""
        self._open.add(update.update_id)
        self.update_queue.put_nowait(update)

    def _taken_back(self, taken: list[Incoming]) -> None:
        for item in taken:
            if item.update_id not in self._open:
                self.feed(Update.de_json(item.payload, self.bot))
        if taken:
            self._counts.taken_back += len(taken)
            log.info("handling %d update(s) a stopped worker had accepted", len(taken))

    # -- webhook --------------------------------------------------------------------------------

    async def _receive(self, request: web.Request) -> web.Response:
        if self._secret and request.headers.get(SECRET_HEADER) != self._secret:
            return web.Response(status=403)
        try:
            payload = await request.json()
            item = Incoming(int(payload["update_id"]), payload)
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="not an update")
        if not self._running:
            return web.Response(status=503, text="stopping")
        try:
            fresh = await self._accept(item)
        except Exception as error:
            self._counts.refused += 1
            log.warning(
                "update %d not accepted, the database is unreachable (%s)", item.update_id, type(error).__name__
            )
            return web.Response(status=503, text="try again")
        if fresh:
            self.feed(Update.de_json(payload, self.bot))
        return web.Response(status=200)

    # -- polling --------------------------------------------------------------------------------

    async def _poll(self, timeout: float, allowed_updates: Any) -> None:
        offset: int | None = None
        held: list[Update] = []
        pause = POLL_ERROR_PAUSE[0]
        while self._running:
            try:
                batch = held or list(
                    await self.bot.get_updates(
                        offset=offset,
                        timeout=int(timeout) if self._drained else 0,
                        limit=BATCH,
                        allowed_updates=allowed_updates,
                    )
                )
                if not batch:
                    self._drained = True
                    continue
                fresh = await asyncio.gather(*(self._accept(Incoming(u.update_id, u.to_dict())) for u in batch))
            except InvalidToken:
                log.error("Telegram refused the bot token; polling stops")
                return
            except TelegramError as error:
                log.warning("getUpdates failed (%s); retrying in %.1f s", type(error).__name__, pause)
            except Exception as error:
                held = held or batch
                log.warning(
                    "%d update(s) not stored, the database is unreachable (%s); Telegram keeps them",
                    len(held),
                    type(error).__name__,
                )
            else:
                held, pause = [], POLL_ERROR_PAUSE[0]
                offset = batch[-1].update_id + 1
                for update, new in zip(batch, fresh, strict=True):
                    if new:
                        self.feed(update)
                continue
            await asyncio.sleep(pause)
            pause = min(POLL_ERROR_PAUSE[1], pause * 2)

    # -- settling -------------------------------------------------------------------------------

    async def _settle(self, *, webhook: bool) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_LIMIT
        while loop.time() < deadline:
            if not self._open and await self._nothing_pending(webhook):
                log.info("backlog handled")
                break
            await asyncio.sleep(0.05)
        else:
            log.warning("backlog still coming after %.0f s; reminders and alerts start anyway", SETTLE_LIMIT)
        self.settled.set()

    async def _nothing_pending(self, webhook: bool) -> bool:
        if not webhook:
            return self._drained
        try:
            return (await self.bot.get_webhook_info()).pending_update_count == 0
        except TelegramError:
            return False

    # -- after the handlers ---------------------------------------------------------------------

    def finished(self, update: Update, mark: Mark) -> None:
        """The handlers returned: done, or, after a database outage that left no effect, handled again later."""
        if mark.retry and not mark.handled:
            if self._running:
                self._counts.retried += 1
                self._spawn(self._again(update, attempt=self._attempts.get(update.update_id, 0)))
            else:  # stopping: left open, for another worker or this one's next start
                self._open.discard(update.update_id)
            return
        self._open.discard(update.update_id)
        self._attempts.pop(update.update_id, None)
        if self.durable:
            self._done.append(update.update_id)
            self._done_event.set()

    async def _again(self, update: Update, attempt: int) -> None:
        await asyncio.sleep(RETRY_PAUSES[min(attempt, len(RETRY_PAUSES) - 1)])
        self._attempts[update.update_id] = attempt + 1
        self.update_queue.put_nowait(update)

    async def _mark_done_loop(self) -> None:
        while True:
            await self._done_event.wait()
            self._done_event.clear()
            try:
                await self._write_done()
            except Exception as error:
                log.warning("done marks not written (%s); retrying", type(error).__name__)
                await asyncio.sleep(1.0)
                self._done_event.set()
            await asyncio.sleep(0.02)

    async def _write_done(self) -> None:
        if not self._done:
            return
        batch = list(self._done)
        async with transaction(self.sessions) as session:
            await updates.mark_done(session, update_ids=batch, now=system_clock())
        del self._done[: len(batch)]


class InboxProcessor(TimedUpdateProcessor):
    """Runs an update's handlers under its `Mark`, then tells the updater how it went."""

    __slots__ = ("updater",)

    def __init__(self, queue: ReceiptQueue, max_concurrent_updates: int = UPDATE_CONCURRENCY) -> None:
        super().__init__(queue, max_concurrent_updates)
        self.updater: DurableUpdater | None = None

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if self.updater is None or not isinstance(update, Update):
            await super().do_process_update(update, coroutine)
            return
        mark = Mark([update.update_id])
        token = HANDLING.set(mark)
        try:
            await super().do_process_update(update, coroutine)
        finally:
            HANDLING.reset(token)
            self.updater.finished(update, mark)


__all__ = ["DurableUpdater", "InboxProcessor", "IntakeStats"]
