"""Command groups: who may bind a group to a unit, replacing, moving, removing, and the fallback upwards."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import groups
from bot.services.groups import GroupOutcome
from bot.services.people import Actor, actor_for
from models import AuditLog, CommandGroup, Outbox
from tests.factories import NOW, Roster, build_roster, link

A1, A2, RES, DA = -1001, -1002, -1003, -1004


async def _actors(session: AsyncSession) -> tuple[Roster, dict[str, Actor]]:
    roster = await build_roster(session)
    actors = {}
    for number, key in enumerate(["ani", "kapolres", "kapolsek_a1", "kapolsek_a2", "budi"], start=1):
        await link(session, roster.person(key), 800 + number)
        actor = await actor_for(session, telegram_user_id=800 + number, now=NOW)
        assert actor is not None
        actors[key] = actor
    return roster, actors


async def _bound(session: AsyncSession) -> dict[int, int]:
    """chat id -> unit id of every command group."""
    rows = await session.execute(select(CommandGroup.chat_id, CommandGroup.unit_id))
    return dict(rows.all())


async def test_a_commander_registers_their_unit_or_one_below(session: AsyncSession) -> None:
    roster, actors = await _actors(session)
    result = await groups.register_group(
        session, actor=actors["kapolres"], chat_id=A1, title="Posko A1", unit_code="polsek-a1", now=NOW
    )
    assert (result.outcome, result.unit_code) == (GroupOutcome.registered, "POLSEK-A1")
    again = await groups.register_group(
        session, actor=actors["kapolsek_a1"], chat_id=A1, title="Posko A1 baru", unit_code="POLSEK-A1", now=NOW
    )
    assert again.outcome is GroupOutcome.unchanged
    assert await _bound(session) == {A1: roster.units["POLSEK-A1"].id}


async def test_members_siblings_and_unknown_units_are_refused(session: AsyncSession) -> None:
    _, actors = await _actors(session)
    for who, code, expected in [
        ("budi", "POLSEK-A1", GroupOutcome.forbidden),
        ("kapolsek_a2", "POLSEK-A1", GroupOutcome.forbidden),
        ("kapolsek_a1", "POLRES-A", GroupOutcome.forbidden),
        ("kapolres", "NOPE", GroupOutcome.unknown_unit),
    ]:
        result = await groups.register_group(session, actor=actors[who], chat_id=A1, title="x", unit_code=code, now=NOW)
        assert result.outcome is expected, who
    assert await _bound(session) == {}


async def test_a_new_group_replaces_the_old_one_and_is_audited(session: AsyncSession) -> None:
    roster, actors = await _actors(session)
    await groups.register_group(
        session, actor=actors["kapolsek_a1"], chat_id=A1, title="Lama", unit_code="POLSEK-A1", now=NOW
    )
    result = await groups.register_group(
        session, actor=actors["kapolsek_a1"], chat_id=-1099, title="Baru", unit_code="POLSEK-A1", now=NOW
    )
    assert (result.outcome, result.replaced_title) == (GroupOutcome.registered, "Lama")
    assert await _bound(session) == {-1099: roster.units["POLSEK-A1"].id}
    actions = (await session.scalars(select(AuditLog.action).where(AuditLog.entity == "command_group"))).all()
    assert actions == ["command_group.registered", "command_group.replaced", "command_group.registered"]


async def test_a_group_bound_elsewhere_moves_only_for_a_commander_of_both_units(session: AsyncSession) -> None:
    roster, actors = await _actors(session)
    await groups.register_group(
        session, actor=actors["kapolres"], chat_id=RES, title="Polres", unit_code="POLRES-A", now=NOW
    )
    await groups.register_group(
        session, actor=actors["kapolsek_a2"], chat_id=A2, title="A2", unit_code="POLSEK-A2", now=NOW
    )
    stolen = await groups.register_group(
        session, actor=actors["kapolsek_a2"], chat_id=RES, title="Polres", unit_code="POLSEK-A2", now=NOW
    )
    assert (stolen.outcome, stolen.previous_unit_code) == (GroupOutcome.forbidden, "POLRES-A")
    moved = await groups.register_group(
        session, actor=actors["kapolres"], chat_id=RES, title="Polres", unit_code="POLSEK-A2", now=NOW
    )
    assert (moved.outcome, moved.previous_unit_code, moved.replaced_title) == (GroupOutcome.moved, "POLRES-A", "A2")
    assert await _bound(session) == {RES: roster.units["POLSEK-A2"].id}
    moves = await session.scalar(select(AuditLog.detail).where(AuditLog.action == "command_group.moved"))
    assert moves == {"unit": "POLSEK-A2", "chat_id": RES, "from_unit": "POLRES-A"}


async def test_removal_needs_authority_and_alerts_then_go_up(session: AsyncSession) -> None:
    roster, actors = await _actors(session)
    for chat, code in [(A1, "POLSEK-A1"), (RES, "POLRES-A")]:
        await groups.register_group(session, actor=actors["ani"], chat_id=chat, title=code, unit_code=code, now=NOW)
    a1 = roster.units["POLSEK-A1"].id
    assert (await groups.nearest_groups(session, unit_ids=[a1]))[a1].chat_id == A1  # type: ignore[union-attr]
    assert (
        await groups.remove_group(session, actor=actors["kapolsek_a2"], chat_id=A1)
    ).outcome is GroupOutcome.forbidden
    assert (await groups.remove_group(session, actor=actors["kapolsek_a1"], chat_id=A1)).outcome is GroupOutcome.removed
    assert (
        await groups.remove_group(session, actor=actors["kapolsek_a1"], chat_id=A1)
    ).outcome is GroupOutcome.not_registered
    assert (await groups.describe_group(session, chat_id=A1)).outcome is GroupOutcome.not_registered
    target = (await groups.nearest_groups(session, unit_ids=[a1]))[a1]
    assert target is not None and (target.chat_id, target.unit_name) == (RES, "Polres A")


async def test_nearest_group_skips_unreachable_groups_and_may_be_none(session: AsyncSession) -> None:
    roster, actors = await _actors(session)
    for chat, code in [(A2, "POLSEK-A2"), (DA, "POLDA-X")]:
        await groups.register_group(session, actor=actors["ani"], chat_id=chat, title=code, unit_code=code, now=NOW)
    await session.execute(update(CommandGroup).where(CommandGroup.chat_id == A2).values(reachable=False))
    ids = {code: roster.units[code].id for code in ["POLSEK-A2", "POLRES-A", "KODIM-X"]}
    found = await groups.nearest_groups(session, unit_ids=ids.values())
    assert {code: found[i].chat_id if found[i] else None for code, i in ids.items()} == {
        "POLSEK-A2": DA,
        "POLRES-A": DA,
        "KODIM-X": None,
    }
    again = await groups.register_group(
        session, actor=actors["ani"], chat_id=A2, title="A2", unit_code="POLSEK-A2", now=NOW
    )
    assert again.outcome is GroupOutcome.unchanged
    assert (await groups.nearest_groups(session, unit_ids=[ids["POLSEK-A2"]]))[ids["POLSEK-A2"]].chat_id == A2  # type: ignore[union-attr]


async def test_a_migrated_group_keeps_its_registration_and_waiting_messages(session: AsyncSession) -> None:
    roster, actors = await _actors(session)
    await groups.register_group(
        session, actor=actors["kapolsek_a1"], chat_id=-4001, title="A1", unit_code="POLSEK-A1", now=NOW
    )
    session.add(Outbox(chat_id=-4001, dedup_key="x", text="menunggu", due_at=NOW, created_at=NOW))
    await session.commit()
    assert await groups.migrate_group(session, old_chat_id=-4001, new_chat_id=-1004001) is True
    assert await groups.migrate_group(session, old_chat_id=-4001, new_chat_id=-1004001) is False
    assert await _bound(session) == {-1004001: roster.units["POLSEK-A1"].id}
    assert await session.scalar(select(Outbox.chat_id).where(Outbox.dedup_key == "x")) == -1004001
