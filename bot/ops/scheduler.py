"""The scheduler only drives time: it wakes the sweeps, and the sweeps read the database.

Every sweep is idempotent (its work is rows: deadlines, dedup keys, digests),
so a restart, a missed tick or a second worker running the same sweep can
delay work but never double it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.ext import Application, ContextTypes

from bot.clock import system_clock
from bot.runtime import Runtime, runtime_of
from bot.services.updates import RETENTION, forget_old
from bot.services.workers import forget_dead
from bot.storage.db import make_engine, make_sessionmaker
from flows.broadcast import sweep_broadcast_reports
from flows.escort_reminders import plan_escort_reminders
from flows.incidents import sweep as sweep_escalations
from flows.incidents import sweep_escort_alerts
from flows.live_locations import sweep_live_locations
from flows.missed import sweep_missed_checkins
from flows.reminders import plan_reminders

log = logging.getLogger("siaga.scheduler")

SweepFn = Callable[[AsyncSession, Runtime], Awaitable[Any]]


@dataclass(frozen=True)
class Sweep:
    name: str
    run: SweepFn
    interval: Callable[[Runtime], float]
    own_thread: bool = False
    """A pass whose Python work grows with the roster runs on a thread and event loop of its own (`run_sweep`)."""
    after_backlog: bool = False
    """Plans from who has checked in: waits until the backlog of a start is handled (`Runtime.settled`)."""


async def _escalations(session: AsyncSession, rt: Runtime) -> int:
    return await sweep_escalations(session, now=rt.now(), settings=rt.settings)


async def _escort_alerts(session: AsyncSession, rt: Runtime) -> int:
    return await sweep_escort_alerts(session, now=rt.now(), settings=rt.settings)


async def _live_locations(session: AsyncSession, rt: Runtime) -> int:
    return await sweep_live_locations(session, now=rt.now(), settings=rt.settings)


async def _reminders(session: AsyncSession, rt: Runtime) -> int:
    """Shift reminders, then escort members' reminders: one pass, each committed on its own."""
    shifts = await plan_reminders(session, now=rt.now(), settings=rt.settings)
    escorts = await plan_escort_reminders(session, now=rt.now(), settings=rt.settings)
    return shifts.planned + shifts.corrections + escorts.planned + escorts.corrections


async def _missed(session: AsyncSession, rt: Runtime) -> int:
    return await sweep_missed_checkins(session, now=rt.now(), settings=rt.settings)


async def _broadcast_reports(session: AsyncSession, rt: Runtime) -> int:
    return await sweep_broadcast_reports(session, now=rt.now())


async def _forget_updates(session: AsyncSession, rt: Runtime) -> int:
    """Done updates Telegram cannot deliver again, and the beats of workers long dead (wall-clock time)."""
    await forget_dead(session, now=system_clock())
    return await forget_old(session, before=rt.now() - RETENTION)


REMINDERS = Sweep(
    "reminders", _reminders, lambda rt: rt.settings.scheduler.reminders_seconds, own_thread=True, after_backlog=True
)
SWEEPS = (
    Sweep("escalation", _escalations, lambda rt: rt.settings.scheduler.escalation_seconds),
    Sweep("escort_alerts", _escort_alerts, lambda rt: rt.settings.scheduler.escort_alerts_seconds),
    Sweep("live_locations", _live_locations, lambda rt: rt.settings.scheduler.live_locations_seconds),
    REMINDERS,
    Sweep("missed_checkins", _missed, lambda rt: rt.settings.scheduler.missed_checkins_seconds, after_backlog=True),
    Sweep("broadcast_reports", _broadcast_reports, lambda rt: rt.settings.scheduler.broadcast_reports_seconds),
    Sweep("forget_updates", _forget_updates, lambda rt: 3600.0),
)


async def run_sweep(sweep: Sweep, rt: Runtime) -> int:
    """One pass of one sweep in its own session; a failure is logged and retried next tick.

    Several workers on one PostgreSQL database run the same schedule: a
    transaction-scoped advisory lock per sweep, taken in a session of its
    own and held until the pass ends, lets one worker at a time do a pass;
    the others skip the tick. The lock ends with its transaction, so a
    worker that dies cannot keep it. SQLite has a single process anyway.

    A sweep marked `own_thread` runs on a thread with its own event loop
    and engine: the reminder pass reconciles the whole roster in Python
    (2.5 s for 20,000 people), and on the bot's loop every update arriving
    meanwhile would wait for it. On a thread the interpreter switches to
    the loop within `SWITCH_INTERVAL`.
    """
    try:
        if sweep.own_thread:
            made = await asyncio.to_thread(asyncio.run, _on_own_engine(sweep, rt))
        else:
            made = await _pass(sweep, rt, rt.sessions)
    except Exception:
        log.exception("sweep %s failed; it runs again at the next tick", sweep.name)
        return 0
    if made:
        rt.wake_dispatcher()
    return made


async def _on_own_engine(sweep: Sweep, rt: Runtime) -> int:
    engine = make_engine(rt.settings.database.url)
    try:
        with _collector_paused():
            return await _pass(sweep, rt, make_sessionmaker(engine))
    finally:
        await engine.dispose()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a pass runs.

    A pass holds hundreds of thousands of objects for a few seconds, and each
    full collection meanwhile walked them all with the interpreter held: at
    20,000 people the loop stood still up to 114 ms at a time, 21 ms with
    the collector paused (bench/reminders.py). The pass's objects are freed
    by reference counting; the collector resumes after it.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


async def _pass(sweep: Sweep, rt: Runtime, sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as guard, sessions() as session:
        if guard.get_bind().dialect.name == "postgresql":
            key = zlib.crc32(f"siaga.sweep.{sweep.name}".encode()) - 2**31  # a signed 32-bit key
            if not await guard.scalar(select(func.pg_try_advisory_xact_lock(key))):
                log.debug("sweep %s: another worker is running it", sweep.name)
                return 0
        return await sweep.run(session, rt) or 0


async def run_all(rt: Runtime) -> dict[str, int]:
    """Every sweep once, in order: what a test or the demo calls after moving the clock."""
    return {sweep.name: await run_sweep(sweep, rt) for sweep in SWEEPS}


SWITCH_INTERVAL = 0.0005
"""Seconds a thread may keep the interpreter while another waits for it (Python's default: 0.005).

While the reminder pass computes on its thread, the bot's loop waits for
the interpreter after every I/O wait, up to this long each time: with the
default, a 20,000-person pass stretched the storm's p99 to 538 ms; with
0.5 ms, 245 ms (bench/RESULTS.md).
"""


_OVERRUNS: Counter[str] = Counter()


def overruns() -> dict[str, int]:
    """Ticks each sweep skipped since the process started, because its previous pass was still running.

    An overrun is not an error (the skipped tick's work is done by the pass
    still running, or by the next), but a count that keeps growing says a
    sweep's interval is shorter than the work it does.
    """
    return dict(_OVERRUNS)


class _QuietOverruns(logging.Filter):
    """Drops APScheduler's warning for a tick of one of `names` skipped while its pass still runs: it is counted."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__()
        self.names = frozenset(names)

    def filter(self, record: logging.LogRecord) -> bool:
        skipped = "maximum number of running instances reached" in str(record.msg)
        args = record.args if isinstance(record.args, tuple) else ()
        return not (skipped and args and getattr(args[0], "name", None) in self.names)


def count_overruns(scheduler: BaseScheduler, names: Iterable[str]) -> None:
    """Count, instead of logging, the ticks of these jobs skipped because their previous run had not ended.

    Jobs run with `max_instances=1, coalesce=True`: a tick that finds the
    previous pass still running is dropped, which is what a sweep wants,
    and APScheduler warns each time (on a busy morning, every second). The
    warning goes, the count stays (`overruns()`).
    """
    watched = frozenset(names)
    logger = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _QuietOverruns) and f.names == watched for f in logger.filters):
        logger.addFilter(_QuietOverruns(watched))

    def overran(event: JobSubmissionEvent) -> None:
        job = scheduler.get_job(event.job_id)
        if job is not None and job.name in watched:
            _OVERRUNS[job.name] += 1
            log.debug("sweep %s still running at its next tick: skipped (%d so far)", job.name, _OVERRUNS[job.name])

    scheduler.add_listener(overran, EVENT_JOB_MAX_INSTANCES)


def schedule(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Register every sweep with python-telegram-bot's job queue (APScheduler underneath)."""
    rt = runtime_of(application.bot_data)
    queue = application.job_queue
    assert queue is not None, "install python-telegram-bot[job-queue]"
    sys.setswitchinterval(SWITCH_INTERVAL)
    for index, sweep in enumerate(SWEEPS):

        async def job(_: ContextTypes.DEFAULT_TYPE, sweep: Sweep = sweep) -> None:
            if sweep.after_backlog and not rt.settled.is_set():
                return
            await run_sweep(sweep, rt)

        queue.run_repeating(
            job,
            interval=sweep.interval(rt),
            first=1 + 0.2 * index,
            name=sweep.name,
            job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
    count_overruns(queue.scheduler, (sweep.name for sweep in SWEEPS))
    log.info("scheduled sweeps: %s", ", ".join(f"{s.name} every {s.interval(rt):g}s" for s in SWEEPS))


__all__ = ["SWEEPS", "Sweep", "count_overruns", "overruns", "run_all", "run_sweep", "schedule"]
