"""The health endpoint of one worker: liveness, readiness and Prometheus metrics over HTTP.

    GET /healthz   200 while the bot runs (the process and its event loop answer)
    GET /readyz    200 when the database answers within `DB_TIMEOUT`, else 503
    GET /metrics   the text format: outbox depth by priority, sends, 429s,
                   failures, send rate, updates handled and their latency

Served by aiohttp on `health.listen`/`health.port`, apart from the webhook
port: the reverse proxy publishes the webhook, never this. Every request
reads the live objects (the dispatcher's counters, the update processor's
histogram) and asks the database at that moment, so a scrape always says
what is true now, and a database that is down shows as `siaga_database_up 0`
instead of a failed scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.ext import Application

from bot.clock import Clock, system_clock
from bot.delivery.dispatcher import DispatcherStats
from bot.intake.updater import IntakeStats
from bot.ops.metrics import CONTENT_TYPE, Exposition, RateMeter, UpdateMetrics, update_metrics
from bot.ops.scheduler import SWEEPS, overruns
from bot.runtime import runtime_of
from models import Outbox
from models.enums import OutboxState, Priority

log = logging.getLogger("siaga.health")

DB_TIMEOUT = 2.0
RATE_SAMPLE_SECONDS = 5.0
WAITING = (OutboxState.pending.value, OutboxState.sending.value)


@dataclass(frozen=True)
class OutboxDepth:
    """Rows not yet answered by Telegram, by priority: all of them, and those due now."""

    queued: dict[int, int]
    due: dict[int, int]
    oldest_due: datetime | None


async def outbox_depth(session: AsyncSession, *, now: datetime) -> OutboxDepth:
    """Two index walks over ix_outbox_due (state, priority, due_at); sent rows are never read."""
    queued = await session.execute(
        select(Outbox.priority, func.count()).where(Outbox.state.in_(WAITING)).group_by(Outbox.priority)
    )
    due = await session.execute(
        select(Outbox.priority, func.count(), func.min(Outbox.due_at))
        .where(Outbox.state.in_(WAITING), Outbox.due_at <= now)
        .group_by(Outbox.priority)
    )
    due_rows = due.all()
    oldest = min((row[2] for row in due_rows if row[2] is not None), default=None)
    return OutboxDepth(
        queued={int(p): int(n) for p, n in queued.all()},
        due={int(p): int(n) for p, n, _ in due_rows},
        oldest_due=oldest,
    )


def priority_name(value: int) -> str:
    try:
        return Priority(value).name
    except ValueError:
        return str(value)


class HealthServer:
    """What one worker tells its supervisor and Prometheus; `start()` and `stop()` around the bot's run."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        listen: str,
        port: int,
        dispatcher_stats: Callable[[], DispatcherStats | None] = lambda: None,
        updates: Callable[[], UpdateMetrics | None] = lambda: None,
        update_queue: Callable[[], int] = lambda: 0,
        intake: Callable[[], IntakeStats | None] = lambda: None,
        alive: Callable[[], bool] = lambda: True,
        clock: Clock = system_clock,
        worker: str = "",
    ) -> None:
        self.sessions, self.listen, self.port = sessions, listen, port
        self.dispatcher_stats, self.updates, self.update_queue = dispatcher_stats, updates, update_queue
        self.intake = intake
        self.alive, self.clock, self.worker = alive, clock, worker
        self.started = time.time()
        self.rate = RateMeter()
        self.app = web.Application()
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/readyz", self.readyz)
        self.app.router.add_get("/metrics", self.metrics)
        self._runner: web.AppRunner | None = None
        self._sampler: asyncio.Task[None] | None = None

    @classmethod
    def for_application(
        cls, application: Application[Any, Any, Any, Any, Any, Any], *, listen: str, port: int, worker: str = ""
    ) -> HealthServer:
        """Wired to a bot built by `bot.app.build_application` (its runtime, dispatcher and processor)."""
        rt = runtime_of(application.bot_data)

        def stats() -> DispatcherStats | None:
            return rt.dispatcher.stats if rt.dispatcher is not None else None

        return cls(
            sessions=rt.sessions,
            listen=listen,
            port=port,
            dispatcher_stats=stats,
            updates=lambda: update_metrics(application),
            update_queue=application.update_queue.qsize,
            alive=lambda: bool(application.running),
            clock=rt.clock,
            worker=worker,
            intake=lambda: getattr(application.updater, "stats", None),
        )

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.listen, self.port).start()
        self._sampler = asyncio.create_task(self._sample_rate(), name="health-rate-sampler")
        log.info("health endpoint on http://%s:%d (/healthz /readyz /metrics)", self.listen, self.port)

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _sample_rate(self) -> None:
        while True:
            stats = self.dispatcher_stats()
            if stats is not None:
                self.rate.sample(time.monotonic(), stats.sent)
            await asyncio.sleep(RATE_SAMPLE_SECONDS)

    # -- endpoints ------------------------------------------------------------------------------

    async def healthz(self, _: web.Request) -> web.Response:
        if self.alive():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="not running\n")

    async def readyz(self, _: web.Request) -> web.Response:
        if not self.alive():
            return web.Response(status=503, text="not running\n")
        if await self._database_up():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="database unreachable\n")

    async def metrics(self, _: web.Request) -> web.Response:
        out = Exposition()
        out.gauge("up", "1 while the bot runs.", 1 if self.alive() else 0)
        out.gauge("info", "This worker: its outbox lease owner id.", 1, worker=self.worker)
        out.gauge("process_start_time_seconds", "When this worker started, in Unix time.", self.started)
        depth = await self._depth()
        out.gauge("database_up", "1 when the database answered this scrape.", 1 if depth is not None else 0)
        if depth is not None:
            self._outbox_depth(out, depth)
        stats = self.dispatcher_stats()
        if stats is not None:
            self._dispatcher(out, stats)
        updates = self.updates()
        out.gauge("update_queue_depth", "Updates received and not yet taken up by a handler.", self.update_queue())
        if updates is not None:
            self._updates(out, updates)
        intake = self.intake()
        if intake is not None:
            self._intake(out, intake)
        out.family(
            "sweep_overruns_total",
            "counter",
            "Sweep ticks skipped because the sweep's previous pass still ran.",
            [({"sweep": sweep.name}, overruns().get(sweep.name, 0)) for sweep in SWEEPS],
        )
        return web.Response(body=out.text().encode(), headers={"Content-Type": CONTENT_TYPE})

    # -- pieces ---------------------------------------------------------------------------------

    async def _database_up(self) -> bool:
        async def ping() -> None:
            async with self.sessions() as session:
                await session.execute(select(1))

        try:
            await asyncio.wait_for(ping(), DB_TIMEOUT)
        except Exception:
            return False
        return True

    async def _depth(self) -> OutboxDepth | None:
        async def read() -> OutboxDepth:
            async with self.sessions() as session:
                return await outbox_depth(session, now=self.clock())

        try:
            return await asyncio.wait_for(read(), DB_TIMEOUT)
        except Exception:
            return None

    def _outbox_depth(self, out: Exposition, depth: OutboxDepth) -> None:
        priorities = sorted({int(p) for p in Priority} | set(depth.queued))
        out.family(
            "outbox_queued",
            "gauge",
            "Outbox rows not yet answered by Telegram (pending or sending).",
            [({"priority": priority_name(p)}, depth.queued.get(p, 0)) for p in priorities],
        )
        out.family(
            "outbox_due",
            "gauge",
            "Outbox rows due now and not yet answered by Telegram.",
            [({"priority": priority_name(p)}, depth.due.get(p, 0)) for p in priorities],
        )
        age = (self.clock() - depth.oldest_due).total_seconds() if depth.oldest_due is not None else 0.0
        out.gauge("outbox_oldest_due_age_seconds", "How long the oldest due row has waited.", max(0.0, age))

    def _dispatcher(self, out: Exposition, stats: DispatcherStats) -> None:
        counters = (
            ("outbox_sent_total", "Messages Telegram accepted from this worker's outbox dispatcher.", stats.sent),
            ("outbox_failed_total", "Outbox rows given up (permanent error or retry deadline).", stats.failed),
            ("outbox_unreachable_total", "Outbox rows whose recipient blocked the bot or is gone.", stats.unreachable),
            ("outbox_retried_total", "Sends that failed and were scheduled again.", stats.retried),
            ("telegram_429_total", "Flood-control answers (429 retry_after) to outbox sends.", stats.rate_limited),
            ("outbox_claimed_total", "Rows this worker claimed from the outbox.", stats.claimed),
            (
                "outbox_handed_back_total",
                "Claimed rows given back unsent (a chat not ready, a flood wait).",
                stats.handed_back,
            ),
            ("outbox_db_errors_total", "Database errors met by the dispatcher (it retries).", stats.db_errors),
        )
        for name, help_text, value in counters:
            out.counter(name, help_text, value)
        out.gauge("outbox_in_flight", "Sends waiting for Telegram's answer.", stats.in_flight)
        out.gauge("outbox_buffered", "Claimed rows waiting in this worker's buffer.", stats.buffered)
        self.rate.sample(time.monotonic(), stats.sent)
        out.gauge(
            "outbox_send_rate",
            "Messages per second sent by this worker over the last minute.",
            round(self.rate.rate(), 3),
        )

    def _updates(self, out: Exposition, updates: UpdateMetrics) -> None:
        out.family(
            "updates_total",
            "counter",
            "Telegram updates this worker handled, by kind.",
            [({"kind": kind}, n) for kind, n in sorted(updates.handled.items())] or [({"kind": "message"}, 0)],
        )
        out.counter(
            "update_errors_total",
            "Updates whose handler raised (the person was told nothing was saved).",
            updates.errors,
        )
        out.gauge("updates_in_progress", "Updates being handled now.", updates.in_progress)
        out.histogram(
            "update_duration_seconds", "Time from receipt of an update to the end of its handlers.", updates.latency
        )

    def _intake(self, out: Exposition, intake: IntakeStats) -> None:
        out.counter(
            "inbox_stored_total", "Updates this worker stored in the inbox before accepting them.", intake.stored
        )
        out.counter(
            "inbox_refused_total", "Webhook deliveries answered 503: the database could not store them.", intake.refused
        )
        out.counter("inbox_taken_back_total", "Updates a stopped worker had accepted, handled here.", intake.taken_back)
        out.counter(
            "inbox_retried_total", "Updates handled again after their handler met a database outage.", intake.retried
        )
        out.gauge("inbox_open", "Updates this worker holds that are not done.", intake.open)


__all__ = ["HealthServer", "OutboxDepth", "outbox_depth"]
