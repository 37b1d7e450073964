"""Fan-out pacing against a limiter that counts arrivals, on a loaded host (issue 14).

A broadcast to `--recipients` private chats through the real outbox and
dispatcher (SQLite), against the Bot API emulator in a process of its own
with `Limits(mode="arrivals")`: at most 30 requests *arriving* in any one
second, counted on the emulator's side, as Telegram must. `--hogs` processes
(default: one per core) spin beside it the whole time, so both the sender's
requests and the emulator's loop wait for a core now and then. Two pacings in
one invocation, alternated `--runs` times:

  arrivals  the dispatcher as it is: each send counted where its answer shows
            it may have arrived, plus `delivery.jitter_margin_seconds`
  exact     the pacing before issue 14 (RateLimiter(jitter_margin=0,
            max_margin=0, count_answers=False)): pacer and window exactly at
            the limit, counted where the sends left

Reported per run: 429 answers; achieved msg/s, the arrival rate Telegram
sees, (n - 1) / (last arrival - first arrival), so a 429's pause counts and
the start does not; its share of `global_per_second`; the seconds from the
dispatcher's start to the last arrival; and the transit jitter that decides it: each send's delay from the
dispatcher deciding it to the emulator counting it (p50 / p99), and the
largest `delay[k] - delay[k + 30]` (how much a send was held up more than
the one 30 sends later: counted where they left, 31 then arrive in a second).

    python -m bench.pacing                        # 600 recipients, 2 runs each, one hog per core
    python -m bench.pacing --recipients 635 --runs 3 --hogs 0
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

from bench.common import fresh_database, machine, percentile
from bench.fanout import FIRST_USER, EmulatorProcess, _wait_for
from bot.config import DeliverySettings
from bot.delivery.dispatcher import Dispatcher, make_bot
from bot.delivery.ratelimit import RateLimiter, Send
from bot.services import outbox
from bot.services.outbox import NewMessage
from bot.storage.db import make_engine, make_sessionmaker
from models.enums import Priority

RATE = 30.0
PACINGS = ("arrivals", "exact")


def _spin() -> None:
    """A CPU hog: one core's worth of busy loop until terminated."""
    while True:
        pass


class TimedLimiter(RateLimiter):
    """The real limiter, noting when each send was decided (the last try of a chat), to measure its delay."""

    def __init__(self, *, exact: bool) -> None:
        if exact:
            super().__init__(global_per_second=RATE, jitter_margin=0.0, max_margin=0.0, count_answers=False)
        else:
            super().__init__(global_per_second=RATE)
        self.decided: dict[int, float] = {}

    def record(self, chat_id: int, now: float) -> Send:
        self.decided[chat_id] = now
        return super().record(chat_id, now)


@dataclass
class Run:
    pacing: str
    recipients: int
    delivered: int
    limit_429: int
    rate: float
    seconds: float
    delay_p50: float
    delay_p99: float
    bunching: float
    margin_at_end: float

    @property
    def share(self) -> float:
        return self.rate / RATE


async def run_once(pacing: str, recipients: int, workdir: Path, margin: float) -> Run:
    emu = EmulatorProcess(RATE / 30, recipients, mode="arrivals")
    url = await fresh_database("sqlite", f"pacing_{pacing}", workdir)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        rows = (
            NewMessage(
                chat_id=uid,
                text=f"Siaran Kapolres untuk {uid}",
                priority=Priority.broadcast,
                dedup_key=f"broadcast:1:{uid}",
                ref="broadcast:1",
            )
            for uid in range(FIRST_USER, FIRST_USER + recipients)
        )
        await outbox.enqueue_many(session, rows)
        await session.commit()
    exact = pacing == "exact"
    settings = DeliverySettings(global_per_second=RATE, jitter_margin_seconds=0.0 if exact else margin)
    limiter = TimedLimiter(exact=exact)
    bot = make_bot(token=emu.token, base_url=emu.base_url)
    await bot.initialize()
    dispatcher = Dispatcher(
        sessions=sessions,
        bot=bot,
        settings=settings,
        worker_id=f"bench-{pacing}",
        limiter=limiter,
        summary_seconds=3600,
    )
    started = time.monotonic()
    await dispatcher.start()
    await _wait_for(emu, recipients)
    await dispatcher.stop()
    await bot.shutdown()
    await engine.dispose()
    report = await emu.ask("report")
    await emu.close()
    arrivals = sorted((mono, chat) for chat, mono in report["times"])
    times = [mono for mono, _ in arrivals]
    arrived = {chat: mono for mono, chat in arrivals}
    order = sorted(limiter.decided, key=limiter.decided.__getitem__)
    delays = [arrived[chat] - limiter.decided[chat] for chat in order if chat in arrived]
    window = int(RATE)
    bunching = max((delays[k] - delays[k + window] for k in range(len(delays) - window)), default=0.0)
    rejected = Counter(report["rejected"])
    limit_429 = sum(n for key, n in rejected.items() if key.startswith("429") and "fault" not in key)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return Run(
        pacing,
        recipients,
        len(arrived),
        limit_429,
        (len(times) - 1) / span if span else 0.0,
        (times[-1] if times else started) - started,
        statistics.median(delays) if delays else 0.0,
        percentile(delays, 0.99) if delays else 0.0,
        bunching,
        limiter.margin,
    )


def table(runs: list[Run]) -> str:
    lines = [
        "| pacing | recipients | delivered | 429 | msg/s | share of 30/s | start to last | delay p50 / p99 "
        "| bunching max | margin at end |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        lines.append(
            f"| {r.pacing} | {r.recipients} | {r.delivered} | {r.limit_429} | {r.rate:.2f} | {r.share:.1%} "
            f"| {r.seconds:.1f} s | {r.delay_p50 * 1000:.1f} / {r.delay_p99 * 1000:.1f} ms "
            f"| {r.bunching * 1000:.1f} ms | {r.margin_at_end:.2f} s |"
        )
    return "\n".join(lines)


def summary(runs: list[Run]) -> str:
    lines = [
        "| pacing | runs | 429 per run | msg/s (mean) | share of limit | ratio to exact |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    by = {p: [r for r in runs if r.pacing == p] for p in PACINGS}
    base = statistics.mean(r.rate for r in by["exact"]) if by["exact"] else float("nan")
    for pacing, group in by.items():
        if not group:
            continue
        rate = statistics.mean(r.rate for r in group)
        counts = ", ".join(str(r.limit_429) for r in group)
        lines.append(f"| {pacing} | {len(group)} | {counts} | {rate:.2f} | {rate / RATE:.1%} | {rate / base:.2f} |")
    return "\n".join(lines)


async def main(recipients: int, runs: int, hogs: int, margin: float) -> list[Run]:
    context = multiprocessing.get_context("spawn")
    spinners: list[BaseProcess] = [context.Process(target=_spin, daemon=True) for _ in range(hogs)]
    for spinner in spinners:
        spinner.start()
    results: list[Run] = []
    try:
        with tempfile.TemporaryDirectory() as directory:
            for n in range(runs):
                for pacing in PACINGS if n % 2 == 0 else PACINGS[::-1]:
                    results.append(await run_once(pacing, recipients, Path(directory), margin))
                    print(table(results[-1:]).splitlines()[-1], flush=True)
    finally:
        for spinner in spinners:
            spinner.terminate()
            spinner.join(5)
    return results


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pacing", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=600)
    parser.add_argument("--runs", type=int, default=2, help="runs of each pacing, alternated")
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="CPU-spinning processes beside it")
    parser.add_argument(
        "--margin",
        type=float,
        default=DeliverySettings().jitter_margin_seconds,
        help="jitter_margin_seconds of the arrivals pacing",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.getLogger("siaga.dispatcher").setLevel(logging.ERROR)  # a warning per 429: they are counted
    arguments = parse()
    print(f"pacing benchmark on {machine()}; {arguments.hogs} CPU hogs; margin {arguments.margin} s", flush=True)
    print(table([]), flush=True)
    outcome = asyncio.run(main(arguments.recipients, arguments.runs, arguments.hogs, arguments.margin))
    print()
    print(table(outcome))
    print()
    print(summary(outcome))
