"""`/kawal` and `/terima` texts and keyboards: a member's escorts and the answers to them, serah terima.

A subtree's board and one escort in detail, for commanders and groups, are
in bot/render/escort_board.py, with the same words for states and alerts.

Callback data (ids only; who may press is decided again on every press):
  kw:d:<escort>        the depart button of a member
  kw:a:<escort>        the arrive button of a member
  kw:e:<escort>        one escort in detail, as a new message (commander, group)
  kw:u:<unit>          a unit's board, as a new message (drill down)
  kw:p:<unit>:<page>   the board redrawn in place, at a page
Free text (cargo, place names) is shortened (`short`) before it is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.render import Html, Msg, clip, distance_text, local_time
from bot.render.callbacks import Codec
from bot.render.registration import NOT_REGISTERED
from bot.services.escorts import (
    ActionOutcome,
    ActionResult,
    EscortDetail,
    EscortSummary,
    Member,
    ReceiveOutcome,
    ReceiveResult,
    Route,
)

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
OPEN_ALERTS = Msg(id="⚠️ {alerts}", en="⚠️ {alerts}")
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


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def place_name(name: str) -> str:
    return short(name, NAME_CHARS)


def at_text(moment: datetime | None, zone: ZoneInfo, lang: str) -> str:
    return "–" if moment is None else local_time(moment, zone, lang)


def remaining_text(escort: EscortSummary) -> str:
    return "–" if escort.remaining_m is None else distance_text(escort.remaining_m)


def alert_names(kinds: Sequence[str], lang: str) -> str:
    return ", ".join(ALERTS[kind](lang) if kind in ALERTS else kind for kind in kinds)


# -- a member's escorts ------------------------------------------------------------------------------


def duty_block(role: str, detail: EscortDetail, lang: str, zone: ZoneInfo) -> Html:
    escort = detail.summary
    lines = [
        DUTY_HEAD(
            lang,
            icon=ICONS.get(escort.state, "🚚"),
            code=escort.code,
            cargo=short(escort.cargo, CARGO_CHARS),
            role=ROLES[role](lang) if role in ROLES else role,
        ),
        ROUTE(lang, origin=place_name(escort.origin.name), destination=place_name(escort.destination.name)),
    ]
    if detail.route.vias:
        vias = ", ".join(
            ("✅ " if via.passed_at is not None else "") + place_name(via.waypoint.name) for via in detail.route.vias
        )
        lines.append(VIAS(lang, vias=vias))
    lines.append(TIMES(lang, depart=at_text(escort.depart_at, zone, lang), due=at_text(escort.arrive_by, zone, lang)))
    moment = {"berangkat": escort.departed_at, "tiba": escort.arrived_at, "diterima": escort.received_at}
    lines.append(STATE_LINE[escort.state](lang, at=at_text(moment.get(escort.state), zone, lang), code=escort.code))
    if escort.open_alerts:
        lines.append(OPEN_ALERTS(lang, alerts=alert_names(escort.open_alerts, lang)))
    crew = ", ".join(member_name(member, lang) for member in detail.members)
    if crew:
        lines.append(CREW(lang, crew=short(crew, 200)))
    return Html("\n".join(lines))


def member_name(member: Member, lang: str) -> str:
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
        return DEPARTED(lang, code=escort.code, at=at_text(escort.departed_at, zone, lang))
    moment = {"berangkat": escort.departed_at, "tiba": escort.arrived_at, "diterima": escort.received_at}
    already = ALREADY.get(escort.state, ALREADY["berangkat"])
    return already(lang, code=escort.code, at=at_text(moment.get(escort.state), zone, lang))


def arrived_text(escort: EscortSummary, lang: str, zone: ZoneInfo, *, at: datetime) -> Html:
    return ARRIVED(lang, code=escort.code, place=place_name(escort.destination.name), at=at_text(at, zone, lang))


def arrived_lead_text(escort: EscortSummary, lang: str, zone: ZoneInfo, *, by: str, at: datetime) -> Html:
    return ARRIVED_LEAD(
        lang,
        code=escort.code,
        cargo=short(escort.cargo, CARGO_CHARS),
        place=place_name(escort.destination.name),
        at=at_text(at, zone, lang),
        by=by,
    )


def position_text(
    escort: EscortSummary,
    route: Route,
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
    lines: list[str] = []
    if departed:
        lines.append(
            DEPARTED_AWAY(lang, code=escort.code, at=at_text(at, zone, lang), origin=place_name(escort.origin.name))
        )
    if passed:
        names = {via.waypoint.code: via.waypoint.name for via in route.vias}
        lines.append(PASSED(lang, places=", ".join(place_name(names.get(code, code)) for code in passed)))
    if arrived:
        lines.append(arrived_text(escort, lang, zone, at=at))
    elif answer:
        said = LIVE_STARTED if live else POSITION
        lines.append(
            said(
                lang,
                code=escort.code,
                at=at_text(at, zone, lang),
                remaining=remaining_text(escort),
                place=place_name(escort.destination.name),
            )
        )
    return Html("\n".join(lines)) if lines else None


# -- serah terima -------------------------------------------------------------------------------------


def receive_text(result: ReceiveResult, lang: str, zone: ZoneInfo) -> Html:
    """The receiver's answer: the confirmation, or why not."""
    place = place_name(result.place.name) if result.place is not None else "?"
    if result.outcome is ReceiveOutcome.received:
        lead = result.lead.title if result.lead is not None else "–"
        return RECEIVED(
            lang,
            code=result.code,
            cargo=short(result.cargo, CARGO_CHARS),
            lead=lead,
            at=at_text(result.received_at, zone, lang),
            place=place,
        )
    if result.outcome is ReceiveOutcome.not_registered:
        return NOT_REGISTERED(lang)
    who = result.received_by.title if result.received_by is not None else "–"
    return REFUSED[result.outcome](
        lang, code=result.code, place=place, who=who, at=at_text(result.received_at, zone, lang)
    )


def received_lead_text(result: ReceiveResult, lang: str, zone: ZoneInfo) -> Html:
    return RECEIVED_LEAD(
        lang,
        code=result.code,
        cargo=short(result.cargo, CARGO_CHARS),
        receiver=result.received_by.title if result.received_by is not None else "–",
        at=at_text(result.received_at, zone, lang),
        place=place_name(result.place.name) if result.place is not None else "?",
    )
