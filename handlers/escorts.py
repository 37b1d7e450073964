"""`/kawal`, its buttons, an escort member's positions, and `/terima`.

A member's `/kawal` lists their own escorts with the depart and arrive
buttons; a commander's (or a command group's) lists the subtree's, with the
same rule as `/status` on who may see which unit, asked again on every press.
A location from a member whose escort takes it is that escort's position
(handlers/checkin.py asks `track` first); a live location's moves come as edited
messages and are answered only when they depart, pass a via or arrive.
"""

from __future__ import annotations

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.render import Lang, lang_of
from bot.render import escort_board as board_texts
from bot.render import escorts as texts
from bot.render.registration import NOT_REGISTERED
from bot.render.status import popup, refusal_text
from bot.services.escorts import ActionOutcome
from bot.services.people import Actor
from bot.services.status import Refusal, Viewer
from flows import escorts as flow
from handlers.common import Context, answer, edit_message, registered, user_lang

MEMBER_PRESSES = (texts.PRESS_DEPART, texts.PRESS_ARRIVE)
BOARD_PRESSES = (texts.PRESS_DETAIL, texts.PRESS_UNIT, texts.PRESS_PAGE)


def _viewer(update: Update, context: Context) -> tuple[Viewer, Actor | None, Lang]:
    """Who asks, from the sender looked up as the update arrived; a group hears the operation's language."""
    assert context.arrival is not None
    actor = context.arrival.sender
    chat = update.effective_chat
    in_group = chat is not None and chat.type != ChatType.PRIVATE
    if actor is not None:
        lang = lang_of(actor.language)
    elif in_group:
        lang = lang_of(context.runtime.settings.operation.language)
    else:
        lang = user_lang(update)
    return Viewer(actor=actor, group_chat_id=chat.id if in_group and chat else None), actor, lang


async def kawal(update: Update, context: Context) -> None:
    """A member's own escorts; a commander's or a group's subtree (after their own, if they ride too)."""
    message = update.effective_message
    assert message
    rt = context.runtime
    viewer, actor, lang = _viewer(update, context)
    if viewer.group_chat_id is None and actor is None:
        await message.reply_html(NOT_REGISTERED(lang))
        return
    code = context.args[0] if context.args else None
    if viewer.group_chat_id is None and actor is not None and (not actor.is_commander or code is None):
        async with rt.sessions() as session:
            duties = await flow.duties(session, personnel_id=actor.personnel_id, now=rt.now(), settings=rt.settings)
        if duties or not actor.is_commander:
            await _send_duties(message, duties, lang, context)
        if not actor.is_commander:
            return
    await _board(update, context, viewer, lang, code=code)


async def _send_duties(message: Message, duties: list[flow.Duty], lang: Lang, context: Context) -> None:
    pairs = [(duty.role, duty.detail) for duty in duties]
    zone = context.runtime.settings.operation.zone
    await message.reply_html(texts.duties_text(pairs, lang, zone), reply_markup=texts.duties_keyboard(pairs, lang))


async def _board(
    update: Update,
    context: Context,
    viewer: Viewer,
    lang: Lang,
    *,
    code: str | None = None,
    unit_id: int | None = None,
    page: int = 0,
    edit: bool = False,
) -> None:
    rt = context.runtime
    now = rt.now()
    async with rt.sessions() as session:
        view = await flow.board(session, viewer=viewer, now=now, unit_code=code, unit_id=unit_id, page=page)
    query = update.callback_query
    if isinstance(view, Refusal):
        said = refusal_text(view, lang, code=code, in_group=viewer.group_chat_id is not None)
        await answer(update, popup(said) if query is not None else said)
        return
    zone = rt.settings.operation.zone
    text = board_texts.board_text(
        view.unit, view.counts, view.escorts, lang, zone, now=now, page=view.page, pages=view.pages
    )
    keyboard = board_texts.board_keyboard(
        view.unit, view.escorts, view.children, lang, page=view.page, pages=view.pages
    )
    if query is not None and edit:
        await query.answer()
        await edit_message(query, text, keyboard)
        return
    if query is not None:
        await query.answer()
    message = update.effective_message
    assert isinstance(message, Message), "a pressed button's message is recent, hence accessible"
    await message.reply_html(text, reply_markup=keyboard)


async def board_pressed(update: Update, context: Context) -> None:
    """A detail, a unit below, a page: authorized again, as if the command had been sent."""
    query = update.callback_query
    assert query and query.data
    viewer, _, lang = _viewer(update, context)
    press = texts.BUTTONS.parse(query.data)
    if press.kind == texts.PRESS_UNIT.kind:
        await _board(update, context, viewer, lang, unit_id=press.int(0))
    elif press.kind == texts.PRESS_PAGE.kind:
        await _board(update, context, viewer, lang, unit_id=press.int(0), page=press.int(1), edit=True)
    else:
        await _detail(update, context, viewer, lang, escort_id=press.int(0))


async def _detail(update: Update, context: Context, viewer: Viewer, lang: Lang, *, escort_id: int) -> None:
    rt = context.runtime
    async with rt.sessions() as session:
        found = await flow.detail(session, viewer=viewer, escort_id=escort_id, now=rt.now(), settings=rt.settings)
    query = update.callback_query
    assert query
    if found is None:
        await query.answer(popup(texts.NOT_FOUND(lang)), show_alert=True)
        return
    if isinstance(found, Refusal):
        await query.answer(popup(refusal_text(found, lang, in_group=viewer.group_chat_id is not None)), show_alert=True)
        return
    await query.answer()
    assert isinstance(query.message, Message), "a pressed button's message is recent, hence accessible"
    await query.message.reply_html(board_texts.detail_text(found, lang, rt.settings.operation.zone))


@registered
async def member_pressed(update: Update, context: Context, actor: Actor) -> None:
    """Depart or arrive: the service decides whether this person may, and whether it was done already."""
    query = update.callback_query
    assert query and query.data
    rt = context.runtime
    press = texts.BUTTONS.parse(query.data)
    escort_id, now, zone = press.int(0), rt.now(), rt.settings.operation.zone
    async with rt.sessions() as session:
        if press.kind == texts.PRESS_DEPART.kind:
            result = await flow.depart(session, actor=actor, escort_id=escort_id, now=now)
        else:
            result = await flow.arrive(session, actor=actor, escort_id=escort_id, now=now, settings=rt.settings)
    lang = actor.language
    if result.outcome is not ActionOutcome.done:
        refused = result.outcome in (ActionOutcome.not_member, ActionOutcome.not_found)
        await query.answer(popup(texts.action_popup(result, lang, zone)), show_alert=refused)
        return
    arrived = press.kind == texts.PRESS_ARRIVE.kind
    if arrived:
        rt.wake_dispatcher()  # the lead's note
        await query.answer()
    else:
        await query.answer(popup(texts.action_popup(result, lang, zone)))
    async with rt.sessions() as session:
        duties = await flow.duties(session, personnel_id=actor.personnel_id, now=now, settings=rt.settings)
    pairs = [(duty.role, duty.detail) for duty in duties]
    await edit_message(query, texts.duties_text(pairs, lang, zone), texts.duties_keyboard(pairs, lang))
    if arrived and result.escort is not None and isinstance(query.message, Message):
        await query.message.reply_html(texts.arrived_text(result.escort, lang, zone, at=now))


async def track(update: Update, context: Context, actor: Actor) -> bool:
    """A location of an escort member, as their escort's position; False when no escort takes it.

    A forwarded pin is someone else's position, never the escort's: it goes
    the way it always went (a refused check-in).
    """
    message = update.effective_message
    assert message and message.location
    if message.forward_origin is not None:
        return False
    rt = context.runtime
    moved = update.edited_message is not None
    location = message.location
    at = message.edit_date or message.date
    said = await rt.positions(flow.Position(actor, location.latitude, location.longitude, at, answer=not moved))
    if said is None:
        return False
    if said.arrived:
        rt.wake_dispatcher()
    if said.summary is not None:
        text = texts.position_text(
            said.summary,
            said.route,
            actor.language,
            rt.settings.operation.zone,
            at=said.at,
            departed=said.departed,
            arrived=said.arrived,
            passed=said.passed,
            live=location.live_period is not None,
            answer=not moved,
        )
        if text is not None:
            await message.reply_html(text)
    return True


async def moved(update: Update, context: Context) -> None:
    """A live location's move: an escort's position, else nothing, as before (no answer to each move)."""
    assert context.arrival is not None
    actor = context.arrival.sender
    if actor is not None and actor.escorting:
        await track(update, context, actor)


@registered
async def terima(update: Update, context: Context, actor: Actor) -> None:
    """Serah terima: the receiver is answered here, the lead through the outbox."""
    message = update.effective_message
    assert message
    rt = context.runtime
    if not context.args:
        await message.reply_html(texts.RECEIVE_USAGE(actor.language))
        return
    async with rt.sessions() as session:
        result = await flow.receive(session, actor=actor, code=context.args[0], now=rt.now(), settings=rt.settings)
    rt.wake_dispatcher()
    await message.reply_html(texts.receive_text(result, actor.language, rt.settings.operation.zone))


def register_handlers(application: Application) -> None:
    application.add_handler(CommandHandler(["kawal", "escort"], kawal))
    application.add_handler(CommandHandler(["terima", "receive"], terima))
    application.add_handler(CallbackQueryHandler(member_pressed, pattern=texts.BUTTONS.pattern(*MEMBER_PRESSES)))
    application.add_handler(CallbackQueryHandler(board_pressed, pattern=texts.BUTTONS.pattern(*BOARD_PRESSES)))
    application.add_handler(
        MessageHandler(filters.LOCATION & filters.ChatType.PRIVATE & filters.UpdateType.EDITED_MESSAGE, moved)
    )
