"""Direct replies share the bot's flood budget with the outbox, and ride out a 429.

Replies answer a person who is waiting, so they go first: they never wait
for the pacer, only for a pause Telegram imposed (429) and, while the outbox
fills the window, for its next place (milliseconds, which the outbox leaves
them: `RateLimiter.reply_ready_at`), and they record each send in the same
`RateLimiter` the dispatcher uses, so the dispatcher sends around them
instead of into them. Telegram states its 30-a-second limit
for bulk notifications; answers are paced only once it says so, and then
arrive a little late rather than never. A 429 pauses the scope it concerns
(`RateLimiter.flood_wait`: a group alone, or the whole bot), so a command
group that ran through its 20 a minute holds back that group's answers and
alerts, not everyone's.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from bot.delivery.dispatcher import retry_after_seconds, telegram_answered
from bot.delivery.ratelimit import RateLimiter, Send

DEADLINE_SECONDS = 300.0
PACED = ("send", "edit", "copy", "forward")
Result = bool | dict[str, Any] | list[dict[str, Any]]


class RetryReplies(BaseRateLimiter[None]):
    def __init__(self, limiter: RateLimiter, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limiter = limiter
        self.monotonic = monotonic

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> Result:
        paced = endpoint.startswith(PACED)
        chat_id = chat_of(data)
        deadline = self.monotonic() + DEADLINE_SECONDS
        while True:
            try:
                return await self._attempt(callback, args, kwargs, paced=paced, chat_id=chat_id)
            except RetryAfter as error:
                now = self.monotonic()
                pause = retry_after_seconds(error)
                self.limiter.flood_wait(chat_id, pause, now)
                if now + pause > deadline:
                    raise
                await asyncio.sleep(pause + random.uniform(0, 0.2))

    async def _attempt(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        *,
        paced: bool,
        chat_id: int | None,
    ) -> Result:
        """One try; a paced one counts in the bot-wide window until its answer shows when it may have arrived."""
        send = await self._take_turn(chat_id) if paced else None
        answered = False
        try:
            result = await callback(*args, **kwargs)
            answered = True
            return result
        except Exception as error:
            answered = telegram_answered(error)
            raise
        finally:
            if send is not None:
                self.limiter.settle(send, self.monotonic(), answered=answered)

    async def _take_turn(self, chat_id: int | None) -> Send:
        """Wait out a flood pause (the bot's, or this chat's) and, while the outbox fills the window, for its next
        place; then spend from the budget the outbox also reads."""
        while True:
            now = self.monotonic()
            until = max(self.limiter.paused_until, self.limiter.chat_paused_until(chat_id))
            if until > now:
                await asyncio.sleep(until - now)
                continue
            ready = self.limiter.reply_ready_at(now)
            if ready <= now:
                return self.limiter.record_global(now)
            with self.limiter.reserving():
                await asyncio.sleep(ready - now)


def chat_of(data: dict[str, Any]) -> int | None:
    """The numeric chat a request goes to; None for an @username or a method without a chat."""
    value = data.get("chat_id")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None
