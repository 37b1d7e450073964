"""The bot down for ten minutes across a shift start: the backlog first, then reminders and missed-check-in alerts.

While the bot is down, people at their TPS share their location; Telegram
keeps the messages, stamped with the time they were sent. When the bot
starts again it handles them before it plans anything from check-ins: each
person is counted present at the time they sent it, nobody is told "too
old", nobody is reminded of the shift they are already guarding, and the
group's list of who is missing names only who really is.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.app import build_application
from bot.clock import ManualClock
from bot.emulator import Emulator, Limits, running
from flows.reminders import plan_reminders
from models import Checkin, CommandGroup, Personnel
from tests.e2e.conftest import e2e_now, e2e_settings
from tests.factories import TPS_PLACES, build_roster, link

SENT = {"budi": -5, "citra": -2, "dedi": 1, "fajar": 3}  # minutes from the SORE shift's start
POSTS = {"budi": "TPS-A1-001", "citra": "TPS-A1-002", "dedi": "TPS-A1-001", "fajar": "TPS-A2-001"}


async def test_a_backlog_across_a_shift_start_is_counted_at_the_time_sent_and_nobody_is_reminded(
    engine: AsyncEngine, database_url: str
) -> None:
    clock = ManualClock(e2e_now())
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session:
        roster = await build_roster(session, now=clock())
    start = roster.shifts["SORE"].starts_at
    overrides: dict[str, dict[str, Any]] = {
        "reminders": {"before_minutes": [0]},
        "checkin": {"grace_minutes": 5},
        "scheduler": {"reminders_seconds": 0.3, "missed_checkins_seconds": 0.3, "escalation_seconds": 0.3},
    }
    async with Emulator(limits=Limits(enforce=False)) as emu:
        settings = e2e_settings(emu, database_url, **overrides)
        people = {key: emu.user(roster.person(key).name) for key in (*SENT, "eko")}
        async with sessions() as session:
            for key, user in people.items():
                await link(session, roster.person(key), user.id, now=clock())
            groups = {code: emu.group(f"Posko {code}") for code in ("POLSEK-A1", "POLSEK-A2")}
            session.add_all(
                CommandGroup(unit_id=roster.units[code].id, chat_id=group.id, title=group.title)
                for code, group in groups.items()
            )
            await session.commit()
        clock.current = start - timedelta(minutes=20)  # before the outage: the shift-start reminders are planned
        async with sessions() as session:
            planned = (await plan_reminders(session, now=clock(), settings=settings)).planned
        assert planned == len(people)

        for key, minutes in SENT.items():  # the bot is down: Telegram keeps these
            await people[key].send_location(*TPS_PLACES[POSTS[key]], date=start + timedelta(minutes=minutes))
        clock.current = start + timedelta(minutes=10)
        application = build_application(settings, clock=clock)
        async with running(application):
            for key in SENT:
                await people[key].next_message(timeout=10)
            await emu.until(lambda: True if emu.sent_to(groups["POLSEK-A2"]) else None, timeout=10)
            await asyncio.sleep(1.0)  # a reminder or a second digest would come now

        for key, minutes in SENT.items():
            texts = [m.text or "" for m in emu.sent_to(people[key])]
            at = (start + timedelta(minutes=minutes)).astimezone(settings.operation.zone).strftime("%H:%M")
            assert len(texts) == 1 and "Hadir tercatat" in texts[0] and at in texts[0], (key, texts)
            assert not any("Pengingat tugas" in text for text in texts), f"{key} was reminded while on duty"
        async with sessions() as session:
            stored = dict(
                (
                    await session.execute(
                        select(Personnel.nrp, Checkin.checked_in_at).join(Checkin, Checkin.personnel_id == Personnel.id)
                    )
                ).all()
            )
        assert stored == {roster.person(key).nrp: start + timedelta(minutes=m) for key, m in SENT.items()}
        a2 = [m.text or "" for m in emu.sent_to(groups["POLSEK-A2"])]
        assert len(a2) == 1 and "Belum hadir" in a2[0] and "Eko" in a2[0] and "Fajar" not in a2[0], a2
        assert emu.sent_to(groups["POLSEK-A1"]) == [], "everyone of POLSEK-A1 was there"
