"""`/bantuan`, `/bahasa` and the per-audience command menus (setMyCommands)."""

from __future__ import annotations

from telegram import BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.ext import Application, CommandHandler

from bot.render import LANGUAGES, lang_of
from bot.render.menus import LANGUAGE_SET, LANGUAGE_USAGE, help_text, menu
from bot.services.people import Actor, actor_for, set_language
from handlers.common import Context, load_actor, registered, user_lang


async def bantuan(update: Update, context: Context) -> None:
    """The commands this person may use, in their language."""
    assert update.effective_message
    actor = await load_actor(update, context)
    if actor is None:
        await update.effective_message.reply_html(help_text("unregistered", user_lang(update)))
    else:
        await update.effective_message.reply_html(help_text(actor.role, lang_of(actor.language)))


@registered
async def bahasa(update: Update, context: Context, actor: Actor) -> None:
    """Switch this person's language; the menu follows."""
    assert update.effective_message and update.effective_user
    choice = (context.args or [""])[0].lower()
    if choice not in LANGUAGES:
        await update.effective_message.reply_html(LANGUAGE_USAGE(actor.language))
        return
    async with context.runtime.sessions() as session:
        await set_language(session, actor=actor, language=choice)
    await refresh_menu(context, update.effective_user.id)
    await update.effective_message.reply_html(LANGUAGE_SET(choice))


async def refresh_menu(context: Context, telegram_user_id: int) -> None:
    """The private-chat menu of one person, by role and language."""
    actor = await load_actor_by_id(context, telegram_user_id)
    if actor is None:
        return
    lang = lang_of(actor.language)
    commands = [BotCommand(name, description) for name, description in menu(actor.role, lang)]
    await context.bot.set_my_commands(commands, scope=BotCommandScopeChat(telegram_user_id))


async def load_actor_by_id(context: Context, telegram_user_id: int) -> Actor | None:
    async with context.runtime.sessions() as session:
        return await actor_for(session, telegram_user_id=telegram_user_id, now=context.runtime.now())


async def set_default_menus(application: Application) -> None:
    """What everyone sees before registering, and what groups see, in both languages."""
    bot = application.bot
    for lang in LANGUAGES:
        code = None if lang == "id" else lang
        await bot.set_my_commands(
            [BotCommand(n, d) for n, d in menu("unregistered", lang)],
            scope=BotCommandScopeDefault(),
            language_code=code,
        )
        await bot.set_my_commands(
            [BotCommand(n, d) for n, d in menu("group", lang)], scope=BotCommandScopeAllGroupChats(), language_code=code
        )


def register_handlers(application: Application) -> None:
    application.add_handler(CommandHandler(["bantuan", "help"], bantuan))
    application.add_handler(CommandHandler(["bahasa", "language"], bahasa))
