"""The reminder pass beside a busy bot: how long its event loop stands still while a pass runs.

Every minute the reminder sweep reconciles the whole roster's reminders with
the outbox (bot/services/reminders.py). Its Python work grows with the
roster, and an update that arrives while it holds the event loop waits. For
N registered personnel (2,000 and 20,000 by default) the benchmark runs the
first pass (it plans everything) and then passes that find nothing to
change, each one

  on the loop   the sweep run on the bot's own event loop (the baseline)
  own thread    as `siaga run` runs it: a thread with its own loop and engine

while a ticker on the bot's loop asks for a 1 ms sleep over and over: the
longest gap between two ticks is the longest an update would have waited.

    python -m bench.reminders [--people 2000 20000] [--pg]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from pathlib import Path

from bench.checkin_storm import prepare
from bench.common import fresh_database, machine
from bot.clock import ManualClock
from bot.config import Settings, load_settings
from bot.ops.scheduler import SWEEPS, Sweep, run_sweep
from bot.runtime import Runtime
from bot.storage.db import make_engine, make_sessionmaker

REMINDERS = next(sweep for sweep in SWEEPS if sweep.name == "reminders")
QUIET_PASSES = 3


async def longest_stall(work: asyncio.Task[int]) -> tuple[float, int]:
    """The longest gap between ticks of the loop while `work` runs, and how many gaps exceeded 50 ms."""
    longest, over, last = 0.0, 0, time.perf_counter()
    while not work.done():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        longest, over, last = max(longest, now - last), over + (now - last > 0.05), now
    await work
    return longest, over


async def one_pass(sweep: Sweep, rt: Runtime) -> tuple[float, float, float, int]:
    started, cpu = time.perf_counter(), time.process_time()
    stall, over = await longest_stall(asyncio.create_task(run_sweep(sweep, rt)))
    return time.perf_counter() - started, time.process_time() - cpu, stall, over


def settings_for(url: str) -> Settings:
    data = load_settings(None).model_dump()
    data["database"]["url"] = url
    return Settings.model_validate(data)


async def run(backend: str, people: int, workdir: Path) -> None:
    for label, sweep in (("on the loop", dataclasses.replace(REMINDERS, own_thread=False)), ("own thread", REMINDERS)):
        url = await fresh_database(backend, "siaga_bench_reminders", workdir)
        clock, _ = await prepare(url, people)
        engine = make_engine(url)
        rt = Runtime(settings=settings_for(url), sessions=make_sessionmaker(engine), clock=ManualClock(clock()))
        first = await one_pass(sweep, rt)
        quiet = [await one_pass(sweep, rt) for _ in range(QUIET_PASSES)]
        await engine.dispose()
        print(
            f"  {backend}, {people} personnel, {label:<11}: first pass {first[0]:.2f} s, longest stall "
            f"{first[2] * 1000:.0f} ms ({first[3]} over 50 ms); passes with nothing to change "
            f"{min(q[0] for q in quiet):.2f}–{max(q[0] for q in quiet):.2f} s, longest stall "
            f"{max(q[2] for q in quiet) * 1000:.0f} ms ({max(q[3] for q in quiet)} over 50 ms)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--pg", action="store_true", help="also on the PostgreSQL at 127.0.0.1:5432")
    args = parser.parse_args()
    print(f"reminder pass beside the loop; {machine()}")
    with tempfile.TemporaryDirectory() as directory:
        for backend in ["sqlite"] + (["postgresql"] if args.pg else []):
            for people in args.people:
                await run(backend, people, Path(directory))


if __name__ == "__main__":
    asyncio.run(main())
