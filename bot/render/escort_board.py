"""`/kawal` for a commander or a command group: a page of the subtree's escorts, and one escort in detail.

Free text (cargo, place names) is shortened before it is escaped, so a page
of `flows.escorts.PER_PAGE` blocks stays far under Telegram's 4096; the
page is clipped as a last resort.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.render import Html, Msg, clip, local_time
from bot.render.escorts import (
    ALERTS,
    CARGO_CHARS,
    CREW,
    ICONS,
    NAME_CHARS,
    OPEN_ALERTS,
    PRESS_DETAIL,
    PRESS_PAGE,
    PRESS_UNIT,
    STATES,
    TIMES,
    alert_names,
    at_text,
    member_name,
    place_name,
    remaining_text,
    short,
)
from bot.services.escorts import EscortCounts, EscortDetail, EscortSummary
from bot.services.status import UnitRef

BOARD_HEADER = Msg(id="🚚 <b>Pengawalan {code}</b> — {name}", en="🚚 <b>Escorts {code}</b> — {name}")
AS_OF = Msg(id="<i>per {time}</i>{page}", en="<i>as of {time}</i>{page}")
PAGE = Msg(id=" · hal. {page}/{pages}", en=" · page {page}/{pages}")
COUNTS = Msg(
    id="Berangkat <b>{berangkat}</b> · terjadwal {terjadwal} · tiba {tiba} · diterima {diterima} · ⚠️ dengan alert {alerts}",
    en="Underway <b>{berangkat}</b> · planned {terjadwal} · arrived {tiba} · received {diterima} · ⚠️ with alerts {alerts}",
)
NO_ESCORTS = Msg(id="Tidak ada pengawalan di satuan ini.", en="No escorts in this unit.")
BOARD_HEAD = Msg(id="{icon} <b>{code}</b> · {state} · {cargo}", en="{icon} <b>{code}</b> · {state} · {cargo}")
BOARD_ROUTE = Msg(id="{origin} → {destination} · {unit}", en="{origin} → {destination} · {unit}")
WHERE = Msg(
    id="📍 posisi {age} · sisa {remaining} · batas {due}", en="📍 position {age} · {remaining} to go · due {due}"
)
NO_POSITION = Msg(id="belum ada", en="none yet")
PLANNED = Msg(id="🕒 berangkat {depart} · batas {due}", en="🕒 departs {depart} · due {due}")
WAITING = Msg(id="🏁 tiba {at} · menunggu serah terima", en="🏁 arrived {at} · awaiting handover")
DONE = Msg(id="✅ diterima {at}", en="✅ received {at}")
JUST_NOW = Msg(id="baru saja", en="just now")
MINUTES_AGO = Msg(id="{m} mnt lalu", en="{m} min ago")
HOURS_AGO = Msg(id="{h} j {m} mnt lalu", en="{h} h {m} min ago")
UNIT_BUTTON = Msg(id="⬇️ {code}", en="⬇️ {code}")
DETAIL_BUTTON = Msg(id="🔎 {code}", en="🔎 {code}")
REFRESH = Msg(id="🔄 Perbarui", en="🔄 Refresh")
DETAIL_UNIT = Msg(id="Satuan {unit} · akses {access}", en="Unit {unit} · access {access}")
TRACK = Msg(id="🛰 {n} titik jejak", en="🛰 {n} track points")
ALERT_OPEN = Msg(id="{kind} sejak {at}", en="{kind} since {at}")
ALERT_CLEARED = Msg(id="{kind} {at}–{until}", en="{kind} {at}–{until}")
ALERTS_LINE = Msg(id="⚠️ Alert: {alerts}", en="⚠️ Alerts: {alerts}")
RECEIVED_BY = Msg(id="✅ diterima oleh {who} {at}", en="✅ received by {who} {at}")


def age_text(age: timedelta | None, lang: str) -> Html:
    if age is None:
        return NO_POSITION(lang)
    minutes = int(age.total_seconds() // 60)
    if minutes < 1:
        return JUST_NOW(lang)
    if minutes < 60:
        return MINUTES_AGO(lang, m=minutes)
    return HOURS_AGO(lang, h=minutes // 60, m=minutes % 60)


def board_block(escort: EscortSummary, lang: str, zone: ZoneInfo) -> Html:
    lines = [
        BOARD_HEAD(
            lang,
            icon=ICONS.get(escort.state, "🚚"),
            code=escort.code,
            state=STATES[escort.state](lang) if escort.state in STATES else escort.state,
            cargo=short(escort.cargo, CARGO_CHARS),
        ),
        BOARD_ROUTE(
            lang,
            origin=place_name(escort.origin.name),
            destination=place_name(escort.destination.name),
            unit=short(escort.unit_code, NAME_CHARS),
        ),
    ]
    due = at_text(escort.arrive_by, zone, lang)
    if escort.state == "berangkat":
        lines.append(WHERE(lang, age=age_text(escort.position_age, lang), remaining=remaining_text(escort), due=due))
    elif escort.state == "terjadwal":
        lines.append(PLANNED(lang, depart=at_text(escort.depart_at, zone, lang), due=due))
    elif escort.state == "tiba":
        lines.append(WAITING(lang, at=at_text(escort.arrived_at, zone, lang)))
    else:
        lines.append(DONE(lang, at=at_text(escort.received_at, zone, lang)))
    if escort.open_alerts:
        lines.append(OPEN_ALERTS(lang, alerts=alert_names(escort.open_alerts, lang)))
    return Html("\n".join(lines))


def counts_line(counts: EscortCounts, lang: str) -> Html:
    return COUNTS(
        lang,
        berangkat=counts.berangkat,
        terjadwal=counts.terjadwal,
        tiba=counts.tiba,
        diterima=counts.diterima,
        alerts=counts.with_alerts,
    )


def board_text(
    unit: UnitRef,
    counts: EscortCounts,
    escorts: Sequence[EscortSummary],
    lang: str,
    zone: ZoneInfo,
    *,
    now: datetime,
    page: int,
    pages: int,
) -> Html:
    """One page of the subtree's escorts, underway first; clipped as a last resort, never past 4096."""
    paging = PAGE(lang, page=page + 1, pages=pages) if pages > 1 else ""
    head = [
        BOARD_HEADER(lang, code=unit.code, name=short(unit.name, NAME_CHARS)),
        AS_OF(lang, time=local_time(now, zone, lang, with_date=False), page=Html(paging)),
        counts_line(counts, lang),
    ]
    blocks = [board_block(escort, lang, zone) for escort in escorts] or [NO_ESCORTS(lang)]
    return clip("\n\n".join(["\n".join(head), *blocks]))


def board_keyboard(
    unit: UnitRef,
    escorts: Sequence[EscortSummary],
    children: Sequence[UnitRef],
    lang: str,
    *,
    page: int,
    pages: int,
) -> InlineKeyboardMarkup:
    """A detail button per escort shown, a drill-down per unit one level down, paging and refresh."""
    details = [
        InlineKeyboardButton(DETAIL_BUTTON(lang, code=short(e.code, 20)), callback_data=PRESS_DETAIL.data(e.id))
        for e in escorts
    ]
    units = [
        InlineKeyboardButton(UNIT_BUTTON(lang, code=short(c.code, 20)), callback_data=PRESS_UNIT.data(c.id))
        for c in children[:30]
    ]
    rows = [details[i : i + 3] for i in range(0, len(details), 3)]
    rows += [units[i : i + 3] for i in range(0, len(units), 3)]
    last = [InlineKeyboardButton(REFRESH(lang), callback_data=PRESS_PAGE.data(unit.id, page))]
    if pages > 1:
        last = [
            InlineKeyboardButton("◀️", callback_data=PRESS_PAGE.data(unit.id, (page - 1) % pages)),
            *last,
            InlineKeyboardButton("▶️", callback_data=PRESS_PAGE.data(unit.id, (page + 1) % pages)),
        ]
    rows.append(last)
    return InlineKeyboardMarkup(rows)


def detail_text(detail: EscortDetail, lang: str, zone: ZoneInfo) -> Html:
    """One escort in full: route with vias passed, times, position, crew, every alert episode, the receiver."""
    escort = detail.summary
    stops = [place_name(detail.route.origin.name)]
    for via in detail.route.vias:
        passed = f" ✅ {local_time(via.passed_at, zone, lang, with_date=False)}" if via.passed_at else ""
        stops.append(place_name(via.waypoint.name) + passed)
    stops.append(place_name(detail.route.destination.name))
    lines = [
        board_block(escort, lang, zone).split("\n")[0],
        DETAIL_UNIT(lang, unit=f"{escort.unit_code} {short(escort.unit_name, NAME_CHARS)}", access=escort.access),
        Html(" → ".join(html.escape(stop, quote=False) for stop in stops)),
        TIMES(lang, depart=at_text(escort.depart_at, zone, lang), due=at_text(escort.arrive_by, zone, lang)),
    ]
    if escort.state == "berangkat":
        lines.append(
            WHERE(
                lang,
                age=age_text(escort.position_age, lang),
                remaining=remaining_text(escort),
                due=at_text(escort.arrive_by, zone, lang),
            )
        )
    lines.append(TRACK(lang, n=detail.track_points))
    crew = ", ".join(member_name(member, lang) for member in detail.members)
    if crew:
        lines.append(CREW(lang, crew=short(crew, 300)))
    episodes = []
    for alert in detail.alerts[-10:]:
        kind = ALERTS[alert.kind](lang) if alert.kind in ALERTS else alert.kind
        opened = local_time(alert.opened_at, zone, lang, with_date=False)
        if alert.cleared_at is None:
            episodes.append(ALERT_OPEN(lang, kind=kind, at=opened))
        else:
            until = local_time(alert.cleared_at, zone, lang, with_date=False)
            episodes.append(ALERT_CLEARED(lang, kind=kind, at=opened, until=until))
    if episodes:
        lines.append(ALERTS_LINE(lang, alerts=Html("; ".join(episodes))))
    if detail.received_by is not None:
        lines.append(RECEIVED_BY(lang, who=detail.received_by.title, at=at_text(escort.received_at, zone, lang)))
    return clip("\n".join(lines))
