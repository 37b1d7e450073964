"""Fan-out: one message to each of N recipients, and a contingency alert raised halfway.

Two senders, each against a fresh Bot API emulator in its own process (so
the emulator does not compete with the sender for one core) that enforces
Telegram's limits, 30 messages a second overall, times `--scale`:

  siaga     the outbox and its dispatcher: N broadcast rows (priority 3)
            queued with enqueue_many, the alert queued at priority 0 with
            wake() when half the recipients have their message
  baseline  python-telegram-bot's own AIORateLimiter (default settings,
            rates times `--scale`) and a plain asyncio.gather over the
            messages; the alert is one more send_message at the same moment.
            Its default is max_retries=0: a 429 is raised, not waited out;
            `baseline-retry` is the same with max_retries=3

Reported: achieved messages per second as a share of the limit, lost and
duplicated messages, 429 answers the limits caused, and the alert's latency
from being raised to being delivered. A scale above 1 multiplies the
emulator's and the sender's limits alike and is printed with the figures:
it shortens a run, it is not Telegram.

    python -m bench.fanout                                  # 5,000 at x1, 60,000 at x10
    python -m bench.fanout --recipients 60000 --scale 1     # the real thing, ~33 min per sender
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

from telegram.ext import AIORateLimiter, ExtBot

from bench.common import fresh_database, machine
from bot.config import DeliverySettings
from bot.delivery.dispatcher import Dispatcher, make_bot
from bot.emulator import Emulator, Limits
from bot.services import outbox
from bot.services.outbox import NewMessage
from bot.storage.db import make_engine, make_sessionmaker
from models.enums import Priority

FIRST_USER = 700_000_001
ALERT = "KONTINJENSI: massa berkumpul di TPS 012, butuh bantuan"
STALL_SECONDS = 60.0
LimitMode = Literal["bucket", "arrivals"]


# -- the emulator, in a process of its own ------------------------------------------------------


def _serve(conn: Connection, scale: float, recipients: int, mode: LimitMode = "bucket") -> None:
    asyncio.run(_serve_async(conn, scale, recipients, mode))


async def _serve_async(conn: Connection, scale: float, recipients: int, mode: LimitMode) -> None:
    limits = Limits(global_per_second=30 * scale, group_per_minute=20 * scale, mode=mode)
    emu = Emulator(limits=limits, record_calls=False)
    await emu.start()
    for uid in range(FIRST_USER, FIRST_USER + recipients):
        emu.user(f"u{uid}", user_id=uid)
    group = emu.group("Posko Polres")
    conn.send({"base_url": emu.base_url, "token": emu.token, "group": group.id})
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "count":
            conn.send(sum(len(messages) for messages in emu.state.sent.values()))
        elif command == "alert":
            found = [m.current.mono for m in emu.state.sent.get(group.id, []) if m.text == ALERT]
            conn.send(found[0] if found else None)
        elif command == "report":
            times = [(m.chat_id, m.current.mono) for ms in emu.state.sent.values() for m in ms]
            rejected = Counter(f"{r.status} {r.reason}" for r in emu.state.rejections)
            conn.send({"times": times, "rejected": dict(rejected)})
        else:
            await emu.stop()
            conn.send("bye")
            return


class EmulatorProcess:
    """The emulator in a child process, asked over a pipe (the sender's loop stays free).

    `mode` is how it counts the limits (`Limits.mode`): forgiving buckets, or arrivals in sliding windows.
    """

    def __init__(self, scale: float, recipients: int, mode: LimitMode = "bucket") -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, scale, recipients, mode), daemon=True)
        self._process.start()
        hello = self._conn.recv()
        self.base_url, self.token, self.group = hello["base_url"], hello["token"], hello["group"]
        self._lock = asyncio.Lock()

    async def ask(self, command: str) -> Any:
        async with self._lock:
            self._conn.send(command)
            return await asyncio.get_running_loop().run_in_executor(None, self._conn.recv)

    async def close(self) -> None:
        await self.ask("stop")
        self._process.join(5)


# -- one run ------------------------------------------------------------------------------------


@dataclass
class Result:
    sender: str
    recipients: int
    scale: float
    seconds: float
    rate: float
    lost: int
    duplicated: int
    limit_429: int
    alert_latency: float | None
    errors: dict[str, int]

    @property
    def share(self) -> float:
        return self.rate / (30 * self.scale)


async def _wait_for(
    emu: EmulatorProcess, target: int, *, deadline: float = float("inf"), done: Callable[[], bool] = lambda: False
) -> None:
    """Until `target` messages arrived, the sender is done, the deadline passed or nothing moved for a minute."""
    last, moved = -1, time.monotonic()
    while True:
        count = await emu.ask("count")
        now = time.monotonic()
        if count >= target or done() or now > deadline:
            return
        if count != last:
            last, moved = count, now
        elif now - moved > STALL_SECONDS:
            return
        await asyncio.sleep(0.2)


async def _alert_latency(emu: EmulatorProcess, raised: float, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivered = await emu.ask("alert")
        if delivered is not None:
            return delivered - raised
        await asyncio.sleep(0.05)
    return None


async def _report(
    emu: EmulatorProcess,
    sender: str,
    recipients: int,
    scale: float,
    span: tuple[float, float],
    latency: float | None,
    errors: dict[str, int],
) -> Result:
    """Throughput is delivered messages over the run: from the first send to the last delivery,
    or to the sender giving up when messages were lost (monotonic time is one clock for both processes)."""
    report = await emu.ask("report")
    per_chat = Counter(chat for chat, _ in report["times"] if chat != emu.group)
    times = sorted(mono for chat, mono in report["times"] if chat != emu.group)
    lost = recipients - len(per_chat)
    started, finished = span
    end = max(times[-1] if times else started, finished if lost else 0.0)
    seconds = end - started
    limit_429 = sum(n for key, n in report["rejected"].items() if key.startswith("429") and "fault" not in key)
    return Result(
        sender,
        recipients,
        scale,
        seconds,
        len(times) / seconds if seconds > 0 else 0.0,
        lost=lost,
        duplicated=sum(per_chat.values()) - len(per_chat),
        limit_429=limit_429,
        alert_latency=latency,
        errors=errors,
    )


async def run_siaga(recipients: int, scale: float, workdir: Path) -> Result:
    emu = EmulatorProcess(scale, recipients)
    url = await fresh_database("sqlite", f"fanout_{recipients}", workdir)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    started = time.monotonic()
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
    print(f"  siaga: queued {recipients} rows in {time.monotonic() - started:.1f} s", flush=True)
    bot = make_bot(token=emu.token, base_url=emu.base_url)
    await bot.initialize()
    settings = DeliverySettings(global_per_second=30 * scale, group_per_minute=20 * scale)
    dispatcher = Dispatcher(sessions=sessions, bot=bot, settings=settings, worker_id="bench", summary_seconds=30)
    started = time.monotonic()
    await dispatcher.start()
    await _wait_for(emu, recipients // 2)
    async with sessions() as session:
        await outbox.enqueue(
            session, chat_id=emu.group, text=ALERT, priority=Priority.escalation, dedup_key="contingency:1:raised"
        )
        await session.commit()
    raised = time.monotonic()
    dispatcher.wake()
    latency = await _alert_latency(emu, raised, timeout=recipients / (30 * scale) + 30)
    await _wait_for(emu, recipients + 1)
    finished = time.monotonic()
    await dispatcher.stop()
    await bot.shutdown()
    await engine.dispose()
    stats = dispatcher.stats
    errors = {"failed": stats.failed, "retried": stats.retried, "429 seen": stats.rate_limited}
    result = await _report(emu, "siaga outbox", recipients, scale, (started, finished), latency, errors)
    await emu.close()
    return result


def _baseline_sender(conn: Connection, target: dict[str, Any], scale: float, max_retries: int, alert_now: Any) -> None:
    """The baseline, in a process of its own: if its event loop chokes, the bench can still stop it."""
    asyncio.run(_baseline_async(conn, target, scale, max_retries, alert_now))


async def _baseline_async(
    conn: Connection, target: dict[str, Any], scale: float, max_retries: int, alert_now: Any
) -> None:
    logging.getLogger("telegram.ext").setLevel(logging.CRITICAL)  # it logs a traceback per 429; we count them
    limiter = AIORateLimiter(overall_max_rate=30 * scale, group_max_rate=20 * scale, max_retries=max_retries)
    bot: ExtBot[Any] = ExtBot(token=target["token"], base_url=target["base_url"], rate_limiter=limiter)
    await bot.initialize()
    errors: Counter[str] = Counter()

    async def send(chat_id: int, text: str) -> None:
        try:
            await bot.send_message(chat_id=chat_id, text=text)
        except Exception as error:  # a plain loop has nobody to hand a failure to
            errors[type(error).__name__] += 1

    async def alert_when_told() -> None:
        while not alert_now.is_set():
            await asyncio.sleep(0.02)
        await send(target["group"], ALERT)

    recipients = range(FIRST_USER, FIRST_USER + target["recipients"])
    await asyncio.gather(alert_when_told(), *(send(uid, f"Siaran Kapolres untuk {uid}") for uid in recipients))
    await bot.shutdown()
    conn.send(dict(errors))


async def run_baseline(recipients: int, scale: float, max_retries: int = 0) -> Result:
    """PTB's limiter and a gather, cut off at 1.5 times the ideal duration plus a minute."""
    emu = EmulatorProcess(scale, recipients)
    context = multiprocessing.get_context("spawn")
    conn, child = context.Pipe()
    alert_now = context.Event()
    target = {"token": emu.token, "base_url": emu.base_url, "group": emu.group, "recipients": recipients}
    started = time.monotonic()
    sender = context.Process(target=_baseline_sender, args=(child, target, scale, max_retries, alert_now), daemon=True)
    sender.start()
    deadline = started + 1.5 * recipients / (30 * scale) + 60
    await _wait_for(emu, recipients // 2, deadline=deadline)
    raised = time.monotonic()
    alert_now.set()
    latency = await _alert_latency(emu, raised, timeout=max(1.0, deadline - raised))
    await _wait_for(emu, recipients + 1, deadline=deadline, done=lambda: conn.poll())
    finished = time.monotonic()
    if conn.poll():
        errors = conn.recv()
    else:
        sender.terminate()
        errors = {f"cut off after {finished - started:.0f} s": 1}
    sender.join(5)
    name = "PTB AIORateLimiter + gather" + (f" (max_retries={max_retries})" if max_retries else "")
    result = await _report(emu, name, recipients, scale, (started, finished), latency, errors)
    await emu.close()
    return result


# -- the table ----------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    lines = [
        "| sender | recipients | limit (scale) | duration | delivered/s | share of limit | lost | duplicated "
        "| 429 from limits | alert latency | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        latency = "not delivered" if r.alert_latency is None else f"{r.alert_latency:.2f} s"
        errors = ", ".join(f"{k} {v}" for k, v in r.errors.items() if v) or "none"
        lines.append(
            f"| {r.sender} | {r.recipients:,} | {30 * r.scale:g}/s (x{r.scale:g}) | {r.seconds:.1f} s "
            f"| {r.rate:.1f} | {r.share:.1%} | {r.lost} | {r.duplicated} | {r.limit_429} | {latency} | {errors} |"
        )
    return "\n".join(lines)


async def main(recipients: list[int], scales: list[float], senders: list[str]) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as directory:
        for count, scale in zip(recipients, scales, strict=True):
            note = "" if scale == 1 else f"  (SCALED: emulator and sender limits x{scale:g}, not Telegram's)"
            print(f"{count:,} recipients at {30 * scale:g} msgs/s{note}", flush=True)
            if "siaga" in senders:
                results.append(await run_siaga(count, scale, Path(directory)))
                print(table(results[-1:]), flush=True)
            if "baseline" in senders:
                results.append(await run_baseline(count, scale))
                print(table(results[-1:]), flush=True)
            if "baseline-retry" in senders:
                results.append(await run_baseline(count, scale, max_retries=3))
                print(table(results[-1:]), flush=True)
    return results


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, nargs="+", default=[5000, 60000])
    parser.add_argument(
        "--scale",
        type=float,
        nargs="+",
        default=None,
        help="limit multiplier per run (one value applies to all); default 1 then 10",
    )
    parser.add_argument(
        "--senders",
        nargs="+",
        choices=["siaga", "baseline", "baseline-retry"],
        default=["siaga", "baseline", "baseline-retry"],
    )
    args = parser.parse_args(argv)
    if args.scale is None:
        args.scale = [1.0, 10.0][: len(args.recipients)] + [1.0] * max(0, len(args.recipients) - 2)
    elif len(args.scale) == 1:
        args.scale = args.scale * len(args.recipients)
    if len(args.scale) != len(args.recipients):
        parser.error("give one --scale, or one per --recipients value")
    return args


if __name__ == "__main__":
    arguments = parse()
    print(f"fanout benchmark on {machine()}", flush=True)
    outcome = asyncio.run(main(arguments.recipients, arguments.scale, arguments.senders))
    print()
    print(table(outcome))
