"""`/rekap [UNIT]` (`/recap`): a chart, a workbook and a GeoJSON of the shift, sent as files.

Who may ask is what `/status` allows (commanders in private, anyone in a
registered command group); the files are built by the service.
"""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import Application, CommandHandler

from bot.render.reports import GEOJSON, NO_SHIFT, WORKBOOK, chart_caption
from bot.render.status import refusal_text
from bot.services import reports as service
from bot.services.status import Refusal
from handlers.common import Context
from handlers.status import viewer_of


async def rekap(update: Update, context: Context) -> None:
    """Show "sending a file" while the files are built (seconds for a Polda), then send them as replies."""
    message = update.effective_message
    assert message
    rt = context.runtime
    viewer, lang = await viewer_of(update, context)
    code = context.args[0] if context.args else None
    await message.reply_chat_action(ChatAction.UPLOAD_DOCUMENT)
    async with rt.sessions() as session:
        files = await service.recap_for(session, viewer=viewer, unit_code=code, now=rt.now(), settings=rt.settings)
    if isinstance(files, Refusal):
        await message.reply_html(refusal_text(files, lang, code=code, in_group=viewer.group_chat_id is not None))
        return
    if files is None:
        await message.reply_html(NO_SHIFT(lang))
        return
    zone = rt.settings.operation.zone
    await message.reply_photo(files.chart, caption=chart_caption(files, lang, zone), filename=f"{files.stem}.png")
    await message.reply_document(files.workbook, filename=f"{files.stem}.xlsx", caption=WORKBOOK(lang))
    await message.reply_document(files.geojson, filename=f"{files.stem}.geojson", caption=GEOJSON(lang))


def register_handlers(application: Application) -> None:
    application.add_handler(CommandHandler(["rekap", "recap"], rekap))
