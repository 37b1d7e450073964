"""Shift reminder texts, and the correction sent when a shift or a TPS moved after one.

Worded by flows/reminders.py when the reminder is planned (the outbox keeps
the text), in the recipient's language.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.render import Html, Msg, clip, local_time
from bot.render.schedule import PHASES, post_lines
from bot.services.schedule import Post

WATER = ("air", "darat_air")

REMINDER = Msg(
    id="⏰ <b>Pengingat tugas</b>\n<b>{shift}</b> ({phase}) mulai <b>{start}</b>",
    en="⏰ <b>Duty reminder</b>\n<b>{shift}</b> ({phase}) starts at <b>{start}</b>",
)
LEAVE_EARLY = Msg(
    id="🚤 Akses lewat air: berangkat lebih awal, perhitungkan waktu perahu.",
    en="🚤 Reached by water: leave early and allow time for the boat.",
)
CHECK_IN = Msg(id="Kirim /hadir setibanya di TPS.", en="Send /checkin when you arrive at the TPS.")

CORRECTION = Msg(id="⚠️ <b>Perubahan tugas</b> — <b>{shift}</b>", en="⚠️ <b>Change of duty</b> — <b>{shift}</b>")
NEW_START = Msg(
    id="🕐 Shift sekarang mulai <b>{start}</b> (sebelumnya {old}).",
    en="🕐 The shift now starts at <b>{start}</b> (was {old}).",
)
MOVED = Msg(id="📍 TPS {code} pindah ke lokasi baru:", en="📍 TPS {code} has moved to a new place:")
POSTS_NOW = Msg(id="📍 Pos Anda sekarang:", en="📍 Your posts now:")


def _posts(posts: Sequence[Post], lang: str, zone: ZoneInfo) -> list[str]:
    lines = [line for post in posts for line in post_lines(post, lang, zone)]
    if any(post.access in WATER for post in posts):
        lines.append(LEAVE_EARLY(lang))
    return lines


def reminder_text(
    *, shift_name: str, phase: str, starts_at: datetime, posts: Sequence[Post], lang: str, zone: ZoneInfo
) -> Html:
    """One reminder: when, where (every TPS of the shift), how to get there, what to do on arrival.

    The start is said as a time of day, never "in 1 hour" or "now": a big run
    is spread over the half hour before its offset, so a relative time would
    be wrong for most of its recipients.
    """
    head = REMINDER(lang, shift=shift_name, phase=PHASES[phase](lang), start=local_time(starts_at, zone, lang))
    return clip("\n".join([head, *_posts(posts, lang, zone), CHECK_IN(lang)]))


def correction_text(
    *,
    shift_name: str,
    starts_at: datetime,
    old_starts_at: datetime | None,
    posts: Sequence[Post],
    moved_tps_ids: AbstractSet[int],
    places_changed: bool,
    lang: str,
    zone: ZoneInfo,
) -> Html:
    """What changed since the last reminder: the new start, the TPS that moved, the posts now."""
    lines: list[str] = [CORRECTION(lang, shift=shift_name)]
    if old_starts_at is not None:
        new, old = local_time(starts_at, zone, lang), local_time(old_starts_at, zone, lang)
        lines.append(NEW_START(lang, start=new, old=old))
    if places_changed:
        moved = [post for post in posts if post.tps_id in moved_tps_ids]
        if moved:  # a relocation: only the TPS that moved, each under its own heading
            for post in moved:
                lines.append(MOVED(lang, code=post.tps_code))
                lines.extend(post_lines(post, lang, zone))
        else:  # the roster gave the person other posts: all of them, as they are now
            lines.append(POSTS_NOW(lang))
            lines.extend(line for post in posts for line in post_lines(post, lang, zone))
        if any(post.access in WATER for post in posts):
            lines.append(LEAVE_EARLY(lang))
    return clip("\n".join(lines))
