"""The durable intake, end to end: the real bot (`siaga run`'s loop) against the Bot API emulator.

An update is accepted only once it is stored: the webhook answers 2xx after
the commit and 503 while the inbox cannot be written; polling confirms its
offset only after the commit. "The database cannot store it" is played by
renaming the inbox table away for a moment: every insert fails as it would
with the server gone, and the rest of the database still answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import build_application
from bot.emulator import Emulator, Limits
from bot.ops.serving import serve, webhook_options
from models import InboxUpdate
from tests.test_health import _settings
from tests.workers.harness import free_port

SECRET = "intake-secret_7"


async def _eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def inbox_away(engine: AsyncEngine) -> AsyncIterator[None]:
    """The inbox cannot be written for the duration of the block (the table renamed), and is back after it."""
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE inbox RENAME TO inbox_away"))
    try:
        yield
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("ALTER TABLE inbox_away RENAME TO inbox"))


async def _stored(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(InboxUpdate)) or 0


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


def _update(update_id: int, user_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Tamu"},
            "text": "/start",
        },
    }


async def test_the_webhook_answers_only_for_what_it_stored_and_handles_a_redelivery_once(
    engine: AsyncEngine, database_url: str, http: aiohttp.ClientSession
) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with Emulator(limits=Limits(enforce=False)) as emu:
        port = free_port()
        settings = _settings(
            emu,
            database_url,
            webhook_listen="127.0.0.1",
            webhook_port=port,
            webhook_url="https://siaga.example.org",
            webhook_secret=SECRET,
        )
        application = build_application(settings, with_scheduler=False)
        stop = asyncio.Event()
        running = asyncio.create_task(serve(application, settings, webhook=webhook_options(settings), stop=stop))
        target = f"http://127.0.0.1:{port}/telegram"
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        guest = emu.user("Tamu")
        try:
            await _eventually(lambda: emu.webhook.active, timeout=15)
            emu.webhook.remove()  # this test is Telegram: it posts the updates itself
            await _eventually(lambda: _port_open(port), timeout=15)
            async with http.post(target, json=_update(1001, guest.id), headers=headers) as response:
                assert response.status == 200
            assert await _stored(sessions) == 1, "answered 200 before the update was stored"
            await guest.next_message(timeout=10)
            for _ in range(2):  # Telegram delivering it again after a lost answer
                async with http.post(target, json=_update(1001, guest.id), headers=headers) as response:
                    assert response.status == 200

            async with inbox_away(engine), http.post(target, json=_update(1002, guest.id), headers=headers) as response:
                refused = response.status
            async with http.post(target, json=_update(1002, guest.id), headers=headers) as response:
                again = response.status
            await _eventually(lambda: emu.count(guest) == 2)
            await asyncio.sleep(0.5)  # a third answer would come now
        finally:
            stop.set()
            assert await asyncio.wait_for(running, 30) == 0
    assert (refused, again) == (503, 200)
    assert emu.count(guest) == 2, "each update answered once"
    async with sessions() as session:
        done = await session.scalar(
            select(func.count()).select_from(InboxUpdate).where(InboxUpdate.done_at.is_not(None))
        )
    assert done == 2


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_polling_confirms_nothing_it_could_not_store_and_answers_once_the_database_is_back(
    engine: AsyncEngine, database_url: str
) -> None:
    async with Emulator(limits=Limits(enforce=False)) as emu:
        settings = _settings(emu, database_url)
        application = build_application(settings, with_scheduler=False)
        stop = asyncio.Event()
        guest = emu.user("Tamu")
        running = asyncio.create_task(serve(application, settings, webhook=None, stop=stop))
        try:
            await guest.send("/start")
            await guest.next_message(timeout=15)
            async with inbox_away(engine):
                await guest.send("/start")
                await asyncio.sleep(1.5)
                kept = emu.pending_updates
                answers_while_away = emu.count(guest)
            await _eventually(lambda: emu.count(guest) == 2, timeout=20)
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            assert await asyncio.wait_for(running, 30) == 0
    assert kept == 1, "the offset confirmed an update that was never stored"
    assert answers_while_away == 1, "an update was answered before it was stored"
    assert emu.count(guest) == 2 and "/daftar" in (emu.sent_to(guest)[1].text or "")
