"""Small helpers shared by the emulator tests."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.emulator import Emulator


async def call(http: aiohttp.ClientSession, emu: Emulator, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    """Raw JSON-body Bot API call: (HTTP status, decoded body)."""
    async with http.post(f"{emu.api_url}/{method}", json=params) as resp:
        return resp.status, await resp.json()
