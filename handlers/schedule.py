"""`/jadwal`: a person's own shifts and posts."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler

from bot.render.schedule import schedule_pages
from bot.services.people import Actor
from bot.services.schedule import shift_plans
from handlers.common import Context, registered


@registered
async def jadwal(update: Update, context: Context, actor: Actor) -> None:
    """Current shift first, then the ones to come."""
    assert update.effective_message
    rt = context.runtime
    now = rt.now()
    async with rt.sessions() as session:
        plans = await shift_plans(session, personnel_id=actor.personnel_id, now=now)
    for page in schedule_pages(plans, actor.language, rt.settings.operation.zone, now):
        await update.effective_message.reply_html(page)


def register_handlers(application: Application) -> None:
    application.add_handler(CommandHandler(["jadwal", "schedule"], jadwal))
