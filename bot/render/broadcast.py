"""`/siaran` texts: usage and refusals, the message recipients get, the sender's delivery report."""

from __future__ import annotations

from bot.render import Html, Msg, clip
from bot.services.broadcast import BroadcastOutcome, BroadcastResult

EXCERPT = 80

USAGE = Msg(
    id="Format: <code>/siaran TEKS</code> — pesan ke semua personel terdaftar di satuan Anda dan di bawahnya.\n"
    "Untuk satu satuan saja: <code>/siaran KODE_SATUAN TEKS</code>.",
    en="Usage: <code>/broadcast TEXT</code> — a message to every registered person in your unit and below.\n"
    "For one unit only: <code>/broadcast UNIT_CODE TEXT</code>.",
)
TOO_LONG = Msg(
    id="❌ Siaran terlalu panjang: paling banyak {limit} karakter. Persingkat atau bagi menjadi beberapa siaran.",
    en="❌ The broadcast is too long: at most {limit} characters. Shorten it or split it into several.",
)
FORBIDDEN = Msg(
    id="⛔ {unit} di luar satuan Anda: siaran hanya untuk satuan Anda dan di bawahnya.",
    en="⛔ {unit} is outside your command: you can only broadcast to your unit and those below it.",
)
NO_RECIPIENTS = Msg(
    id="Tidak ada penerima: belum ada personel terdaftar yang dapat dihubungi di {unit} "
    "({unregistered} belum terdaftar, {unreachable} tidak terjangkau).",
    en="Nobody to send to: no registered, reachable personnel in {unit} "
    "({unregistered} not registered, {unreachable} unreachable).",
)
QUEUED = Msg(
    id="📢 Siaran #{id} ke {unit} sedang dikirim kepada <b>{n}</b> personel.{left_out}\n"
    "Laporan pengiriman menyusul setelah selesai.",
    en="📢 Broadcast #{id} to {unit} is being sent to <b>{n}</b> personnel.{left_out}\n"
    "A delivery report follows when it is done.",
)
LEFT_OUT = Msg(
    id=" Tidak dikirimi: {unregistered} belum terdaftar, {unreachable} tidak terjangkau.",
    en=" Not sent to: {unregistered} not registered, {unreachable} unreachable.",
)
BROADCAST = Msg(
    id="📢 <b>Siaran</b> dari {sender} ({unit}):\n\n{text}",
    en="📢 <b>Broadcast</b> from {sender} ({unit}):\n\n{text}",
)
REPORT = Msg(
    id="📊 <b>Laporan siaran #{id}</b> ke {unit}\n<i>{excerpt}</i>\n\n"
    "✅ Terkirim: <b>{delivered}</b> dari {recipients}\n"
    "📵 Tidak terjangkau: {unreachable}\n"
    "⏳ Tertunda: {pending}\n"
    "👤 Belum terdaftar (tidak dikirimi): {unregistered}",
    en="📊 <b>Broadcast #{id} report</b> to {unit}\n<i>{excerpt}</i>\n\n"
    "✅ Delivered: <b>{delivered}</b> of {recipients}\n"
    "📵 Unreachable: {unreachable}\n"
    "⏳ Pending: {pending}\n"
    "👤 Not registered (not sent to): {unregistered}",
)


def broadcast_text(*, sender: str, unit: str, text: str, lang: str) -> Html:
    """What each recipient reads: who sent it, for which unit, and the text as typed (escaped)."""
    return BROADCAST(lang, sender=sender, unit=unit, text=text)


def queued_text(result: BroadcastResult, lang: str) -> Html:
    left_out = ""
    if result.unregistered or result.unreachable:
        left_out = LEFT_OUT(lang, unregistered=result.unregistered, unreachable=result.unreachable)
    return QUEUED(lang, id=result.broadcast_id, unit=result.unit_name, n=result.recipients, left_out=Html(left_out))


def report_text(
    *,
    broadcast_id: int,
    unit: str,
    text: str,
    lang: str,
    recipients: int,
    delivered: int,
    unreachable: int,
    pending: int,
    unregistered: int,
) -> Html:
    excerpt = text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"
    return clip(
        REPORT(
            lang,
            id=broadcast_id,
            unit=unit,
            excerpt=excerpt,
            delivered=delivered,
            recipients=recipients,
            unreachable=unreachable,
            pending=pending,
            unregistered=unregistered,
        )
    )


def outcome_text(result: BroadcastResult, lang: str, *, limit: int) -> Html:
    """The reply to the commander, whatever happened."""
    if result.outcome is BroadcastOutcome.queued:
        return queued_text(result, lang)
    if result.outcome is BroadcastOutcome.too_long:
        return TOO_LONG(lang, limit=limit)
    if result.outcome is BroadcastOutcome.forbidden:
        return FORBIDDEN(lang, unit=result.unit_name)
    if result.outcome is BroadcastOutcome.no_recipients:
        return NO_RECIPIENTS(
            lang, unit=result.unit_name, unregistered=result.unregistered, unreachable=result.unreachable
        )
    return USAGE(lang)
