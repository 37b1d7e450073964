"""Validation of what a send/edit carries: text length and keyboards.

Kept apart from the markup parsers so the rules that produce Telegram's
``Bad Request`` answers (empty text, "message is too long" counted after
entity parsing, BUTTON_DATA_INVALID ...) are in one short place.
"""

from __future__ import annotations

import re
from typing import Any

from bot.emulator.errors import bad_request
from bot.emulator.markup import (
    MAX_CAPTION,
    MAX_TEXT,
    ParseError,
    parse_html,
    parse_markdown,
    parse_markdown_v2,
    u16,
)


def _strip(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Trim surrounding whitespace like Telegram, keeping entities aligned."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = u16(text) - u16(text.lstrip())
    limit = u16(stripped)
    kept = []
    for ent in entities:
        start = max(0, ent["offset"] - lead)
        end = min(limit, ent["offset"] - lead + ent["length"])
        if end > start:
            kept.append({**ent, "offset": start, "length": end - start})
    return stripped, kept


def format_text(
    raw: str | None,
    parse_mode: str | None,
    entities: list[dict[str, Any]] | None = None,
    *,
    caption: bool = False,
    strict_html: bool = False,
) -> tuple[str, list[dict[str, Any]]]:
    """Parse + validate a text or caption; raises :class:`ApiError` 400 on failure."""
    raw = raw or ""
    mode = (parse_mode or "").strip().lower()
    try:
        if not mode:
            text, ents = raw, list(entities or [])
        elif mode == "html":
            text, ents = parse_html(raw, strict_html)
        elif mode == "markdownv2":
            text, ents = parse_markdown_v2(raw)
        elif mode == "markdown":
            text, ents = parse_markdown(raw)
        else:
            raise bad_request("unsupported parse_mode")
    except ParseError as err:
        raise bad_request(f"can't parse entities: {err}") from None
    text, ents = _strip(text, ents)
    if caption:
        if len(text) > MAX_CAPTION:
            raise bad_request("message caption is too long")
    elif not text:
        raise bad_request("message text is empty")
    elif len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return text, ents


_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def check_reply_markup(markup: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
    """Validate a reply_markup object; returns it normalised or raises 400."""
    if markup is None:
        return None
    bad_json = bad_request("can't parse reply keyboard markup JSON object")
    if not isinstance(markup, dict):
        raise bad_json
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
        for row in rows:
            for button in row:
                _check_inline_button(button)
        return {"inline_keyboard": rows}
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_json
        norm = [[b if isinstance(b, dict) else {"text": str(b)} for b in row] for row in rows]
        if any(not isinstance(b.get("text"), str) or not b["text"] for row in norm for b in row):
            raise bad_request("can't parse keyboard button: Text must be non-empty")
        return {**markup, "keyboard": norm}
    if markup.get("remove_keyboard") or markup.get("force_reply"):
        return dict(markup)
    raise bad_json


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request("can't parse inline keyboard button: Text must be a String")
    actions = [a for a in _INLINE_ACTIONS if a in button]
    if not actions:
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button and not re.match(r"(https?|tg)://\S", str(button["url"])):
        raise bad_request("BUTTON_URL_INVALID")
