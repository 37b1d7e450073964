"""What the running bot is wired with, typed, kept in `context.bot_data` for handlers to reach.

Only wiring lives there (settings, the session factory, the clock, the
coalescers, the dispatcher); state lives in the database.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock, system_clock
from bot.config import Settings
from bot.delivery.dispatcher import Dispatcher
from bot.intake.coalesce import Arrival, Coalescer, arrivals, checkins
from bot.services.checkin import CheckinResult, Presence
from bot.services.escorts import PositionResult
from flows.escorts import Position, positions_together


@dataclass
class Runtime:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock = system_clock
    worker: str = ""
    """This process's id among the workers (bot/intake/liveness.py)."""
    dispatcher: Dispatcher | None = None
    """The outbox dispatcher, once the backlog of the start is handled (bot/app.py)."""
    after_backlog: asyncio.Task[None] | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the backlog of this start is handled (bot/app.py): the sweeps that plan from check-ins wait."""
    arrivals: Coalescer[tuple[int, int | None], Arrival] = field(init=False)
    """What every update needs first, for the updates of the moment at once (bot/intake/coalesce.py)."""
    checkins: Coalescer[Presence, CheckinResult] = field(init=False)
    """Locations shared at the same moment, checked in together."""
    positions: Coalescer[Position, PositionResult | None] = field(init=False)
    """Escort positions of the moment, taken in one transaction (flows/escorts.py)."""

    def __post_init__(self) -> None:
        self.arrivals = arrivals(self.sessions, self.now, claim=not self.settings.intake.durable)
        self.checkins = checkins(self.sessions, self.now, self.settings.checkin)
        self.positions = positions_together(self.sessions, self.now, self.settings)

    def now(self) -> datetime:
        return self.clock()

    def wake_dispatcher(self) -> None:
        """Something urgent was queued: send it now rather than at the dispatcher's next poll."""
        if self.dispatcher is not None:
            self.dispatcher.wake()


RUNTIME_KEY = "runtime"


def runtime_of(bot_data: dict[str, Any]) -> Runtime:
    runtime = bot_data[RUNTIME_KEY]
    assert isinstance(runtime, Runtime)
    return runtime
