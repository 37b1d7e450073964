"""`/start`: the greeting."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.render import lang_of
from bot.render.start import GREETING


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet in the language the person's Telegram app uses."""
    assert update.effective_message and update.effective_user
    await update.effective_message.reply_html(GREETING(lang_of(update.effective_user.language_code)))


def register(application: Application) -> None:
    application.add_handler(CommandHandler("start", start))
