"""Escort reminder texts, and the correction sent when a departure moved after one.

Worded by flows/escort_reminders.py when the reminder is planned (the
outbox keeps the text), in the member's language, with the words of
`/kawal` (bot/render/escorts.py) for the route, the times and the live
location.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.render import Html, Msg, clip, local_time
from bot.render.escorts import CARGO_CHARS, LIVE_GUIDE, ROLES, ROUTE, TIMES, VIAS, place_name, short
from bot.services.escort_reminders import EscortCorrection, EscortReminder

REMINDER = Msg(
    id="⏰ <b>Pengingat pengawalan {code}</b>\n📦 {cargo} · {role}",
    en="⏰ <b>Escort reminder {code}</b>\n📦 {cargo} · {role}",
)
BUTTONS = Msg(id="Kirim /kawal untuk tombol berangkat dan tiba.", en="Send /escort for the depart and arrive buttons.")
CORRECTION = Msg(
    id="⚠️ <b>Perubahan jadwal pengawalan {code}</b>\n📦 {cargo}",
    en="⚠️ <b>Change of escort schedule {code}</b>\n📦 {cargo}",
)
NEW_DEPARTURE = Msg(
    id="🕐 Berangkat sekarang <b>{depart}</b> (sebelumnya {old}).",
    en="🕐 Now departs at <b>{depart}</b> (was {old}).",
)


def _route(origin: str, destination: str, lang: str) -> Html:
    return ROUTE(lang, origin=place_name(origin), destination=place_name(destination))


def reminder_text(say: EscortReminder, zone: ZoneInfo) -> Html:
    """Cargo, route, when it leaves and is due, and how to share a live location on the way.

    Times are said as times of day, never "in 1 hour": a run of reminders is
    spread before its offset, so a relative time would be wrong for most.
    """
    lang = say.language
    lines = [
        REMINDER(lang, code=say.code, cargo=short(say.cargo, CARGO_CHARS), role=ROLES[say.role](lang)),
        _route(say.origin, say.destination, lang),
    ]
    if say.vias:
        lines.append(VIAS(lang, vias=", ".join(place_name(name) for name in say.vias)))
    lines += [
        TIMES(lang, depart=local_time(say.depart_at, zone, lang), due=local_time(say.arrive_by, zone, lang)),
        LIVE_GUIDE(lang),
        BUTTONS(lang),
    ]
    return clip("\n".join(lines))


def correction_text(say: EscortCorrection, zone: ZoneInfo) -> Html:
    """The new departure beside the one the last reminder named, and the route and due time as they are."""
    lang = say.language
    new, old = local_time(say.depart_at, zone, lang), local_time(say.old_depart_at, zone, lang)
    lines = [
        CORRECTION(lang, code=say.code, cargo=short(say.cargo, CARGO_CHARS)),
        _route(say.origin, say.destination, lang),
        NEW_DEPARTURE(lang, depart=new, old=old),
        TIMES(lang, depart=new, due=local_time(say.arrive_by, zone, lang)),
    ]
    return clip("\n".join(lines))
