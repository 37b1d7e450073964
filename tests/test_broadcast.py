"""Broadcasts: exactly the registered, reachable people of the commander's subtree, then one report."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.broadcast import MAX_TEXT, BroadcastOutcome
from bot.services.people import Actor, actor_for
from flows.broadcast import send_broadcast, sweep_broadcast_reports
from models import AuditLog, Broadcast, Outbox, Personnel
from models.enums import OutboxState, Priority
from tests.factories import NOW, Roster, build_roster, link

LINKED = ["kapolres", "kapolsek_a1", "kapolsek_a2", "budi", "citra", "eko", "fajar"]  # dedi stays unregistered


async def _world(session: AsyncSession) -> tuple[Roster, dict[str, Actor]]:
    roster = await build_roster(session)
    actors = {}
    for number, key in enumerate(LINKED, start=1):
        await link(session, roster.person(key), 800 + number)
        actor = await actor_for(session, telegram_user_id=800 + number, now=NOW)
        assert actor is not None
        actors[key] = actor
    await session.execute(update(Personnel).where(Personnel.id == roster.person("fajar").id).values(reachable=False))
    await session.commit()
    return roster, actors


async def _recipients(session: AsyncSession, roster: Roster, broadcast_id: int) -> list[str]:
    names = {person.id: key for key, person in roster.people.items()}
    rows = await session.scalars(select(Outbox).where(Outbox.ref == f"broadcast:{broadcast_id}"))
    return sorted(names[row.personnel_id] for row in rows if row.personnel_id)


async def test_reaches_registered_reachable_people_of_the_subtree_once(session: AsyncSession) -> None:
    roster, actors = await _world(session)
    result = await send_broadcast(session, actor=actors["kapolsek_a1"], text="Apel pukul 05.00 <b>wajib</b>", now=NOW)
    assert result.outcome is BroadcastOutcome.queued and result.broadcast_id is not None
    assert (result.recipients, result.unregistered, result.unreachable) == (2, 1, 0)  # dedi is not registered
    assert await _recipients(session, roster, result.broadcast_id) == ["budi", "citra"]
    row = await session.scalar(select(Outbox).where(Outbox.personnel_id == roster.person("budi").id))
    assert row and row.priority == Priority.broadcast and row.chat_id == 804
    assert "AKP Kapolsek A1" in row.text and "&lt;b&gt;wajib&lt;/b&gt;" in row.text


async def test_a_polres_reaches_every_polsek_below_but_not_the_unreachable(session: AsyncSession) -> None:
    roster, actors = await _world(session)
    result = await send_broadcast(session, actor=actors["kapolres"], text="Siaga satu", now=NOW)
    assert result.broadcast_id is not None and result.unreachable == 1  # fajar blocked the bot
    assert await _recipients(session, roster, result.broadcast_id) == [
        "budi",
        "citra",
        "eko",
        "kapolsek_a1",
        "kapolsek_a2",
    ]


async def test_a_unit_named_first_narrows_it_within_the_subtree_only(session: AsyncSession) -> None:
    roster, actors = await _world(session)
    narrowed = await send_broadcast(session, actor=actors["kapolres"], text="polsek-a2 Geser ke TPS 001", now=NOW)
    assert narrowed.outcome is BroadcastOutcome.queued and narrowed.unit_name == "Polsek A2"
    assert narrowed.broadcast_id and await _recipients(session, roster, narrowed.broadcast_id) == ["eko", "kapolsek_a2"]
    outside = await send_broadcast(session, actor=actors["kapolsek_a2"], text="POLSEK-A1 ambil alih", now=NOW)
    assert outside.outcome is BroadcastOutcome.forbidden
    member = await send_broadcast(session, actor=actors["budi"], text="halo semua", now=NOW)
    assert member.outcome is BroadcastOutcome.forbidden
    assert await session.scalar(select(Broadcast.id).where(Broadcast.sender_id != roster.person("kapolres").id)) is None


async def test_empty_and_too_long_are_refused_without_a_trace(session: AsyncSession) -> None:
    _, actors = await _world(session)

    async def outcome(text: str) -> BroadcastOutcome:
        return (await send_broadcast(session, actor=actors["kapolres"], text=text, now=NOW)).outcome

    assert await outcome("  ") is BroadcastOutcome.empty
    assert await outcome("x" * (MAX_TEXT + 1)) is BroadcastOutcome.too_long
    assert await outcome("<" * MAX_TEXT) is BroadcastOutcome.too_long  # four times longer once escaped
    assert await outcome("y" * MAX_TEXT) is BroadcastOutcome.queued
    assert len(list(await session.scalars(select(Broadcast)))) == 1


async def test_report_once_when_nothing_is_pending_with_the_right_numbers(session: AsyncSession) -> None:
    roster, actors = await _world(session)
    result = await send_broadcast(session, actor=actors["kapolres"], text="Siaga satu", now=NOW)
    assert await sweep_broadcast_reports(session, now=NOW + timedelta(seconds=5)) == 0  # still pending
    ref = f"broadcast:{result.broadcast_id}"
    await session.execute(update(Outbox).where(Outbox.ref == ref).values(state=OutboxState.sent.value, sent_at=NOW))
    await session.execute(
        update(Outbox)
        .where(Outbox.ref == ref, Outbox.personnel_id == roster.person("eko").id)
        .values(state=OutboxState.failed.value)
    )
    await session.commit()
    assert await sweep_broadcast_reports(session, now=NOW + timedelta(seconds=10)) == 1
    assert await sweep_broadcast_reports(session, now=NOW + timedelta(seconds=20)) == 0
    report = await session.scalar(select(Outbox).where(Outbox.ref == f"broadcast-report:{result.broadcast_id}"))
    assert report is not None and report.chat_id == 801  # the kapolres
    assert "Terkirim: <b>4</b> dari 5" in report.text
    assert "Tidak terjangkau: 2" in report.text  # eko failed, fajar known unreachable
    assert "Tertunda: 0" in report.text and "Belum terdaftar (tidak dikirimi): 1" in report.text
    audit = await session.scalar(select(AuditLog.detail).where(AuditLog.action == "broadcast.reported"))
    assert audit == {"recipients": 5, "delivered": 4, "pending": 0, "unreachable": 2, "unregistered": 1}
