"""The last word: anything no other handler took still gets an answer in private chats."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, MessageHandler, filters

from bot.render.start import PLAIN_TEXT, UNKNOWN_COMMAND
from handlers.common import Context, load_actor, user_lang


async def unknown(update: Update, context: Context) -> None:
    """A typo at 06:30 deserves a hint, not silence."""
    message = update.effective_message
    assert message
    actor = await load_actor(update, context)
    lang = actor.language if actor else user_lang(update)
    msg = UNKNOWN_COMMAND if (message.text or "").startswith("/") else PLAIN_TEXT
    await message.reply_html(msg(lang))


def register_handlers(application: Application) -> None:
    """Registered last in the default group, so it only runs when nothing else matched."""
    application.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE & (filters.COMMAND | filters.TEXT) & ~filters.UpdateType.EDITED, unknown
        )
    )
