"""Simulated Telegram users and groups, acting like real clients.

A :class:`SimUser` produces exactly the updates a Telegram app would cause:
messages with ``bot_command``/``mention`` entities, locations (live or
forwarded, optionally back-dated), photos whose files the bot can download
with getFile, taps on reply-keyboard buttons (including request_location),
and presses of inline buttons - but only buttons the bot really sent and that
are still on the message, so a test cannot press what a user could not.

Groups honour privacy mode (on by default, as for new bots): the bot receives
commands addressed to it or without a bot name, replies to its own messages,
and everything once it is a group admin; other messages are stored but not
delivered.
"""

from __future__ import annotations

import datetime as dtm
import re
import struct
import zlib
from typing import Any, Protocol, Union

from bot.emulator.hub import Hub
from bot.emulator.markup import u16
from bot.emulator.state import CallbackAnswer, CallbackQuery, Chat, SentMessage, User

ChatRef = Union[int, "SimUser", "SimGroup", Chat]
_COMMAND = re.compile(r"(?<![\w/@])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}")


def chat_id_of(ref: ChatRef) -> int:
    if isinstance(ref, int):
        return ref
    if isinstance(ref, Chat):
        return ref.id
    return ref.chat_id


class World(Hub, Protocol):
    """The emulator as simulated users see it: it also upgrades a group to a supergroup."""

    def migrate_to_supergroup(self, group: SimGroup) -> SimGroup: ...


class ButtonNotFound(AssertionError):
    """A test tried to press/tap something the user cannot see."""


def detect_entities(text: str) -> list[dict[str, Any]]:
    """Entities a Telegram client attaches: bot commands and @mentions (UTF-16)."""
    found = [("bot_command", m) for m in _COMMAND.finditer(text)]
    found += [("mention", m) for m in _MENTION.finditer(text)]
    return sorted(
        ({"type": kind, "offset": u16(text[: m.start()]), "length": u16(m.group())} for kind, m in found),
        key=lambda e: e["offset"],
    )


def _png(width: int = 4, height: int = 3) -> bytes:
    """A tiny valid PNG, so photo downloads are real image bytes."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _unix(date: int | float | dtm.datetime | None) -> int:
    if date is None:
        return int(dtm.datetime.now(dtm.UTC).timestamp())
    if isinstance(date, dtm.datetime):
        return int(date.timestamp())
    return int(date)


class Press:
    """An inline-button press that was sent to the bot as a callback query."""

    def __init__(self, emu: World, query: CallbackQuery):
        self.emu, self.query = emu, query

    @property
    def id(self) -> str:
        return self.query.id

    async def answer(self, timeout: float = 5.0) -> CallbackAnswer:
        """Wait until the bot answered this callback query."""
        return await self.emu.wait_callback_answer(self.query, timeout)


class _Actor:
    """Shared cursor logic: ``next_message`` returns each delivered message once."""

    def __init__(self, emu: World, chat_id: int):
        self.emu = emu
        self.chat_id = chat_id
        self._cursor = 0

    @property
    def messages(self) -> list[SentMessage]:
        return self.emu.sent_to(self.chat_id)

    async def next_message(self, timeout: float = 5.0) -> SentMessage:
        """The next bot message in this chat not yet returned by next_message."""
        index, sent = self._cursor, self.emu.state.sent
        msg: SentMessage = await self.emu.until(
            lambda: sent[self.chat_id][index] if len(sent.get(self.chat_id, [])) > index else None,
            timeout,
            lambda: f"no new message in chat {self.chat_id} after {timeout}s (had {len(sent.get(self.chat_id, []))})",
        )
        self._cursor = index + 1
        return msg

    def skip_messages(self) -> None:
        """Mark everything delivered so far as seen."""
        self._cursor = self.emu.count(self.chat_id)


class SimUser(_Actor):
    """A user; their private chat with the bot has ``chat_id == id``."""

    def __init__(self, emu: World, user: User):
        super().__init__(emu, user.id)
        self.user = user

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def first_name(self) -> str:
        return self.user.first_name

    def __repr__(self) -> str:
        return f"SimUser({self.user.first_name!r}, id={self.id})"

    # -- building messages ---------------------------------------------------------------
    def _chat(self, chat: ChatRef | None) -> Chat:
        target = self.emu.state.chats[self.id if chat is None else chat_id_of(chat)]
        if target.private and target.id != self.id:
            raise ValueError(f"{self!r} cannot write in another user's private chat")
        if not target.private and self.id not in target.members:
            raise ValueError(f"{self!r} is not a member of {target.title!r}")
        return target

    def _message(
        self, chat: Chat, fields: dict[str, Any], *, date: Any = None, reply_to: SentMessage | int | None = None
    ) -> dict[str, Any]:
        state = self.emu.state
        msg: dict[str, Any] = {
            "message_id": state.next_message_id(chat),
            "from": self.user.to_json(),
            "chat": chat.to_json(),
            "date": _unix(date),
            **fields,
        }
        if reply_to is not None:
            mid = reply_to if isinstance(reply_to, int) else reply_to.message_id
            replied = state.message_json(chat.id, mid)
            if replied is None:
                raise ValueError(f"message {mid} does not exist in chat {chat.id}")
            msg["reply_to_message"] = {k: v for k, v in replied.items() if k != "reply_to_message"}
        state.user_messages[(chat.id, msg["message_id"])] = msg
        if chat.private:
            chat.started = True
            self.emu.faults.blocked.discard(self.id)
        return msg

    def _delivered(self, chat: Chat, msg: dict[str, Any]) -> bool:
        """Privacy-mode rules for groups (see module docstring)."""
        emu = self.emu
        if chat.private:
            return True
        if chat.bot_status in ("left", "kicked"):
            return False
        if not emu.privacy_mode or chat.bot_status == "administrator":
            return True
        if (msg.get("reply_to_message") or {}).get("from", {}).get("id") == emu.bot.id:
            return True
        text = msg.get("text") or ""
        for ent in msg.get("entities", []):
            if ent["type"] == "bot_command" and ent["offset"] == 0:
                _, _, target = text[: ent["length"]].partition("@")
                return not target or target.lower() == emu.bot_username.lower()
        return False

    def _post(self, chat: Chat, msg: dict[str, Any], kind: str = "message") -> dict[str, Any]:
        if self._delivered(chat, msg):
            self.emu.enqueue({kind: msg})
        return msg

    def compose(self, text: str, chat: ChatRef | None = None) -> dict[str, Any]:
        """An update payload for ``text`` without queueing it (for ``inject_many``)."""
        target = self._chat(chat)
        fields: dict[str, Any] = {"text": text}
        if detect_entities(text):
            fields["entities"] = detect_entities(text)
        return {"message": self._message(target, fields)}

    # -- acting --------------------------------------------------------------------------
    async def send(
        self, text: str, *, reply_to: SentMessage | int | None = None, date: Any = None, chat: ChatRef | None = None
    ) -> dict[str, Any]:
        """Type ``text`` in the private chat (or ``chat``); returns the Message JSON."""
        target = self._chat(chat)
        fields: dict[str, Any] = {"text": text}
        entities = detect_entities(text)
        if entities:
            fields["entities"] = entities
        return self._post(target, self._message(target, fields, date=date, reply_to=reply_to))

    async def send_in(
        self, group: ChatRef, text: str, *, mention_bot: bool = False, reply_to: SentMessage | int | None = None
    ) -> dict[str, Any]:
        """Write in a group; ``mention_bot`` turns ``/cmd`` into ``/cmd@BotName``."""
        if mention_bot and text.startswith("/"):
            head, sep, rest = text.partition(" ")
            text = f"{head.split('@')[0]}@{self.emu.bot_username}{sep}{rest}"
        return await self.send(text, reply_to=reply_to, chat=group)

    async def send_location(
        self,
        latitude: float,
        longitude: float,
        *,
        live_period: int | None = None,
        forwarded: bool = False,
        date: Any = None,
        chat: ChatRef | None = None,
        horizontal_accuracy: float | None = None,
        reply_to: SentMessage | int | None = None,
    ) -> dict[str, Any]:
        """Share a location; ``forwarded`` adds ``forward_origin`` (a forwarded pin),
        ``date`` back-dates it (e.g. a stale location)."""
        target = self._chat(chat)
        loc: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if live_period is not None:
            loc["live_period"] = live_period
        if horizontal_accuracy is not None:
            loc["horizontal_accuracy"] = horizontal_accuracy
        fields: dict[str, Any] = {"location": loc}
        if forwarded:
            fields["forward_origin"] = {"type": "hidden_user", "sender_user_name": "Teman", "date": _unix(date) - 60}
        return self._post(target, self._message(target, fields, date=date, reply_to=reply_to))

    async def move_live_location(
        self, message: dict[str, Any], latitude: float, longitude: float, *, date: Any = None
    ) -> dict[str, Any]:
        """A live-location update: an ``edited_message`` of the original location; ``date`` stamps its edit."""
        chat = self.emu.state.chats[message["chat"]["id"]]
        edited = {
            **message,
            "location": {**message["location"], "latitude": latitude, "longitude": longitude},
            "edit_date": _unix(date),
        }
        self.emu.state.user_messages[(chat.id, message["message_id"])] = edited
        return self._post(chat, edited, "edited_message")

    async def send_photo(
        self,
        *,
        caption: str | None = None,
        data: bytes | None = None,
        chat: ChatRef | None = None,
        reply_to: SentMessage | int | None = None,
    ) -> dict[str, Any]:
        """Send a photo; the bot can getFile + download ``data`` (default: a tiny PNG)."""
        target = self._chat(chat)
        state = self.emu.state
        blob = data if data is not None else _png()
        sizes = []
        for width, height in ((90, 68), (1280, 960)):
            stored = state.store_file(blob, "photo", mime_type="image/jpeg")
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": stored.size,
                    "width": width,
                    "height": height,
                }
            )
        fields: dict[str, Any] = {"photo": sizes}
        if caption:
            fields["caption"] = caption
        return self._post(target, self._message(target, fields, reply_to=reply_to))

    async def send_document(
        self,
        filename: str,
        data: bytes,
        *,
        mime_type: str | None = None,
        caption: str | None = None,
        chat: ChatRef | None = None,
    ) -> dict[str, Any]:
        target = self._chat(chat)
        stored = self.emu.state.store_file(data, "document", filename, mime_type)
        doc = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": filename,
            "file_size": stored.size,
        }
        if mime_type:
            doc["mime_type"] = mime_type
        fields: dict[str, Any] = {"document": doc, **({"caption": caption} if caption else {})}
        return self._post(target, self._message(target, fields))

    async def send_contact(self, phone_number: str | None = None, *, chat: ChatRef | None = None) -> dict[str, Any]:
        """Share own contact (what a request_contact button sends)."""
        target = self._chat(chat)
        contact = {
            "phone_number": phone_number or self.user.phone_number or "",
            "first_name": self.user.first_name,
            "user_id": self.id,
        }
        return self._post(target, self._message(target, {"contact": contact}))

    async def press(self, message: SentMessage | int, button_text: str, *, chat: ChatRef | None = None) -> Press:
        """Press an inline button the bot sent; raises :class:`ButtonNotFound` otherwise."""
        state = self.emu.state
        if isinstance(message, int):
            key = (self.id if chat is None else chat_id_of(chat), message)
        else:
            key = (message.chat_id, message.message_id)
        sent = state.sent_index.get(key)
        if sent is None or sent.deleted:
            raise ButtonNotFound(f"the bot has no (undeleted) message {key[1]} in chat {key[0]}")
        target = self._chat(sent.chat_id)
        inline = (sent.reply_markup or {}).get("inline_keyboard") or []
        buttons = [b for row in inline for b in row]
        match = next((b for b in buttons if b.get("text") == button_text), None)
        if match is None or "callback_data" not in match:
            raise ButtonNotFound(
                f"no callback button {button_text!r} on message {sent.message_id}; "
                f"inline buttons now: {[b.get('text') for b in buttons]}"
            )
        mono, _ = state.now()
        query = CallbackQuery(
            str(10**15 + state.new_id()), self.id, target.id, sent.message_id, match["callback_data"], mono
        )
        state.callbacks[query.id] = query
        self.emu.enqueue(
            {
                "callback_query": {
                    "id": query.id,
                    "from": self.user.to_json(),
                    "message": sent.to_json(),
                    "chat_instance": str(abs(target.id) * 31 + 7),
                    "data": query.data,
                }
            }
        )
        return Press(self.emu, query)

    async def tap(
        self, button_text: str, *, chat: ChatRef | None = None, location: tuple[float, float] | None = None
    ) -> dict[str, Any]:
        """Tap a button of the reply keyboard the bot currently shows in the chat."""
        target = self._chat(chat)
        keyboard = target.reply_keyboard
        buttons = [b for row in (keyboard or {}).get("keyboard", []) for b in row]
        button = next((b for b in buttons if b.get("text") == button_text), None)
        if keyboard is None or button is None:
            raise ButtonNotFound(
                f"no reply-keyboard button {button_text!r} in chat {target.id}; "
                f"shown: {[b.get('text') for b in buttons]}"
            )
        if keyboard.get("one_time_keyboard"):
            target.reply_keyboard = None
        if button.get("request_location"):
            if location is None:
                raise ValueError("this button shares a location: pass location=(lat, lon)")
            return await self.send_location(*location, chat=target)
        if button.get("request_contact"):
            return await self.send_contact(chat=target)
        return await self.send(button_text, chat=target)

    def block_bot(self) -> None:
        self.emu.faults.blocked.add(self.id)

    def unblock_bot(self) -> None:
        self.emu.faults.blocked.discard(self.id)

    def deactivate(self) -> None:
        self.emu.faults.deactivated.add(self.id)


class SimGroup(_Actor):
    """A group or supergroup containing the bot and some simulated users."""

    def __init__(self, emu: World, chat: Chat):
        super().__init__(emu, chat.id)
        self.chat = chat

    @property
    def id(self) -> int:
        return self.chat.id

    @property
    def title(self) -> str:
        return self.chat.title or ""

    def add(self, user: SimUser, status: str = "member") -> None:
        self.chat.members[user.id] = status

    def remove(self, user: SimUser) -> None:
        self.chat.members.pop(user.id, None)

    def kick_bot(self) -> None:
        """Sends afterwards answer 403 "bot was kicked from the ... chat"."""
        self.chat.bot_status = "kicked"

    def migrate_to_supergroup(self) -> SimGroup:
        """See :meth:`Emulator.migrate_to_supergroup`; returns the new supergroup."""
        return self.emu.migrate_to_supergroup(self)

    def promote_bot(self) -> None:
        """Make the bot an admin (it then sees all messages despite privacy mode)."""
        self.chat.bot_status = "administrator"
