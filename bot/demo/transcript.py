"""The transcript `siaga demo` prints: the followed chats as they happen, in time order, as a conversation.

Every line is what a chat shows: what a person sends (printed by the
script before it is sent), then what the bot delivered, found by polling
the emulator. A live-location pin the bot moves is one line when it starts
and one when it stops, not a line per move.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.emulator import Emulator, SentMessage
from bot.render import local_time

LEGEND = (
    "Who says what: 👮 🪖 🦺 a person (Polri, TNI, Linmas) writes to the bot, or → [a group];"
    " 🤖 → the bot sends; 🤖 ✎ the bot edits what it sent."
)
INDENT = "\n" + " " * 14


def plain_text(text: str) -> str:
    """What a chat shows, without the HTML markup."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


class Transcript:
    """The followed chats as they happen: what a person sends, then what lands, in time order.

    The bot's messages are found by polling the emulator (`flush`); a
    person's message flushes first, so an answer never prints before the
    question it answers, nor after the next one.
    """

    def __init__(self, emu: Emulator, clock: Callable[[], datetime], zone: ZoneInfo, quiet: bool) -> None:
        self.emu, self.clock, self.zone, self.quiet = emu, clock, zone, quiet
        self.names: dict[int, str] = {}
        self.groups: set[int] = set()
        self.seen: dict[tuple[int, int], int] = {}
        self.stopped: set[tuple[int, int]] = set()

    def follow(self, chat_id: int, name: str, *, group: bool = False) -> None:
        """Print this chat from now on (what it received before is not news)."""
        if chat_id not in self.names:
            for message in self.emu.sent_to(chat_id):
                self.seen[(chat_id, message.message_id)] = len(message.versions)
        self.names[chat_id] = f"[{name}]" if group else name
        if group:
            self.groups.add(chat_id)

    def unfollow_all(self) -> None:
        """A new scene: the chats followed so far drop out of the story (their next messages are not printed)."""
        self.flush()
        self.names.clear()
        self.groups.clear()

    def say(self, line: str) -> None:
        if not self.quiet:
            print(f"{self.stamp()}  {line}", flush=True)

    def narrate(self, line: str) -> None:
        """A line of the story, after what the chats received before it."""
        self.flush()
        self.say(line)

    def stamp(self) -> str:
        return local_time(self.clock(), self.zone, "id", with_date=False)

    def person(self, chat_id: int, speaker: str, text: str) -> None:
        """What a person sends into a followed chat: `speaker: text`, or `speaker → [group]: text`."""
        if chat_id not in self.names:
            return
        self.flush()
        where = f" → {self.names[chat_id]}" if chat_id in self.groups else ""
        self.say(f"{speaker}{where}: {text}")

    def heading(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    def flush(self) -> None:
        for key, message in list(self.emu.state.sent_index.items()):
            versions = len(message.versions)
            seen = self.seen.get(key, 0)
            if key[0] not in self.names or seen == versions:
                continue
            self.seen[key] = versions
            if message.kind == "location":
                self._pin(key, message, new=seen == 0)
                continue
            before = _lines(message.versions[seen - 1].text or message.versions[seen - 1].caption) if seen else None
            self.say(self._render(self.names[key[0]], message, before))

    def _pin(self, key: tuple[int, int], message: SentMessage, *, new: bool) -> None:
        """A location the bot sent: its start, and its stop with how often it moved; the moves themselves are not news."""
        chat, where = self.names[key[0]], _where(message)
        if new:
            live = "live location" if (message.location or {}).get("live_period") else "location"
            self.say(f"🤖 → {chat}: 📍 [{live} on the map] {where}")
        if message.live_stopped and key not in self.stopped:
            self.stopped.add(key)
            self.say(f"🤖 ✎ {chat}: 📍 [live location stopped] {where}, moved {message.live_edits} times")

    @staticmethod
    def _render(chat: str, message: SentMessage, before: list[str] | None) -> str:
        """A new message up to six lines; an edit as its first line and the lines that changed."""
        lines = _lines(message.content) or [f"[{message.kind}]"]
        if before is None:
            shown = lines[:6] + ([f"… (+{len(lines) - 6} lines)"] if len(lines) > 6 else [])
        else:
            changed = [line for line in lines[1:] if line not in before]
            shown = lines[:1] + (["…"] if len(lines) > 1 + len(changed) else []) + changed[:5]
        verb = "→" if before is None else "✎"
        return f"🤖 {verb} {chat}: " + INDENT.join(shown)


def _lines(text: str | None) -> list[str]:
    return [line for line in plain_text(text or "").splitlines() if line.strip()]


def _where(message: SentMessage) -> str:
    location = message.location or {}
    if "latitude" not in location:
        return ""
    return f"{location['latitude']:.5f}, {location['longitude']:.5f}"
