"""Direct replies share the bot's flood budget with the outbox, and ride out a 429.

Replies answer a person who is waiting, so they go first: they never wait
for the pacer, only for a pause Telegram imposed (429), and they record each
send in the same `RateLimiter` the dispatcher uses, so the dispatcher sends
around them instead of into them. Telegram states its 30-a-second limit
for bulk notifications; answers are paced only once it says so, and then
arrive a little late rather than never.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from bot.dispatcher import retry_after_seconds
from bot.ratelimit import RateLimiter

DEADLINE_SECONDS = 300.0
PACED = ("send", "edit", "copy", "forward")


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
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        paced = endpoint.startswith(PACED)
        deadline = self.monotonic() + DEADLINE_SECONDS
        while True:
            if paced:
                await self._take_turn()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                now = self.monotonic()
                pause = retry_after_seconds(error)
                self.limiter.pause(pause, now)
                if now + pause > deadline:
                    raise
                await asyncio.sleep(pause + random.uniform(0, 0.2))

    async def _take_turn(self) -> None:
        """Wait out a flood pause, then spend from the bot-wide budget the outbox also reads."""
        while self.limiter.paused(now := self.monotonic()):
            await asyncio.sleep(self.limiter.paused_until - now)
        self.limiter.record_global(now)
