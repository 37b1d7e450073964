"""`/siaran TEXT` (`/broadcast`): a commander's message to their subtree, sent through the outbox."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler

from bot.render.broadcast import outcome_text
from bot.services.broadcast import MAX_TEXT
from bot.services.people import Actor
from flows.broadcast import send_broadcast
from handlers.common import Context, commander


@commander
async def siaran(update: Update, context: Context, actor: Actor) -> None:
    """Queue the broadcast; the reply says to how many, the delivery report comes later."""
    message = update.effective_message
    assert message and message.text
    rt = context.runtime
    parts = message.text.split(None, 1)  # a newline right after the command is fine too
    text = parts[1] if len(parts) > 1 else ""
    async with rt.sessions() as session:
        result = await send_broadcast(session, actor=actor, text=text, now=rt.now())
    await message.reply_html(outcome_text(result, actor.language, limit=MAX_TEXT))


def register_handlers(application: Application) -> None:
    application.add_handler(CommandHandler(["siaran", "broadcast"], siaran))
