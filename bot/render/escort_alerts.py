"""The alert of an automatic escort contingency: which escort, what happened, where it was last seen.

Worded from the contingency's view (`ContingencyView.escort`), so every
redraw of the alert (acknowledged, climbed, cleared by itself) names the
same escort; bot/render/incidents.py draws the head and the status around
these lines.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.render import Html, Msg, local_time
from models.enums import AlertClearReason, EscortAlertKind

if TYPE_CHECKING:
    from bot.services.escalation import ContingencyView
    from bot.services.escort_alert_view import EscortAlertView

KINDS = {
    EscortAlertKind.berhenti: Msg(
        id="BERHENTI — tidak bergerak dari tempatnya", en="STOPPED — not moving from where it is"
    ),
    EscortAlertKind.hilang_sinyal: Msg(
        id="HILANG SINYAL — tidak ada posisi dari anggota", en="SIGNAL LOST — no position from any member"
    ),
    EscortAlertKind.terlambat: Msg(
        id="TERLAMBAT — belum tiba pada batas waktu", en="LATE — not arrived by the time it was due"
    ),
    EscortAlertKind.menyimpang: Msg(
        id="MENYIMPANG — keluar dari koridor rute", en="OFF ROUTE — outside the route's corridor"
    ),
}
REASONS = {
    AlertClearReason.moved: Msg(id="pengawalan bergerak lagi", en="the escort is moving again"),
    AlertClearReason.position: Msg(id="posisi kembali masuk", en="positions are coming in again"),
    AlertClearReason.on_route: Msg(id="kembali ke rute", en="back on the route"),
    AlertClearReason.arrived: Msg(id="pengawalan tiba di tujuan", en="the escort arrived"),
}
SUMMARY = Msg(id="Pengawalan {code}: {kind}", en="Escort {code}: {kind}")
ESCORT = Msg(id="🚚 <b>Pengawalan {code}</b> · {cargo}", en="🚚 <b>Escort {code}</b> · {cargo}")
ROUTE = Msg(id="{origin} → {destination}", en="{origin} → {destination}")
KIND = Msg(id="⚠️ <b>{kind}</b>", en="⚠️ <b>{kind}</b>")
RAISED_BY = Msg(id="Oleh: Siaga (otomatis) · {at}", en="By: Siaga (automatic) · {at}")
POSITION = Msg(
    id='📍 Posisi terakhir <a href="{url}">{lat}, {lon}</a> · {at}, {age} sebelum peringatan',
    en='📍 Last position <a href="{url}">{lat}, {lon}</a> · {at}, {age} before the alert',
)
NO_POSITION = Msg(id="📍 Belum ada posisi dari anggota", en="📍 No position from any member yet")
CLEARED = Msg(id="✅ Berakhir sendiri {at}: {reason}", en="✅ Ended by itself {at}: {reason}")
STATUS_CLEARED = Msg(id="Status: <b>SELESAI</b> otomatis, {at}", en="Status: <b>RESOLVED</b> automatically, {at}")
AGE_MINUTES = Msg(id="{m} menit", en="{m} min")
AGE_HOURS = Msg(id="{h} jam {m} menit", en="{h} h {m} min")


def kind_text(kind: str, lang: str) -> Html:
    return KINDS[EscortAlertKind(kind)](lang) if kind in EscortAlertKind.__members__ else Html(kind)


def summary(code: str, kind: str, lang: str) -> Html:
    """The contingency's text, as `/insiden` lists it: the escort and what happened to it."""
    return SUMMARY(lang, code=code, kind=kind_text(kind, lang))


def _age(delay: timedelta, lang: str) -> Html:
    minutes = max(0, int(delay.total_seconds() // 60))
    if minutes < 60:
        return AGE_MINUTES(lang, m=minutes)
    return AGE_HOURS(lang, h=minutes // 60, m=minutes % 60)


def _position(view: ContingencyView, escort: EscortAlertView, lang: str, zone: ZoneInfo) -> Html:
    if view.lat is None or view.lon is None or escort.position_at is None:
        return NO_POSITION(lang)
    url = f"https://maps.google.com/?q={view.lat:.6f},{view.lon:.6f}"
    return POSITION(
        lang,
        url=url,
        lat=f"{view.lat:.5f}",
        lon=f"{view.lon:.5f}",
        at=local_time(escort.position_at, zone, lang, with_date=False),
        age=_age(view.sent_at - escort.position_at, lang),
    )


def lines(view: ContingencyView, escort: EscortAlertView, lang: str, zone: ZoneInfo) -> list[Html]:
    """What an escort alert says between its head and its status."""
    found = [
        ESCORT(lang, code=escort.code, cargo=escort.cargo),
        ROUTE(lang, origin=escort.origin, destination=escort.destination),
        KIND(lang, kind=kind_text(escort.kind, lang)),
        RAISED_BY(lang, at=local_time(view.sent_at, zone, lang)),
        _position(view, escort, lang, zone),
    ]
    if (
        escort.cleared_at is not None
        and escort.clear_reason is not None
        and escort.clear_reason in AlertClearReason.__members__
    ):
        reason = REASONS[AlertClearReason(escort.clear_reason)](lang)
        found.append(CLEARED(lang, at=local_time(escort.cleared_at, zone, lang, with_date=False), reason=reason))
    return found


def cleared_status(view: ContingencyView, lang: str, zone: ZoneInfo) -> Html:
    """Resolved by the condition ending, nobody pressed anything."""
    moment: datetime = view.resolved_at or view.created_at
    return STATUS_CLEARED(lang, at=local_time(moment, zone, lang, with_date=False))
