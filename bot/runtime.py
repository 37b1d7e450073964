"""What the running bot is wired with, kept in `context.bot_data` for handlers to reach.

Only wiring lives there (settings, the session factory, the clock, the
dispatcher); state lives in the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class FastClock:
    """Virtual time running `speed` times faster than the wall clock, from `start`.

    The demo plays an election day in a minute with it; every service takes
    `now` from the runtime's clock, so nothing else needs to know.
    """

    start: datetime
    speed: float = 60.0
    _origin: datetime = field(default_factory=system_clock)

    def __call__(self) -> datetime:
        return self.start + (system_clock() - self._origin) * self.speed


@dataclass
class Runtime:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock = system_clock
    worker: str = ""
    """This process's id among the workers (bot/liveness.py)."""
    services: dict[str, Any] = field(default_factory=dict)
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the backlog of this start is handled (bot/app.py): the sweeps that plan from check-ins wait."""

    def now(self) -> datetime:
        return self.clock()

    def wake_dispatcher(self) -> None:
        """Something urgent was queued: send it now rather than at the dispatcher's next poll."""
        dispatcher = self.services.get("dispatcher")
        if dispatcher is not None:
            dispatcher.wake()


RUNTIME_KEY = "runtime"


def runtime_of(bot_data: dict[str, Any]) -> Runtime:
    return bot_data[RUNTIME_KEY]


@dataclass
class ManualClock:
    """Time that moves only when a test says so: escalations and grace periods without sleeping."""

    current: datetime

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        self.current += delta
        return self.current
