"""`/start CODE` (deep link) and `/daftar NRP CODE`: link a Telegram account to the roster."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler

from bot.render import Msg
from bot.render import registration as texts
from bot.render.start import GREETING, GREETING_REGISTERED
from bot.services.registration import Outcome, Registration, register
from handlers.common import Context, load_actor, user_lang
from handlers.menus import refresh_menu

REFUSALS: dict[Outcome, Msg] = {
    Outcome.throttled: texts.THROTTLED,
    Outcome.invalid: texts.INVALID,
    Outcome.expired: texts.EXPIRED,
    Outcome.used: texts.USED,
    Outcome.account_taken: texts.ACCOUNT_TAKEN,
    Outcome.person_taken: texts.PERSON_TAKEN,
}


async def start(update: Update, context: Context) -> None:
    """Greet; with a deep-link code, register the sender."""
    if context.args:
        await _register(update, context, code=context.args[0], nrp=None)
        return
    assert update.effective_message
    actor = await load_actor(update, context)
    if actor is None:
        await update.effective_message.reply_html(GREETING(user_lang(update)))
    else:
        await update.effective_message.reply_html(GREETING_REGISTERED(actor.language, rank=actor.rank, name=actor.name))


async def daftar(update: Update, context: Context) -> None:
    """`/daftar NRP CODE`, for those who got the code without the link."""
    assert update.effective_message
    if not context.args or len(context.args) != 2:
        await update.effective_message.reply_html(texts.USAGE(user_lang(update)))
        return
    nrp, code = context.args
    await _register(update, context, code=code, nrp=nrp)


async def _register(update: Update, context: Context, *, code: str, nrp: str | None) -> None:
    assert update.effective_message and update.effective_user
    rt = context.runtime
    async with rt.sessions() as session:
        result = await register(
            session,
            telegram_user_id=update.effective_user.id,
            code=code,
            nrp=nrp,
            now=rt.now(),
            max_failures_per_hour=rt.settings.registration.max_failures_per_hour,
        )
    if result.outcome is Outcome.registered:
        await refresh_menu(context, update.effective_user.id)
    await update.effective_message.reply_html(await _reply(update, context, result))


async def _reply(update: Update, context: Context, result: Registration) -> str:
    if result.outcome in (Outcome.registered, Outcome.already):
        actor = await load_actor(update, context)
        assert actor is not None
        msg = texts.REGISTERED if result.outcome is Outcome.registered else texts.ALREADY
        return msg(actor.language, title=actor.title, unit=actor.unit_name)
    return REFUSALS[result.outcome](user_lang(update))


def register_handlers(application: Application) -> None:
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler(["daftar", "register"], daftar))
