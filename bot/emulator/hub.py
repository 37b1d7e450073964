"""The emulator as its parts see it: what the Bot API methods, the HTTP server and the simulated users use of it.

:class:`bot.emulator.core.Emulator` builds the parts and hands itself to
them; the parts know it only through :class:`Hub`, so they import this
module and never ``core``, which imports them. mypy checks that the
Emulator is a Hub where ``core`` passes itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from bot.emulator.limits import Faults, Limits, RateLimiter
from bot.emulator.state import CallbackAnswer, CallbackQuery, SentMessage, State, User
from bot.emulator.webhook import WebhookDispatcher


class Polling(Protocol):
    """The getUpdates slot: the long poll that holds it; a newer poll takes it and ends the older with 409."""

    poller: object | None


class Hub(Protocol):
    """State, limits, faults and the few actions of the emulator that its parts share."""

    @property
    def token(self) -> str: ...

    @property
    def bot_username(self) -> str: ...

    @property
    def bot(self) -> User: ...

    @property
    def state(self) -> State: ...

    @property
    def faults(self) -> Faults: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def limiter(self) -> RateLimiter: ...

    @property
    def privacy_mode(self) -> bool: ...

    @property
    def strict_html(self) -> bool: ...

    @property
    def record_calls(self) -> bool: ...

    @property
    def closing(self) -> bool: ...

    @property
    def server(self) -> Polling: ...

    @property
    def webhook(self) -> WebhookDispatcher: ...

    def enqueue(self, payload: dict[str, Any]) -> dict[str, Any]: ...

    def sent_to(self, chat: int) -> list[SentMessage]: ...

    def count(self, chat: int) -> int: ...

    async def until(
        self, probe: Callable[[], Any], timeout: float = 5.0, describe: Callable[[], str] | None = None
    ) -> Any: ...

    async def wait_callback_answer(self, query: CallbackQuery | str, timeout: float = 5.0) -> CallbackAnswer: ...
