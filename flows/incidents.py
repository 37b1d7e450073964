"""Contingencies: the service moves the state machine and says who must be told; here that is worded and queued.

Every press and every timer ends the same way: the service's transition
returns an `Announcement` (the contingency as it now stands, the groups it
reaches for the first time, whether the copies already posted must follow,
private notes), `announce` words it with bot/render/incidents.py and queues
it through bot/services/incident_copies.py, and the transaction commits with
the change, so an alert is never lost between the two. Group alerts are in
the operation's language, notes in their recipient's.

Automatic escort alerts (`berhenti`, `hilang_sinyal`, `terlambat`,
`menyimpang`) enter the same machine as contingencies the bot raised
(bot/services/escort_incidents.py): the position and arrive flows call
`raise_escort_alerts` / `clear_escort_alerts` in their transaction, and the
scheduler's `sweep_escort_alerts` raises what the time alone makes due.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.render import escort_alerts as escort_texts
from bot.render import incidents as texts
from bot.render.outbox import html_payload
from bot.services import escalation, escort_incidents, escorts, incident_copies, incidents
from bot.services.escalation import Announcement, ContingencyView
from bot.services.escorts import AlertEpisode
from bot.services.incidents import IncidentResult
from bot.services.people import Actor

UNRAISED_BATCH = 50


async def choose_severity(
    session: AsyncSession, *, contingency_id: int, actor: Actor, severity: str, now: datetime, settings: Settings
) -> IncidentResult:
    """The reporter's button: the draft is raised and its groups get the alert."""
    result = await incidents.choose_severity(
        session, contingency_id=contingency_id, actor=actor, severity=severity, now=now, settings=settings
    )
    return await _told(session, result, now=now, settings=settings)


async def acknowledge(
    session: AsyncSession, *, contingency_id: int, actor: Actor, now: datetime, settings: Settings
) -> IncidentResult:
    """The climb stops; every copy says who has it, and so does a note to the reporter."""
    result = await incidents.acknowledge(
        session, contingency_id=contingency_id, actor=actor, now=now, settings=settings
    )
    return await _told(session, result, now=now, settings=settings)


async def resolve(
    session: AsyncSession, *, contingency_id: int, actor: Actor, now: datetime, settings: Settings
) -> IncidentResult:
    """Closed; every copy says who closed it and when, and so does a note to the reporter."""
    result = await incidents.resolve(session, contingency_id=contingency_id, actor=actor, now=now)
    return await _told(session, result, now=now, settings=settings)


async def escalate_now(
    session: AsyncSession, *, contingency_id: int, actor: Actor, now: datetime, settings: Settings
) -> IncidentResult:
    """One level up without waiting for the timer: the next groups get the alert, the copies follow."""
    result = await incidents.escalate_now(
        session, contingency_id=contingency_id, actor=actor, now=now, settings=settings
    )
    return await _told(session, result, now=now, settings=settings)


async def attach_location(
    session: AsyncSession,
    *,
    contingency_id: int,
    actor: Actor,
    lat: float,
    lon: float,
    now: datetime,
    settings: Settings,
) -> IncidentResult:
    """The reporter's shared location; every copy already posted shows it."""
    result = await incidents.attach_location(
        session, contingency_id=contingency_id, actor=actor, lat=lat, lon=lon, now=now
    )
    return await _told(session, result, now=now, settings=settings)


async def _told(session: AsyncSession, result: IncidentResult, *, now: datetime, settings: Settings) -> IncidentResult:
    if result.announcement is not None:
        await announce(session, result.announcement, now=now, settings=settings)
    await session.commit()
    return result


async def announce(session: AsyncSession, announcement: Announcement, *, now: datetime, settings: Settings) -> None:
    """Queue what a transition asks to be told: copies brought in step, the alert to new groups, the notes."""
    view = announcement.view
    if announcement.sync or announcement.reach:
        text, payload = _alert(view, settings)
        if announcement.sync:
            await incident_copies.sync_copies(session, view, text=text, payload=payload, now=now)
        if announcement.reach:
            await incident_copies.reach(session, view, announcement.reach, text=text, payload=payload, now=now)
    for note in announcement.notes:
        await incident_copies.notify_person(
            session,
            chat_id=note.chat_id,
            personnel_id=note.personnel_id,
            text=texts.note_text(note, announcement, settings.operation.zone),
            payload=html_payload(),
            dedup_key=note.dedup_key,
            now=now,
        )


def _alert(view: ContingencyView, settings: Settings) -> tuple[str, dict[str, Any]]:
    """The group alert as every copy shows it, in the operation's language."""
    lang = settings.operation.language
    return texts.alert_text(view, lang, settings.operation.zone), texts.alert_payload(view, lang)


async def sweep(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """Fire every timer that has passed; returns how many transitions were made.

    Each contingency is handled in its own transaction, and every transition
    is a compare-and-set on the version read just before: two sweeps on two
    workers (or a sweep and a button press) never make the same step twice,
    and a sweep killed half-way leaves nothing half-done (its transaction
    rolls back, the deadline is still in the past, the next sweep makes the
    step). A contingency that fails is rolled back and the others still
    fire; the first error is raised at the end, for the job to log. Then
    `reconcile` catches up copies that were on the wire when their
    contingency changed.
    """
    made = 0
    failure: Exception | None = None
    for contingency_id in await escalation.due(session, now=now):
        try:
            announcement = await escalation.fire(session, contingency_id, now=now, settings=settings)
            if announcement is not None:
                await announce(session, announcement, now=now, settings=settings)
                made += 1
            await session.commit()
        except Exception as error:  # one broken contingency must not hold back the others' timers
            await session.rollback()
            failure = failure or error
    await reconcile(session, now=now, settings=settings)
    if failure is not None:
        raise failure
    return made


async def reconcile(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """Copies whose send was on the wire when the contingency changed: record their id, edit if stale."""
    edits = 0
    for contingency_id in await incident_copies.unrecorded(session):
        view = await escalation.load(session, contingency_id)
        if view is not None:
            text, payload = _alert(view, settings)
            edits += await incident_copies.sync_copies(
                session, view, text=text, payload=payload, now=now, only_stale=True
            )
        await session.commit()
    return edits


# -- automatic escort alerts ----------------------------------------------------------------------


async def raise_escort_alerts(
    session: AsyncSession, *, settings: Settings, episodes: Sequence[AlertEpisode], now: datetime
) -> None:
    """Each opened episode becomes a contingency raised by the bot, alerted to its escort's unit group.

    Queued in the caller's transaction, not committed: the episode, its
    contingency and the alert commit together or not at all. An episode
    raised already (or ended meanwhile) is skipped, so raising twice is harmless.
    """
    lang = settings.operation.language
    for episode in episodes:
        announcement = await escort_incidents.raise_episode(
            session,
            episode=episode,
            text=escort_texts.summary(episode.escort_code, episode.kind, lang),
            now=now,
            settings=settings,
        )
        if announcement is not None:
            await announce(session, announcement, now=now, settings=settings)


async def clear_escort_alerts(
    session: AsyncSession, *, settings: Settings, episodes: Sequence[AlertEpisode], now: datetime
) -> None:
    """Episodes whose condition ended by themselves: resolved with the reason, every copy edited to say so.

    Queued in the caller's transaction, not committed.
    """
    for episode in episodes:
        announcement = await escort_incidents.clear_episode(session, episode=episode, now=now)
        if announcement is not None:
            await announce(session, announcement, now=now, settings=settings)


async def sweep_escort_alerts(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """Open what has become due and raise it; then raise the open episodes a crash left without a contingency.

    The first batch of episodes opened now commits with their opening, the
    rest batch by batch: an outage that silences thousands of escorts at
    once does not make one transaction of them all, and a batch that fails
    rolls back alone, its episodes left for the catch-up of the next pass
    (`unraised`). Two sweeps at once open each episode once (the open index)
    and raise it once (the compare-and-set link). Returns how many episodes
    this pass raised or tried to.
    """
    opened = await escorts.sweep_alerts(session, settings=settings.escort, now=now)
    failure = await _raise_in_batches(session, opened, now=now, settings=settings)
    stale = await escorts.unraised(session, settings=settings.escort)
    failure = await _raise_in_batches(session, stale, now=now, settings=settings) or failure
    if failure is not None:
        raise failure
    return len(opened) + len(stale)


async def _raise_in_batches(
    session: AsyncSession, episodes: Sequence[AlertEpisode], *, now: datetime, settings: Settings
) -> Exception | None:
    """One transaction per batch; the first error is returned (for the job to log) after every batch was tried."""
    failure: Exception | None = None
    for start in range(0, max(len(episodes), 1), UNRAISED_BATCH):
        try:
            batch = episodes[start : start + UNRAISED_BATCH]
            await raise_escort_alerts(session, settings=settings, episodes=batch, now=now)
            await session.commit()
        except Exception as error:  # one broken batch must not hold back the others' alerts
            await session.rollback()
            failure = failure or error
    return failure
