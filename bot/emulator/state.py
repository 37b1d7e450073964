"""In-memory world of the emulator: users, chats, messages, updates, records.

Everything a test wants to assert on lives here in plain dataclasses: every
message the bot delivered (with monotonic and wall-clock time and the full
history of its edits), every callback answer, every uploaded file with its
bytes, the command menus per scope. JSON rendering follows the Bot API object
shapes so python-telegram-bot de-serialises them like real answers.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.updates import Signal, UpdateQueue


@dataclass
class User:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    phone_number: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


@dataclass
class Chat:
    """A chat the bot is in. ``members`` maps user id -> status
    ("creator", "administrator", "member"); ``bot_status`` is the bot's own."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    members: dict[int, str] = field(default_factory=dict)
    bot_status: str = "member"
    started: bool = True
    migrated_to: int | None = None
    reply_keyboard: dict[str, Any] | None = None
    next_message_id: int = 1

    @property
    def private(self) -> bool:
        return self.type == "private"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name", "last_name"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out

    def full_json(self) -> dict[str, Any]:
        """ChatFullInfo as getChat returns it (with the fields PTB requires)."""
        gifts = {
            k: False
            for k in ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription", "gifts_from_channels")
        }
        return {**self.to_json(), "accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": gifts}


@dataclass
class StoredFile:
    """A file uploaded by the bot or sent by a simulated user."""

    file_id: str
    file_unique_id: str
    data: bytes
    kind: str
    file_path: str
    filename: str | None = None
    mime_type: str | None = None
    source: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Version:
    """Content of a bot message at one point in time (original or an edit)."""

    text: str | None
    caption: str | None
    entities: list[dict[str, Any]]
    raw: str | None
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    mono: float
    wall: float
    method: str
    location: dict[str, Any] | None = None


@dataclass
class SentMessage:
    """A message the bot delivered; ``versions[0]`` is the original content."""

    chat_id: int
    message_id: int
    kind: str
    method: str
    params: dict[str, Any]
    date: int
    versions: list[Version]
    base: dict[str, Any]
    file: StoredFile | None = None
    deleted: bool = False
    live_stopped: bool = False

    @property
    def current(self) -> Version:
        return self.versions[-1]

    @property
    def text(self) -> str | None:
        return self.current.text

    @property
    def caption(self) -> str | None:
        return self.current.caption

    @property
    def content(self) -> str:
        """Text or caption, '' for media without caption (handy in predicates)."""
        return self.current.text or self.current.caption or ""

    @property
    def entities(self) -> list[dict[str, Any]]:
        return self.current.entities

    @property
    def raw_text(self) -> str | None:
        """Text exactly as the bot sent it, before markup parsing."""
        return self.current.raw

    @property
    def parse_mode(self) -> str | None:
        return self.current.parse_mode

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.current.reply_markup

    @property
    def time(self) -> float:
        """Monotonic delivery time of the original message."""
        return self.versions[0].mono

    @property
    def wall(self) -> float:
        return self.versions[0].wall

    @property
    def edits(self) -> list[Version]:
        return self.versions[1:]

    @property
    def location(self) -> dict[str, Any] | None:
        """Where a location message points now: moved by `editMessageLiveLocation`, frozen once stopped."""
        location = self.base.get("location")
        return dict(location) if isinstance(location, dict) else None

    @property
    def live_edits(self) -> int:
        """How many times its live location was moved."""
        return sum(version.method == "editMessageLiveLocation" for version in self.versions)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Buttons of the current keyboard (inline or reply), flattened row by row."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [b for row in rows for b in row]

    @property
    def button_texts(self) -> list[str]:
        return [b["text"] for b in self.buttons]

    def to_json(self) -> dict[str, Any]:
        out = dict(self.base)
        cur = self.current
        if cur.text is not None:
            out["text"] = cur.text
        if cur.caption:
            out["caption"] = cur.caption
        if cur.entities:
            out["caption_entities" if cur.caption else "entities"] = cur.entities
        if cur.reply_markup and "inline_keyboard" in cur.reply_markup:
            out["reply_markup"] = cur.reply_markup
        if len(self.versions) > 1:
            out["edit_date"] = int(cur.wall)
        return out


@dataclass
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int
    mono: float
    wall: float


@dataclass
class CallbackQuery:
    """A button press sent to the bot and, once answered, its answer."""

    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    mono: float
    answer: CallbackAnswer | None = None


@dataclass
class CallRecord:
    method: str
    params: dict[str, Any]
    status: int
    mono: float


@dataclass
class Rejection:
    """A request refused with 429 (flood limit or injected) or 5xx."""

    method: str
    chat_id: int | None
    status: int
    reason: str
    retry_after: int | None
    mono: float


class State:
    """All emulator data; mutated only from the event loop thread."""

    def __init__(self, bot: User):
        self.bot = bot
        self.users: dict[int, User] = {}
        self.chats: dict[int, Chat] = {}
        self.changed = Signal()
        self.updates = UpdateQueue(self.changed)
        self.sent: dict[int, list[SentMessage]] = {}
        self.sent_index: dict[tuple[int, int], SentMessage] = {}
        self.user_messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.deleted: set[tuple[int, int]] = set()
        self.callbacks: dict[str, CallbackQuery] = {}
        self.callback_answers: list[CallbackAnswer] = []
        self.files: dict[str, StoredFile] = {}
        self.commands: dict[tuple[tuple[Any, ...], str], list[dict[str, Any]]] = {}
        self.calls: list[CallRecord] = []
        self.rejections: list[Rejection] = []
        self._ids = itertools.count(1)

    def new_id(self) -> int:
        """Process-unique counter for file ids, callback ids ..."""
        return next(self._ids)

    def next_message_id(self, chat: Chat) -> int:
        mid = chat.next_message_id
        chat.next_message_id += 1
        return mid

    def message_json(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """Current JSON of any message (bot's or user's) unless deleted."""
        key = (chat_id, message_id)
        if key in self.deleted:
            return None
        sent = self.sent_index.get(key)
        if sent is not None:
            return sent.to_json()
        return self.user_messages.get(key)

    def record_sent(self, sent: SentMessage) -> None:
        self.sent.setdefault(sent.chat_id, []).append(sent)
        self.sent_index[(sent.chat_id, sent.message_id)] = sent
        self.changed.fire()

    def store_file(
        self,
        data: bytes,
        kind: str,
        filename: str | None = None,
        mime_type: str | None = None,
        source: str | None = None,
    ) -> StoredFile:
        n = self.new_id()
        ext = (
            (filename or "").rpartition(".")[2]
            if filename and "." in filename
            else ("jpg" if kind == "photo" else "bin")
        )
        folder = {"photo": "photos", "document": "documents"}.get(kind, kind + "s")
        stored = StoredFile(
            file_id=f"EMU{kind[:3].upper()}{n:08d}",
            file_unique_id=f"U{n:08d}",
            data=data,
            kind=kind,
            file_path=f"{folder}/file_{n}.{ext}",
            filename=filename,
            mime_type=mime_type,
            source=source,
        )
        self.files[stored.file_id] = stored
        return stored

    @staticmethod
    def now() -> tuple[float, float]:
        """(monotonic, wall) timestamps taken together."""
        return time.monotonic(), time.time()
