"""End-to-end fixtures: the real bot Application against the Bot API emulator.

A test gets a `World`: the emulator, the running bot (built by
`bot.app.build_application`, polling over HTTP, with its outbox dispatcher),
the factory roster in a real database, a manual clock, and simulated
Telegram users for the roster's people. The periodic scheduler is off: a
test moves the clock and calls `world.tick()` (or one sweep) itself, so
nothing arrives that the test did not cause. Tests then read as transcripts:

    budi = await world.registered("budi")
    await budi.send("/jadwal")
    reply = await budi.next_message()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import build_application
from bot.clock import ManualClock
from bot.config import Settings, load_settings
from bot.emulator import Emulator, Limits, SentMessage, SimGroup, SimUser, running
from bot.ops.scheduler import run_all
from bot.runtime import Runtime, runtime_of
from models import CommandGroup, Outbox
from models.enums import OutboxState
from tests.factories import Roster, build_roster, link


def e2e_now() -> datetime:
    """Real time, to the second: the emulator stamps messages with the wall clock."""
    return datetime.now(UTC).replace(microsecond=0)


class World:
    """Everything one end-to-end test touches, with the verbs tests use."""

    def __init__(
        self,
        emu: Emulator,
        application: Any,
        roster: Roster,
        clock: ManualClock,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        self.emu = emu
        self.application = application
        self.roster = roster
        self.clock = clock
        self.sessions = sessions
        self.users: dict[str, SimUser] = {}
        self.groups: dict[str, SimGroup] = {}

    @property
    def runtime(self) -> Runtime:
        return runtime_of(self.application.bot_data)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def user(self, key: str, *, language_code: str = "id") -> SimUser:
        """The Telegram user of roster person `key` (not registered by this call)."""
        if key not in self.users:
            person = self.roster.person(key)
            self.users[key] = self.emu.user(person.name, language_code=language_code)
        return self.users[key]

    async def registered(self, key: str, *, language_code: str = "id") -> SimUser:
        """A roster person already linked to their Telegram account."""
        user = self.user(key, language_code=language_code)
        async with self.sessions() as session:
            person = await session.get(type(self.roster.person(key)), self.roster.person(key).id)
            assert person is not None
            await link(session, person, user.id, now=self.clock())
        return user

    async def command_group(self, unit_code: str, *, members: list[SimUser] | None = None) -> SimGroup:
        """A Telegram group registered as `unit_code`'s command group."""
        group = self.emu.group(f"Posko {unit_code}", members=members or [])
        async with self.sessions() as session:
            session.add(CommandGroup(unit_id=self.roster.units[unit_code].id, chat_id=group.id, title=group.title))
            await session.commit()
        self.groups[unit_code] = group
        return group

    async def send_location_now(self, user: SimUser, lat: float, lon: float, **kwargs: Any) -> None:
        """Share a location stamped with the bot's clock, as a phone on that day would."""
        await user.send_location(lat, lon, date=self.clock(), **kwargs)

    async def tick(self) -> dict[str, int]:
        """Every sweep once, as the scheduler would after the clock moved (it is off in tests)."""
        return await run_all(self.runtime)

    async def eventually(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds, re-checked whenever the emulator's state changes."""
        await self.emu.until(lambda: True if predicate() else None, timeout=timeout)

    async def outbox_drained(self, timeout: float = 10.0) -> None:
        """Wait until every due outbox row has been answered by Telegram."""
        deadline = asyncio.get_running_loop().time() + timeout
        while await self._outbox_waiting():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"outbox rows still waiting after {timeout}s")
            await asyncio.sleep(0.05)

    async def _outbox_waiting(self) -> bool:
        async with self.sessions() as session:
            waiting = await session.scalar(
                select(Outbox.id)
                .where(
                    Outbox.state.in_([OutboxState.pending.value, OutboxState.sending.value]),
                    Outbox.due_at <= self.clock(),
                )
                .limit(1)
            )
        return waiting is not None

    def texts(self, chat: SimUser | SimGroup) -> list[str]:
        return [message.text or message.caption or "" for message in self.emu.sent_to(chat)]

    async def reply(self, user: SimUser, text: str, timeout: float = 5.0) -> SentMessage:
        await user.send(text)
        return await user.next_message(timeout=timeout)


def e2e_settings(emu: Emulator, database_url: str, **overrides: Any) -> Settings:
    settings = load_settings(None)
    data = settings.model_dump()
    data["telegram"].update(
        token=emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url, bot_username=emu.bot_username
    )
    data["database"]["url"] = database_url
    data["delivery"]["poll_seconds"] = 0.05
    for section, values in overrides.items():
        data[section].update(values)
    return Settings.model_validate(data)


@pytest.fixture
def emulator_limits() -> Limits:
    """Flood limits off by default; a test that is about them overrides this fixture."""
    return Limits(enforce=False)


@pytest.fixture
def settings_overrides() -> dict[str, dict[str, Any]]:
    return {}


@pytest.fixture
async def world(
    engine: AsyncEngine,
    database_url: str,
    emulator_limits: Limits,
    settings_overrides: dict[str, dict[str, Any]],
) -> AsyncIterator[World]:
    clock = ManualClock(e2e_now())
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session:
        roster = await build_roster(session, now=clock())
    errors = _ErrorLog()
    logging.getLogger("siaga").addHandler(errors)
    try:
        async with Emulator(limits=emulator_limits) as emu:
            settings = e2e_settings(emu, database_url, **settings_overrides)
            application = build_application(settings, clock=clock, with_scheduler=False)
            async with running(application):
                yield World(emu, application, roster, clock, sessions)
    finally:
        logging.getLogger("siaga").removeHandler(errors)
    assert errors.records == [], "the bot logged errors: " + "; ".join(errors.records)


class _ErrorLog(logging.Handler):
    """Every error the bot logs during a test: a handler that failed is a failed test."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()} {record.exc_text or ''}")


async def no_more_messages(world: World, chat: SimUser | SimGroup, count: int, settle: float = 0.3) -> None:
    """After a short wait, `chat` still holds exactly `count` messages: nothing extra arrived."""
    await asyncio.sleep(settle)
    assert world.emu.count(chat) == count, world.texts(chat)


__all__ = ["World", "no_more_messages", "e2e_now", "timedelta"]
