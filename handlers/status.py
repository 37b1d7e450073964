"""`/status [UNIT]` and its buttons: drill down, page, missing list, refresh.

In a private chat the sender must be a commander; in a group, anyone may
ask if the group is a registered command group. The service decides, from
the database, on the command and on every press.
"""

from __future__ import annotations

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.render import Lang, lang_of
from bot.render.status import BUTTONS, missing_keyboard, missing_text, popup, refusal_text, status_keyboard, status_text
from bot.services import status as service
from bot.services.status import MissingPage, Refusal, UnitStatus, Viewer
from handlers.common import Context, edit_message, load_actor, user_lang


async def viewer_of(update: Update, context: Context) -> tuple[Viewer, Lang]:
    """Who asks, and in which language to answer (a group hears the sender's, else the operation's)."""
    actor = await load_actor(update, context)
    chat = update.effective_chat
    in_group = chat is not None and chat.type != ChatType.PRIVATE
    if actor is not None:
        lang = lang_of(actor.language)
    elif in_group:
        lang = lang_of(context.runtime.settings.operation.language)
    else:
        lang = user_lang(update)
    return Viewer(actor=actor, group_chat_id=chat.id if in_group and chat else None), lang


async def status(update: Update, context: Context) -> None:
    """The summary of the viewer's unit, or of the unit named."""
    message = update.effective_message
    assert message
    rt = context.runtime
    viewer, lang = await viewer_of(update, context)
    code = context.args[0] if context.args else None
    async with rt.sessions() as session:
        view = await service.status_for(
            session, viewer=viewer, unit_code=code, now=rt.now(), staffing=rt.settings.staffing
        )
    if isinstance(view, Refusal):
        await message.reply_html(refusal_text(view, lang, code=code, in_group=viewer.group_chat_id is not None))
        return
    zone = rt.settings.operation.zone
    await message.reply_html(status_text(view, lang, zone), reply_markup=status_keyboard(view, lang))


async def pressed(update: Update, context: Context) -> None:
    """Every `st:` button; the press is authorized again before anything is counted."""
    query = update.callback_query
    assert query and query.data
    rt = context.runtime
    viewer, lang = await viewer_of(update, context)
    press = BUTTONS.parse(query.data)
    kind, unit_id, page = press.kind, press.int(0), press.int(1) if len(press.values) > 1 else 0
    async with rt.sessions() as session:
        if kind in ("m", "mp"):
            view: UnitStatus | MissingPage | Refusal = await service.missing_for(
                session, viewer=viewer, unit_id=unit_id, page=page, now=rt.now()
            )
        else:
            view = await service.status_for(
                session, viewer=viewer, unit_id=unit_id, now=rt.now(), staffing=rt.settings.staffing
            )
    if isinstance(view, Refusal):
        await _answer(update, popup(refusal_text(view, lang, in_group=viewer.group_chat_id is not None)), alert=True)
        return
    await _answer(update)
    zone = rt.settings.operation.zone
    if isinstance(view, MissingPage):
        text, keyboard = missing_text(view, lang, zone), missing_keyboard(view, lang)
    else:
        text, keyboard = status_text(view, lang, zone, page=page), status_keyboard(view, lang, page=page)
    if kind in ("u", "m"):
        assert isinstance(query.message, Message), "a pressed button's message is recent, hence accessible"
        await query.message.reply_html(text, reply_markup=keyboard)
    else:
        await edit_message(query, text, keyboard)


async def _answer(update: Update, text: str | None = None, *, alert: bool = False) -> None:
    """A national head's count takes seconds; a press answered too late is not worth an error."""
    assert update.callback_query
    try:
        await update.callback_query.answer(text, show_alert=alert)
    except BadRequest as error:
        if "too old" not in str(error).lower():
            raise


def register_handlers(application: Application) -> None:
    application.add_handler(CommandHandler("status", status))
    application.add_handler(CallbackQueryHandler(pressed, pattern=BUTTONS.pattern()))
