"""Webhook delivery: POST queued updates to the bot like Telegram does.

Telegram keeps an update until the webhook answers 2xx, retries failures with
growing pauses, and uses up to ``max_connections`` parallel connections, so
updates can reach the bot out of order and - when a handler fails after doing
its work - twice with the same update_id. The dispatcher reproduces that.

For tests of several worker processes behind a load balancer, ``targets`` can
name several URLs: deliveries then go round-robin over them (the URL the bot
passed to setWebhook is treated as the public address of that balancer).
Plain ``http://`` is accepted, unlike Telegram, since everything is local.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.emulator.updates import UpdateQueue

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass
class Delivery:
    """One POST attempt: where, which update, HTTP status (None = no answer)."""

    target: str
    update_id: int
    status: int | None
    error: str | None
    mono: float


class WebhookDispatcher:
    """Delivers from an :class:`UpdateQueue` while a webhook is set."""

    def __init__(self, queue: UpdateQueue, timeout: float = 10.0, max_retry_pause: float = 1.0):
        self.queue = queue
        self.timeout = timeout
        self.max_retry_pause = max_retry_pause
        self.url: str | None = None
        self.secret_token: str | None = None
        self.max_connections = 40
        self.allowed_updates: list[str] | None = None
        self.targets: list[str] = []
        self.deliveries: list[Delivery] = []
        self.last_error_date: int | None = None
        self.last_error_message: str | None = None
        self._rr = 0
        self._in_flight: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def active(self) -> bool:
        return self.url is not None

    def configure(
        self,
        url: str,
        secret_token: str | None = None,
        max_connections: int = 40,
        allowed_updates: list[str] | None = None,
    ) -> None:
        self.url, self.secret_token = url, secret_token
        self.max_connections = max(1, min(100, max_connections))
        self.allowed_updates = allowed_updates
        self.queue.signal.fire()

    def remove(self) -> None:
        self.url = self.secret_token = None
        self.queue.signal.fire()

    def set_targets(self, urls: list[str]) -> None:
        self.targets = list(urls)
        self._rr = 0

    def info(self) -> dict[str, Any]:
        """WebhookInfo object for getWebhookInfo."""
        out: dict[str, Any] = {
            "url": self.url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.queue),
        }
        if self.active:
            out["max_connections"] = self.max_connections
            out["ip_address"] = "127.0.0.1"
            if self.allowed_updates is not None:
                out["allowed_updates"] = self.allowed_updates
        if self.last_error_date is not None:
            out["last_error_date"] = self.last_error_date
            out["last_error_message"] = self.last_error_message
        return out

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._runner = asyncio.create_task(self._run(), name="emulator-webhook")

    async def stop(self) -> None:
        tasks = [t for t in (self._runner, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()

    def _next_target(self) -> str:
        pool = self.targets or [self.url or ""]
        target = pool[self._rr % len(pool)]
        self._rr += 1
        return target

    async def _run(self) -> None:
        while True:
            free = self.max_connections - len(self._in_flight)
            entries = self.queue.entries(free, self._in_flight) if self.active and free > 0 else []
            if not entries:
                await self.queue.signal.wait(None)
                continue
            for seq, update in entries:
                self._in_flight.add(seq)
                task = asyncio.create_task(self._deliver(seq, update))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, seq: int, update: dict[str, Any]) -> None:
        attempt = 0
        try:
            while self.active:
                target = self._next_target()
                status, error = await self._post(target, update)
                self.deliveries.append(Delivery(target, update["update_id"], status, error, time.monotonic()))
                if status is not None and 200 <= status < 300:
                    self.queue.remove(seq)
                    return
                self.last_error_date = int(time.time())
                self.last_error_message = error or f"Wrong response from the webhook: {status}"
                attempt += 1
                await asyncio.sleep(min(self.max_retry_pause, 0.05 * 2**attempt))
        finally:
            self._in_flight.discard(seq)
            self.queue.signal.fire()

    async def _post(self, target: str, update: dict[str, Any]) -> tuple[int | None, str | None]:
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if self.secret_token:
            headers[SECRET_HEADER] = self.secret_token
        try:
            async with self._session.post(target, data=json.dumps(update), headers=headers) as resp:
                await resp.read()
                return resp.status, None
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            return None, f"Connection failed: {type(err).__name__}"
