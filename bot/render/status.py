"""`/status` texts and keyboards: the summary, the child-unit buttons, the missing list.

Callback data (all under 64 bytes, ids only; who may press is decided by
the service on every press):
  st:u:<unit>          the status of a unit, as a new message (drill down / up)
  st:r:<unit>:<page>   the same message refreshed, at a page of child units
  st:m:<unit>          the missing list of a unit, as a new message
  st:mp:<unit>:<page>  the missing list refreshed, at a page
  kw:u:<unit>          the subtree's escorts (bot/render/escorts.py), when it has any
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.render import ZONE_NAMES, Html, Msg, clip, local_time
from bot.render.callbacks import Codec
from bot.render.escorts import PRESS_UNIT as PRESS_ESCORTS
from bot.render.registration import COMMANDERS_ONLY, NOT_REGISTERED, UNREGISTERED_GROUP
from bot.render.sitrep import CATEGORIES
from bot.services.status import (
    ChildStatus,
    Coverage,
    Figures,
    MissingPage,
    MissingPerson,
    Refusal,
    ShiftRef,
    SitrepLine,
    UnitStatus,
)
from models.enums import SitrepCategory

BUTTONS = Codec("st")
PRESS_UNIT = BUTTONS.button("u", int)
PRESS_REDRAW = BUTTONS.button("r", int, int)
PRESS_MISSING = BUTTONS.button("m", int)
PRESS_MISSING_PAGE = BUTTONS.button("mp", int, int)
"""A child unit's status (new message), this status redrawn at a page, the missing list, a page of it."""

CHILDREN_PER_PAGE = 8
TPS_SHOWN = 3

HEADER = Msg(id="📊 <b>Status {code}</b> — {name}", en="📊 <b>Status {code}</b> — {name}")
AS_OF = Msg(id="<i>per {time}</i>", en="<i>as of {time}</i>")
NO_SHIFT = Msg(id="Belum ada shift yang direncanakan.", en="No shift is planned.")
SHIFT_RUNNING = Msg(
    id="🕒 Shift <b>{shift}</b> {start}–{end}, sedang berjalan", en="🕒 Shift <b>{shift}</b> {start}–{end}, running"
)
SHIFT_NEXT = Msg(
    id="🕒 Shift <b>{shift}</b> mulai {start}, belum dimulai",
    en="🕒 Shift <b>{shift}</b> starts {start}, not started yet",
)
SHIFT_ENDED = Msg(id="🕒 Shift <b>{shift}</b> selesai {end}", en="🕒 Shift <b>{shift}</b> ended {end}")
READINESS = Msg(
    id="🟢 Kesiapan: <b>{registered}/{assigned}</b> personel terdaftar di bot ({pct})",
    en="🟢 Readiness: <b>{registered}/{assigned}</b> personnel registered with the bot ({pct})",
)
ASSIGNED = Msg(
    id="👮 Bertugas <b>{assigned}</b> · terdaftar {registered} ({pct})",
    en="👮 On duty <b>{assigned}</b> · registered {registered} ({pct})",
)
CHECKED_IN = Msg(
    id="✅ Hadir <b>{checked_in}/{assigned}</b> ({pct}) · ⏰ terlambat {late} · 📍 jauh dari TPS {far}",
    en="✅ Checked in <b>{checked_in}/{assigned}</b> ({pct}) · ⏰ late {late} · 📍 far from TPS {far}",
)
MISSING = Msg(
    id="❌ Belum hadir <b>{missing}</b> · 📵 tak terjangkau {unreachable}",
    en="❌ Not checked in <b>{missing}</b> · 📵 unreachable {unreachable}",
)
CHECKED_OUT = Msg(id=" · 👋 selesai {n}", en=" · 👋 checked out {n}")
TPS_LINE = Msg(
    id="🗳 TPS terjaga <b>{covered}/{total}</b> ({pct}) · belum terjaga {uncovered} · sesuai pola {meets}",
    en="🗳 TPS covered <b>{covered}/{total}</b> ({pct}) · uncovered {uncovered} · meeting the pattern {meets}",
)
LEVEL_LINE = Msg(
    id="   {level}: {covered}/{total} terjaga, {meets} sesuai pola",
    en="   {level}: {covered}/{total} covered, {meets} meet the pattern",
)
LEVELS = {
    "sangat_rawan": Msg(id="sangat rawan", en="highly vulnerable"),
    "rawan": Msg(id="rawan", en="vulnerable"),
    "kurang_rawan": Msg(id="kurang rawan", en="less vulnerable"),
}
SEVERITIES = {
    "tinggi": Msg(id="tinggi", en="high"),
    "sedang": Msg(id="sedang", en="medium"),
    "rendah": Msg(id="rendah", en="low"),
}
OPEN = Msg(id="🚨 Kontinjensi terbuka <b>{n}</b>: {levels}", en="🚨 Open contingencies <b>{n}</b>: {levels}")
NO_OPEN = Msg(id="🚨 Kontinjensi terbuka: tidak ada", en="🚨 Open contingencies: none")
SITREPS = Msg(id="📝 <b>Laporan terakhir</b>", en="📝 <b>Latest reports</b>")
SITREP_LINE = Msg(
    id="{at} · {where} · {category} — {reporter}: {text}", en="{at} · {where} · {category} — {reporter}: {text}"
)
CHILDREN = Msg(id="<b>Satuan bawahan</b>{page}", en="<b>Subordinate units</b>{page}")
CHILD_LINE = Msg(
    id="{code}: hadir {checked_in}/{assigned} · TPS {covered}/{total}{alert}",
    en="{code}: in {checked_in}/{assigned} · TPS {covered}/{total}{alert}",
)
PAGE = Msg(id=" (hal. {page}/{pages})", en=" (page {page}/{pages})")

ESCORTS = Msg(
    id="🚚 Pengawalan <b>{total}</b>: berangkat {berangkat} · terjadwal {terjadwal} · tiba {tiba} · diterima {diterima} · ⚠️ dengan alert {alerts}",
    en="🚚 Escorts <b>{total}</b>: underway {berangkat} · planned {terjadwal} · arrived {tiba} · received {diterima} · ⚠️ with alerts {alerts}",
)
ESCORTS_BUTTON = Msg(id="🚚 Pengawalan ({n})", en="🚚 Escorts ({n})")
MISSING_BUTTON = Msg(id="❌ Belum hadir ({n})", en="❌ Not checked in ({n})")
REFRESH = Msg(id="🔄 Perbarui", en="🔄 Refresh")
UP = Msg(id="⬆️ {code}", en="⬆️ {code}")

MISSING_HEADER = Msg(
    id="❌ <b>Belum hadir — {code}</b>\nShift {shift} · {total} orang · hal. {page}/{pages}",
    en="❌ <b>Not checked in — {code}</b>\nShift {shift} · {total} people · page {page}/{pages}",
)
MISSING_NONE = Msg(id="Semua personel yang bertugas sudah hadir.", en="Everyone on duty has checked in.")
MISSING_LINE = Msg(
    id="{n}. {title} ({force}) · {unit} · {tps}{marks}", en="{n}. {title} ({force}) · {unit} · {tps}{marks}"
)
UNREACHABLE = Msg(id=" · 📵 tak terjangkau", en=" · 📵 unreachable")
UNREGISTERED = Msg(id=" · ✉️ belum daftar", en=" · ✉️ not registered")
FORCES = {"polri": "Polri", "tni": "TNI", "linmas": "Linmas"}

UNKNOWN_UNIT = Msg(id="Satuan <b>{code}</b> tidak ditemukan.", en="Unit <b>{code}</b> not found.")
OUTSIDE = Msg(
    id="⛔ {code} di luar satuan Anda. /status hanya menampilkan satuan Anda dan satuan di bawahnya.",
    en="⛔ {code} is outside your command. /status only shows your own unit and the units below it.",
)
OUTSIDE_GROUP = Msg(
    id="⛔ {code} di luar satuan grup komando ini.",
    en="⛔ {code} is outside this command group's unit.",
)


def refusal_text(refusal: Refusal, lang: str, *, code: str | None = None, in_group: bool = False) -> Html:
    """Why nothing is shown; in an unregistered group only that, no data."""
    unit = code or "?"
    if refusal is Refusal.not_registered:
        return NOT_REGISTERED(lang)
    if refusal is Refusal.not_commander:
        return COMMANDERS_ONLY(lang)
    if refusal is Refusal.unregistered_group:
        return UNREGISTERED_GROUP(lang)
    if refusal is Refusal.unknown_unit:
        return UNKNOWN_UNIT(lang, code=unit)
    return (OUTSIDE_GROUP if in_group else OUTSIDE)(lang, code=unit)


def popup(text: str) -> str:
    """A callback answer is plain text of at most 200 characters."""
    plain = html.unescape(re.sub(r"<[^>]+>", "", text))
    return plain if len(plain) <= 200 else plain[:199] + "…"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


def clock(moment: datetime, zone: ZoneInfo) -> str:
    """`08:00:05 WIB`: to the second, so the commander knows how fresh the numbers are."""
    local = moment.astimezone(zone)
    return f"{local:%H:%M:%S} {ZONE_NAMES.get(str(zone), local.strftime('%Z'))}"


def shift_line(shift: ShiftRef, now: datetime, zone: ZoneInfo, lang: str) -> Html:
    start = local_time(shift.starts_at, zone, lang)
    end = local_time(shift.ends_at, zone, lang, with_date=False)
    if now < shift.starts_at:
        return SHIFT_NEXT(lang, shift=shift.name, start=start)
    if now >= shift.ends_at:
        return SHIFT_ENDED(lang, shift=shift.name, end=local_time(shift.ends_at, zone, lang))
    return SHIFT_RUNNING(lang, shift=shift.name, start=start, end=end)


def status_text(view: UnitStatus, lang: str, zone: ZoneInfo, *, page: int = 0) -> Html:
    lines: list[str] = [HEADER(lang, code=view.unit.code, name=view.unit.name)]
    if view.shift is None:
        lines += [NO_SHIFT(lang), AS_OF(lang, time=clock(view.as_of, zone))]
        if view.escorts.total:
            lines.append(_escort_line(view, lang))
        return clip("\n".join(lines))
    lines += [shift_line(view.shift, view.as_of, zone, lang), AS_OF(lang, time=clock(view.as_of, zone)), ""]
    lines += _figure_lines(view.figures, started=view.shift.started(view.as_of), lang=lang)
    if view.escorts.total:
        lines.append(_escort_line(view, lang))
    if view.sitreps:
        lines += ["", SITREPS(lang), *(_sitrep_line(item, lang, zone) for item in view.sitreps)]
    if view.children:
        shown, page, pages = _page(view.children, page)
        lines += ["", CHILDREN(lang, page=PAGE(lang, page=page + 1, pages=pages) if pages > 1 else "")]
        lines += [_child_line(child, lang) for child in shown]
    return clip("\n".join(lines))


def _escort_line(view: UnitStatus, lang: str) -> Html:
    counts = view.escorts
    return ESCORTS(
        lang,
        total=counts.total,
        berangkat=counts.berangkat,
        terjadwal=counts.terjadwal,
        tiba=counts.tiba,
        diterima=counts.diterima,
        alerts=counts.with_alerts,
    )


def _figure_lines(figures: Figures, *, started: bool, lang: str) -> list[str]:
    people, tps = figures.people, figures.coverage
    registered_pct = percent(people.registered, people.assigned)
    head = (
        READINESS(lang, registered=people.registered, assigned=people.assigned, pct=registered_pct)
        if not started
        else ASSIGNED(lang, assigned=people.assigned, registered=people.registered, pct=registered_pct)
    )
    missing = MISSING(lang, missing=people.missing, unreachable=people.unreachable)
    if people.checked_out:
        missing = Html(missing + CHECKED_OUT(lang, n=people.checked_out))
    lines: list[str] = [
        head,
        CHECKED_IN(
            lang,
            checked_in=people.checked_in,
            assigned=people.assigned,
            pct=percent(people.checked_in, people.assigned),
            late=people.late,
            far=people.far,
        ),
        missing,
        TPS_LINE(
            lang,
            covered=tps.covered,
            total=tps.total,
            pct=percent(tps.covered, tps.total),
            uncovered=tps.uncovered,
            meets=tps.meets_pattern,
        ),
    ]
    lines += [_level_line(level, coverage, lang) for level, coverage in figures.tps.items() if coverage.total]
    lines.append(_open_line(figures, lang))
    return lines


def _level_line(level: str, coverage: Coverage, lang: str) -> Html:
    return LEVEL_LINE(
        lang, level=LEVELS[level](lang), covered=coverage.covered, total=coverage.total, meets=coverage.meets_pattern
    )


def _open_line(figures: Figures, lang: str) -> Html:
    if not figures.open_contingencies:
        return NO_OPEN(lang)
    levels = " · ".join(f"{SEVERITIES[level](lang)} {count}" for level, count in figures.contingencies.items())
    return OPEN(lang, n=figures.open_contingencies, levels=levels)


def _sitrep_line(item: SitrepLine, lang: str, zone: ZoneInfo) -> Html:
    category = CATEGORIES[SitrepCategory(item.category)](lang) if item.category else "-"
    text = item.text if len(item.text) <= 80 else item.text[:79] + "…"
    return SITREP_LINE(
        lang,
        at=local_time(item.filed_at, zone, lang, with_date=False),
        where=item.tps_code or item.unit_code,
        category=category,
        reporter=item.reporter,
        text=text,
    )


def _child_line(child: ChildStatus, lang: str) -> Html:
    people, tps = child.figures.people, child.figures.coverage
    alert = f" · 🚨{child.figures.open_contingencies}" if child.figures.open_contingencies else ""
    return CHILD_LINE(
        lang,
        code=child.unit.code,
        checked_in=people.checked_in,
        assigned=people.assigned,
        covered=tps.covered,
        total=tps.total,
        alert=alert,
    )


def _page(children: list[ChildStatus], page: int) -> tuple[list[ChildStatus], int, int]:
    pages = max(1, -(-len(children) // CHILDREN_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    return children[page * CHILDREN_PER_PAGE : (page + 1) * CHILDREN_PER_PAGE], page, pages


def status_keyboard(view: UnitStatus, lang: str, *, page: int = 0) -> InlineKeyboardMarkup:
    """One button per child unit on this page, paging, the missing list, refresh and up."""
    unit = view.unit.id
    shown, page, pages = _page(view.children, page)
    buttons = [
        InlineKeyboardButton(
            f"{child.unit.code} {percent(child.figures.people.checked_in, child.figures.people.assigned)}",
            callback_data=PRESS_UNIT.data(child.unit.id),
        )
        for child in shown
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    if pages > 1:
        rows.append(
            [
                InlineKeyboardButton("◀️", callback_data=PRESS_REDRAW.data(unit, (page - 1) % pages)),
                InlineKeyboardButton(f"{page + 1}/{pages}", callback_data=PRESS_REDRAW.data(unit, page)),
                InlineKeyboardButton("▶️", callback_data=PRESS_REDRAW.data(unit, (page + 1) % pages)),
            ]
        )
    last = [InlineKeyboardButton(REFRESH(lang), callback_data=PRESS_REDRAW.data(unit, page))]
    if view.shift is not None and view.figures.people.missing:
        last.insert(
            0,
            InlineKeyboardButton(
                MISSING_BUTTON(lang, n=view.figures.people.missing), callback_data=PRESS_MISSING.data(unit)
            ),
        )
    if view.escorts.total:
        last.insert(
            0,
            InlineKeyboardButton(ESCORTS_BUTTON(lang, n=view.escorts.total), callback_data=PRESS_ESCORTS.data(unit)),
        )
    if view.parent is not None:
        last.append(
            InlineKeyboardButton(UP(lang, code=view.parent.code), callback_data=PRESS_UNIT.data(view.parent.id))
        )
    rows.append(last)
    return InlineKeyboardMarkup(rows)


def missing_text(view: MissingPage, lang: str, zone: ZoneInfo) -> Html:
    if view.shift is None:
        return NO_SHIFT(lang)
    lines = [
        MISSING_HEADER(
            lang, code=view.unit.code, shift=view.shift.name, total=view.total, page=view.page + 1, pages=view.pages
        ),
        AS_OF(lang, time=clock(view.as_of, zone)),
        "",
    ]
    if not view.people:
        lines.append(MISSING_NONE(lang))
    lines += [_missing_line(number, person, lang) for number, person in enumerate(view.people, start=view.offset + 1)]
    return clip("\n".join(lines))


def _missing_line(number: int, person: MissingPerson, lang: str) -> Html:
    tps = ", ".join(person.tps_codes[:TPS_SHOWN])
    if len(person.tps_codes) > TPS_SHOWN:
        tps += f" +{len(person.tps_codes) - TPS_SHOWN}"
    marks = UNREGISTERED(lang) if not person.registered else UNREACHABLE(lang) if not person.reachable else ""
    return MISSING_LINE(
        lang,
        n=number,
        title=person.title,
        force=FORCES.get(person.force, person.force),
        unit=person.unit_code,
        tps=tps or "-",
        marks=marks,
    )


def missing_keyboard(view: MissingPage, lang: str) -> InlineKeyboardMarkup:
    unit, page, pages = view.unit.id, view.page, view.pages
    row = [InlineKeyboardButton(REFRESH(lang), callback_data=PRESS_MISSING_PAGE.data(unit, page))]
    if pages > 1:
        row = [
            InlineKeyboardButton("◀️", callback_data=PRESS_MISSING_PAGE.data(unit, (page - 1) % pages)),
            *row,
            InlineKeyboardButton("▶️", callback_data=PRESS_MISSING_PAGE.data(unit, (page + 1) % pages)),
        ]
    return InlineKeyboardMarkup(
        [row, [InlineKeyboardButton(UP(lang, code=view.unit.code), callback_data=PRESS_UNIT.data(unit))]]
    )
