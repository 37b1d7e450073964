"""The Telegram Application factory: one place where the bot is wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket

from telegram import LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.ext import Application, ApplicationBuilder, Defaults

import handlers
from bot.clock import Clock, system_clock
from bot.config import Settings
from bot.delivery.dispatcher import Dispatcher, make_bot
from bot.delivery.ratelimit import RateLimiter
from bot.delivery.replies import RetryReplies
from bot.intake.updater import DurableUpdater, InboxProcessor
from bot.ops import scheduler
from bot.ops.metrics import count_error, instrument
from bot.runtime import RUNTIME_KEY, Runtime
from bot.storage.db import make_engine, make_sessionmaker
from handlers import menus

log = logging.getLogger("siaga.app")


def worker_id() -> str:
    """Distinct for every process start, even one that gets the pid of a dead one (pid 1 in a container):
    what a worker held is another worker's to take back once its beat stops (bot/intake/liveness.py)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


REPLY_CONNECTIONS = 16
"""HTTP connections for replies. Telegram takes 30 messages a second, which 16 connections carry
even at 250 ms a round trip; a larger pool only costs CPU: httpx looks at every pooled connection
on every request (the no-work bot of bench/checkin_storm.py: 256, PTB's default, ~100 replies/s;
16, ~200/s)."""

REPLY_POOL_TIMEOUT = 30.0
"""Seconds a reply waits for a free connection. PTB's default, 1 s, failed /hadir answers at the start
of a 20,000-person storm (bench/checkin_storm.py --people 20000); a request that found no connection
was never sent, so waiting longer is safe, and it beats answering "not saved"."""


def build_application(
    settings: Settings, *, clock: Clock = system_clock, with_dispatcher: bool = True, with_scheduler: bool = True
) -> Application:
    """The real bot: PTB's Application with our handlers, database, clock, dispatcher and sweeps.

    Updates come in through the durable intake (bot/intake/updater.py), PTB's
    Updater's place. Replies are sent at once (retried after a 429, see
    bot/delivery/replies.py); everything else goes through the outbox dispatcher,
    which paces itself to Telegram's limits on a Bot of its own (its own
    connection pool, so a reminder run never queues behind replies or the
    other way round). After a start, the backlog is handled first: only
    then does a reminder pass run, the dispatcher start and the
    missed-check-in sweep begin, so nobody whose check-in waited in the
    backlog is reminded or listed as missing.
    """
    engine = make_engine(settings.database.url, echo=settings.database.echo)
    worker = worker_id()
    runtime = Runtime(settings=settings, sessions=make_sessionmaker(engine), clock=clock, worker=worker)
    limiter = RateLimiter(
        global_per_second=settings.delivery.global_per_second,
        private_per_second=settings.delivery.private_per_second,
        group_per_minute=settings.delivery.group_per_minute,
    )
    token = settings.require_token()

    async def after_backlog(updater: DurableUpdater, dispatcher: Dispatcher | None) -> None:
        await updater.settled.wait()
        if with_scheduler:
            await scheduler.run_sweep(scheduler.REMINDERS, runtime)
        if dispatcher is not None:
            await dispatcher.start()
            runtime.dispatcher = dispatcher
        runtime.settled.set()

    async def post_init(application: Application) -> None:
        await menus.set_default_menus(application)
        dispatcher = None
        if with_dispatcher:
            bot = make_bot(token=token, base_url=settings.telegram.base_url)
            await bot.initialize()
            dispatcher = Dispatcher(
                sessions=runtime.sessions,
                bot=bot,
                settings=settings.delivery,
                worker_id=worker,
                clock=clock,
                lease_seconds=settings.delivery.lease_seconds,
                limiter=limiter,  # one flood budget with replies
            )
        if with_scheduler:
            scheduler.schedule(application)
        runtime.after_backlog = asyncio.create_task(after_backlog(updater, dispatcher))

    async def post_stop(_: Application) -> None:
        waiting, runtime.after_backlog = runtime.after_backlog, None
        if waiting is not None and not waiting.done():
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
        dispatcher, runtime.dispatcher = runtime.dispatcher, None
        if dispatcher is not None:
            await dispatcher.stop()
            await dispatcher.bot.shutdown()
        await updater.finish()

    async def post_shutdown(_: Application) -> None:
        await engine.dispose()

    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.telegram.base_url)
        .base_file_url(settings.telegram.base_file_url)
        .connection_pool_size(REPLY_CONNECTIONS)
        .pool_timeout(REPLY_POOL_TIMEOUT)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                tzinfo=settings.operation.zone,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .rate_limiter(RetryReplies(limiter))
        .context_types(handlers.CONTEXT_TYPES)
        .post_init(post_init)
        .post_stop(post_stop)
        .post_shutdown(post_shutdown)
    )
    application = instrument(builder, InboxProcessor).build()  # concurrent updates, timed from receipt to completion
    updater = DurableUpdater(
        application.bot,
        application.update_queue,
        sessions=runtime.sessions,
        worker=worker,
        durable=settings.intake.durable,
    )
    updater.liveness.on_released = runtime.wake_dispatcher
    application.updater = updater
    processor = application.update_processor
    assert isinstance(processor, InboxProcessor)
    processor.updater = updater
    application.bot_data[RUNTIME_KEY] = runtime
    application.add_error_handler(count_error)  # first: handlers/common.on_error stops the update after answering
    handlers.register_all(application)
    return application
