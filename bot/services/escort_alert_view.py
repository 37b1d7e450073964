"""What the alert of an automatic escort contingency names: the escort, its journey, the episode.

Read with the contingency (`escalation.load`) so that every redraw of the
alert (acknowledged, climbed, cleared) names the same escort and says how
the episode stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.escorts.route import escort_query, waypoint
from models import Escort, EscortAlert


@dataclass(frozen=True)
class EscortAlertView:
    """The escort an alert is about and its episode; `position_at` is when the position in the alert was taken."""

    escort_id: int
    code: str
    cargo: str
    origin: str
    destination: str
    kind: str
    opened_at: datetime | None
    cleared_at: datetime | None
    clear_reason: str | None
    position_at: datetime | None


async def load_escort_alert(
    session: AsyncSession, *, contingency_id: int, escort_id: int, position_at: datetime | None
) -> EscortAlertView | None:
    row = (await session.execute(escort_query().where(Escort.id == escort_id))).first()
    if row is None:
        return None
    alert = await session.scalar(
        select(EscortAlert)
        .where(EscortAlert.contingency_id == contingency_id)
        .order_by(EscortAlert.id)
        .limit(1)
        .execution_options(populate_existing=True)
    )
    return EscortAlertView(
        escort_id=escort_id,
        code=row.Escort.code,
        cargo=row.Escort.cargo,
        origin=waypoint(row, "f").name,
        destination=waypoint(row, "t").name,
        kind=alert.kind if alert else "",
        opened_at=alert.opened_at if alert else None,
        cleared_at=alert.cleared_at if alert else None,
        clear_reason=alert.clear_reason if alert else None,
        position_at=position_at,
    )
