"""`/kawal` and `/terima` texts and keyboards: a member's escorts, a subtree's board, one escort, serah terima.

Callback data (ids only; who may press is decided again on every press):
  kw:d:<escort>        the depart button of a member
  kw:a:<escort>        the arrive button of a member
  kw:e:<escort>        one escort in detail, as a new message (commander, group)
  kw:u:<unit>          a unit's board, as a new message (drill down)
  kw:p:<unit>:<page>   the board redrawn in place, at a page
Free text (cargo, place names) is shortened before it is escaped, so a
board page of `flows.escorts.PER_PAGE` blocks stays under Telegram's 4096.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.render import Html, Msg, clip, distance_text, local_time
from bot.render.callbacks import Codec
from bot.render.registration import NOT_REGISTERED
from bot.services.escorts import (
    ActionOutcome,
    ActionResult,
    EscortCounts,
    EscortDetail,
    EscortSummary,
    Member,
    ReceiveOutcome,
    ReceiveResult,
)
from bot.services.status import UnitRef

BUTTONS = Codec("kw")
PRESS_DEPART = BUTTONS.button("d", int)
PRESS_ARRIVE = BUTTONS.button("a", int)
PRESS_DETAIL = BUTTONS.button("e", int)
PRESS_UNIT = BUTTONS.button("u", int)
PRESS_PAGE = BUTTONS.button("p", int, int)

CARGO_CHARS = 60
NAME_CHARS = 40

STATES = {
    "terjadwal": Msg(id="terjadwal", en="planned"),
    "berangkat": Msg(id="berangkat", en="underway"),
    "tiba": Msg(id="tiba", en="arrived"),
    "diterima": Msg(id="diterima", en="received"),
}
ICONS = {"terjadwal": "🕒", "berangkat": "🚚", "tiba": "🏁", "diterima": "✅"}
ALERTS = {
    "berhenti": Msg(id="berhenti", en="stopped"),
    "hilang_sinyal": Msg(id="hilang sinyal", en="no signal"),
    "terlambat": Msg(id="terlambat", en="late"),
    "menyimpang": Msg(id="menyimpang", en="off route"),
}
ROLES = {"ketua": Msg(id="ketua", en="lead"), "anggota": Msg(id="anggota", en="member")}

# -- a member's escorts ------------------------------------------------------------------------------

MEMBER_HEADER = Msg(id="🚚 <b>Pengawalan Anda</b>", en="🚚 <b>Your escorts</b>")
NO_DUTY = Msg(id="Anda tidak sedang bertugas dalam pengawalan.", en="You are not on any escort.")
DUTY_HEAD = Msg(id="{icon} <b>{code}</b> · {cargo} · {role}", en="{icon} <b>{code}</b> · {cargo} · {role}")
ROUTE = Msg(id="{origin} → {destination}", en="{origin} → {destination}")
VIAS = Msg(id="lewat {vias}", en="via {vias}")
TIMES = Msg(id="🕒 berangkat {depart} · tiba paling lambat {due}", en="🕒 departs {depart} · due by {due}")
STATE_LINE = {
    "terjadwal": Msg(id="Status: terjadwal", en="State: planned"),
    "berangkat": Msg(id="Status: berangkat sejak {at}", en="State: underway since {at}"),
    "tiba": Msg(
        id="Status: tiba {at}, menunggu serah terima (<code>/terima {code}</code> oleh penerima)",
        en="State: arrived {at}, awaiting handover (<code>/receive {code}</code> by the receiver)",
    ),
    "diterima": Msg(id="Status: diterima {at}", en="State: received {at}"),
}
CREW = Msg(id="👥 {crew}", en="👥 {crew}")
LIVE_GUIDE = Msg(
    id=(
        "📡 <b>Bagikan lokasi langsung</b> selama perjalanan: di chat ini tekan 📎 (lampiran) → <b>Lokasi</b> → "
        "<b>Bagikan Lokasi Langsung</b>, lalu pilih 8 jam. Setiap perpindahan tercatat tanpa balasan. "
        "Tombol di keyboard hanya dapat mengirim lokasi sekali, bukan lokasi langsung."
    ),
    en=(
        "📡 <b>Share your live location</b> for the journey: in this chat tap 📎 (attach) → <b>Location</b> → "
        "<b>Share Live Location</b>, then choose 8 hours. Every move is recorded without a reply. "
        "A keyboard button can only send a one-off location, not a live one."
    ),
)
DEPART_BUTTON = Msg(id="🚚 Berangkat {code}", en="🚚 Depart {code}")
ARRIVE_BUTTON = Msg(id="🏁 Tiba {code}", en="🏁 Arrive {code}")

# -- answers to a member -----------------------------------------------------------------------------

DEPARTED = Msg(
    id="🚚 <b>{code}</b> berangkat {at}. Bagikan lokasi langsung agar komandan dapat memantau.",
    en="🚚 <b>{code}</b> underway since {at}. Share your live location so commanders can follow.",
)
DEPARTED_AWAY = Msg(
    id="🚚 <b>{code}</b> berangkat {at}: posisi Anda sudah menjauh dari {origin}.",
    en="🚚 <b>{code}</b> underway since {at}: your position is away from {origin}.",
)
ARRIVED = Msg(
    id="🏁 <b>{code}</b> tiba di <b>{place}</b> {at}. Serah terima: penerima di tujuan mengetik <code>/terima {code}</code>.",
    en="🏁 <b>{code}</b> arrived at <b>{place}</b> {at}. Handover: the receiver at the destination sends <code>/receive {code}</code>.",
)
ARRIVED_LEAD = Msg(
    id="🏁 Pengawalan <b>{code}</b> ({cargo}) tiba di <b>{place}</b> {at}, dilaporkan oleh {by}. Serah terima: <code>/terima {code}</code> oleh penerima.",
    en="🏁 Escort <b>{code}</b> ({cargo}) arrived at <b>{place}</b> {at}, reported by {by}. Handover: <code>/receive {code}</code> by the receiver.",
)
ALREADY = {
    "berangkat": Msg(id="{code} sudah berangkat {at}.", en="{code} is already underway since {at}."),
    "tiba": Msg(id="{code} sudah tiba {at}.", en="{code} already arrived {at}."),
    "diterima": Msg(id="{code} sudah diterima {at}.", en="{code} was already received {at}."),
}
NOT_MEMBER = Msg(id="⛔ Anda bukan anggota pengawalan ini.", en="⛔ You are not a member of this escort.")
NOT_FOUND = Msg(id="Pengawalan ini tidak ditemukan.", en="This escort was not found.")
POSITION = Msg(
    id="📍 Posisi <b>{code}</b> tercatat {at}. Sisa {remaining} ke {place}.",
    en="📍 Position of <b>{code}</b> recorded {at}. {remaining} to go to {place}.",
)
LIVE_STARTED = Msg(
    id="📡 Lokasi langsung diterima untuk <b>{code}</b>; setiap perpindahan dicatat tanpa balasan. Sisa {remaining} ke {place}.",
    en="📡 Live location received for <b>{code}</b>; every move is recorded without a reply. {remaining} to go to {place}.",
)
PASSED = Msg(id="✅ Melewati {places}.", en="✅ Passed {places}.")

# -- serah terima -------------------------------------------------------------------------------------

RECEIVE_USAGE = Msg(
    id="Format: <code>/terima KODE</code>, misalnya <code>/terima KWL-1</code>: kode pengawalan yang tiba.",
    en="Usage: <code>/receive CODE</code>, for example <code>/receive KWL-1</code>: the code of the arrived escort.",
)
RECEIVED = Msg(
    id="✅ Serah terima <b>{code}</b> tercatat: {cargo} diterima oleh Anda dari {lead} {at} di <b>{place}</b>.",
    en="✅ Handover of <b>{code}</b> recorded: {cargo} received by you from {lead} {at} at <b>{place}</b>.",
)
RECEIVED_LEAD = Msg(
    id="✅ Serah terima <b>{code}</b>: {cargo} diterima oleh {receiver} {at} di <b>{place}</b>. Pengawalan selesai.",
    en="✅ Handover of <b>{code}</b>: {cargo} received by {receiver} {at} at <b>{place}</b>. The escort is done.",
)
REFUSED = {
    ReceiveOutcome.already: Msg(
        id="<b>{code}</b> sudah diterima oleh {who} {at}. Tidak ada yang berubah.",
        en="<b>{code}</b> was already received by {who} {at}. Nothing changed.",
    ),
    ReceiveOutcome.not_found: Msg(
        id="Tidak ada pengawalan dengan kode <b>{code}</b>.", en="There is no escort with code <b>{code}</b>."
    ),
    ReceiveOutcome.not_departed: Msg(
        id="<b>{code}</b> belum berangkat; serah terima dilakukan setelah tiba di {place}.",
        en="<b>{code}</b> has not departed yet; the handover is made once it arrives at {place}.",
    ),
    ReceiveOutcome.not_allowed: Msg(
        id="⛔ Serah terima <b>{code}</b> hanya oleh personel satuan tujuan ({place}) atau yang bertugas di TPS tujuan.",
        en="⛔ Only personnel of the destination's unit ({place}) or assigned to the destination TPS may receive <b>{code}</b>.",
    ),
    ReceiveOutcome.own_escort: Msg(
        id="⛔ Anda anggota pengawalan <b>{code}</b>; serah terima dilakukan oleh pihak penerima di {place}.",
        en="⛔ You are on escort <b>{code}</b>; the handover is made by the receiving side at {place}.",
    ),
}

# -- a subtree's board, one escort ------------------------------------------------------------------

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
OPEN_ALERTS = Msg(id="⚠️ {alerts}", en="⚠️ {alerts}")
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


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _place(name: str) -> str:
    return _short(name, NAME_CHARS)


def _at(moment: datetime | None, zone: ZoneInfo, lang: str) -> str:
    return "–" if moment is None else local_time(moment, zone, lang)


def age_text(age: timedelta | None, lang: str) -> Html:
    if age is None:
        return NO_POSITION(lang)
    minutes = int(age.total_seconds() // 60)
    if minutes < 1:
        return JUST_NOW(lang)
    if minutes < 60:
        return MINUTES_AGO(lang, m=minutes)
    return HOURS_AGO(lang, h=minutes // 60, m=minutes % 60)


def _remaining(escort: EscortSummary) -> str:
    return "–" if escort.remaining_m is None else distance_text(escort.remaining_m)


def _alert_names(kinds: Sequence[str], lang: str) -> str:
    return ", ".join(ALERTS[kind](lang) if kind in ALERTS else kind for kind in kinds)


# -- a member's escorts ------------------------------------------------------------------------------


def duty_block(role: str, detail: EscortDetail, lang: str, zone: ZoneInfo) -> Html:
    escort = detail.summary
    lines = [
        DUTY_HEAD(
            lang,
            icon=ICONS.get(escort.state, "🚚"),
            code=escort.code,
            cargo=_short(escort.cargo, CARGO_CHARS),
            role=ROLES[role](lang) if role in ROLES else role,
        ),
        ROUTE(lang, origin=_place(escort.origin.name), destination=_place(escort.destination.name)),
    ]
    if detail.route.vias:
        vias = ", ".join(
            ("✅ " if via.passed_at is not None else "") + _place(via.waypoint.name) for via in detail.route.vias
        )
        lines.append(VIAS(lang, vias=vias))
    lines.append(TIMES(lang, depart=_at(escort.depart_at, zone, lang), due=_at(escort.arrive_by, zone, lang)))
    moment = {"berangkat": escort.departed_at, "tiba": escort.arrived_at, "diterima": escort.received_at}
    lines.append(STATE_LINE[escort.state](lang, at=_at(moment.get(escort.state), zone, lang), code=escort.code))
    if escort.open_alerts:
        lines.append(OPEN_ALERTS(lang, alerts=_alert_names(escort.open_alerts, lang)))
    crew = ", ".join(_member_name(member, lang) for member in detail.members)
    if crew:
        lines.append(CREW(lang, crew=_short(crew, 200)))
    return Html("\n".join(lines))


def _member_name(member: Member, lang: str) -> str:
    role = ROLES[member.role](lang) if member.role in ROLES else member.role
    return f"{member.title} ({role})" if member.role == "ketua" else member.title


def duties_text(duties: Sequence[tuple[str, EscortDetail]], lang: str, zone: ZoneInfo) -> Html:
    """A member's escorts and how to share a live location; a member has a few, so one message."""
    if not duties:
        return NO_DUTY(lang)
    blocks = [MEMBER_HEADER(lang), *(duty_block(role, detail, lang, zone) for role, detail in duties), LIVE_GUIDE(lang)]
    return clip("\n\n".join(blocks))


def duties_keyboard(duties: Sequence[tuple[str, EscortDetail]], lang: str) -> InlineKeyboardMarkup | None:
    """Depart while planned, arrive until arrived; nothing once there."""
    rows = []
    for _, detail in duties:
        escort = detail.summary
        row = []
        if escort.state == "terjadwal":
            row.append(
                InlineKeyboardButton(DEPART_BUTTON(lang, code=escort.code), callback_data=PRESS_DEPART.data(escort.id))
            )
        if escort.state in ("terjadwal", "berangkat"):
            row.append(
                InlineKeyboardButton(ARRIVE_BUTTON(lang, code=escort.code), callback_data=PRESS_ARRIVE.data(escort.id))
            )
        if row:
            rows.append(row)
    return InlineKeyboardMarkup(rows) if rows else None


def action_popup(result: ActionResult, lang: str, zone: ZoneInfo) -> Html:
    """The answer to a depart or arrive press that is not an arrival (that one gets a message)."""
    if result.outcome is ActionOutcome.not_member:
        return NOT_MEMBER(lang)
    if result.outcome is ActionOutcome.not_found or result.escort is None:
        return NOT_FOUND(lang)
    escort = result.escort
    if result.outcome is ActionOutcome.done:
        return DEPARTED(lang, code=escort.code, at=_at(escort.departed_at, zone, lang))
    moment = {"berangkat": escort.departed_at, "tiba": escort.arrived_at, "diterima": escort.received_at}
    already = ALREADY.get(escort.state, ALREADY["berangkat"])
    return already(lang, code=escort.code, at=_at(moment.get(escort.state), zone, lang))


def arrived_text(escort: EscortSummary, lang: str, zone: ZoneInfo, *, at: datetime) -> Html:
    return ARRIVED(lang, code=escort.code, place=_place(escort.destination.name), at=_at(at, zone, lang))


def arrived_lead_text(escort: EscortSummary, lang: str, zone: ZoneInfo, *, by: str, at: datetime) -> Html:
    return ARRIVED_LEAD(
        lang,
        code=escort.code,
        cargo=_short(escort.cargo, CARGO_CHARS),
        place=_place(escort.destination.name),
        at=_at(at, zone, lang),
        by=by,
    )


def position_text(
    detail: EscortDetail,
    lang: str,
    zone: ZoneInfo,
    *,
    at: datetime,
    departed: bool,
    arrived: bool,
    passed: Sequence[str],
    live: bool,
    answer: bool,
) -> Html | None:
    """What a position tells its sender: departure, vias passed, arrival; else, when answered, that it counted."""
    escort = detail.summary
    lines: list[str] = []
    if departed:
        lines.append(DEPARTED_AWAY(lang, code=escort.code, at=_at(at, zone, lang), origin=_place(escort.origin.name)))
    if passed:
        names = {via.waypoint.code: via.waypoint.name for via in detail.route.vias}
        lines.append(PASSED(lang, places=", ".join(_place(names.get(code, code)) for code in passed)))
    if arrived:
        lines.append(arrived_text(escort, lang, zone, at=at))
    elif answer:
        said = LIVE_STARTED if live else POSITION
        lines.append(
            said(
                lang,
                code=escort.code,
                at=_at(at, zone, lang),
                remaining=_remaining(escort),
                place=_place(escort.destination.name),
            )
        )
    return Html("\n".join(lines)) if lines else None


# -- serah terima -------------------------------------------------------------------------------------


def receive_text(result: ReceiveResult, lang: str, zone: ZoneInfo) -> Html:
    """The receiver's answer: the confirmation, or why not."""
    place = _place(result.place.name) if result.place is not None else "?"
    if result.outcome is ReceiveOutcome.received:
        lead = result.lead.title if result.lead is not None else "–"
        return RECEIVED(
            lang,
            code=result.code,
            cargo=_short(result.cargo, CARGO_CHARS),
            lead=lead,
            at=_at(result.received_at, zone, lang),
            place=place,
        )
    if result.outcome is ReceiveOutcome.not_registered:
        return NOT_REGISTERED(lang)
    who = result.received_by.title if result.received_by is not None else "–"
    return REFUSED[result.outcome](lang, code=result.code, place=place, who=who, at=_at(result.received_at, zone, lang))


def received_lead_text(result: ReceiveResult, lang: str, zone: ZoneInfo) -> Html:
    return RECEIVED_LEAD(
        lang,
        code=result.code,
        cargo=_short(result.cargo, CARGO_CHARS),
        receiver=result.received_by.title if result.received_by is not None else "–",
        at=_at(result.received_at, zone, lang),
        place=_place(result.place.name) if result.place is not None else "?",
    )


# -- a subtree's board, one escort ------------------------------------------------------------------


def board_block(escort: EscortSummary, lang: str, zone: ZoneInfo) -> Html:
    lines = [
        BOARD_HEAD(
            lang,
            icon=ICONS.get(escort.state, "🚚"),
            code=escort.code,
            state=STATES[escort.state](lang) if escort.state in STATES else escort.state,
            cargo=_short(escort.cargo, CARGO_CHARS),
        ),
        BOARD_ROUTE(
            lang,
            origin=_place(escort.origin.name),
            destination=_place(escort.destination.name),
            unit=_short(escort.unit_code, NAME_CHARS),
        ),
    ]
    due = _at(escort.arrive_by, zone, lang)
    if escort.state == "berangkat":
        lines.append(WHERE(lang, age=age_text(escort.position_age, lang), remaining=_remaining(escort), due=due))
    elif escort.state == "terjadwal":
        lines.append(PLANNED(lang, depart=_at(escort.depart_at, zone, lang), due=due))
    elif escort.state == "tiba":
        lines.append(WAITING(lang, at=_at(escort.arrived_at, zone, lang)))
    else:
        lines.append(DONE(lang, at=_at(escort.received_at, zone, lang)))
    if escort.open_alerts:
        lines.append(OPEN_ALERTS(lang, alerts=_alert_names(escort.open_alerts, lang)))
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
        BOARD_HEADER(lang, code=unit.code, name=_short(unit.name, NAME_CHARS)),
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
        InlineKeyboardButton(DETAIL_BUTTON(lang, code=_short(e.code, 20)), callback_data=PRESS_DETAIL.data(e.id))
        for e in escorts
    ]
    units = [
        InlineKeyboardButton(UNIT_BUTTON(lang, code=_short(c.code, 20)), callback_data=PRESS_UNIT.data(c.id))
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
    stops = [_place(detail.route.origin.name)]
    for via in detail.route.vias:
        passed = f" ✅ {local_time(via.passed_at, zone, lang, with_date=False)}" if via.passed_at else ""
        stops.append(_place(via.waypoint.name) + passed)
    stops.append(_place(detail.route.destination.name))
    lines = [
        board_block(escort, lang, zone).split("\n")[0],
        DETAIL_UNIT(lang, unit=f"{escort.unit_code} {_short(escort.unit_name, NAME_CHARS)}", access=escort.access),
        Html(" → ".join(html.escape(stop, quote=False) for stop in stops)),
        TIMES(lang, depart=_at(escort.depart_at, zone, lang), due=_at(escort.arrive_by, zone, lang)),
    ]
    if escort.state == "berangkat":
        lines.append(
            WHERE(
                lang,
                age=age_text(escort.position_age, lang),
                remaining=_remaining(escort),
                due=_at(escort.arrive_by, zone, lang),
            )
        )
    lines.append(TRACK(lang, n=detail.track_points))
    crew = ", ".join(_member_name(member, lang) for member in detail.members)
    if crew:
        lines.append(CREW(lang, crew=_short(crew, 300)))
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
        lines.append(RECEIVED_BY(lang, who=detail.received_by.title, at=_at(escort.received_at, zone, lang)))
    return clip("\n".join(lines))
