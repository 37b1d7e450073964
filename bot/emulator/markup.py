"""Formatted-text parsing the way the Bot API server (tdlib) does it.

The point is to reject, with Telegram's own wording, what Telegram rejects:
an unsupported or unbalanced HTML tag, an unescaped MarkdownV2 reserved
character, a text that is empty or longer than 4096 characters *after* the
markup is removed. Entity offsets/lengths are in UTF-16 code units like the
real API, so bots that compute offsets themselves can be checked too.

Faithfulness notes (from tdlib ``parse_html``): a bare ``&`` that does not
start ``&lt; &gt; &amp; &quot;`` or a numeric reference is kept literally by
Telegram, so it is accepted here too unless ``strict_ampersand`` is asked for
(the emulator option ``strict_html``) to catch missing escaping early.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 4096
MAX_CAPTION = 1024

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"


class ParseError(Exception):
    """Markup error; the message is tdlib's, the caller adds the API prefix."""


def u16(s: str) -> int:
    """Length in UTF-16 code units (the unit of entity offsets)."""
    return len(s) + sum(1 for ch in s if ord(ch) > 0xFFFF)


def _byte_offset(src: str, i: int) -> int:
    return len(src[:i].encode("utf-8"))


def _decode_entity(src: str, i: int) -> tuple[str | None, int]:
    """Decode an HTML character reference at ``src[i] == '&'`` (tdlib rules)."""
    j = i + 1
    if j < len(src) and src[j] == "#":
        j += 1
        hexa = j < len(src) and src[j] == "x"
        j += hexa
        start = j
        digits = "0123456789abcdefABCDEF" if hexa else "0123456789"
        while j < len(src) and src[j] in digits:
            j += 1
        if j == start or j - i >= 10:
            return None, i
        code = int(src[start:j], 16 if hexa else 10)
        if code == 0 or code >= 0x10FFFF:
            return None, i
        ch = chr(code)
    else:
        while j < len(src) and src[j].isascii() and src[j].isalpha():
            j += 1
        named = _NAMED.get(src[i + 1 : j])
        if named is None:
            return None, i
        ch = named
    if j < len(src) and src[j] == ";":
        j += 1
    return ch, j


@dataclass
class _Open:
    tag: str
    attrs: dict[str, str]
    start: int
    pos: int
    language: str | None = None
    children: list[str] = field(default_factory=list)


def _parse_attrs(src: str, i: int, tag: str, begin: int) -> tuple[dict[str, str], int]:
    """Parse attributes up to and including '>' (returns index after it)."""
    attrs: dict[str, str] = {}
    n = len(src)
    where = f'the tag "{tag}" at byte offset {_byte_offset(src, begin)}'
    while True:
        while i < n and src[i].isspace():
            i += 1
        if i >= n:
            raise ParseError(f"Unclosed start tag at byte offset {_byte_offset(src, begin)}")
        if src[i] == ">":
            return attrs, i + 1
        name_start = i
        while i < n and not src[i].isspace() and src[i] not in "=>":
            i += 1
        name = src[name_start:i].lower()
        while i < n and src[i].isspace():
            i += 1
        if i >= n or src[i] != "=":
            if name in ("expandable",) and tag == "blockquote":
                attrs[name] = ""
                continue
            raise ParseError(f"Expected equal sign in declaration of an attribute of {where}")
        i += 1
        while i < n and src[i].isspace():
            i += 1
        if i >= n:
            raise ParseError(f"Unclosed start tag at byte offset {_byte_offset(src, begin)}")
        if src[i] in "'\"":
            quote, i = src[i], i + 1
            value: list[str] = []
            while i < n and src[i] != quote:
                if src[i] == "&":
                    ch, j = _decode_entity(src, i)
                    if ch is not None:
                        value.append(ch)
                        i = j
                        continue
                value.append(src[i])
                i += 1
            i += 1
            attrs[name] = "".join(value)
        else:
            start = i
            while i < n and (src[i].isalnum() or src[i] in ".-"):
                i += 1
            if i < n and not src[i].isspace() and src[i] != ">":
                raise ParseError(f"Unexpected end of name token at byte offset {_byte_offset(src, start)}")
            attrs[name] = src[start:i].lower()


def parse_html(src: str, strict_ampersand: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """HTML parse mode -> (plain text, entities); raises :class:`ParseError`."""
    out: list[str] = []
    pos = 0
    stack: list[_Open] = []
    entities: list[dict[str, Any]] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "&":
            ch, j = _decode_entity(src, i)
            if ch is not None:
                out.append(ch)
                pos += u16(ch)
                i = j
                continue
            if strict_ampersand:
                raise ParseError(f'Unescaped "&" at byte offset {_byte_offset(src, i)}')
        if c != "<":
            out.append(c)
            pos += u16(c)
            i += 1
            continue
        begin = i
        i += 1
        if i < n and src[i] == "/":
            j = i + 1
            while j < n and not src[j].isspace() and src[j] != ">":
                j += 1
            name = src[i + 1 : j].lower()
            while j < n and src[j].isspace():
                j += 1
            if j >= n or src[j] != ">":
                raise ParseError(f"Unclosed end tag at byte offset {_byte_offset(src, begin)}")
            if not stack:
                raise ParseError(f"Unexpected end tag at byte offset {_byte_offset(src, begin)}")
            top = stack.pop()
            if name and name != top.tag:
                raise ParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(src, begin)}, "
                    f'expected "</{top.tag}>", found "</{name}>"'
                )
            _close_html(top, stack, pos, "".join(out), entities)
            i = j + 1
            continue
        j = i
        while j < n and not src[j].isspace() and src[j] != ">":
            j += 1
        if j >= n:
            raise ParseError(f"Unclosed start tag at byte offset {_byte_offset(src, begin)}")
        tag = src[i:j].lower()
        if tag not in _HTML_TAGS:
            raise ParseError(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(src, begin)}')
        attrs, i = _parse_attrs(src, j, tag, begin)
        if tag == "span" and attrs.get("class") != "tg-spoiler":
            raise ParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(src, begin)}')
        if tag == "tg-emoji" and not attrs.get("emoji-id"):
            raise ParseError(f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {_byte_offset(src, begin)}')
        stack.append(_Open(tag, attrs, pos, len(out)))
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_html(top: _Open, stack: list[_Open], pos: int, text: str, entities: list[dict[str, Any]]) -> None:
    """Turn a closed HTML element into its entity (if it spans any text)."""
    length = pos - top.start
    kind = _HTML_TAGS[top.tag]
    if top.tag == "code" and stack and stack[-1].tag == "pre":
        lang = top.attrs.get("class", "")
        if lang.startswith("language-"):
            stack[-1].language = lang[len("language-") :]
            return
    if length <= 0:
        return
    ent: dict[str, Any] = {"type": kind, "offset": top.start, "length": length}
    if kind == "text_link":
        url = top.attrs.get("href") or text[top.pos :]
        match = re.fullmatch(r"tg://user\?id=(\d+)", url)
        if match:
            ent = {
                **ent,
                "type": "text_mention",
                "user": {"id": int(match.group(1)), "is_bot": False, "first_name": ""},
            }
        else:
            ent["url"] = url
    elif kind == "pre" and top.language:
        ent["language"] = top.language
    elif kind == "blockquote" and "expandable" in top.attrs:
        ent["type"] = "expandable_blockquote"
    elif kind == "custom_emoji":
        ent["custom_emoji_id"] = top.attrs["emoji-id"]
    entities.append(ent)


_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def parse_markdown_v2(src: str) -> tuple[str, list[dict[str, Any]]]:
    """MarkdownV2 parse mode -> (plain text, entities), tdlib's rules and messages."""
    out: list[str] = []
    pos = 0
    stack: list[tuple[str, int, int, int, str]] = []  # kind, offset16, byte pos, out len, arg
    entities: list[dict[str, Any]] = []
    quote_start: int | None = None
    i, n = 0, len(src)

    def reserved(ch: str) -> ParseError:
        return ParseError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")

    while i < n:
        c = src[i]
        in_code = bool(stack) and stack[-1][0] in ("code", "pre")
        if c == "\\" and i + 1 < n and 0 < ord(src[i + 1]) <= 126:
            out.append(src[i + 1])
            pos += 1
            i += 2
            continue
        if c == ">" and not in_code and (i == 0 or src[i - 1] == "\n"):
            if quote_start is None:
                quote_start = pos
            i += 1
            continue
        if c == "\n" and quote_start is not None and not (i + 1 < n and src[i + 1] == ">"):
            if pos > quote_start:
                entities.append({"type": "blockquote", "offset": quote_start, "length": pos - quote_start})
            quote_start = None
        if c not in ("`" if in_code else _MDV2_RESERVED):
            out.append(c)
            pos += u16(c)
            i += 1
            continue
        top = stack[-1][0] if stack else None
        nxt, nxt2 = src[i + 1 : i + 2], src[i + 2 : i + 3]
        closes = (
            (top == "bold" and c == "*")
            or (top == "italic" and c == "_" and nxt != "_")
            or (top == "underline" and c == "_" and nxt == "_")
            or (top == "strikethrough" and c == "~")
            or (top == "spoiler" and c == "|" and nxt == "|")
            or (top == "code" and c == "`")
            or (top == "pre" and c == "`" and nxt == "`" and nxt2 == "`")
            or (top in ("text_link", "custom_emoji") and c == "]")
        )
        if closes:
            assert top is not None
            kind, start, _, out_at, arg = stack.pop()
            i += {"underline": 2, "spoiler": 2, "pre": 3}.get(kind, 1)
            ent: dict[str, Any] = {"type": kind, "offset": start, "length": pos - start}
            if kind in ("text_link", "custom_emoji"):
                url = "".join(out[out_at:])
                if i < n and src[i] == "(":
                    j = i + 1
                    chars: list[str] = []
                    while j < n and src[j] != ")":
                        if src[j] == "\\" and j + 1 < n:
                            j += 1
                        chars.append(src[j])
                        j += 1
                    if j >= n:
                        raise ParseError(f"Can't find end of a URL at byte offset {_byte_offset(src, i + 1)}")
                    url, i = "".join(chars), j + 1
                if kind == "custom_emoji":
                    ent["custom_emoji_id"] = url.rpartition("id=")[2]
                else:
                    ent["url"] = url
            elif kind == "pre" and arg:
                ent["language"] = arg
            if ent["length"] > 0:
                entities.append(ent)
            continue
        begin = i
        arg = ""
        if c == "_":
            kind = "underline" if nxt == "_" else "italic"
            i += 2 if nxt == "_" else 1
        elif c in "*~[":
            kind = {"*": "bold", "~": "strikethrough", "[": "text_link"}[c]
            i += 1
        elif c == "|" and nxt == "|":
            kind, i = "spoiler", i + 2
        elif c == "!" and nxt == "[":
            kind, i = "custom_emoji", i + 2
        elif c == "`" and nxt == "`" and nxt2 == "`":
            kind, i = "pre", i + 3
            j = i
            while j < n and not src[j].isspace() and src[j] != "`":
                j += 1
            if j > i and j < n and src[j] != "`":
                arg, i = src[i:j], j
            if i < n and src[i] in "\r\n":
                i += 1
        elif c == "`":
            kind, i = "code", i + 1
        else:
            raise reserved(c)
        stack.append((kind, pos, _byte_offset(src, begin), len(out), arg))
    if stack:
        kind, _, byte_pos, _, _ = stack[-1]
        raise ParseError(f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {byte_pos}")
    if quote_start is not None and pos > quote_start:
        entities.append({"type": "blockquote", "offset": quote_start, "length": pos - quote_start})
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def parse_markdown(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Legacy Markdown: ``*b* _i_ `c` ```pre``` [t](url)``, no nesting."""
    out: list[str] = []
    pos = 0
    entities: list[dict[str, Any]] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            out.append(src[i + 1])
            pos += 1
            i += 2
            continue
        if c not in "_*`[":
            out.append(c)
            pos += u16(c)
            i += 1
            continue
        begin = i
        is_pre = src.startswith("```", i)
        end = {"[": "]"}.get(c, "```" if is_pre else c)
        i += 3 if is_pre else 1
        close = src.find(end, i)
        if close < 0:
            raise ParseError(f"Can't find end of the entity starting at byte offset {_byte_offset(src, begin)}")
        inner = src[i:close]
        i = close + len(end)
        ent: dict[str, Any] = {
            "type": {"*": "bold", "_": "italic", "`": "code", "[": "text_link"}[c],
            "offset": pos,
            "length": u16(inner),
        }
        if is_pre:
            ent["type"] = "pre"
        if c == "[":
            url = inner
            if i < n and src[i] == "(":
                stop = src.find(")", i)
                if stop < 0:
                    stop = n
                url, i = src[i + 1 : stop], stop + 1
            ent["url"] = url
        out.append(inner)
        pos += u16(inner)
        if ent["length"]:
            entities.append(ent)
    return "".join(out), entities
