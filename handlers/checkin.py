"""`/hadir`, a shared location, and `/selesai`."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler, MessageHandler, filters

from bot.render.checkin import ASK_LOCATION, checkin_text, checkout_text, done_keyboard, location_keyboard
from bot.services import chatstate
from bot.services.checkin import Presence, check_out
from bot.services.people import Actor
from bot.storage.db import quick
from handlers import escorts, incidents, sitrep
from handlers.common import Context, registered, waiting_for


@registered
async def hadir(update: Update, context: Context, actor: Actor) -> None:
    """Ask for the location with a button: a typed place proves nothing.

    A location that follows is a check-in unless a report waits for one, so
    /hadir only has to forget such a wait (a read, and rarely a write).
    """
    assert update.effective_message and update.effective_user
    if waiting_for(context) is not None:
        async with quick(context.runtime.sessions) as session:
            await chatstate.clear(session, telegram_user_id=update.effective_user.id)
            await session.commit()
    await update.effective_message.reply_html(
        ASK_LOCATION(actor.language), reply_markup=location_keyboard(actor.language)
    )


ATTACHERS = {"sitrep": sitrep.attach_location, "contingency": incidents.attach_location}


@registered
async def location(update: Update, context: Context, actor: Actor) -> None:
    """A location is an escort's position if the sender's escort takes it, else a check-in, unless a report is
    waiting for it; check-ins of the moment are made together. Whether the sender rides an escort came with
    their lookup (`Actor.escorting`), so a plain check-in asks nothing more.

    It counts at the time it was sent: `message.date`, or for a moved live
    location the time of that position (`edit_date`), however late it is read.
    """
    message = update.effective_message
    assert message and message.location and update.effective_user
    rt = context.runtime
    if actor.escorting and await escorts.track(update, context, actor):
        return
    waiting = waiting_for(context)
    if waiting is not None and waiting.ref_id is not None and waiting.kind in ATTACHERS:
        await ATTACHERS[waiting.kind](update, context, actor, waiting.ref_id)
        return
    presence = Presence(
        actor.personnel_id,
        message.location.latitude,
        message.location.longitude,
        sent_at=message.edit_date or message.date,
        forwarded=message.forward_origin is not None,
    )
    result = await rt.checkins(presence)
    text = checkin_text(
        result,
        actor.language,
        rt.settings.operation.zone,
        geofence_m=rt.settings.checkin.geofence_meters,
        opens_before_minutes=rt.settings.checkin.opens_before_minutes,
    )
    await message.reply_html(text, reply_markup=done_keyboard())


@registered
async def selesai(update: Update, context: Context, actor: Actor) -> None:
    """Close the shift that was running when /selesai was sent."""
    message = update.effective_message
    assert message
    rt = context.runtime
    async with quick(rt.sessions) as session:
        result = await check_out(
            session, personnel_id=actor.personnel_id, now=rt.now(), settings=rt.settings.checkin, sent_at=message.date
        )
    await message.reply_html(checkout_text(result, actor.language, rt.settings.operation.zone))


def register_handlers(application: Application) -> None:
    application.add_handler(CommandHandler(["hadir", "checkin"], hadir))
    application.add_handler(CommandHandler(["selesai", "checkout"], selesai))
    application.add_handler(
        MessageHandler(filters.LOCATION & filters.ChatType.PRIVATE & ~filters.UpdateType.EDITED, location)
    )
