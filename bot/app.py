"""The Telegram Application factory: one place where the bot is wired together."""

from __future__ import annotations

import logging

from telegram import LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.ext import Application, ApplicationBuilder, Defaults

import handlers
from handlers import menus
from bot.config import Settings
from bot.db import make_engine, make_sessionmaker
from bot.runtime import RUNTIME_KEY, Clock, Runtime, system_clock

log = logging.getLogger("siaga.app")


def build_application(settings: Settings, *, clock: Clock = system_clock) -> Application:
    """The real bot: PTB's Application with our handlers, database and clock.

    No PTB rate limiter: replies are direct, everything else goes through the
    outbox dispatcher, which paces itself to Telegram's limits.
    """
    engine = make_engine(settings.database.url, echo=settings.database.echo)
    runtime = Runtime(settings=settings, sessions=make_sessionmaker(engine), clock=clock)

    async def post_init(application: Application) -> None:
        await menus.set_default_menus(application)

    async def post_shutdown(_: Application) -> None:
        await engine.dispose()

    application = (
        ApplicationBuilder()
        .token(settings.require_token())
        .base_url(settings.telegram.base_url)
        .base_file_url(settings.telegram.base_file_url)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                tzinfo=settings.operation.zone,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .concurrent_updates(True)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    application.bot_data[RUNTIME_KEY] = runtime
    handlers.register_all(application)
    return application
