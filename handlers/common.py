"""Cross-cutting handler pieces: de-duplication, who is speaking, and the guards.

Every update's sender is looked up in the database as the update arrives,
with its claim: roles and units are never taken from callback data or
cached between updates.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ApplicationHandlerStop, CallbackContext, ContextTypes, ExtBot, TypeHandler

from bot.intake.coalesce import Arrival
from bot.intake.handling import HANDLING
from bot.render import Lang, Msg, lang_of
from bot.render.errors import FAILED
from bot.render.registration import COMMANDERS_ONLY, NOT_REGISTERED, PRIVATE_ONLY
from bot.runtime import Runtime, runtime_of
from bot.services.chatstate import Waiting
from bot.services.people import Actor, actor_for
from bot.storage.db import quick, retry_later

log = logging.getLogger("siaga.handlers")


class Context(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """PTB's context with the bot's wiring typed (registered through `CONTEXT_TYPES`), and what the update
    brought with it when it arrived (`drop_duplicates`); the context lives as long as its update."""

    arrival: Arrival | None = None

    @property
    def runtime(self) -> Runtime:
        return runtime_of(self.bot_data)


CONTEXT_TYPES = ContextTypes(context=Context)
# Coroutine functions, not any awaitable-returning callable: PTB's handlers accept only those.
ActorHandler = Callable[[Update, Context, Actor], Coroutine[Any, Any, None]]
PlainHandler = Callable[[Update, Context], Coroutine[Any, Any, None]]


def user_lang(update: Update) -> Lang:
    """The language of someone not registered yet: their Telegram app's, else Indonesian."""
    user = update.effective_user
    return lang_of("en" if user and (user.language_code or "").startswith("en") else "id")


async def drop_duplicates(update: Update, context: Context) -> None:
    """What every update needs first; a second copy (only possible without the durable intake) stops here.

    The claim brings the sender and what the bot waits for from them, for
    the handlers of this update (PTB's context lives as long as the update).
    """
    user = update.effective_user
    arrival = await context.runtime.arrivals((update.update_id, user.id if user else None))
    if not arrival.first:
        raise ApplicationHandlerStop
    context.arrival = arrival


async def load_actor(update: Update, context: Context) -> Actor | None:
    """The sender as the database has them now: for answers given after a change (registration, language)."""
    if update.effective_user is None:
        return None
    async with quick(context.runtime.sessions) as session:
        return await actor_for(session, telegram_user_id=update.effective_user.id, now=context.runtime.now())


def _arrival(context: Context) -> Arrival:
    """What `drop_duplicates` found for this update as it arrived."""
    assert context.arrival is not None, "drop_duplicates runs first, in its own handler group"
    return context.arrival


def waiting_for(context: Context) -> Waiting | None:
    """What the bot waited for from the sender when this update arrived."""
    return _arrival(context).waiting


async def answer(update: Update, text: str) -> None:
    """Reply to a message, or to a button press with a popup."""
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    elif update.effective_message is not None:
        await update.effective_message.reply_html(text)


async def edit_message(query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
    """Edit a pressed message in place; a repeated press or a refusal that changes nothing is no error."""
    try:
        await query.edit_message_text(text, reply_markup=keyboard)
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise


Refusal = Callable[[Update, Actor], Msg | None]


def _guard(handler: ActorHandler, refuse: Refusal) -> PlainHandler:
    """Look the sender up, refuse strangers and whatever `refuse` names, else run `handler`."""

    @functools.wraps(handler)
    async def guarded(update: Update, context: Context) -> None:
        actor = _arrival(context).sender
        if actor is None:
            await answer(update, NOT_REGISTERED(user_lang(update)))
            return
        refusal = refuse(update, actor)
        if refusal is not None:
            await answer(update, refusal(actor.language))
            return
        await handler(update, context, actor)

    return guarded


def _outside_private_chat(update: Update, actor: Actor) -> Msg | None:
    chat = update.effective_chat
    if update.callback_query is None and chat is not None and chat.type != ChatType.PRIVATE:
        return PRIVATE_ONLY
    return None


def _not_commander(update: Update, actor: Actor) -> Msg | None:
    return None if actor.is_commander else COMMANDERS_ONLY


def registered(handler: ActorHandler) -> PlainHandler:
    """Only registered personnel, in a private chat with the bot."""
    return _guard(handler, _outside_private_chat)


def commander(handler: ActorHandler) -> PlainHandler:
    """Only a komandan or an admin; what they may touch is checked by the service."""
    return _guard(handler, _not_commander)


async def on_error(update: object, context: Context) -> None:
    """Say plainly that nothing was saved, rather than leave someone believing it was.

    Only the update id and the error type are logged: message texts may
    carry names, NRPs or codes.
    """
    error = context.error
    update_id = update.update_id if isinstance(update, Update) else None
    mark = HANDLING.get()
    if mark is not None and not mark.handled and retry_later(error):
        mark.retry = True  # handled again later (bot/intake/updater.py); no answer now
        log.warning("update %s waits for the database (%s)", update_id, type(error).__name__)
        raise ApplicationHandlerStop
    log.error("update %s failed: %s", update_id, type(error).__name__, exc_info=error)
    if not isinstance(update, Update) or update.effective_user is None:
        return
    actor = None
    with contextlib.suppress(Exception):
        actor = await load_actor(update, context)
    lang = actor.language if actor else user_lang(update)
    with contextlib.suppress(TelegramError):
        await answer(update, FAILED(lang))
    raise ApplicationHandlerStop  # one answer per update: no later handler group runs after a failure


def register(application: Application, *, group: int) -> None:
    application.add_handler(TypeHandler(Update, drop_duplicates), group=group)
    application.add_error_handler(on_error)
