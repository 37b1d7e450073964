"""`/daftargrup UNIT`, `/daftargrup hapus`, and a group's move to a supergroup."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import Application, CommandHandler, MessageHandler, filters

from bot.render.groups import GROUP_ONLY, REMOVE_WORDS, group_text
from bot.services import groups as service
from bot.services.people import Actor
from handlers.common import Context, commander


@commander
async def daftargrup(update: Update, context: Context, actor: Actor) -> None:
    """Bind this group to a unit, release it (`hapus`), or say what it is bound to (no argument)."""
    message, chat = update.effective_message, update.effective_chat
    assert message and chat
    if chat.type == ChatType.PRIVATE:
        await message.reply_html(GROUP_ONLY(actor.language))
        return
    argument = (context.args or [""])[0].strip()
    rt = context.runtime
    async with rt.sessions() as session:
        if not argument:
            result = await service.describe_group(session, chat_id=chat.id)
        elif argument.lower() in REMOVE_WORDS:
            result = await service.remove_group(session, actor=actor, chat_id=chat.id)
        else:
            result = await service.register_group(
                session, actor=actor, chat_id=chat.id, title=chat.title or "", unit_code=argument, now=rt.now()
            )
    await message.reply_html(group_text(result, actor.language))


async def migrated(update: Update, context: Context) -> None:
    """The group became a supergroup: it keeps its registration under the new chat id."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None or message.migrate_to_chat_id is None:
        return
    async with context.runtime.sessions() as session:
        await service.migrate_group(session, old_chat_id=chat.id, new_chat_id=message.migrate_to_chat_id)


def register_handlers(application: Application) -> None:
    application.add_handler(CommandHandler(["daftargrup", "registergroup"], daftargrup))
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, migrated))
