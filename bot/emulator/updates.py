"""The update queue and the wake-up signal behind long polling.

Telegram keeps each update until the bot confirms it (getUpdates with a
higher ``offset``) or a webhook answers 2xx; until then it may be handed out
again. The queue models that, and :class:`Signal` lets long polls, the webhook
dispatcher and test waiters sleep until something actually changes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from typing import Any

DEFAULT_ALLOWED = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)


class Signal:
    """Wakes every coroutine waiting for 'something changed' (no lost wake-ups:
    a waiter checks its condition, then waits on the current generation)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float | None) -> bool:
        """True if fired within ``timeout`` seconds."""
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True


class UpdateQueue:
    """Pending updates in order; getUpdates' ``offset`` confirms (drops) them.

    ``signal`` wakes long polls and the webhook dispatcher when updates arrive;
    ``changed`` (the state's signal) tells test waiters when updates leave.
    """

    def __init__(self, changed: Signal | None = None) -> None:
        self._changed = changed or Signal()
        self._items: dict[int, dict[str, Any]] = {}
        self._seq = itertools.count()
        self._next_id = 1
        self._unordered = False
        self.signal = Signal()
        self.allowed: frozenset[str] = DEFAULT_ALLOWED
        self.last: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def push_many(self, payloads: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Give each payload (``{"message": ...}``) the next update_id and queue it."""
        out = []
        for payload in payloads:
            update = {"update_id": self._next_id, **payload}
            self._next_id += 1
            self._items[next(self._seq)] = update
            out.append(update)
        if out:
            self.last = out[-1]
            self.signal.fire()
        return out

    def push_again(self, update: dict[str, Any]) -> None:
        """Queue an update again *with its old update_id* (a redelivery)."""
        self._items[next(self._seq)] = dict(update)
        self._unordered = True
        self.signal.fire()

    def confirm(self, offset: int) -> None:
        """Drop updates with id < offset; a negative offset keeps the last -offset."""
        before = len(self._items)
        if offset < 0:
            self._items = dict(list(self._items.items())[offset:])
        elif self._unordered:
            self._items = {s: u for s, u in self._items.items() if u["update_id"] >= offset}
        else:
            for seq in list(self._items):
                if self._items[seq]["update_id"] >= offset:
                    break
                del self._items[seq]
        if len(self._items) != before:
            self._changed.fire()

    def entries(self, limit: int, skip: set[int] | frozenset[int] = frozenset()) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``limit`` (seq, update) pairs in order, dropping disallowed types."""
        out: list[tuple[int, dict[str, Any]]] = []
        dropped: list[int] = []
        for seq, update in self._items.items():
            if seq in skip:
                continue
            kind = next((k for k in update if k != "update_id"), "")
            if kind not in self.allowed:
                dropped.append(seq)
                continue
            out.append((seq, update))
            if len(out) >= limit:
                break
        for seq in dropped:
            del self._items[seq]
        return out

    def remove(self, seq: int) -> None:
        """Drop one delivered update (webhook mode)."""
        self._items.pop(seq, None)
        self._changed.fire()

    def clear(self) -> None:
        self._items.clear()
        self._changed.fire()
