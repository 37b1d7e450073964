"""What the bot sends on its own, end to end: shift reminders, missed check-in digests, broadcasts.

The scheduler only drives time, so these tests move the manual clock and call
the sweeps it would call; the outbox dispatcher delivers to the emulator.
Every test says who received what, and how many times.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.ext import CommandHandler

from bot.app import build_application
from bot.emulator import Limits, SimGroup, SimUser
from bot.runtime import runtime_of
from bot.services import outbox
from bot.services.missed import UPDATE_EVERY
from bot.services.outbox import NewMessage
from flows.broadcast import sweep_broadcast_reports
from flows.missed import sweep_missed_checkins
from flows.reminders import plan_reminders
from models import Assignment, Checkin, CommandGroup, Personnel, Tps
from models.enums import Priority
from tests.e2e.conftest import World, no_more_messages
from tests.factories import TPS_PLACES

REMINDED = ["budi", "citra", "eko"]


def _has_command(world: World, command: str) -> bool:
    return any(
        isinstance(handler, CommandHandler) and command in handler.commands
        for handlers in world.application.handlers.values()
        for handler in handlers
    )


async def _plan(world: World, sessions: async_sessionmaker[AsyncSession] | None = None) -> int:
    """One planning run, as the scheduler makes it, on the world's database (or another process's)."""
    async with (sessions or world.sessions)() as session:
        return (await plan_reminders(session, now=world.clock(), settings=world.settings)).planned


async def _sweep_missed(world: World) -> int:
    async with world.sessions() as session:
        return await sweep_missed_checkins(session, now=world.clock(), settings=world.settings)


# -- reminders ----------------------------------------------------------------------------------


async def test_reminders_arrive_once_per_person_and_offset_across_replans_and_a_restart(world: World) -> None:
    users = {key: await world.registered(key) for key in REMINDED}
    assert await _plan(world) == 6  # SORE's 60- and 0-minute reminders; PAGI's are all past
    assert await _plan(world) == 0
    restarted = build_application(world.settings, clock=world.clock)  # a new process on the same database
    restarted_sessions = runtime_of(restarted.bot_data).sessions
    try:
        assert await _plan(world, restarted_sessions) == 0
        sore = world.roster.shifts["SORE"].starts_at
        world.clock.current = sore - timedelta(hours=1)
        assert await _plan(world, restarted_sessions) == 0
        await world.outbox_drained()
        for key, user in users.items():
            [reminder] = world.texts(user)
            assert "Pengingat tugas" in reminder and "Penghitungan (penghitungan suara) mulai" in reminder, key
        assert (
            "TPS-A1-002" in world.texts(users["citra"])[0] and "berangkat lebih awal" in world.texts(users["citra"])[0]
        )
        world.clock.current = sore
        assert await _plan(world) == 0
        await world.outbox_drained()
        assert await _plan(world, restarted_sessions) == 0
        await world.outbox_drained()
        for key, user in users.items():
            await no_more_messages(world, user, 2)
            assert "Pengingat tugas" in world.texts(user)[1], key
    finally:
        assert restarted.post_shutdown is not None
        await restarted.post_shutdown(restarted)  # closes its database engine


async def test_a_relocated_tps_is_corrected_once_for_those_already_reminded(world: World) -> None:
    users = {key: await world.registered(key) for key in REMINDED}
    sore = world.roster.shifts["SORE"].starts_at
    world.clock.current = sore - timedelta(hours=1)
    await _plan(world)
    await world.outbox_drained()
    world.clock.advance(timedelta(minutes=10))
    async with world.sessions() as session:
        tps = await session.get(Tps, world.roster.tps["TPS-A1-002"].id)
        assert tps is not None
        tps.lat, tps.lon, tps.village, tps.relocated_at = tps.lat - 0.01, tps.lon, "Desa Pengungsian", world.clock()
        await session.commit()
    await _plan(world)
    await _plan(world)
    await world.outbox_drained()
    for key in ("budi", "citra"):  # assigned to TPS-A1-002
        texts = world.texts(users[key])
        assert len(texts) == 2 and "TPS TPS-A1-002 pindah" in texts[1] and "Desa Pengungsian" in texts[1], key
    await no_more_messages(world, users["eko"], 1)


# -- missed check-ins ---------------------------------------------------------------------------


async def _expected_missing(world: World, unit_codes: set[str]) -> set[tuple[str, str]]:
    """(TPS code, rank and name) of every PAGI assignment at those units' TPS without a check-in."""
    async with world.sessions() as session:
        present = set(
            await session.scalars(
                select(Checkin.personnel_id).where(Checkin.shift_id == world.roster.shifts["PAGI"].id)
            )
        )
        rows = await session.execute(
            select(Tps.code, Tps.unit_id, Personnel.id, Personnel.rank, Personnel.name)
            .join(Assignment, Assignment.tps_id == Tps.id)
            .join(Personnel, Personnel.id == Assignment.personnel_id)
            .where(Assignment.shift_id == world.roster.shifts["PAGI"].id)
        )
        unit_ids = {world.roster.units[code].id for code in unit_codes}
        return {
            (code, f"{rank} {name}")
            for code, unit_id, pid, rank, name in rows
            if unit_id in unit_ids and pid not in present
        }


def _listed(text: str) -> set[tuple[str, str]]:
    """(TPS code, person) pairs as a digest lists them, the reachable and the apart alike."""
    listed = set()
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if not lines or not lines[0].startswith("📍 "):
            continue
        code = lines[0].split()[1]
        for line in lines[1:]:
            if line.strip().startswith("• "):
                listed.add((code, line.strip()[2:].split(" (")[0]))
    return listed


async def _check_in(world: World, user: SimUser, tps: str) -> None:
    await world.reply(user, "/hadir")
    await world.send_location_now(user, *TPS_PLACES[tps])
    assert "Hadir tercatat" in ((await user.next_message()).text or "")


async def test_missed_check_ins_one_digest_per_group_then_one_update(world: World) -> None:
    users = {key: await world.registered(key) for key in REMINDED}
    a1: SimGroup = await world.command_group("POLSEK-A1")
    polres: SimGroup = await world.command_group("POLRES-A")  # POLSEK-A2 has no group: POLRES-A covers it
    await _check_in(world, users["citra"], "TPS-A1-002")
    assert await _sweep_missed(world) == 2
    await world.outbox_drained()
    [a1_digest] = world.texts(a1)
    assert _listed(a1_digest) == await _expected_missing(world, {"POLSEK-A1"})
    assert _listed(a1_digest) == {
        ("TPS-A1-001", "Bripda Budi"),
        ("TPS-A1-002", "Bripda Budi"),
        ("TPS-A1-001", "Linmas Dedi"),
    }
    assert "Linmas Dedi (belum terdaftar)" in a1_digest
    [polres_digest] = world.texts(polres)
    assert _listed(polres_digest) == await _expected_missing(world, {"POLSEK-A2"})
    assert "Serda Fajar (belum terdaftar)" in polres_digest

    world.clock.advance(timedelta(minutes=1))
    await _check_in(world, users["budi"], "TPS-A1-001")  # late
    world.clock.advance(UPDATE_EVERY)
    assert await _sweep_missed(world) == 1
    assert await _sweep_missed(world) == 0
    await world.outbox_drained()
    await no_more_messages(world, a1, 2)
    update = world.texts(a1)[1]
    assert "1 masih belum hadir (sebelumnya 2)" in update and "Bripda Budi (TPS-A1-001)" in update
    assert _listed(update) == await _expected_missing(world, {"POLSEK-A1"}) == {("TPS-A1-001", "Linmas Dedi")}
    await no_more_messages(world, polres, 1)
    for user in users.values():
        assert not any("Belum hadir" in text for text in world.texts(user))


# -- broadcasts ---------------------------------------------------------------------------------


async def test_broadcast_reaches_the_subtree_once_and_reports_to_the_sender(world: World) -> None:
    kapolres = await world.registered("kapolres")
    kapolda = await world.registered("kapolda")
    below = {
        key: await world.registered(key) for key in ["kapolsek_a1", "kapolsek_a2", "budi", "citra", "eko", "fajar"]
    }
    below["fajar"].block_bot()
    reply = await world.reply(kapolres, "/siaran Apel siaga pukul 05.00 di Mapolres")
    assert "kepada 6 personel" in (reply.text or "") and "1 belum terdaftar" in (reply.text or "")  # dedi
    await world.outbox_drained()
    for key, user in below.items():
        if key == "fajar":
            assert world.emu.count(user) == 0
            continue
        [text] = world.texts(user)
        assert "Siaran dari AKBP Kapolres (Polres A)" in text and "Apel siaga pukul 05.00" in text, key
    await no_more_messages(world, kapolda, 0)
    async with world.sessions() as session:
        assert await sweep_broadcast_reports(session, now=world.clock()) == 1
        assert await sweep_broadcast_reports(session, now=world.clock()) == 0
        fajar = await session.get(Personnel, world.roster.person("fajar").id)
        assert fajar is not None and fajar.reachable is False
    await world.outbox_drained()
    await no_more_messages(world, kapolres, 2)
    report = world.texts(kapolres)[1]
    assert "Terkirim: 5 dari 6" in report and "Tidak terjangkau: 1" in report and "Tertunda: 0" in report
    assert "Belum terdaftar (tidak dikirimi): 1" in report


async def test_broadcast_refusals(world: World) -> None:
    kapolsek = await world.registered("kapolsek_a2")
    budi = await world.registered("budi")
    assert "Format" in ((await world.reply(kapolsek, "/siaran")).text or "")
    assert "di luar satuan Anda" in ((await world.reply(kapolsek, "/siaran POLSEK-A1 Geser pasukan")).text or "")
    assert "paling banyak 3500 karakter" in ((await world.reply(kapolsek, "/siaran " + "x" * 3501)).text or "")
    assert "komandan" in ((await world.reply(budi, "/broadcast halo")).text or "").lower()
    await world.outbox_drained()
    await no_more_messages(world, budi, 1)
    async with world.sessions() as session:
        assert await session.scalar(select(CommandGroup.id)) is None


# -- flood control, as Telegram counts it ---------------------------------------------------------


@pytest.mark.parametrize("emulator_limits", [Limits(mode="arrivals", group_per_minute=1, group_window=3.0)])
async def test_a_group_out_of_its_own_limit_waits_alone_while_a_broadcast_goes_out(world: World) -> None:
    """Telegram lets this group have one message in three seconds: the second help answer there draws a 429,
    which holds back that group only, while a broadcast to 150 people goes on at 30 a second."""
    kapolsek = await world.registered("kapolsek_a1")
    group = await world.command_group("POLSEK-A1", members=[kapolsek])
    people = [world.emu.user(f"Warga{i}") for i in range(150)]
    async with world.sessions() as session:
        await outbox.enqueue_many(
            session,
            [
                NewMessage(
                    chat_id=p.id, text="Siaran: apel pukul 05.00", priority=Priority.broadcast, dedup_key=f"b:{i}"
                )
                for i, p in enumerate(people)
            ],
            now=world.clock(),
        )
        await session.commit()
    await world.eventually(lambda: any(world.emu.count(p) for p in people))
    await kapolsek.send_in(group, "/bantuan")
    await group.next_message()
    await kapolsek.send_in(group, "/bantuan")
    await world.eventually(lambda: world.emu.count(group) == 2, timeout=8)
    [refused] = world.emu.rejections
    assert (refused.chat_id, refused.reason, refused.retry_after) == (group.id, "group", 3)
    assert world.emu.sent_to(group)[1].current.mono >= refused.mono + 3
    during = [
        m.current.mono
        for p in people
        for m in world.emu.sent_to(p)
        if refused.mono < m.current.mono < refused.mono + 2.8
    ]
    assert len(during) > 40, "the broadcast should go on while the group waits"
    await world.outbox_drained()
    assert [world.emu.count(p) for p in people] == [1] * 150
