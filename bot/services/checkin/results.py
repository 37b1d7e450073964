"""What a check-in answers, and the location it is made from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.services.schedule import Post, ShiftPlan

TELEGRAM_KEEPS = timedelta(hours=24)  # an update not fetched within this is dropped by Telegram


class CheckinOutcome(StrEnum):
    checked_in = "checked_in"
    already = "already"
    moved_closer = "moved_closer"
    forwarded = "forwarded"
    stale = "stale"
    no_shift = "no_shift"


class StaleReason(StrEnum):
    """Why a location is too old; `shift` of the result is the shift it missed."""

    before_open = "before_open"
    after_end = "after_end"
    expired = "expired"


@dataclass(frozen=True)
class CheckinResult:
    """What a location did; `sent_at` is the time it counts at, `received_at` when the bot read it."""

    outcome: CheckinOutcome
    shift: ShiftPlan | None = None
    post: Post | None = None
    distance_m: float = 0.0
    far: bool = False
    late: bool = False
    checked_in_at: datetime | None = None
    next_shift: ShiftPlan | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None
    stale_reason: StaleReason | None = None

    @property
    def delay(self) -> timedelta:
        """How long the location waited before the bot read it."""
        if self.sent_at is None or self.received_at is None:
            return timedelta(0)
        return self.received_at - self.sent_at


def sent_time(sent_at: datetime, now: datetime) -> datetime:
    """The time a message counts at: when it was sent, or when read if that is earlier (clocks apart)."""
    return min(sent_at, now)


@dataclass(frozen=True)
class Presence:
    """A shared location, as a check-in of a bunch needs it.

    `sent_at` is when Telegram says it was sent (`message.date`; for a live
    location, the time of that position), however late the bot reads it.
    """

    personnel_id: int
    lat: float
    lon: float
    sent_at: datetime
    forwarded: bool


Key = tuple[int, int]  # (personnel_id, shift_id): one check-in row
