"""Missed check-in digests for command groups: grouped by TPS, paged under Telegram's limit.

Worded by flows/missed.py when it queues the digest (the outbox keeps the text),
in the operation's language.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.render import MAX_TEXT, Html, Msg, local_time, pages
from bot.services.missed import Digest, MissingPerson, MissingPost

PAGE_MARK_ROOM = 16

FIRST = Msg(
    id="🚨 <b>Belum hadir</b> — {shift} (mulai {start})\n{unit}: <b>{n}</b> personel di {tps} TPS belum check-in "
    "{grace} menit setelah shift dimulai.",
    en="🚨 <b>Not checked in</b> — {shift} (started {start})\n{unit}: <b>{n}</b> personnel at {tps} TPS not checked in "
    "{grace} minutes after the shift started.",
)
UPDATE = Msg(
    id="🔄 <b>Pembaruan belum hadir</b> — {shift}\n{unit}: <b>{n}</b> masih belum hadir (sebelumnya {was}).",
    en="🔄 <b>Not checked in: update</b> — {shift}\n{unit}: <b>{n}</b> still missing (was {was}).",
)
ALL_PRESENT = Msg(
    id="✅ <b>Pembaruan</b> — {shift}\n{unit}: semua personel sudah hadir (sebelumnya {was} belum hadir).",
    en="✅ <b>Update</b> — {shift}\n{unit}: everyone has checked in (was {was} missing).",
)
ARRIVED = Msg(id="Sudah hadir sejak pesan terakhir: {names}", en="Checked in since the last message: {names}")
TPS = Msg(
    id="📍 <b>{code}</b> (TPS {number}, {address}) · {unit}",
    en="📍 <b>{code}</b> (TPS {number}, {address}) · {unit}",
)
NOBODY = Msg(id="   ⚠️ belum ada satu pun yang hadir di TPS ini", en="   ⚠️ nobody has checked in at this TPS")
PERSON = Msg(id="   • {title}", en="   • {title}")
APART = Msg(
    id="📵 <b>Tidak dapat dihubungi bot</b> — hubungi langsung:",
    en="📵 <b>The bot cannot reach them</b> — call them directly:",
)
APART_PERSON = Msg(id="   • {title} ({why})", en="   • {title} ({why})")
NOT_REGISTERED = Msg(id="belum terdaftar", en="not registered")
UNREACHABLE = Msg(id="memblokir bot / tidak terjangkau", en="blocked the bot / unreachable")
PAGE = Msg(id="({n}/{total})", en="({n}/{total})")


def _tps_blocks(post: MissingPost, people: list[MissingPerson], lang: str, *, apart: bool, flag: bool) -> list[str]:
    """The TPS line, its flag and its people; a TPS with too many for one page repeats its line on the next."""
    head = TPS(lang, code=post.tps_code, number=post.tps_number, address=post.address or "-", unit=post.unit_name)
    lines = [NOBODY(lang)] if flag else []
    for person in people:
        if apart:
            why = NOT_REGISTERED(lang) if not person.registered else UNREACHABLE(lang)
            lines.append(APART_PERSON(lang, title=person.title, why=why))
        else:
            lines.append(PERSON(lang, title=person.title))
    room = MAX_TEXT - PAGE_MARK_ROOM - len(head) - 2
    blocks: list[str] = []
    chunk: list[str] = []
    for line in lines:
        if chunk and sum(len(item) + 1 for item in chunk) + len(line) > room:
            blocks.append("\n".join([head, *chunk]))
            chunk = []
        chunk.append(line)
    blocks.append("\n".join([head, *chunk]))
    return blocks


def _header(digest: Digest, lang: str, zone: ZoneInfo, grace_minutes: float) -> str:
    tps_count = len(digest.posts)
    if digest.revision == 0:
        return FIRST(
            lang,
            shift=digest.shift_name,
            start=local_time(digest.starts_at, zone, lang),
            unit=digest.unit_name,
            n=digest.missing,
            tps=tps_count,
            grace=f"{grace_minutes:g}",
        )
    if digest.missing == 0:
        return ALL_PRESENT(lang, shift=digest.shift_name, unit=digest.unit_name, was=digest.previous_missing)
    return UPDATE(lang, shift=digest.shift_name, unit=digest.unit_name, n=digest.missing, was=digest.previous_missing)


def digest_pages(digest: Digest, *, lang: str, zone: ZoneInfo, grace_minutes: float) -> list[Html]:
    """The header, who arrived (updates), then each TPS with its missing people; apart, who to phone."""
    blocks = [_header(digest, lang, zone, grace_minutes)]
    if digest.arrived:
        names = ", ".join(f"{arrival.title} ({arrival.tps_code})" for arrival in digest.arrived)
        blocks.append(ARRIVED(lang, names=names))
    apart_blocks = []
    for post in digest.posts:
        reached = [person for person in post.people if person.reachable_by_bot]
        unreached = [person for person in post.people if not person.reachable_by_bot]
        if reached:
            blocks.extend(_tps_blocks(post, reached, lang, apart=False, flag=post.nobody_present))
        if unreached:  # the "nobody here" flag goes with the TPS's first appearance
            flag = post.nobody_present and not reached
            apart_blocks.extend(_tps_blocks(post, unreached, lang, apart=True, flag=flag))
    if apart_blocks:
        blocks.append(APART(lang))
        blocks.extend(apart_blocks)
    result = pages(blocks, limit=MAX_TEXT - PAGE_MARK_ROOM)
    if len(result) == 1:
        return result
    return [Html(f"{page}\n{PAGE(lang, n=n, total=len(result))}") for n, page in enumerate(result, start=1)]
