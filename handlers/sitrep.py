"""`/lapor TEXT`, its category buttons, a following photo or location, and verification."""

from __future__ import annotations

from datetime import timedelta

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.render.sitrep import (
    ATTACHED,
    BUTTONS,
    CHOOSE,
    OUTCOME_TEXTS,
    PRESS_CATEGORY,
    PRESS_VERIFY,
    USAGE,
    VERIFIED,
    category_keyboard,
    filed_text,
    review_pages,
)
from bot.services import chatstate
from bot.services import sitrep as service
from bot.services.people import Actor
from bot.services.sitrep import SitrepOutcome
from handlers.common import Context, registered, waiting_for

WAIT_FOR_ATTACHMENT = timedelta(minutes=10)


@registered
async def lapor(update: Update, context: Context, actor: Actor) -> None:
    """File a report; a commander without text gets the review list instead."""
    message = update.effective_message
    assert message and message.text
    rt = context.runtime
    text = message.text.partition(" ")[2].strip()
    if not text:
        if actor.is_commander:
            await _review(update, context, actor)
        else:
            await message.reply_html(USAGE(actor.language))
        return
    async with rt.sessions() as session:
        sitrep_id = await service.draft(
            session,
            actor=actor,
            text=text,
            now=rt.now(),
            sent_at=message.date,
            opens_before=timedelta(minutes=rt.settings.checkin.opens_before_minutes),
        )
    await message.reply_html(CHOOSE(actor.language), reply_markup=category_keyboard(sitrep_id, actor.language))


async def _review(update: Update, context: Context, actor: Actor) -> None:
    assert update.effective_message
    rt = context.runtime
    async with rt.sessions() as session:
        items = await service.recent(session, actor=actor)
    for text, keyboard in review_pages(items, actor.language, rt.settings.operation.zone):
        await update.effective_message.reply_html(text, reply_markup=keyboard)


@registered
async def category_pressed(update: Update, context: Context, actor: Actor) -> None:
    query = update.callback_query
    assert query and query.data and update.effective_user
    press = BUTTONS.parse(query.data)
    raw_id, category = press.int(0), press.word(1)
    rt = context.runtime
    async with rt.sessions() as session:
        outcome = await service.file(session, sitrep_id=raw_id, actor=actor, category=category, now=rt.now())
        if outcome is SitrepOutcome.filed:
            await chatstate.expect(
                session,
                telegram_user_id=update.effective_user.id,
                kind="sitrep",
                ref_id=raw_id,
                now=rt.now(),
                ttl=WAIT_FOR_ATTACHMENT,
            )
            await session.commit()
    if outcome is not SitrepOutcome.filed:
        await query.answer(OUTCOME_TEXTS[outcome](actor.language), show_alert=True)
        return
    await query.answer()
    await query.edit_message_text(filed_text(raw_id, category, actor.language))


@registered
async def verify_pressed(update: Update, context: Context, actor: Actor) -> None:
    query = update.callback_query
    assert query and query.data
    sitrep_id = BUTTONS.parse(query.data).int(0)
    rt = context.runtime
    async with rt.sessions() as session:
        outcome = await service.verify(session, sitrep_id=sitrep_id, actor=actor, now=rt.now())
    if outcome is SitrepOutcome.verified:
        await query.answer(VERIFIED(actor.language, id=sitrep_id))
    else:
        await query.answer(OUTCOME_TEXTS[outcome](actor.language), show_alert=True)


async def attach_location(update: Update, context: Context, actor: Actor, sitrep_id: int) -> None:
    """Called by the location handler when a report is waiting for one."""
    message = update.effective_message
    assert message and message.location
    rt = context.runtime
    async with rt.sessions() as session:
        outcome = await service.attach(
            session, sitrep_id=sitrep_id, actor=actor, lat=message.location.latitude, lon=message.location.longitude
        )
    await _attached_reply(update, actor, sitrep_id, outcome)


@registered
async def photo(update: Update, context: Context, actor: Actor) -> None:
    message = update.effective_message
    assert message and message.photo
    waiting = waiting_for(context)
    if waiting is None or waiting.kind != "sitrep" or waiting.ref_id is None:
        await message.reply_html(USAGE(actor.language))
        return
    async with context.runtime.sessions() as session:
        outcome = await service.attach(
            session, sitrep_id=waiting.ref_id, actor=actor, photo_file_id=message.photo[-1].file_id
        )
    await _attached_reply(update, actor, waiting.ref_id, outcome)


async def _attached_reply(update: Update, actor: Actor, sitrep_id: int, outcome: SitrepOutcome) -> None:
    assert update.effective_message
    text = (
        ATTACHED(actor.language, id=sitrep_id)
        if outcome is SitrepOutcome.attached
        else OUTCOME_TEXTS[outcome](actor.language)
    )
    await update.effective_message.reply_html(text)


def register_handlers(application: Application) -> None:
    application.add_handler(CommandHandler(["lapor", "report"], lapor))
    application.add_handler(CallbackQueryHandler(category_pressed, pattern=BUTTONS.pattern(PRESS_CATEGORY)))
    application.add_handler(CallbackQueryHandler(verify_pressed, pattern=BUTTONS.pattern(PRESS_VERIFY)))
    application.add_handler(MessageHandler(filters.PHOTO & filters.ChatType.PRIVATE, photo))
