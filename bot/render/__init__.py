"""Texts and keyboards, one module per capability, Indonesian and English side by side.

Every message is sent in HTML parse mode: values are escaped when they are
put into a text, and fragments that are already HTML are marked `Html`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Literal

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
