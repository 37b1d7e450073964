"""Texts and keyboards, one module per capability, Indonesian and English side by side.

Every message is sent in HTML parse mode: values are escaped when they are
put into a text, and fragments that are already HTML are marked `Html`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

Lang = Literal["id", "en"]
LANGUAGES: tuple[Lang, ...] = ("id", "en")
MAX_TEXT = 4096


class Html(str):
    """A fragment that is already valid HTML and must not be escaped again."""


@dataclass(frozen=True)
class Msg:
    """One message in both languages; `{name}` placeholders are filled escaped."""

    id: str
    en: str

    def __call__(self, lang: str, /, **values: object) -> Html:
        template = self.en if lang == "en" else self.id
        return Html(template.format(**{key: _escaped(value) for key, value in values.items()}))


def _escaped(value: object) -> str:
    return value if isinstance(value, Html) else html.escape(str(value), quote=False)


def lang_of(code: str | None) -> Lang:
    return "en" if code == "en" else "id"


def clip(text: str, limit: int = MAX_TEXT) -> Html:
    """Trim to Telegram's limit on a line boundary, so no HTML tag is cut in half."""
    if len(text) <= limit:
        return Html(text)
    cut = text.rfind("\n", 0, limit - 2)
    return Html(text[: cut if cut > 0 else limit - 2] + "\n…")


ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}
MONTHS = {
    "id": ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


def local_time(moment: datetime, zone: ZoneInfo, lang: str, *, with_date: bool = True) -> str:
    """`14 Feb 06:00 WIB`: the way times are said on the day, in the unit's zone."""
    local = moment.astimezone(zone)
    label = ZONE_NAMES.get(str(zone), local.strftime("%Z"))
    clock = f"{local:%H:%M} {label}"
    if not with_date:
        return clock
    return f"{local.day} {MONTHS[lang_of(lang)][local.month - 1]} {clock}"


def distance_text(metres: float) -> str:
    return f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km"


def pages(blocks: Sequence[str], limit: int = MAX_TEXT) -> list[Html]:
    """Pack whole blocks into messages under Telegram's limit; a block too long alone is clipped."""
    result: list[str] = []
    current = ""
    for block in blocks:
        block = clip(block, limit)
        candidate = f"{current}\n\n{block}" if current else block
        if len(candidate) > limit:
            result.append(current)
            candidate = block
        current = candidate
    if current:
        result.append(current)
    return [Html(page) for page in result]
