"""Check-out: the end of presence for the shift, at the time it was sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import CheckinSettings
from bot.services import audit, tally
from bot.services.checkin.results import (
    sent_time,
)
from bot.services.schedule import ShiftPlan, open_shift
from models import Checkin


class CheckoutOutcome(StrEnum):
    checked_out = "checked_out"
    already = "already"
    not_checked_in = "not_checked_in"


@dataclass(frozen=True)
class CheckoutResult:
    """`at` is the recorded check-out; `sent_at` and `received_at` as in `CheckinResult`."""

    outcome: CheckoutOutcome
    shift: ShiftPlan | None = None
    at: datetime | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None

    @property
    def delay(self) -> timedelta:
        if self.sent_at is None or self.received_at is None:
            return timedelta(0)
        return self.received_at - self.sent_at


async def check_out(
    session: AsyncSession,
    *,
    personnel_id: int,
    now: datetime,
    settings: CheckinSettings,
    sent_at: datetime | None = None,
) -> CheckoutResult:
    """Close the check-in of the shift open when `/selesai` was sent (`sent_at`; None: as it is read).

    Without a check-in there is nothing to close. The shift ended by the
    time a delayed `/selesai` is read still closes: it was sent in time.
    """
    at = sent_time(sent_at or now, now)
    shift = await open_shift(
        session, personnel_id=personnel_id, now=at, opens_before=timedelta(minutes=settings.opens_before_minutes)
    )
    row = await _existing(session, personnel_id, shift.shift_id) if shift else None
    if row is None:
        return CheckoutResult(CheckoutOutcome.not_checked_in, shift, sent_at=at, received_at=now)
    if row.checked_out_at is not None:
        return CheckoutResult(CheckoutOutcome.already, shift, row.checked_out_at, at, now)
    await tally.on_checkout(session, personnel_id=personnel_id, shift_id=row.shift_id)
    row.checked_out_at = at
    audit.record(
        session,
        action="checkin.checked_out",
        entity="checkin",
        entity_id=f"{personnel_id}:{row.shift_id}",
        actor_id=personnel_id,
    )
    await session.commit()
    return CheckoutResult(CheckoutOutcome.checked_out, shift, at, at, now)


async def _existing(session: AsyncSession, personnel_id: int, shift_id: int) -> Checkin | None:
    return await session.scalar(
        select(Checkin).where(Checkin.personnel_id == personnel_id, Checkin.shift_id == shift_id)
    )
