"""Check-in storm: N personnel send /hadir and their location at once, through the real bot.

Two measurements per bot, against the Bot API emulator on loopback:
  burst   every update queued at once: updates per second until all are answered,
          and the CPU time of this process per update (with --workers, the
          workers' CPU is not in it)
  paced   locations arriving at --rate updates a second: time from update to reply
The same run measures a baseline bot that answers every update with no work
(PTB's Application with the bot's HTTP connection pool, and the emulator
alone: the ceiling of this stack).

With --workers N (PostgreSQL), the bot also runs as N `siaga run --webhook`
processes, as in production, fed by the emulator's webhook deliveries
(tests/workers/harness.py starts them); the baseline stays one process.

    python -m bench.checkin_storm [--people 2000] [--rate 100] [--pg [--workers 2]]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from bench.common import fresh_database, load_province, machine, move_operation, percentile, summary
from bot.app import REPLY_CONNECTIONS, build_application
from bot.clock import ManualClock
from bot.config import Settings, load_settings
from bot.emulator import Emulator, Limits, SimUser, running
from bot.storage.db import make_engine, make_sessionmaker
from models import Assignment, Checkin, Personnel, Shift, Tps
from tests.workers.harness import TOKEN, Cluster

FIRST_USER_ID = 900_000_001
SETTLE_SECONDS = 5.0
"""Before the storm, the bot's first sweeps run (the first reminder pass plans the whole roster's
reminders: 1.5 s of CPU for 2,000 people); at 06:30 on voting day the bot has been up for hours."""


async def prepare(url: str, people: int) -> tuple[ManualClock, list[tuple[int, float, float]]]:
    """Link `people` assigned personnel to Telegram ids; return the clock and where each stands.

    The shifts are moved so that voting began five minutes ago by the wall
    clock: worker processes keep the real time.
    """
    await load_province(url, tps=max(100, people // 2))
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session:
        shift = await session.scalar(select(Shift).where(Shift.phase == "pemungutan").order_by(Shift.starts_at))
        assert shift is not None
        moved = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5) - shift.starts_at
        await move_operation(session, moved)
        rows = (
            await session.execute(
                select(Assignment.personnel_id, Tps.lat, Tps.lon)
                .join(Tps, Tps.id == Assignment.tps_id)
                .where(Assignment.shift_id == shift.id)
                .order_by(Assignment.personnel_id)
            )
        ).all()
        chosen: dict[int, tuple[float, float]] = {}
        for personnel_id, lat, lon in rows:
            chosen.setdefault(personnel_id, (lat, lon))
            if len(chosen) == people:
                break
        assert len(chosen) == people, f"only {len(chosen)} assigned personnel"
        await session.execute(
            update(Personnel),
            [{"id": pid, "telegram_user_id": FIRST_USER_ID + i} for i, pid in enumerate(chosen)],
        )
        await session.commit()
        start = shift.starts_at
    await engine.dispose()
    places = [(FIRST_USER_ID + i, lat + 0.0003, lon) for i, (lat, lon) in enumerate(chosen.values())]
    return ManualClock(start + timedelta(minutes=5)), places


def bot_settings(emu: Emulator, url: str, *, durable: bool = True) -> Settings:
    settings = load_settings(None)
    data = settings.model_dump()
    data["telegram"].update(token=emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url)
    data["database"]["url"] = url
    data["intake"]["durable"] = durable
    return Settings.model_validate(data)


def baseline_app(emu: Emulator) -> Any:
    async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message
        await update.effective_message.reply_text("ok")

    app = (
        ApplicationBuilder()
        .token(emu.token)
        .base_url(emu.base_url)
        .base_file_url(emu.base_file_url)
        .concurrent_updates(True)
        .connection_pool_size(REPLY_CONNECTIONS)
        .build()
    )
    app.add_handler(MessageHandler(filters.ALL, reply))
    return app


async def burst(emu: Emulator, users: list[SimUser], places: dict[int, tuple[float, float]]) -> tuple[float, float]:
    """Queue /hadir and a location for everyone at once; seconds until all 2N are answered, and this process's CPU seconds.

    The CPU time moves far less from run to run than the wall time on a
    shared machine; in one process it holds the bot, the emulator and this
    driver, so bot minus baseline is what the bot's own work costs.
    """
    before = len(emu.state.sent_index)
    started, cpu = time.perf_counter(), time.process_time()
    for user in users:
        await user.send("/hadir")
        await user.send_location(*places[user.id])
    await emu.until(lambda: True if len(emu.state.sent_index) - before >= 2 * len(users) else None, timeout=600)
    return time.perf_counter() - started, time.process_time() - cpu


async def paced(
    emu: Emulator, users: list[SimUser], places: dict[int, tuple[float, float]], rate: float
) -> list[float]:
    """One location per user at `rate` a second; per update, the time until its reply arrived."""
    sent_at: dict[int, float] = {}
    counts = {user.id: emu.count(user) for user in users}
    started = time.perf_counter()
    for index, user in enumerate(users):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at[user.id] = time.time()
        await user.send_location(*places[user.id])
    await emu.until(lambda: True if all(emu.count(user) > counts[user.id] for user in users) else None, timeout=600)
    return [emu.sent_to(user)[counts[user.id]].wall - sent_at[user.id] for user in users]


Serve = Callable[[Emulator], AbstractAsyncContextManager[object]]


def polling(make_app: Callable[[Emulator], Any]) -> Serve:
    """One process: this event loop runs the bot, polling the emulator."""
    return lambda emu: running(make_app(emu))


def workers(url: str, count: int, workdir: Path, *, durable: bool = True) -> Serve:
    """`count` worker processes on webhooks, configured as `siaga run` is by default."""
    defaults = load_settings(None).model_dump()
    config = {section: defaults[section] for section in ("scheduler", "escalation", "reminders", "checkin", "delivery")}
    config["logging"] = {"level": "WARNING"}
    config["intake"] = {"durable": durable}

    @asynccontextmanager
    async def serve(emu: Emulator) -> AsyncIterator[object]:
        cluster = Cluster(emu=emu, url=url, workdir=workdir, engine=make_engine(url))
        cluster.add_workers(count, config)
        try:
            await cluster.start()
            yield cluster
        finally:
            await cluster.stop()
            await cluster.engine.dispose()

    return serve


async def measure(label: str, serve: Serve, places: list[tuple[int, float, float]], rate: float) -> dict[str, Any]:
    half = len(places) // 2
    async with Emulator(token=TOKEN, limits=Limits(enforce=False), record_calls=False) as emu:
        users = [emu.user(f"P{uid}", user_id=uid) for uid, _, _ in places]
        where = {uid: (lat, lon) for uid, lat, lon in places}
        async with serve(emu):
            await asyncio.sleep(SETTLE_SECONDS)
            seconds, cpu = await burst(emu, users[:half], where)
            latencies = await paced(emu, users[half:], where, rate)
        replies = sum(emu.count(user) for user in users)
    return {
        "label": label,
        "updates": 2 * half,
        "seconds": seconds,
        "per_second": 2 * half / seconds,
        "cpu_ms": 1000 * cpu / (2 * half),
        "latencies": latencies,
        "replies": replies,
    }


async def run_backend(
    backend: str, people: int, rate: float, workdir: Path, processes: int = 0
) -> list[dict[str, Any]]:
    """The baseline, then the bot accepting updates before storing them, then with the durable inbox: each bot
    on a fresh database, so both make the same first check-ins."""
    results: list[dict[str, Any]] = []
    for durable in (False, True):
        url = await fresh_database(backend, "siaga_bench_storm", workdir)
        clock, places = await prepare(url, people)
        intake = "durable inbox" if durable else "no inbox"
        if processes:
            bot = workers(url, processes, workdir, durable=durable)
            label = f"siaga on {backend}, {processes} workers, {intake}"
        else:
            bot = polling(
                lambda emu, url=url, clock=clock, durable=durable: build_application(
                    bot_settings(emu, url, durable=durable), clock=clock
                )
            )
            label = f"siaga on {backend}, {intake}"
        if not results:
            results.append(await measure("baseline (no work)", polling(baseline_app), places, rate))
        results.append(await measure(label, bot, places, rate))
        engine = make_engine(url)
        async with make_sessionmaker(engine)() as session:
            results[-1]["stored"] = len((await session.scalars(select(Checkin.id))).all())
        await engine.dispose()
    return results


def report(results: list[dict[str, Any]], people: int, rate: float) -> None:
    base = results[0]
    for result in results:
        ratio = result["per_second"] / base["per_second"]
        stored = f", check-ins stored {result['stored']}/{people}" if "stored" in result else ""
        print(
            f"  {result['label']:<22} burst {result['updates']} updates in {result['seconds']:.1f} s = "
            f"{result['per_second']:.0f}/s ({ratio:.0%} of baseline), {result['cpu_ms']:.1f} ms CPU an update "
            f"in this process; paced at {rate:.0f}/s: "
            f"{summary(result['latencies'])}; replies {result['replies']}/{people * 2 - people // 2}{stored}"
        )


def compare_intake(results: list[dict[str, Any]]) -> None:
    """The durable inbox against the same bot without it, measured in the same run."""
    without, durable = results[1], results[2]
    print(
        f"  durable inbox: burst {durable['per_second'] / without['per_second']:.0%} of the throughput without it; "
        f"paced p99 {percentile(durable['latencies'], 0.99) * 1000:.0f} ms against "
        f"{percentile(without['latencies'], 0.99) * 1000:.0f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--pg", action="store_true", help="also on the PostgreSQL at 127.0.0.1:5432")
    parser.add_argument("--workers", type=int, default=0, help="and with this many worker processes on PostgreSQL")
    args = parser.parse_args()
    print(f"check-in storm: {args.people} personnel; {machine()}")
    with tempfile.TemporaryDirectory() as directory:
        for backend in ["sqlite"] + (["postgresql"] if args.pg else []):
            results = await run_backend(backend, args.people, args.rate, Path(directory))
            report(results, args.people, args.rate)
            compare_intake(results)
        if args.pg and args.workers:
            results = await run_backend("postgresql", args.people, args.rate, Path(directory), args.workers)
            report(results, args.people, args.rate)
            compare_intake(results)


if __name__ == "__main__":
    asyncio.run(main())
