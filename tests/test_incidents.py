"""Contingencies: who receives them, the climb, acknowledgement, and a restart between steps.

The roster's border TPS (TPS-A2-001, primary POLSEK-A2, secondary POLSEK-A1)
is guarded by Eko; Budi guards TPS-A1-001 and TPS-A1-002 (POLSEK-A1 only).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings, load_settings
from bot.services import escalation, incident_copies, incidents, outbox
from bot.services.incidents import IncidentOutcome, ListOutcome
from bot.services.outbox import SendResult
from bot.services.people import Actor, actor_for
from flows import incidents as flow
from models import CommandGroup, Contingency, ContingencyMessage, ContingencyStep, Outbox
from models.enums import OutboxState
from tests.factories import NOW, Roster, build_roster, link

OPENS = timedelta(hours=2)
GROUPS = {"POLSEK-A1": -1001, "POLSEK-A2": -1002, "POLRES-A": -1003, "POLDA-X": -1004}
A1, A2, RES, DA = GROUPS.values()
PEOPLE = ["ani", "kapolda", "kapolres", "kapolsek_a1", "kapolsek_a2", "budi", "eko"]
MINUTE = timedelta(minutes=1)


@pytest.fixture
def settings() -> Settings:
    return load_settings(None)


async def _world(session: AsyncSession, *, without: tuple[str, ...] = ()) -> tuple[Roster, dict[str, Actor]]:
    roster = await build_roster(session)
    for code, chat in GROUPS.items():
        if code not in without:
            session.add(CommandGroup(unit_id=roster.units[code].id, chat_id=chat, title=f"Posko {code}"))
    actors = {}
    for number, key in enumerate(PEOPLE, start=1):
        await link(session, roster.person(key), 900 + number)
        actor = await actor_for(session, telegram_user_id=900 + number, now=NOW)
        assert actor is not None
        actors[key] = actor
    return roster, actors


async def _raise(
    session: AsyncSession, actor: Actor, settings: Settings, severity: str = "tinggi", text: str = "Massa berkumpul"
) -> int:
    contingency_id = await incidents.draft(session, actor=actor, text=text, now=NOW, opens_before=OPENS)
    result = await flow.choose_severity(
        session, contingency_id=contingency_id, actor=actor, severity=severity, now=NOW, settings=settings
    )
    assert result.outcome is IncidentOutcome.raised
    return contingency_id


async def _sends(session: AsyncSession) -> list[int]:
    """Chat ids of every alert posted, in order (edits excluded)."""
    query = select(Outbox.chat_id).where(Outbox.method == "sendMessage", Outbox.chat_id < 0).order_by(Outbox.id)
    return list((await session.scalars(query)).all())


async def _edits(session: AsyncSession) -> list[tuple[int, int, str]]:
    query = (
        select(Outbox.chat_id, Outbox.payload, Outbox.text, Outbox.state)
        .where(Outbox.method == "editMessageText")
        .order_by(Outbox.id)
    )
    return [
        (chat, payload["message_id"], text)
        for chat, payload, text, state in await session.execute(query)
        if state == OutboxState.pending.value
    ]


async def _steps(session: AsyncSession, contingency_id: int) -> list[tuple[int, str]]:
    query = (
        select(ContingencyStep.version, ContingencyStep.kind)
        .where(ContingencyStep.contingency_id == contingency_id)
        .order_by(ContingencyStep.version)
    )
    return [tuple(row) for row in await session.execute(query)]  # type: ignore[misc]


async def _deliver(session: AsyncSession, at: datetime) -> list[int]:
    """What a dispatcher does: claim every due row and record Telegram's message ids."""
    rows = await outbox.claim(session, worker="test", limit=100, now=at, lease_seconds=60)
    await outbox.mark_sent_many(session, results=[SendResult(row.id, 7000 + row.id, at) for row in rows])
    await session.commit()
    return [row.chat_id for row in rows]


async def test_a_border_tps_reaches_both_groups_once(session: AsyncSession, settings: Settings) -> None:
    roster, actors = await _world(session)
    contingency_id = await _raise(session, actors["eko"], settings)
    assert sorted(await _sends(session)) == sorted([A1, A2])
    row = await session.get(Contingency, contingency_id)
    assert row is not None
    assert (row.tps_id, row.severity, row.state, row.version) == (roster.tps["TPS-A2-001"].id, "tinggi", "open", 1)
    assert row.shift_id == roster.shifts["PAGI"].id and row.deadline_at == NOW + 5 * MINUTE
    again = await flow.choose_severity(
        session, contingency_id=contingency_id, actor=actors["eko"], severity="rendah", now=NOW, settings=settings
    )
    assert again.outcome is IncidentOutcome.already_raised
    assert sorted(await _sends(session)) == sorted([A1, A2])
    text = await session.scalar(select(Outbox.text).where(Outbox.chat_id == A2))
    assert text and "TPS-A2-001" in text and "perbatasan: Polsek A1" in text and "Massa berkumpul" in text


async def test_unacknowledged_it_climbs_one_group_per_timeout_to_the_top(
    session: AsyncSession, settings: Settings
) -> None:
    _, actors = await _world(session)
    contingency_id = await _raise(session, actors["eko"], settings)
    assert await flow.sweep(session, now=NOW + 4 * MINUTE, settings=settings) == 0
    assert await flow.sweep(session, now=NOW + 5 * MINUTE, settings=settings) == 1
    assert await flow.sweep(session, now=NOW + 5 * MINUTE, settings=settings) == 0
    assert (await _sends(session))[2:] == [RES]
    assert await flow.sweep(session, now=NOW + 10 * MINUTE, settings=settings) == 1
    assert (await _sends(session))[2:] == [RES, DA]
    assert await flow.sweep(session, now=NOW + 60 * MINUTE, settings=settings) == 0
    assert await _steps(session, contingency_id) == [(1, "raised"), (2, "escalated"), (3, "escalated")]
    row = await session.get(Contingency, contingency_id, populate_existing=True)
    assert row is not None and row.deadline_at is None and row.state == "open"


async def test_a_level_without_a_group_is_skipped_in_the_same_step(session: AsyncSession, settings: Settings) -> None:
    _, actors = await _world(session, without=("POLSEK-A1", "POLRES-A"))
    await _raise(session, actors["budi"], settings)
    assert await _sends(session) == [DA]
    assert await flow.sweep(session, now=NOW + 5 * MINUTE, settings=settings) == 0
    result = await flow.escalate_now(session, contingency_id=1, actor=actors["kapolda"], now=NOW, settings=settings)
    assert result.outcome is IncidentOutcome.at_top and await _sends(session) == [DA]


async def test_acknowledging_stops_the_climb_and_edits_every_copy(session: AsyncSession, settings: Settings) -> None:
    _, actors = await _world(session)
    contingency_id = await _raise(session, actors["eko"], settings)
    assert sorted(await _deliver(session, NOW)) == sorted([A1, A2])
    result = await flow.acknowledge(
        session, contingency_id=contingency_id, actor=actors["kapolsek_a1"], now=NOW + 2 * MINUTE, settings=settings
    )
    assert result.outcome is IncidentOutcome.acknowledged
    edits = await _edits(session)
    assert sorted(chat for chat, _, _ in edits) == sorted([A1, A2])
    assert all("DITERIMA</b> oleh AKP Kapolsek A1, 08:02 WIB" in text for _, _, text in edits)
    sent_ids = dict(
        (
            await session.execute(
                select(Outbox.chat_id, Outbox.telegram_message_id).where(
                    Outbox.method == "sendMessage", Outbox.chat_id < 0
                )
            )
        ).all()
    )
    assert {chat: message_id for chat, message_id, _ in edits} == sent_ids
    note = await session.scalar(select(Outbox.text).where(Outbox.personnel_id == actors["eko"].personnel_id))
    assert note and "diterima oleh <b>AKP Kapolsek A1</b>" in note
    twice = await flow.acknowledge(
        session, contingency_id=contingency_id, actor=actors["kapolres"], now=NOW + 3 * MINUTE, settings=settings
    )
    assert (twice.outcome, twice.view and twice.view.acknowledged_by) == (
        IncidentOutcome.already_acknowledged,
        "AKP Kapolsek A1",
    )
    assert await flow.sweep(session, now=NOW + 20 * MINUTE, settings=settings) == 0
    assert RES not in await _sends(session)


async def test_the_acknowledger_is_reminded_once_while_unresolved(session: AsyncSession, settings: Settings) -> None:
    _, actors = await _world(session)
    contingency_id = await _raise(session, actors["budi"], settings)
    await flow.acknowledge(
        session, contingency_id=contingency_id, actor=actors["kapolsek_a1"], now=NOW, settings=settings
    )
    assert await flow.sweep(session, now=NOW + 29 * MINUTE, settings=settings) == 0
    assert await flow.sweep(session, now=NOW + 30 * MINUTE, settings=settings) == 1
    assert await flow.sweep(session, now=NOW + 90 * MINUTE, settings=settings) == 0
    reminders = (
        await session.scalars(select(Outbox.text).where(Outbox.personnel_id == actors["kapolsek_a1"].personnel_id))
    ).all()
    assert len(reminders) == 1 and "belum selesai" in reminders[0]
    done = await flow.resolve(
        session, contingency_id=contingency_id, actor=actors["kapolres"], now=NOW + 91 * MINUTE, settings=settings
    )
    assert done.outcome is IncidentOutcome.resolved
    again = await flow.resolve(
        session, contingency_id=contingency_id, actor=actors["kapolsek_a1"], now=NOW, settings=settings
    )
    assert (again.outcome, again.view and again.view.resolved_by) == (IncidentOutcome.already_resolved, "AKBP Kapolres")
    assert [kind for _, kind in await _steps(session, contingency_id)] == [
        "raised",
        "acknowledged",
        "reminded",
        "resolved",
    ]


async def test_members_and_sibling_commanders_are_refused(session: AsyncSession, settings: Settings) -> None:
    _, actors = await _world(session)
    inner = await _raise(session, actors["budi"], settings)
    border = await _raise(session, actors["eko"], settings)
    for who, contingency_id, allowed in [
        ("budi", inner, False),
        ("eko", border, False),
        ("kapolsek_a2", inner, False),
        ("kapolsek_a1", border, True),
        ("kapolsek_a2", border, True),
        ("kapolres", inner, True),
        ("kapolda", inner, True),
        ("ani", border, True),
    ]:
        result = await flow.escalate_now(
            session, contingency_id=contingency_id, actor=actors[who], now=NOW, settings=settings
        )
        assert (result.outcome is not IncidentOutcome.forbidden) is allowed, (who, contingency_id)
    refused = await flow.acknowledge(
        session, contingency_id=inner, actor=actors["kapolsek_a2"], now=NOW, settings=settings
    )
    assert refused.outcome is IncidentOutcome.forbidden
    row = await session.get(Contingency, inner, populate_existing=True)
    assert row is not None and row.state == "open"


async def test_two_concurrent_sweeps_make_each_step_once(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions() as session:
        _, actors = await _world(session)
        ids = [await _raise(session, actors[key], settings) for key in ["budi", "eko", "budi", "eko"]]
    for minutes in (5, 10):
        async with sessions() as first, sessions() as second:
            made = await asyncio.gather(
                flow.sweep(first, now=NOW + minutes * MINUTE, settings=settings),
                flow.sweep(second, now=NOW + minutes * MINUTE, settings=settings),
            )
        assert sum(made) == len(ids), minutes
    async with sessions() as session:
        for contingency_id in ids:
            assert [kind for _, kind in await _steps(session, contingency_id)] == ["raised", "escalated", "escalated"]
        assert (await _sends(session)).count(DA) == len(ids)
        assert (await _sends(session)).count(RES) == len(ids)


async def test_a_crash_between_steps_neither_loses_nor_repeats_one(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sessions() as session:
        _, actors = await _world(session)
        contingency_id = await _raise(session, actors["eko"], settings)
    real_reach = incident_copies.reach

    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed mid-step")

    monkeypatch.setattr(incident_copies, "reach", crash)
    async with sessions() as session:
        with pytest.raises(RuntimeError):
            await flow.sweep(session, now=NOW + 5 * MINUTE, settings=settings)
    monkeypatch.setattr(incident_copies, "reach", real_reach)
    async with sessions() as session:
        assert await _steps(session, contingency_id) == [(1, "raised")]
        assert await flow.sweep(session, now=NOW + 6 * MINUTE, settings=settings) == 1
    async with sessions() as session:
        assert await flow.sweep(session, now=NOW + 6 * MINUTE, settings=settings) == 0
        assert await _steps(session, contingency_id) == [(1, "raised"), (2, "escalated")]
        assert (await _sends(session)).count(RES) == 1


async def test_an_old_reading_cannot_act_on_a_newer_state(session: AsyncSession, settings: Settings) -> None:
    _, actors = await _world(session)
    contingency_id = await _raise(session, actors["budi"], settings)
    seen = await escalation.load(session, contingency_id)
    assert seen is not None
    await flow.acknowledge(
        session, contingency_id=contingency_id, actor=actors["kapolsek_a1"], now=NOW, settings=settings
    )
    assert await escalation.climb(session, seen, now=NOW + 5 * MINUTE, settings=settings) is None
    await session.rollback()
    assert [kind for _, kind in await _steps(session, contingency_id)] == ["raised", "acknowledged"]


async def test_a_change_before_the_send_rewrites_it_and_one_on_the_wire_is_edited_later(
    session: AsyncSession, settings: Settings
) -> None:
    _, actors = await _world(session)
    contingency_id = await _raise(session, actors["eko"], settings)
    on_the_wire = await outbox.claim(session, worker="w", limit=1, now=NOW, lease_seconds=60)
    await session.commit()
    await flow.acknowledge(
        session, contingency_id=contingency_id, actor=actors["kapolsek_a2"], now=NOW, settings=settings
    )
    assert await _edits(session) == []
    waiting = (await session.scalars(select(Outbox.text).where(Outbox.state == "pending", Outbox.chat_id < 0))).all()
    assert len(waiting) == 1 and "DITERIMA" in waiting[0]
    assert await incident_copies.unrecorded(session) == [], "a copy waiting or on the wire is not caught up yet"
    await outbox.mark_sent(session, row_id=on_the_wire[0].id, telegram_message_id=55, at=NOW)
    await session.commit()
    assert await incident_copies.unrecorded(session) == [contingency_id]
    await flow.sweep(session, now=NOW, settings=settings)
    assert await incident_copies.unrecorded(session) == [], "caught up once: its message id is recorded"
    await flow.sweep(session, now=NOW, settings=settings)
    edits = await _edits(session)
    assert [(chat, message_id) for chat, message_id, _ in edits] == [(on_the_wire[0].chat_id, 55)]
    assert "DITERIMA" in edits[0][2]
    copies = (await session.scalars(select(ContingencyMessage.message_id).order_by(ContingencyMessage.id))).all()
    assert 55 in copies


async def test_a_draft_without_severity_goes_out_as_tinggi(session: AsyncSession, settings: Settings) -> None:
    _, actors = await _world(session)
    contingency_id = await incidents.draft(
        session, actor=actors["budi"], text="Kotak suara hilang", now=NOW, opens_before=OPENS
    )
    assert await flow.sweep(session, now=NOW + MINUTE, settings=settings) == 0
    assert await flow.sweep(session, now=NOW + 2 * MINUTE, settings=settings) == 1
    row = await session.get(Contingency, contingency_id, populate_existing=True)
    assert row is not None and (row.severity, row.raised_at) == ("tinggi", NOW + 2 * MINUTE)
    assert await _sends(session) == [A1]
    note = await session.scalar(select(Outbox.text).where(Outbox.personnel_id == actors["budi"].personnel_id))
    assert note and "TINGGI" in note
    late = await flow.choose_severity(
        session,
        contingency_id=contingency_id,
        actor=actors["budi"],
        severity="rendah",
        now=NOW + 3 * MINUTE,
        settings=settings,
    )
    assert late.outcome is IncidentOutcome.already_raised


async def test_a_location_attaches_and_updates_the_copies(session: AsyncSession, settings: Settings) -> None:
    _, actors = await _world(session)
    contingency_id = await _raise(session, actors["budi"], settings)
    await _deliver(session, NOW)
    other = await flow.attach_location(
        session, contingency_id=contingency_id, actor=actors["eko"], lat=-3.0, lon=104.7, now=NOW, settings=settings
    )
    assert other.outcome is IncidentOutcome.not_yours
    result = await flow.attach_location(
        session, contingency_id=contingency_id, actor=actors["budi"], lat=-2.99, lon=104.76, now=NOW, settings=settings
    )
    assert result.outcome is IncidentOutcome.located
    edits = await _edits(session)
    assert len(edits) == 1 and "maps.google.com/?q=-2.990000,104.760000" in edits[0][2]


async def test_insiden_lists_the_subtree_oldest_first_in_pages(session: AsyncSession, settings: Settings) -> None:
    _, actors = await _world(session)
    inner = await _raise(session, actors["budi"], settings)
    border = await _raise(session, actors["eko"], settings)
    closed = await _raise(session, actors["budi"], settings)
    await flow.resolve(session, contingency_id=closed, actor=actors["kapolsek_a1"], now=NOW, settings=settings)
    await session.execute(update(Contingency).where(Contingency.id == inner).values(raised_at=NOW - MINUTE))
    await session.commit()
    seen = {}
    for who in ["kapolres", "kapolsek_a1", "kapolsek_a2", "ani"]:
        listing = await incidents.open_incidents(session, actor=actors[who])
        seen[who] = [item.id for item in listing.items]
    assert seen == {
        "kapolres": [inner, border],
        "kapolsek_a1": [inner, border],
        "kapolsek_a2": [border],
        "ani": [inner, border],
    }
    second = await incidents.open_incidents(session, actor=actors["kapolres"], page=1, page_size=1)
    assert ([item.id for item in second.items], second.page, second.pages) == ([border], 1, 2)
    assert (await incidents.open_incidents(session, actor=actors["budi"])).outcome is ListOutcome.forbidden
    in_group = await incidents.open_incidents(session, actor=actors["kapolres"], chat_id=A2)
    assert [item.id for item in in_group.items] == [border]
    refused = await incidents.open_incidents(session, actor=actors["kapolsek_a2"], chat_id=A1)
    assert refused.outcome is ListOutcome.forbidden
    unknown = await incidents.open_incidents(session, actor=actors["kapolres"], chat_id=-5)
    assert unknown.outcome is ListOutcome.unregistered_group
    assert await session.scalar(select(func.count()).select_from(ContingencyStep)) == 4


async def test_a_contingency_read_late_shows_when_it_was_sent_and_its_timers_run_from_the_bot(
    session: AsyncSession, settings: Settings
) -> None:
    """Sent 07:52 WIB, read 08:00 (the bot was down): the shift and TPS of 07:52, the alert says both times,
    the severity buttons get their two minutes from 08:00, and the climb waits its 5 minutes from the alert."""
    roster, actors = await _world(session)
    sent = NOW - 8 * MINUTE
    contingency_id = await incidents.draft(
        session, actor=actors["eko"], text="Massa berkumpul", now=NOW, sent_at=sent, opens_before=OPENS
    )
    row = await session.get(Contingency, contingency_id)
    assert row is not None and (row.sent_at, row.created_at, row.deadline_at) == (sent, NOW, NOW + 2 * MINUTE)
    assert (row.shift_id, row.tps_id) == (roster.shifts["PAGI"].id, roster.tps["TPS-A2-001"].id)
    assert await flow.sweep(session, now=NOW + MINUTE, settings=settings) == 0, "no auto-raise from the sent time"
    alerted = NOW + MINUTE
    result = await flow.choose_severity(
        session, contingency_id=contingency_id, actor=actors["eko"], severity="tinggi", now=alerted, settings=settings
    )
    assert result.outcome is IncidentOutcome.raised
    texts = (await session.scalars(select(Outbox.text).where(Outbox.chat_id == A2))).all()
    assert len(texts) == 1 and "Pelapor: Bripka Eko · dikirim 14 Feb 07:52 WIB · diterima 8 menit kemudian" in texts[0]
    row = await session.get(Contingency, contingency_id, populate_existing=True)
    assert row is not None and row.deadline_at == alerted + 5 * MINUTE
    assert await flow.sweep(session, now=alerted + 4 * MINUTE, settings=settings) == 0
    assert RES not in await _sends(session)
    assert await flow.sweep(session, now=alerted + 5 * MINUTE, settings=settings) == 1
    assert (await _sends(session))[2:] == [RES]


async def test_an_alert_read_at_once_names_only_the_sent_time(session: AsyncSession, settings: Settings) -> None:
    _, actors = await _world(session)
    contingency_id = await incidents.draft(
        session, actor=actors["budi"], text="Aman", now=NOW, sent_at=NOW - timedelta(seconds=40), opens_before=OPENS
    )
    await flow.choose_severity(
        session, contingency_id=contingency_id, actor=actors["budi"], severity="rendah", now=NOW, settings=settings
    )
    text = await session.scalar(select(Outbox.text).where(Outbox.chat_id == A1))
    assert text and "dikirim 14 Feb 07:59 WIB" in text and "diterima" not in text
