"""`/lapor` texts and keyboards: category buttons, the commander's review list."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.render import Html, Msg, local_time, pages
from bot.render.callbacks import Codec
from bot.render.incidents import delay_text
from bot.render.schedule import PHASES
from bot.services.sitrep import SitrepOutcome, SitrepView
from models.enums import SitrepCategory

CATEGORIES = {
    SitrepCategory.aman: Msg(id="✅ Aman", en="✅ All clear"),
    SitrepCategory.logistik: Msg(id="📦 Logistik", en="📦 Logistics"),
    SitrepCategory.gangguan: Msg(id="⚠️ Gangguan", en="⚠️ Disturbance"),
    SitrepCategory.bencana: Msg(id="🌊 Bencana", en="🌊 Disaster"),
    SitrepCategory.akses: Msg(id="🚧 Akses", en="🚧 Access"),
    SitrepCategory.lainnya: Msg(id="📝 Lainnya", en="📝 Other"),
}

USAGE = Msg(
    id="Format: <code>/lapor TEKS</code>, misalnya <code>/lapor Situasi TPS aman, pemilih mulai antre</code>.",
    en="Usage: <code>/report TEXT</code>, for example <code>/report All quiet, voters queueing</code>.",
)
CHOOSE = Msg(id="Pilih kategori laporan:", en="Choose the report category:")
FILED = Msg(
    id="✅ Laporan #{id} tercatat ({category}). Kirim foto atau lokasi bila ada, dalam 10 menit.",
    en="✅ Report #{id} recorded ({category}). Send a photo or location if you have one, within 10 minutes.",
)
ALREADY = Msg(id="Laporan ini sudah tercatat.", en="This report is already recorded.")
NOT_YOURS = Msg(id="⛔ Ini bukan laporan Anda.", en="⛔ This is not your report.")
ATTACHED = Msg(id="📎 Terlampir pada laporan #{id}.", en="📎 Attached to report #{id}.")
UNKNOWN = Msg(id="Laporan tidak ditemukan.", en="Report not found.")
FORBIDDEN = Msg(id="⛔ Laporan ini di luar satuan Anda.", en="⛔ This report is outside your command.")
VERIFIED = Msg(id="✔️ Laporan #{id} diverifikasi.", en="✔️ Report #{id} verified.")
REVIEW_HEADER = Msg(id="<b>Laporan yang belum diverifikasi</b>", en="<b>Reports awaiting verification</b>")
BUTTONS = Codec("sr")
PRESS_CATEGORY = BUTTONS.button("c", int, str)
PRESS_VERIFY = BUTTONS.button("v", int)

REVIEW_EMPTY = Msg(id="Tidak ada laporan yang menunggu verifikasi.", en="No reports await verification.")
REVIEW_ITEM = Msg(
    id="#{id} {at}{delay} · {category} · {phase}\n{reporter}, {tps}\n{text}",
    en="#{id} {at}{delay} · {category} · {phase}\n{reporter}, {tps}\n{text}",
)
REVIEW_DELAY = Msg(id=" (diterima {delay} kemudian)", en=" (received {delay} later)")
VERIFY = Msg(id="✔️ Verifikasi #{id}", en="✔️ Verify #{id}")


def category_keyboard(sitrep_id: int, lang: str) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(label(lang), callback_data=PRESS_CATEGORY.data(sitrep_id, category.value))
        for category, label in CATEGORIES.items()
    ]
    return InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])


def filed_text(sitrep_id: int, category: str, lang: str) -> Html:
    return FILED(lang, id=sitrep_id, category=CATEGORIES[SitrepCategory(category)](lang))


OUTCOME_TEXTS = {
    SitrepOutcome.already: ALREADY,
    SitrepOutcome.not_yours: NOT_YOURS,
    SitrepOutcome.unknown: UNKNOWN,
    SitrepOutcome.invalid: UNKNOWN,
    SitrepOutcome.forbidden: FORBIDDEN,
}


def _delay(item: SitrepView, lang: str) -> Html:
    """How late the bot read the report, when that was more than a minute; it is listed at its sent time."""
    delay = delay_text(item.created_at - item.sent_at, lang)
    return REVIEW_DELAY(lang, delay=delay) if delay else Html("")


def review_pages(items: list[SitrepView], lang: str, zone: ZoneInfo) -> list[tuple[Html, InlineKeyboardMarkup | None]]:
    """The review list; one verify button per report, on the page that shows it."""
    if not items:
        return [(REVIEW_EMPTY(lang), None)]
    blocks = [
        REVIEW_ITEM(
            lang,
            id=item.id,
            at=local_time(item.sent_at, zone, lang, with_date=False),
            delay=_delay(item, lang),
            category=CATEGORIES[SitrepCategory(item.category)](lang) if item.category else "-",
            phase=PHASES[item.phase](lang) if item.phase else "-",
            reporter=item.reporter,
            tps=item.tps_code or "-",
            text=item.text[:500],
        )
        for item in items
    ]
    result = []
    for page in pages([REVIEW_HEADER(lang)] + blocks):
        ids = [item.id for item in items if f"#{item.id} " in page]
        keyboard = InlineKeyboardMarkup(
            [[InlineKeyboardButton(VERIFY(lang, id=i), callback_data=PRESS_VERIFY.data(i))] for i in ids]
        )
        result.append((page, keyboard if ids else None))
    return result
