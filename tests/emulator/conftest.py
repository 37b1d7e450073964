"""Fixtures for the emulator tests: a running emulator, a PTB Bot and an HTTP client.

Async fixtures use ``pytest_asyncio.fixture`` explicitly and tests carry
``@pytest.mark.asyncio`` so nothing depends on a global asyncio_mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio
from telegram import Bot

from bot.emulator import Emulator, Limits


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[Emulator]:
    """Emulator with flood limits off (limit tests build their own)."""
    async with Emulator(limits=Limits(enforce=False)) as running_emu:
        yield running_emu


@pytest_asyncio.fixture
async def bot(emu: Emulator) -> AsyncIterator[Bot]:
    async with Bot(emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url) as client:
        yield client


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
