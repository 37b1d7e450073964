"""`/daftargrup` texts: registering, replacing, moving and removing a command group."""

from __future__ import annotations

from bot.render import Html, Msg
from bot.services.groups import GroupOutcome, GroupResult

REMOVE_WORDS = frozenset({"hapus", "remove"})

USAGE = Msg(
    id="Ketik di grup komando: <code>/daftargrup KODE_SATUAN</code> untuk menjadikannya grup komando satuan itu, "
    "atau <code>/daftargrup hapus</code> untuk melepasnya.",
    en="Type in the command group: <code>/registergroup UNIT_CODE</code> to make it that unit's command group, "
    "or <code>/registergroup remove</code> to release it.",
)
GROUP_ONLY = Msg(
    id="Perintah ini dipakai di dalam grup yang akan menjadi grup komando.",
    en="Use this command inside the group that is to become a command group.",
)
REGISTERED = Msg(
    id="✅ Grup ini sekarang grup komando <b>{unit}</b> ({code}): kontinjensi dan peringatan satuan ini dikirim ke sini.",
    en="✅ This group is now the command group of <b>{unit}</b> ({code}): the unit's contingencies and alerts come here.",
)
MOVED = Msg(id="Grup ini tidak lagi mewakili {previous}.", en="This group no longer speaks for {previous}.")
REPLACED = Msg(
    id="Grup sebelumnya ({title}) tidak lagi menerima peringatan satuan ini.",
    en="The previous group ({title}) no longer receives this unit's alerts.",
)
CURRENT = Msg(
    id="Grup ini adalah grup komando <b>{unit}</b> ({code}).",
    en="This group is the command group of <b>{unit}</b> ({code}).",
)
REMOVED = Msg(
    id="Grup ini bukan lagi grup komando {unit}. Peringatannya kini ke grup satuan di atasnya.",
    en="This group is no longer the command group of {unit}. Its alerts now go to the group of the unit above.",
)
NOT_REGISTERED = Msg(id="Grup ini belum menjadi grup komando.", en="This group is not a command group.")
UNKNOWN_UNIT = Msg(id="Satuan <code>{code}</code> tidak dikenal.", en="Unknown unit <code>{code}</code>.")
FORBIDDEN = Msg(id="⛔ Anda tidak berwenang atas satuan {code}.", en="⛔ You do not command {code}.")


def group_text(result: GroupResult, lang: str) -> Html:
    outcome = result.outcome
    if outcome in (GroupOutcome.registered, GroupOutcome.moved):
        lines = [REGISTERED(lang, unit=result.unit_name, code=result.unit_code)]
        if result.previous_unit_code:
            lines.append(MOVED(lang, previous=result.previous_unit_code))
        if result.replaced_title:
            lines.append(REPLACED(lang, title=result.replaced_title))
        return Html("\n".join(lines))
    if outcome is GroupOutcome.unchanged:
        return CURRENT(lang, unit=result.unit_name, code=result.unit_code)
    if outcome is GroupOutcome.removed:
        return REMOVED(lang, unit=result.unit_name)
    if outcome is GroupOutcome.unknown_unit:
        return UNKNOWN_UNIT(lang, code=result.unit_code)
    if outcome is GroupOutcome.forbidden:
        return FORBIDDEN(lang, code=result.previous_unit_code or result.unit_code)
    return Html(NOT_REGISTERED(lang) + "\n" + USAGE(lang))
