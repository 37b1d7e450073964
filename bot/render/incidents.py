"""Contingency texts and keyboards: the group alert, the reporter's replies, popups, `/insiden`.

This module imports nothing from Telegram: keyboards are Bot API JSON
(`{"inline_keyboard": ...}`), which is what an outbox row carries, so
flows/incidents.py can queue the alerts it words. Handlers turn them into
PTB objects with `InlineKeyboardMarkup.de_json`.

Callback data: `ct:s:<id>:<severity>` (the reporter's choice),
`ct:a|r|n:<id>` (acknowledge, resolve, escalate on an alert),
`ct:a|r:<id>:<page>` (the same from an `/insiden` page, which is redrawn),
`ct:p:<page>` (paging). All well under 64 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.render import Html, Msg, clip, escort_alerts, local_time
from bot.render.callbacks import Codec
from bot.render.outbox import html_payload
from bot.services.escalation import Announcement, Note, NoteKind
from models.enums import ContingencyState, Severity

if TYPE_CHECKING:
    from bot.services.escalation import ContingencyView
    from bot.services.groups import GroupTarget
    from bot.services.incidents import IncidentPage, IncidentResult

Markup = dict[str, Any]
POPUP_LIMIT = 200
NOTICEABLE_DELAY = timedelta(minutes=1)  # a message read later than this after it was sent says so

SEVERITIES = {
    Severity.rendah: Msg(id="🟢 Rendah", en="🟢 Low"),
    Severity.sedang: Msg(id="🟠 Sedang", en="🟠 Medium"),
    Severity.tinggi: Msg(id="🔴 Tinggi", en="🔴 High"),
}
STATES = {
    ContingencyState.open: Msg(id="TERBUKA", en="OPEN"),
    ContingencyState.acknowledged: Msg(id="DITERIMA", en="ACKNOWLEDGED"),
    ContingencyState.resolved: Msg(id="SELESAI", en="RESOLVED"),
}
ACKNOWLEDGE = Msg(id="✔️ Terima", en="✔️ Acknowledge")
RESOLVE = Msg(id="✅ Selesai", en="✅ Resolve")
ESCALATE = Msg(id="⬆️ Naik", en="⬆️ Escalate")

USAGE = Msg(
    id="Format: <code>/darurat TEKS</code>, misalnya <code>/darurat Massa berkumpul di depan TPS</code>.",
    en="Usage: <code>/sos TEXT</code>, for example <code>/sos A crowd is gathering at the TPS</code>.",
)
CHOOSE = Msg(
    id="🚨 Kontinjensi #{id}: pilih tingkat keparahan. Tanpa pilihan dalam 2 menit, dikirim sebagai TINGGI.",
    en="🚨 Contingency #{id}: choose the severity. Without a choice within 2 minutes it goes out as HIGH.",
)
RAISED = Msg(
    id="🚨 Kontinjensi #{id} ({severity}) diteruskan ke: {groups}.\nAnda akan diberi tahu saat komandan menerimanya.",
    en="🚨 Contingency #{id} ({severity}) sent to: {groups}.\nYou will be told when a commander acknowledges it.",
)
NO_GROUP = Msg(
    id="⚠️ Kontinjensi #{id} ({severity}) tercatat, tetapi belum ada grup komando untuk satuan Anda. Hubungi komandan Anda langsung.",
    en="⚠️ Contingency #{id} ({severity}) is recorded, but no command group is registered for your unit. Call your commander directly.",
)
AUTO_RAISED = Msg(
    id="🚨 Kontinjensi #{id} dikirim sebagai TINGGI karena tingkat belum dipilih. Diteruskan ke: {groups}.",
    en="🚨 Contingency #{id} went out as HIGH because no severity was chosen. Sent to: {groups}.",
)
ASK_LOCATION = Msg(
    id="📍 Bila bisa, kirim lokasi Anda untuk kontinjensi #{id} dengan tombol di bawah.",
    en="📍 If you can, send your location for contingency #{id} with the button below.",
)
LOCATED = Msg(id="📎 Lokasi terlampir pada kontinjensi #{id}.", en="📎 Location attached to contingency #{id}.")
ACKNOWLEDGED_NOTE = Msg(
    id="✔️ Kontinjensi #{id} diterima oleh <b>{who}</b> pukul {at}.",
    en="✔️ Contingency #{id} acknowledged by <b>{who}</b> at {at}.",
)
RESOLVED_NOTE = Msg(
    id="✅ Kontinjensi #{id} dinyatakan selesai oleh <b>{who}</b> pukul {at}.",
    en="✅ Contingency #{id} resolved by <b>{who}</b> at {at}.",
)
REMINDER = Msg(
    id="⏰ Kontinjensi #{id} ({tps}) yang Anda terima belum selesai. Tekan ✅ Selesai di pesannya bila sudah tertangani, atau /insiden.",
    en="⏰ Contingency #{id} ({tps}) that you acknowledged is not resolved yet. Press ✅ Resolve on it once handled, or /incidents.",
)

ALERT_HEAD = Msg(id="🚨 <b>KONTINJENSI #{id}</b> · {severity}", en="🚨 <b>CONTINGENCY #{id}</b> · {severity}")
ALERT_TPS = Msg(id="<b>{tps}</b> — {address}", en="<b>{tps}</b> — {address}")
ALERT_NO_TPS = Msg(id="Tanpa TPS (di luar shift)", en="No TPS (off shift)")
ALERT_UNITS = Msg(id="Satuan: {unit}", en="Unit: {unit}")
ALERT_BORDER = Msg(id=" · perbatasan: {units}", en=" · border: {units}")
ALERT_REPORTER = Msg(id="Pelapor: {who} · dikirim {at}", en="Reporter: {who} · sent {at}")
ALERT_DELAY = Msg(id=" · diterima {delay} kemudian", en=" · received {delay} later")
QUOTE = Msg(id="«{text}»", en="«{text}»")
ALERT_PLACE = Msg(id='📍 <a href="{url}">{lat}, {lon}</a>', en='📍 <a href="{url}">{lat}, {lon}</a>')
STATUS_OPEN = Msg(
    id="Status: <b>TERBUKA</b> · tingkat {level} · naik otomatis {at}",
    en="Status: <b>OPEN</b> · level {level} · escalates at {at}",
)
STATUS_TOP = Msg(id="Status: <b>TERBUKA</b> · tingkat {level}", en="Status: <b>OPEN</b> · level {level}")
STATUS_ACKNOWLEDGED = Msg(
    id="Status: <b>DITERIMA</b> oleh {who}, {at} · tingkat {level}",
    en="Status: <b>ACKNOWLEDGED</b> by {who}, {at} · level {level}",
)
STATUS_RESOLVED = Msg(id="Status: <b>SELESAI</b> oleh {who}, {at}", en="Status: <b>RESOLVED</b> by {who}, {at}")

ALREADY_ACKNOWLEDGED = Msg(id="Sudah diterima oleh {who} pukul {at}.", en="Already acknowledged by {who} at {at}.")
ALREADY_RESOLVED = Msg(id="Sudah diselesaikan oleh {who} pukul {at}.", en="Already resolved by {who} at {at}.")
ALREADY_RAISED = Msg(id="Kontinjensi ini sudah dikirim.", en="This contingency has already been sent.")
FORBIDDEN = Msg(id="⛔ Kontinjensi ini di luar kewenangan Anda.", en="⛔ This contingency is outside your command.")
NOT_YOURS = Msg(id="⛔ Ini bukan kontinjensi Anda.", en="⛔ This is not your contingency.")
UNKNOWN = Msg(id="Kontinjensi tidak ditemukan.", en="Contingency not found.")
BUSY = Msg(id="Sedang diperbarui orang lain; coba lagi.", en="Someone else is updating it; try again.")
AT_TOP = Msg(id="Sudah di tingkat tertinggi: tidak ada grup di atasnya.", en="Already at the top: no group above it.")
ACKNOWLEDGED_TOAST = Msg(id="✔️ Diterima. Semua grup diperbarui.", en="✔️ Acknowledged. Every group is updated.")
RESOLVED_TOAST = Msg(id="✅ Selesai. Semua grup diperbarui.", en="✅ Resolved. Every group is updated.")
ESCALATED_TOAST = Msg(id="⬆️ Dinaikkan ke: {groups}", en="⬆️ Escalated to: {groups}")

LIST_HEADER = Msg(
    id="<b>Kontinjensi terbuka</b>: {total} · halaman {page}/{pages}",
    en="<b>Open contingencies</b>: {total} · page {page}/{pages}",
)
LIST_EMPTY = Msg(id="Tidak ada kontinjensi terbuka.", en="No open contingencies.")
LIST_ITEM = Msg(
    id="<b>#{id}</b> · {severity} · {state} · {age}\n{tps} · {unit} · tingkat {level}\n{text}",
    en="<b>#{id}</b> · {severity} · {state} · {age}\n{tps} · {unit} · level {level}\n{text}",
)
LIST_FORBIDDEN = Msg(id="⛔ Anda tidak berwenang atas satuan grup ini.", en="⛔ You do not command this group's unit.")
# keyed by IncidentOutcome values (a StrEnum), so this module needs no import of the service
TOASTS = {"acknowledged": ACKNOWLEDGED_TOAST, "resolved": RESOLVED_TOAST, "escalated": ESCALATED_TOAST}
REFUSALS = {
    "forbidden": FORBIDDEN,
    "not_yours": NOT_YOURS,
    "busy": BUSY,
    "at_top": AT_TOP,
    "already_raised": ALREADY_RAISED,
}
AGE_MINUTES = Msg(id="{m} mnt", en="{m} min")
AGE_HOURS = Msg(id="{h} j {m} mnt", en="{h} h {m} min")
DELAY_MINUTES = Msg(id="{m} menit", en="{m} min")
DELAY_HOURS = Msg(id="{h} jam {m} menit", en="{h} h {m} min")


def delay_text(delay: timedelta, lang: str) -> Html | None:
    """How long a message took to reach the bot ("8 menit"); None within `NOTICEABLE_DELAY`, not worth saying.

    Shared by every text that says a message was read late (group alerts,
    check-in answers, the sitrep review), so the wording is the same everywhere.
    """
    if delay <= NOTICEABLE_DELAY:
        return None
    minutes = int(delay.total_seconds() // 60)
    if minutes < 60:
        return DELAY_MINUTES(lang, m=minutes)
    return DELAY_HOURS(lang, h=minutes // 60, m=minutes % 60)


def popup(msg: Msg, lang: str, **values: object) -> str:
    """A callback-query popup: plain text (no HTML there), at most 200 characters."""
    return (msg.en if lang == "en" else msg.id).format(**values)[:POPUP_LIMIT]


BUTTONS = Codec("ct")
PRESS_SEVERITY = BUTTONS.button("s", int, str)
PRESS_ACK, PRESS_RESOLVE, PRESS_ESCALATE = (BUTTONS.button(kind, int) for kind in "arn")
PRESS_ACK_ON_PAGE, PRESS_RESOLVE_ON_PAGE = (BUTTONS.button(kind, int, int) for kind in "ar")
PRESS_PAGE = BUTTONS.button("p", int)
"""The severity chosen, acknowledge / resolve / escalate (from an `/insiden` page: with its page), a page."""


def _button(text: str, data: str) -> dict[str, str]:
    return {"text": text, "callback_data": data}


def severity_markup(contingency_id: int, lang: str) -> Markup:
    return {
        "inline_keyboard": [
            [
                _button(label(lang), PRESS_SEVERITY.data(contingency_id, severity.value))
                for severity, label in SEVERITIES.items()
            ]
        ]
    }


def alert_markup(view: ContingencyView, lang: str) -> Markup | None:
    """Acknowledge while open, resolve until resolved, escalate for a commander; none once resolved."""
    if view.state == ContingencyState.resolved:
        return None
    first = [_button(RESOLVE(lang), PRESS_RESOLVE.data(view.id))]
    if view.state == ContingencyState.open:
        first.insert(0, _button(ACKNOWLEDGE(lang), PRESS_ACK.data(view.id)))
    return {"inline_keyboard": [first, [_button(ESCALATE(lang), PRESS_ESCALATE.data(view.id))]]}


def alert_payload(view: ContingencyView, lang: str) -> dict[str, Any]:
    """The alert's Bot API options: HTML, no link preview (its map link), and its buttons while it has any."""
    payload = html_payload()
    markup = alert_markup(view, lang)
    if markup is not None:
        payload["reply_markup"] = markup
    return payload


def _severity(view: ContingencyView, lang: str) -> str:
    return SEVERITIES[Severity(view.severity)](lang) if view.severity else "-"


def _place(view: ContingencyView, lang: str) -> Html | None:
    if view.lat is None or view.lon is None:
        return None
    url = f"https://maps.google.com/?q={view.lat:.6f},{view.lon:.6f}"
    return ALERT_PLACE(lang, url=url, lat=f"{view.lat:.5f}", lon=f"{view.lon:.5f}")


def _status(view: ContingencyView, lang: str, zone: ZoneInfo) -> Html:
    def at(moment: datetime | None) -> str:
        return local_time(moment, zone, lang, with_date=False) if moment else "-"

    if view.state == ContingencyState.resolved and not view.resolved_by and view.escort is not None:
        return escort_alerts.cleared_status(view, lang, zone)
    if view.state == ContingencyState.resolved:
        return STATUS_RESOLVED(lang, who=view.resolved_by, at=at(view.resolved_at))
    if view.state == ContingencyState.acknowledged:
        return STATUS_ACKNOWLEDGED(lang, who=view.acknowledged_by, at=at(view.acknowledged_at), level=view.level_name)
    if view.deadline_at is None:
        return STATUS_TOP(lang, level=view.level_name)
    return STATUS_OPEN(lang, level=view.level_name, at=at(view.deadline_at))


def _reporter(view: ContingencyView, lang: str, zone: ZoneInfo) -> Html:
    """Who sent it and when they sent it; how late the bot read it, when that was more than a minute."""
    line = ALERT_REPORTER(lang, who=view.reporter, at=local_time(view.sent_at, zone, lang))
    delay = delay_text(view.created_at - view.sent_at, lang)
    return Html(line + ALERT_DELAY(lang, delay=delay)) if delay else line


def alert_text(view: ContingencyView, lang: str, zone: ZoneInfo) -> Html:
    """The alert every command group gets, redrawn in full at each change (so every copy matches)."""
    units = ALERT_UNITS(lang, unit=view.unit_name)
    if view.secondary_names:
        units = Html(units + ALERT_BORDER(lang, units=", ".join(view.secondary_names)))
    if view.escort is not None:
        head = ALERT_HEAD(lang, id=view.id, severity=_severity(view, lang))
        body = escort_alerts.lines(view, view.escort, lang, zone)
        return clip("\n".join([head, *body[:3], units, *body[3:], "", _status(view, lang, zone)]))
    lines = [
        ALERT_HEAD(lang, id=view.id, severity=_severity(view, lang)),
        ALERT_TPS(lang, tps=view.tps_code, address=view.tps_address or "-") if view.tps_code else ALERT_NO_TPS(lang),
        units,
        _reporter(view, lang, zone),
        _place(view, lang),
        QUOTE(lang, text=view.text),
        "",
        _status(view, lang, zone),
    ]
    return clip("\n".join(line for line in lines if line is not None))


def _groups(targets: Iterable[GroupTarget]) -> str:
    return ", ".join(f"{target.title or target.unit_name} ({target.unit_name})" for target in targets)


def raised_text(result: IncidentResult, lang: str) -> Html:
    view = result.view
    assert view is not None
    if not result.targets:
        return NO_GROUP(lang, id=view.id, severity=_severity(view, lang))
    return RAISED(lang, id=view.id, severity=_severity(view, lang), groups=_groups(result.targets))


def auto_raised(view: ContingencyView, targets: Sequence[GroupTarget], lang: str) -> Html:
    if not targets:
        return NO_GROUP(lang, id=view.id, severity=SEVERITIES[Severity.tinggi](lang))
    return AUTO_RAISED(lang, id=view.id, groups=_groups(targets))


def reporter_update(view: ContingencyView, lang: str, zone: ZoneInfo) -> Html:
    """What the reporter hears when a commander acknowledges or resolves."""
    if view.state == ContingencyState.resolved:
        return RESOLVED_NOTE(
            lang,
            id=view.id,
            who=view.resolved_by,
            at=local_time(view.resolved_at or view.created_at, zone, lang, with_date=False),
        )
    return ACKNOWLEDGED_NOTE(
        lang,
        id=view.id,
        who=view.acknowledged_by,
        at=local_time(view.acknowledged_at or view.created_at, zone, lang, with_date=False),
    )


def resolve_reminder(view: ContingencyView, lang: str) -> Html:
    return REMINDER(lang, id=view.id, tps=view.tps_code or "-")


def note_text(note: Note, announcement: Announcement, zone: ZoneInfo) -> Html:
    """A private note about the announced contingency, in its recipient's language."""
    view, lang = announcement.view, note.language
    if note.kind is NoteKind.auto_raised:
        return auto_raised(view, announcement.reach, lang)
    if note.kind is NoteKind.resolve_reminder:
        return resolve_reminder(view, lang)
    return reporter_update(view, lang, zone)


def result_popup(result: IncidentResult, lang: str, zone: ZoneInfo) -> tuple[str, bool]:
    """(text, show_alert) for a press: refusals and "already" are popups, successes a short toast."""
    view, outcome = result.view, str(result.outcome)

    def at(moment: datetime | None) -> str:
        return local_time(moment, zone, lang, with_date=False) if moment else "-"

    if outcome in TOASTS:
        return popup(TOASTS[outcome], lang, groups=_groups(result.targets)), False
    if outcome == "already_acknowledged" and view is not None:
        return popup(ALREADY_ACKNOWLEDGED, lang, who=view.acknowledged_by, at=at(view.acknowledged_at)), True
    if outcome == "already_resolved" and view is not None:
        return popup(ALREADY_RESOLVED, lang, who=view.resolved_by, at=at(view.resolved_at)), True
    return popup(REFUSALS.get(outcome, UNKNOWN), lang), True


def _age(view: ContingencyView, now: datetime, lang: str) -> str:
    """Since it was sent: what happened at the TPS is that old, however late the bot read it."""
    minutes = max(0, int((now - view.sent_at).total_seconds() // 60))
    if minutes < 60:
        return AGE_MINUTES(lang, m=minutes)
    return AGE_HOURS(lang, h=minutes // 60, m=minutes % 60)


def list_page(page: IncidentPage, lang: str, now: datetime) -> tuple[Html, Markup | None]:
    """One page of `/insiden`: a block per contingency, its buttons, and the page arrows."""
    if not page.items:
        return LIST_EMPTY(lang), None
    blocks = [LIST_HEADER(lang, total=page.total, page=page.page + 1, pages=page.pages)]
    rows: list[list[dict[str, str]]] = []
    for view in page.items:
        blocks.append(
            LIST_ITEM(
                lang,
                id=view.id,
                severity=_severity(view, lang),
                state=STATES[ContingencyState(view.state)](lang),
                age=_age(view, now, lang),
                tps=view.tps_code or (view.escort.code if view.escort else "-"),
                unit=view.unit_name,
                level=view.level_name,
                text=view.text[:200],
            )
        )
        row = [_button(f"{RESOLVE(lang)} #{view.id}", PRESS_RESOLVE_ON_PAGE.data(view.id, page.page))]
        if view.state == ContingencyState.open:
            row.insert(0, _button(f"{ACKNOWLEDGE(lang)} #{view.id}", PRESS_ACK_ON_PAGE.data(view.id, page.page)))
        rows.append(row)
    arrows = []
    if page.page > 0:
        arrows.append(_button("◀️", PRESS_PAGE.data(page.page - 1)))
    if page.page + 1 < page.pages:
        arrows.append(_button("▶️", PRESS_PAGE.data(page.page + 1)))
    if arrows:
        rows.append(arrows)
    return clip("\n\n".join(blocks)), {"inline_keyboard": rows}
