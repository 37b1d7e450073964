"""Cross-cutting handler pieces: update de-duplication and the runtime."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, ApplicationHandlerStop, ContextTypes, TypeHandler

from bot.runtime import Runtime, runtime_of
from bot.services.updates import claim_update


def runtime(context: ContextTypes.DEFAULT_TYPE) -> Runtime:
    return runtime_of(context.bot_data)


async def drop_duplicates(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Telegram redelivers after timeouts; a second copy stops here, silently."""
    rt = runtime(context)
    async with rt.sessions() as session:
        first = await claim_update(session, update_id=update.update_id, now=rt.now())
    if not first:
        raise ApplicationHandlerStop


def register(application: Application, *, group: int) -> None:
    application.add_handler(TypeHandler(Update, drop_duplicates), group=group)
