"""The clocks the bot can run on: the wall clock, a demo's fast one, a test's manual one.

Every service takes `now` from the runtime's clock, so a demo plays an
election day in a minute and a test moves time without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class FastClock:
    """Virtual time running `speed` times faster than the wall clock, from `start`."""

    start: datetime
    speed: float = 60.0
    _origin: datetime = field(default_factory=system_clock)

    def __call__(self) -> datetime:
        return self.start + (system_clock() - self._origin) * self.speed


@dataclass
class ManualClock:
    """Time that moves only when a test says so: escalations and grace periods without sleeping."""

    current: datetime

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        self.current += delta
        return self.current
