"""`/darurat TEXT`, its severity buttons and location, the alert's buttons, and `/insiden`.

Alerts to groups, their edits and notes to reporters go through the outbox
(queued by flows/incidents.py); what is answered here directly is the press
itself (a popup or a toast) and the presser's own `/insiden` page.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.render.checkin import done_keyboard, location_keyboard
from bot.render.incidents import (
    ASK_LOCATION,
    BUTTONS,
    CHOOSE,
    LIST_FORBIDDEN,
    LOCATED,
    PRESS_ACK,
    PRESS_ACK_ON_PAGE,
    PRESS_ESCALATE,
    PRESS_PAGE,
    PRESS_RESOLVE,
    PRESS_RESOLVE_ON_PAGE,
    PRESS_SEVERITY,
    USAGE,
    list_page,
    raised_text,
    result_popup,
    severity_markup,
)
from bot.render.registration import UNREGISTERED_GROUP
from bot.services import chatstate
from bot.services import incidents as service
from bot.services.incidents import IncidentOutcome, ListOutcome
from bot.services.people import Actor
from flows import incidents as flow
from handlers.common import Context, commander, edit_message, registered

WAIT_FOR_LOCATION = timedelta(minutes=10)
CHANGED = {
    IncidentOutcome.raised,
    IncidentOutcome.acknowledged,
    IncidentOutcome.resolved,
    IncidentOutcome.escalated,
    IncidentOutcome.located,
}
ACTIONS = {"a": flow.acknowledge, "r": flow.resolve, "n": flow.escalate_now}


def markup(data: dict[str, Any] | None) -> InlineKeyboardMarkup | None:
    """The render's Bot API JSON keyboard as a PTB object."""
    return InlineKeyboardMarkup.de_json(data, None) if data else None


@registered
async def darurat(update: Update, context: Context, actor: Actor) -> None:
    """Draft the contingency and ask its severity; a location shared next attaches to it."""
    message = update.effective_message
    assert message and message.text and update.effective_user
    text = message.text.partition(" ")[2].strip()
    if not text:
        await message.reply_html(USAGE(actor.language))
        return
    rt = context.runtime
    async with rt.sessions() as session:
        contingency_id = await service.draft(
            session,
            actor=actor,
            text=text,
            now=rt.now(),
            sent_at=message.date,
            opens_before=timedelta(minutes=rt.settings.checkin.opens_before_minutes),
        )
        await chatstate.expect(
            session,
            telegram_user_id=update.effective_user.id,
            kind="contingency",
            ref_id=contingency_id,
            now=rt.now(),
            ttl=WAIT_FOR_LOCATION,
        )
        await session.commit()
    await message.reply_html(
        CHOOSE(actor.language, id=contingency_id), reply_markup=markup(severity_markup(contingency_id, actor.language))
    )


@registered
async def severity_pressed(update: Update, context: Context, actor: Actor) -> None:
    """Raise it: the reporter's message now says which groups have it."""
    query = update.callback_query
    assert query and query.data
    assert isinstance(query.message, Message), "a pressed button's message is recent, hence accessible"
    press = BUTTONS.parse(query.data)
    raw_id, severity = press.int(0), press.word(1)
    rt = context.runtime
    async with rt.sessions() as session:
        result = await flow.choose_severity(
            session, contingency_id=raw_id, actor=actor, severity=severity, now=rt.now(), settings=rt.settings
        )
    if result.outcome is not IncidentOutcome.raised:
        text, _ = result_popup(result, actor.language, rt.settings.operation.zone)
        await query.answer(text, show_alert=True)
        return
    context.runtime.wake_dispatcher()
    await query.answer()
    await query.edit_message_text(raised_text(result, actor.language))
    await query.message.reply_html(
        ASK_LOCATION(actor.language, id=raw_id), reply_markup=location_keyboard(actor.language)
    )


async def attach_location(update: Update, context: Context, actor: Actor, contingency_id: int) -> None:
    """Called by the location handler (handlers/checkin.py) when a contingency waits for one."""
    message = update.effective_message
    assert message and message.location and update.effective_user
    rt = context.runtime
    async with rt.sessions() as session:
        result = await flow.attach_location(
            session,
            contingency_id=contingency_id,
            actor=actor,
            lat=message.location.latitude,
            lon=message.location.longitude,
            now=rt.now(),
            settings=rt.settings,
        )
        await chatstate.clear(session, telegram_user_id=update.effective_user.id)
        await session.commit()
    if result.outcome is IncidentOutcome.located:
        context.runtime.wake_dispatcher()
        await message.reply_html(LOCATED(actor.language, id=contingency_id), reply_markup=done_keyboard())
    else:
        text, _ = result_popup(result, actor.language, rt.settings.operation.zone)
        await message.reply_text(text, reply_markup=done_keyboard())


@registered
async def action_pressed(update: Update, context: Context, actor: Actor) -> None:
    """Acknowledge, resolve or escalate, from an alert in a group or from an `/insiden` page.

    Authority is the service's to decide; the alert copies are edited
    through the outbox, an `/insiden` page (which carries its page number)
    is redrawn here.
    """
    query = update.callback_query
    assert query and query.data
    press = BUTTONS.parse(query.data)
    action, contingency_id = press.kind, press.int(0)
    rt = context.runtime
    async with rt.sessions() as session:
        result = await ACTIONS[action](
            session, contingency_id=contingency_id, actor=actor, now=rt.now(), settings=rt.settings
        )
    text, alert = result_popup(result, actor.language, rt.settings.operation.zone)
    await query.answer(text, show_alert=alert)
    if result.outcome in CHANGED:
        context.runtime.wake_dispatcher()
    if len(press.values) > 1:
        await _redraw(update, context, actor, press.int(1))


@registered
async def page_pressed(update: Update, context: Context, actor: Actor) -> None:
    query = update.callback_query
    assert query and query.data
    await query.answer()
    await _redraw(update, context, actor, BUTTONS.parse(query.data).int(0))


async def _page(update: Update, context: Context, actor: Actor, page: int) -> tuple[str, Any]:
    chat = update.effective_chat
    rt = context.runtime
    group_chat = chat.id if chat is not None and chat.type != ChatType.PRIVATE else None
    async with rt.sessions() as session:
        listing = await service.open_incidents(session, actor=actor, page=page, chat_id=group_chat)
    if listing.outcome is ListOutcome.unregistered_group:
        return UNREGISTERED_GROUP(actor.language), None
    if listing.outcome is ListOutcome.forbidden:
        return LIST_FORBIDDEN(actor.language), None
    text, keyboard = list_page(listing, actor.language, rt.now())
    return text, markup(keyboard)


async def _redraw(update: Update, context: Context, actor: Actor, page: int) -> None:
    assert update.callback_query
    text, keyboard = await _page(update, context, actor, page)
    await edit_message(update.callback_query, text, keyboard)


@commander
async def insiden(update: Update, context: Context, actor: Actor) -> None:
    """Open contingencies of the commander's subtree (of the group's unit, in a command group)."""
    assert update.effective_message
    text, keyboard = await _page(update, context, actor, 0)
    await update.effective_message.reply_html(text, reply_markup=keyboard)


def register_handlers(application: Application) -> None:
    application.add_handler(CommandHandler(["darurat", "sos"], darurat))
    application.add_handler(CommandHandler(["insiden", "incidents"], insiden))
    application.add_handler(CallbackQueryHandler(severity_pressed, pattern=BUTTONS.pattern(PRESS_SEVERITY)))
    application.add_handler(
        CallbackQueryHandler(
            action_pressed,
            pattern=BUTTONS.pattern(PRESS_ACK, PRESS_RESOLVE, PRESS_ESCALATE, PRESS_ACK_ON_PAGE, PRESS_RESOLVE_ON_PAGE),
        )
    )
    application.add_handler(CallbackQueryHandler(page_pressed, pattern=BUTTONS.pattern(PRESS_PAGE)))
