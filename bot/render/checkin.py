"""`/hadir` and `/selesai` texts and the location keyboard."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from telegram import KeyboardButton, ReplyKeyboardMarkup, ReplyKeyboardRemove

from bot.render import Html, Msg, distance_text, local_time
from bot.render.incidents import delay_text
from bot.services.checkin import CheckinOutcome, CheckinResult, CheckoutOutcome, CheckoutResult, StaleReason

ASK_LOCATION = Msg(
    id="📍 Tekan tombol di bawah untuk mengirim lokasi Anda saat ini.",
    en="📍 Press the button below to send your current location.",
)
SEND_LOCATION = Msg(id="📍 Kirim lokasi saya", en="📍 Send my location")
CHECKED_IN = Msg(
    id="✅ Hadir tercatat {at} di <b>{tps}</b> ({shift}), jarak {distance} dari TPS.",
    en="✅ Check-in recorded {at} at <b>{tps}</b> ({shift}), {distance} from the TPS.",
)
ALREADY = Msg(
    id="Anda sudah tercatat hadir {at} di <b>{tps}</b> ({shift}), jarak {distance}. Tidak ada yang berubah.",
    en="You already checked in {at} at <b>{tps}</b> ({shift}), {distance} away. Nothing changed.",
)
MOVED_CLOSER = Msg(
    id="✅ Lokasi hadir diperbarui: <b>{tps}</b>, jarak {distance} dari TPS.",
    en="✅ Check-in location updated: <b>{tps}</b>, {distance} from the TPS.",
)
FAR = Msg(
    id="⚠️ Lokasi Anda lebih dari {limit} dari TPS. Kehadiran tetap dicatat dan ditandai untuk komandan.",
    en="⚠️ You are more than {limit} from the TPS. The check-in is kept and flagged for your commander.",
)
LATE = Msg(id="⏰ Tercatat terlambat.", en="⏰ Recorded as late.")
ARRIVED_LATE = Msg(
    id="📶 Pesan ini terlambat sampai ({delay} setelah dikirim), tetapi tetap dihitung pada waktu Anda mengirimnya.",
    en="📶 This message arrived late ({delay} after you sent it), but it still counts, at the time you sent it.",
)
FORWARDED = Msg(
    id="❌ Lokasi yang diteruskan tidak dapat dipakai untuk hadir. Tekan tombol untuk mengirim lokasi Anda sendiri.",
    en="❌ A forwarded location cannot be used to check in. Press the button to send your own location.",
)
STALE = {
    StaleReason.expired: Msg(
        id="❌ Lokasi ini dikirim lebih dari 24 jam yang lalu. Kirim lokasi Anda saat ini.",
        en="❌ This location was sent more than 24 hours ago. Send your current location.",
    ),
    StaleReason.before_open: Msg(
        id="❌ Lokasi ini dikirim {sent}, sebelum hadir untuk <b>{shift}</b> dibuka ({opens}). Kirim lokasi Anda saat ini.",
        en="❌ This location was sent {sent}, before check-in for <b>{shift}</b> opened ({opens}). Send your current location.",
    ),
    StaleReason.after_end: Msg(
        id="❌ Lokasi ini dikirim {sent}, setelah shift <b>{shift}</b> berakhir ({ended}); tidak dihitung hadir.",
        en="❌ This location was sent {sent}, after the <b>{shift}</b> shift ended ({ended}); it does not count as a check-in.",
    ),
}
NO_SHIFT = Msg(id="Tidak ada shift yang sedang berjalan untuk Anda.", en="You have no shift running now.")
NEXT_SHIFT = Msg(
    id="Shift berikutnya: <b>{shift}</b> mulai {at}. Hadir dapat dicatat mulai {opens}.",
    en="Next shift: <b>{shift}</b> starting {at}. Check-in opens {opens}.",
)
CHECKED_OUT = Msg(
    id="👋 Selesai tugas tercatat {at} ({shift}). Terima kasih.", en="👋 Check-out recorded {at} ({shift}). Thank you."
)
ALREADY_OUT = Msg(id="Anda sudah selesai tugas {at}.", en="You already checked out at {at}.")
NOT_CHECKED_IN = Msg(
    id="Anda belum tercatat hadir pada shift yang sedang berjalan.",
    en="You have not checked in to a running shift.",
)


def location_keyboard(lang: str) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        [[KeyboardButton(SEND_LOCATION(lang), request_location=True)]], resize_keyboard=True, one_time_keyboard=True
    )


def done_keyboard() -> ReplyKeyboardRemove:
    return ReplyKeyboardRemove()


def _arrived_late(result: CheckinResult | CheckoutResult, lang: str) -> Html | None:
    """Said when the bot read the message more than a minute after it was sent (an outage, a dead zone)."""
    delay = delay_text(result.delay, lang)
    return ARRIVED_LATE(lang, delay=delay) if delay else None


def _next_shift(result: CheckinResult, lang: str, zone: ZoneInfo, opens_before_minutes: float) -> Html | None:
    upcoming = result.next_shift
    if upcoming is None:
        return None
    opens = upcoming.starts_at - timedelta(minutes=opens_before_minutes)
    return NEXT_SHIFT(
        lang,
        shift=upcoming.shift_name,
        at=local_time(upcoming.starts_at, zone, lang),
        opens=local_time(opens, zone, lang),
    )


def _stale(result: CheckinResult, lang: str, zone: ZoneInfo, opens_before_minutes: float) -> Html:
    """Why the location is too old, with its times: the person knows whether a fresh one will do."""
    reason, shift = result.stale_reason or StaleReason.expired, result.shift
    if reason is StaleReason.expired or shift is None or result.sent_at is None:
        return STALE[StaleReason.expired](lang)

    def at(moment: datetime) -> str:
        return local_time(moment, zone, lang, with_date=False)

    opens = shift.starts_at - timedelta(minutes=opens_before_minutes)
    text = STALE[reason](
        lang, sent=at(result.sent_at), shift=shift.shift_name, opens=at(opens), ended=at(shift.ends_at)
    )
    later = _next_shift(result, lang, zone, opens_before_minutes)
    return Html(text + "\n" + later) if later else text


def checkin_text(
    result: CheckinResult, lang: str, zone: ZoneInfo, *, geofence_m: float, opens_before_minutes: float
) -> Html:
    if result.outcome is CheckinOutcome.forwarded:
        return FORWARDED(lang)
    if result.outcome is CheckinOutcome.stale:
        return _stale(result, lang, zone, opens_before_minutes)
    if result.outcome is CheckinOutcome.no_shift:
        later = _next_shift(result, lang, zone, opens_before_minutes)
        return Html(NO_SHIFT(lang) + "\n" + later) if later else NO_SHIFT(lang)
    assert result.shift and result.post and result.checked_in_at
    msg = {CheckinOutcome.checked_in: CHECKED_IN, CheckinOutcome.already: ALREADY}.get(result.outcome, MOVED_CLOSER)
    lines = [
        msg(
            lang,
            at=local_time(result.checked_in_at, zone, lang, with_date=False),
            tps=result.post.tps_code,
            shift=result.shift.shift_name,
            distance=distance_text(result.distance_m),
        )
    ]
    if result.far:
        lines.append(FAR(lang, limit=distance_text(geofence_m)))
    if result.late and result.outcome is CheckinOutcome.checked_in:
        lines.append(LATE(lang))
    arrived_late = _arrived_late(result, lang) if result.outcome is not CheckinOutcome.already else None
    if arrived_late:
        lines.append(arrived_late)
    return Html("\n".join(lines))


def checkout_text(result: CheckoutResult, lang: str, zone: ZoneInfo) -> Html:
    if result.outcome is CheckoutOutcome.not_checked_in:
        return NOT_CHECKED_IN(lang)
    assert result.at and result.shift
    at = local_time(result.at, zone, lang, with_date=False)
    if result.outcome is CheckoutOutcome.already:
        return ALREADY_OUT(lang, at=at)
    text = CHECKED_OUT(lang, at=at, shift=result.shift.shift_name)
    arrived_late = _arrived_late(result, lang)
    return Html(text + "\n" + arrived_late) if arrived_late else text
