"""Automatic escort alerts as contingencies: raised by the bot, resolved by the condition ending.

An episode of `escort_alerts` (bot/services/escorts/alerts.py) becomes one
contingency with no reporter: the bot raised it. It is raised through the
same state machine as `/darurat` (bot/services/escalation.py), so it has the
usual severity, groups, acknowledge buttons, climb and audit; the escort's
unit stands where a TPS's unit would. Its last position, and when it was
taken, are copied onto the contingency: the alert says where the escort was
last seen when the alert went out, whatever positions come after.

An episode is raised once: its contingency is linked by a compare-and-set
(`escort_alerts.contingency_id` still NULL, the episode still open), and a
contingency that lost the race is deleted before anyone saw it, so a
position flow and the sweep's catch-up of `unraised` episodes (or two
workers) never both raise one. (`escorts.link_contingency` links
unconditionally, which is why the link is made here.) When its
condition ends by itself the contingency is resolved with that reason,
unless a commander resolved it already; its timers stop with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.services import audit, escalation
from bot.services.escalation import RESOLVED, Announcement
from bot.services.escorts import AlertEpisode
from bot.storage.db import rowcount
from models import Contingency, Escort, EscortAlert

MAX_TEXT = 2000
ATTEMPTS = 5
AUDIT_ACTOR = "escort_alert"


async def raise_episode(
    session: AsyncSession, *, episode: AlertEpisode, text: str, now: datetime, settings: Settings
) -> Announcement | None:
    """Make the episode's contingency and raise it at its severity; None when it is raised already or has ended.

    Does not commit: the caller queues the announcement in the same transaction.
    """
    unclaimed = (EscortAlert.id == episode.id, EscortAlert.contingency_id.is_(None), EscortAlert.cleared_at.is_(None))
    if await session.scalar(select(EscortAlert.id).where(*unclaimed)) is None:
        return None
    escort = (
        await session.execute(
            select(Escort.unit_id, Escort.last_lat, Escort.last_lon, Escort.last_at).where(
                Escort.id == episode.escort_id
            )
        )
    ).one()
    row = Contingency(
        reporter_id=None,
        escort_id=episode.escort_id,
        unit_id=escort.unit_id,
        level_unit_id=escort.unit_id,
        text=text[:MAX_TEXT],
        lat=escort.last_lat,
        lon=escort.last_lon,
        position_at=escort.last_at,
        sent_at=episode.opened_at,
        created_at=now,
        version=0,
    )
    session.add(row)
    await session.flush()
    if not await _link(session, unclaimed, row.id):
        await session.delete(row)  # another worker linked its own first: this one was never seen
        await session.flush()
        return None
    audit.record(
        session,
        action="contingency.drafted",
        entity="contingency",
        entity_id=row.id,
        actor=AUDIT_ACTOR,
        detail={"escort": episode.escort_code, "kind": episode.kind, "episode": episode.id},
    )
    view = await escalation.load(session, row.id)
    assert view is not None
    return await escalation.raise_now(
        session, view, severity=episode.severity, now=now, settings=settings, actor_id=None
    )


async def _link(session: AsyncSession, unclaimed: tuple[Any, ...], contingency_id: int) -> bool:
    """Link the episode to this contingency unless it was linked or ended meanwhile (compare-and-set).

    On PostgreSQL a second worker's UPDATE waits for the first one's commit
    and then finds the episode linked; on SQLite writers take turns, so the
    second one's UPDATE runs after the first commit. Either way one wins.
    """
    result = await session.execute(
        update(EscortAlert)
        .where(*unclaimed)
        .values(contingency_id=contingency_id)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def clear_episode(session: AsyncSession, *, episode: AlertEpisode, now: datetime) -> Announcement | None:
    """Resolve the episode's contingency with the reason its condition ended; None if there is none to resolve.

    A lost compare-and-set (a commander pressing at the same moment) re-reads
    and tries again on the newer state. Does not commit.
    """
    if episode.contingency_id is None:
        return None
    values = {"state": RESOLVED, "resolved_by_id": None, "resolved_at": now, "deadline_at": None}
    for _ in range(ATTEMPTS):
        view = await escalation.load(session, episode.contingency_id)
        if view is None or view.state == RESOLVED:
            return None
        if await escalation.transition(
            session,
            view,
            kind="resolved",
            now=now,
            values=values,
            unit_id=view.level_unit_id,
            detail={"reason": episode.clear_reason, "escort": episode.escort_code, "kind": episode.kind},
            by=AUDIT_ACTOR,
        ):
            after = await escalation.load(session, view.id)
            assert after is not None
            return Announcement(after, sync=True)
    return None
