"""The dispatcher end to end: the real PTB Bot over HTTP against the Bot API emulator.

Most runs scale the limits up (emulator and dispatcher alike) so a test of
hundreds of messages takes a second; the per-chat test keeps Telegram's real
numbers. The pacing rules themselves are tested first, on a fake clock.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot

from bot.clock import system_clock
from bot.config import DeliverySettings
from bot.delivery.dispatcher import Dispatcher, make_bot
from bot.delivery.ratelimit import Pacer, RateLimiter, Send, SlidingWindow
from bot.emulator import Emulator, Faults, Limits, SimUser
from bot.services import outbox, workers
from bot.services.outbox import NewMessage
from models import CommandGroup, Outbox, Personnel, Unit
from models.enums import Priority

FAST = 300.0  # messages per second in the scaled runs; one process tops out near 450/s


# -- the limiter on a fake clock ----------------------------------------------------------------


def test_pacer_spaces_evenly_and_never_bursts_from_cold() -> None:
    pacer = Pacer(10, catch_up=0.05)
    assert pacer.ready_at(0.0) == 0.0
    pacer.record(0.0)
    assert pacer.ready_at(0.0) == pytest.approx(0.1)
    pacer.record(0.13)  # 30 ms late: the schedule holds, the next is due at 0.2
    assert pacer.ready_at(0.13) == pytest.approx(0.2)
    pacer.record(5.0)  # after a long idle the schedule restarts: no burst to spend
    assert pacer.ready_at(5.0) == pytest.approx(5.1)


def test_sliding_window_counts_real_sends() -> None:
    window = SlidingWindow(3, 1.0)
    for t in (0.0, 0.1, 0.2):
        assert window.ready_at(t) == t
        window.record(Send(t, at=t))
    assert window.ready_at(0.5) == pytest.approx(1.0)
    assert window.ready_at(1.05) == pytest.approx(1.05)


def test_a_window_asked_only_up_to_a_moment_answers_as_the_full_count_would() -> None:
    """The shortcut for replies (`beyond`) gives the exact time when it comes by then, and a later one otherwise."""
    rng = random.Random(15)
    answers = Counter[bool]()
    for _ in range(400):
        limit = rng.choice((1, 3, 30))
        window, now = SlidingWindow(limit, 1.0), 10.0
        for decided in sorted(rng.uniform(now - 1.1, now) for _ in range(rng.randrange(limit, 3 * limit + 1))):
            at = decided + rng.uniform(0, 0.05) if rng.random() < 0.9 else None
            window.record(Send(decided, at=at if at is None or at <= now else now))
        floor, beyond = rng.uniform(0, 0.05), now + rng.uniform(0, 0.3)
        exact = window.ready_at(now, floor)
        quick = window.ready_at(now, floor, beyond=beyond)
        assert quick == exact if exact <= beyond else quick > beyond
        answers[exact <= beyond] += 1
    assert answers[True] > 20 and answers[False] > 20


def test_a_send_counts_where_its_answer_shows_it_may_have_arrived() -> None:
    """Decided at 0, answered at 0.3: it may have arrived at 0.29, so the fourth send waits until 1.3 (not 1.0)."""
    limiter = RateLimiter(global_per_second=3, jitter_margin=0.0)
    slow = limiter.record(1, 0.0)
    limiter.settle(slow, 0.3)
    for chat, at in ((2, 1 / 3), (3, 2 / 3)):
        limiter.settle(limiter.record(chat, at), at + 0.001)
    assert limiter.global_ready_at(1.0) == pytest.approx(1.3)
    one = RateLimiter(global_per_second=1, jitter_margin=0.0)
    lost = one.record(1, 0.0)
    assert one.global_ready_at(5.0) == pytest.approx(6.0)  # five seconds in flight: it may arrive any moment
    one.settle(lost, 5.0, answered=False)  # no answer at all: it may have arrived until then
    assert one.global_ready_at(5.5) == pytest.approx(6.0)


def test_the_quickest_round_trip_is_the_way_not_jitter() -> None:
    """A far server: 100 ms there and back every time is no bunching, so it costs no pacing."""
    remote = RateLimiter(global_per_second=1, jitter_margin=0.0)
    for k in range(16):
        remote.settle(remote.record(k, 10.0 * k), 10.0 * k + 0.1)
    assert remote.rtt_floor == pytest.approx(0.1)
    assert remote.global_ready_at(150.2) == pytest.approx(151.0)


def _simulate(limiter: RateLimiter, sends: int, rng: random.Random) -> tuple[list[float], float]:
    """A sender on a fake clock against a loaded host: its arrival times, and its rate as Telegram sees it.

    Each request takes 1-3 ms to arrive, one in twenty is held up 40-80 ms (a
    core taken by another process), and each answer takes 1 ms more; the
    sender wakes up to 2 ms late. Answers are settled in time order.
    """
    now, arrivals = 0.0, []
    answers: list[tuple[float, int, Send]] = []
    for chat in range(1, sends + 1):
        while True:
            ready = limiter.ready_at(chat, now)
            while answers and answers[0][0] <= ready:
                at, _, send = heapq.heappop(answers)
                limiter.settle(send, at)
            if limiter.ready_at(chat, ready) <= ready:
                break
            now = ready
        now = ready + rng.uniform(0.0, 0.002)
        send = limiter.record(chat, now)
        delay = rng.uniform(0.001, 0.003) + (rng.uniform(0.04, 0.08) if rng.random() < 0.05 else 0.0)
        arrivals.append(now + delay)
        heapq.heappush(answers, (now + delay + 0.001, chat, send))
    arrivals.sort()
    return arrivals, (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


def _busiest_second(times: list[float]) -> int:
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


def test_arrivals_held_up_on_the_way_never_make_a_second_over_the_limit() -> None:
    arrivals, rate = _simulate(RateLimiter(global_per_second=30), 900, random.Random(5))
    assert _busiest_second(arrivals) <= 30
    assert rate >= 0.95 * 30, rate
    assert sum(1 for t in arrivals if t < 1.0) <= 31  # no initial burst
    exact, _ = _simulate(
        RateLimiter(global_per_second=30, jitter_margin=0, max_margin=0, count_answers=False), 900, random.Random(5)
    )
    assert _busiest_second(exact) > 30, "counted where they left, the same sends overshoot where they arrive"


def _record_answered(limiter: RateLimiter, chat_id: int, now: float) -> None:
    limiter.settle(limiter.record(chat_id, now), now)


def test_a_chat_at_its_limit_does_not_hold_others_and_429_stops_everyone() -> None:
    limiter = RateLimiter(global_per_second=30, private_per_second=1, group_per_minute=20)
    _record_answered(limiter, 7, 0.0)
    assert limiter.chat_ready_at(7, 0.1) == pytest.approx(1.0 + limiter.margin)
    assert limiter.ready_at(8, 0.1) == pytest.approx(0.1)
    group = -1001
    now = 0.0
    for _ in range(20):
        now = limiter.ready_at(group, now)
        _record_answered(limiter, group, now)
    assert now == pytest.approx(19.0, abs=0.5)  # one a second into the group ...
    assert limiter.chat_ready_at(group, now) == pytest.approx(60.0, abs=0.05)  # ... and 20 a minute
    limiter.pause(3, now)
    assert limiter.ready_at(8, now) == pytest.approx(now + 3)
    assert limiter.prune(200.0) == 2 and limiter.tracked_chats() == 0


def test_a_group_429_pauses_that_group_and_a_private_one_the_bot() -> None:
    limiter = RateLimiter(global_per_second=30)
    assert limiter.flood_wait(-1001, 40, 10.0) == "chat"
    assert limiter.chat_ready_at(-1001, 10.0) == pytest.approx(50.0)
    assert limiter.ready_at(8, 10.0) == pytest.approx(10.0) and not limiter.paused(10.0)
    assert limiter.margin == pytest.approx(limiter.base_margin)
    assert limiter.flood_wait(-1001, 30, 12.0) == "chat"  # the same group again is still its own limit
    assert limiter.flood_wait(-1002, 2, 12.5) == "bot"  # a second group within a second: the bot's budget
    assert limiter.paused_until == pytest.approx(14.5)
    assert limiter.flood_wait(8, 3, 20.0) == "bot"
    assert limiter.ready_at(9, 20.0) == pytest.approx(23.0)


def test_a_reply_takes_the_next_place_the_outbox_leaves_it() -> None:
    limiter = RateLimiter(global_per_second=30)
    now = 0.0
    for chat in range(1, 31):  # the outbox fills the window, evenly
        now = limiter.global_ready_at(now)
        _record_answered(limiter, chat, now)
    ready = limiter.reply_ready_at(now)
    assert now < ready <= now + 0.1  # a place frees within milliseconds: the reply waits for it
    with limiter.reserving():
        assert limiter.global_ready_at(ready) > ready  # and the outbox leaves it that place
    burst = RateLimiter(global_per_second=30)
    for _ in range(30):
        burst.settle(burst.record_global(5.0), 5.0)
    assert burst.reply_ready_at(5.0) == 5.0  # replies that filled the window themselves go at once, as ever


def test_bot_wide_429s_widen_the_margin_and_a_quiet_minute_narrows_it() -> None:
    limiter = RateLimiter(global_per_second=30, jitter_margin=0.01, max_margin=0.11)
    limiter.flood_wait(5, 1, 0.0)
    limiter.flood_wait(6, 1, 0.5)
    limiter.flood_wait(7, 1, 0.7)
    assert limiter.margin == pytest.approx(0.11)  # two steps of 50 ms, then the cap
    _record_answered(limiter, 8, 30.0)
    assert limiter.margin == pytest.approx(0.11)
    _record_answered(limiter, 9, 61.0)
    assert limiter.margin == pytest.approx(0.06)
    _record_answered(limiter, 10, 122.0)
    assert limiter.margin == pytest.approx(0.01)


# -- end to end ---------------------------------------------------------------------------------


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(limits=Limits(global_per_second=FAST)) as emu:
        yield emu


@pytest.fixture
async def bot(emulator: Emulator) -> AsyncIterator[Bot]:
    bot = make_bot(token=emulator.token, base_url=emulator.base_url, pool_size=32)
    await bot.initialize()
    yield bot
    await bot.shutdown()


def settings(rate: float = FAST) -> DeliverySettings:
    return DeliverySettings(global_per_second=rate, poll_seconds=0.2, retry_deadline_minutes=5)


def dispatcher(
    sessions: async_sessionmaker[AsyncSession], bot: Bot, rate: float = FAST, worker: str = "test-1", **kwargs: object
) -> Dispatcher:
    kwargs.setdefault("max_in_flight", 16)
    return Dispatcher(sessions=sessions, bot=bot, settings=settings(rate), worker_id=worker, **kwargs)  # type: ignore[arg-type]


async def queue(
    sessions: async_sessionmaker[AsyncSession], users: list[SimUser], priority: int = 3, prefix: str = "m"
) -> None:
    async with sessions() as session:
        rows = [
            NewMessage(chat_id=u.id, text=f"{prefix} {i}", priority=priority, dedup_key=f"{prefix}:{i}")
            for i, u in enumerate(users)
        ]
        await outbox.enqueue_many(session, rows)
        await session.commit()


def delivered(emu: Emulator) -> Counter[str]:
    return Counter(m.text or "" for messages in emu.state.sent.values() for m in messages)


async def until(probe: Callable[[], bool], timeout: float, every: float = 0.02) -> None:
    """Poll `probe` (not on every emulator change: counting 10,000 messages per message is quadratic)."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout} s")
        await asyncio.sleep(every)


async def test_every_message_arrives_exactly_once(
    sessions: async_sessionmaker[AsyncSession], emulator: Emulator, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    users = [emulator.user(f"u{i}") for i in range(300)]
    await queue(sessions, users)
    worker = dispatcher(sessions, bot, summary_seconds=0.3)
    with caplog.at_level(logging.INFO, logger="siaga.dispatcher"):
        await worker.start()
        await until(lambda: len(delivered(emulator)) == 300, timeout=15)
        await asyncio.sleep(0.4)
        await worker.stop()
    assert set(delivered(emulator).values()) == {1}
    assert all(len(emulator.sent_to(u)) == 1 for u in users)
    assert emulator.rejections == []
    async with sessions() as session:
        assert await outbox.queue_depth(session) == {}
        ids = (await session.scalars(select(Outbox.telegram_message_id))).all()
    assert None not in ids
    summaries = [r.getMessage() for r in caplog.records if "sent/s" in r.getMessage()]
    assert summaries and all(emulator.token not in line and " m " not in line for line in summaries)


async def test_injected_429_and_5xx_lose_and_duplicate_nothing(
    sessions: async_sessionmaker[AsyncSession], emulator: Emulator, bot: Bot
) -> None:
    emulator.faults = Faults(rate_429=0.1, rate_5xx=0.1, seed=7)
    users = [emulator.user(f"u{i}") for i in range(60)]
    await queue(sessions, users)
    worker = dispatcher(sessions, bot)
    await worker.start()
    await until(lambda: len(delivered(emulator)) == 60, timeout=40)
    await worker.stop()
    assert set(delivered(emulator).values()) == {1}
    reasons = Counter(r.status for r in emulator.rejections)
    assert reasons[429] >= 1 and reasons[502] >= 1
    assert worker.stats.rate_limited == reasons[429]
    async with sessions() as session:
        states = Counter((await session.scalars(select(Outbox.state))).all())
    assert states == {"sent": 60}


async def test_global_limit_is_respected_and_nearly_reached(
    sessions: async_sessionmaker[AsyncSession], emulator: Emulator, bot: Bot
) -> None:
    emulator.limits.global_per_second = 100
    emulator.limiter.reset()
    users = [emulator.user(f"u{i}") for i in range(250)]
    await queue(sessions, users)
    worker = dispatcher(sessions, bot, rate=100)
    await worker.start()
    await until(lambda: len(delivered(emulator)) == 250, timeout=15)
    await worker.stop()
    times = sorted(m.current.mono for messages in emulator.state.sent.values() for m in messages)
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert emulator.rejections == []
    assert 85 <= rate <= 101, rate


async def test_one_busy_chat_waits_a_second_between_messages_while_others_proceed(
    sessions: async_sessionmaker[AsyncSession], emulator: Emulator, bot: Bot
) -> None:
    emulator.limits.global_per_second = 30
    emulator.limiter.reset()
    busy = emulator.user("busy")
    others = [emulator.user(f"u{i}") for i in range(45)]
    await queue(sessions, [busy] * 5, prefix="busy")
    await queue(sessions, others, prefix="other")
    worker = dispatcher(sessions, bot, rate=30, batch_size=4)  # a buffer the busy chat could fill alone
    await worker.start()
    await until(lambda: len(emulator.sent_to(busy)) == 5, timeout=10)
    await worker.stop()
    busy_times = [m.current.mono for m in emulator.sent_to(busy)]
    gaps = [b - a for a, b in zip(busy_times, busy_times[1:], strict=False)]
    assert all(0.95 <= gap <= 1.3 for gap in gaps), gaps
    assert [m.text for m in emulator.sent_to(busy)] == [f"busy {i}" for i in range(5)]
    last_other = max(m.current.mono for u in others for m in emulator.sent_to(u))
    assert last_other < busy_times[3], "the other chats should not wait behind the busy one"
    assert emulator.rejections == []


async def _roster(session: AsyncSession, telegram_user_ids: list[int], group_chat: int) -> list[int]:
    unit = Unit(code="POLSEK-A", name="Polsek A", kind="polsek", force="polri")
    session.add(unit)
    await session.flush()
    people = [
        Personnel(nrp=f"8701{i:04d}", name=f"P{i}", force="polri", unit_id=unit.id, telegram_user_id=uid)
        for i, uid in enumerate(telegram_user_ids)
    ]
    session.add_all([*people, CommandGroup(unit_id=unit.id, chat_id=group_chat)])
    await session.flush()
    return [person.id for person in people]


async def test_blocked_deactivated_and_lost_chats_are_marked_unreachable(
    sessions: async_sessionmaker[AsyncSession], emulator: Emulator, bot: Bot
) -> None:
    blocked, gone, fine = emulator.user("blocked"), emulator.user("gone"), emulator.user("fine")
    group = emulator.group("Posko Polsek A")
    emulator.block(blocked)
    emulator.deactivate(gone)
    emulator.forget_chat(group)
    async with sessions() as session:
        ids = await _roster(session, [blocked.id, gone.id, fine.id], group.id)
        for person_id, user in zip(ids, (blocked, gone, fine), strict=True):
            await outbox.enqueue(
                session,
                chat_id=user.id,
                personnel_id=person_id,
                text="shift reminder",
                priority=Priority.reminder,
                dedup_key=f"r:{person_id}",
            )
        await outbox.enqueue(session, chat_id=group.id, text="alert", priority=Priority.group_alert, dedup_key="g")
        await session.commit()
    worker = dispatcher(sessions, bot)
    await worker.start()
    await emulator.wait_for(fine, timeout=5)
    for _ in range(100):
        async with sessions() as session:
            if await outbox.queue_depth(session) == {}:
                break
        await asyncio.sleep(0.05)
    await worker.stop()
    async with sessions() as session:
        reachable = dict((await session.execute(select(Personnel.name, Personnel.reachable))).all())
        group_reachable = await session.scalar(select(CommandGroup.reachable))
        states = dict((await session.execute(select(Outbox.dedup_key, Outbox.state))).all())
        reasons = (await session.scalars(select(Personnel.unreachable_reason).order_by(Personnel.id))).all()
    assert reachable == {"P0": False, "P1": False, "P2": True}
    assert group_reachable is False
    assert states == {"r:1": "failed", "r:2": "failed", "r:3": "sent", "g": "failed"}
    assert reasons[:2] == ["Forbidden: bot was blocked by the user", "Forbidden: user is deactivated"]
    assert worker.stats.unreachable == 3


async def test_escalation_overtakes_a_bulk_run_within_two_seconds(
    sessions: async_sessionmaker[AsyncSession], emulator: Emulator, bot: Bot
) -> None:
    users = [emulator.user(f"u{i}") for i in range(5000)]
    posko = emulator.group("Posko Polres")
    await queue(sessions, users, priority=Priority.broadcast)
    worker = dispatcher(sessions, bot)
    await worker.start()
    await until(lambda: len(delivered(emulator)) >= 300, timeout=10)
    latencies = []
    for n, wake in enumerate((True, False)):  # woken by the handler, or found at the next poll
        async with sessions() as session:
            await outbox.enqueue(
                session,
                chat_id=posko.id,
                text=f"KONTINJENSI {n}",
                priority=Priority.escalation,
                dedup_key=f"contingency:{n}",
            )
            await session.commit()
        queued = time.monotonic()
        if wake:
            worker.wake()
        message = await emulator.wait_for(posko, lambda m, n=n: m.text == f"KONTINJENSI {n}", timeout=5)
        latencies.append(message.current.mono - queued)
    pending_bulk = 5000 - len(delivered(emulator)) + 2
    await worker.abort()
    assert max(latencies) < 2.0, latencies
    assert pending_bulk > 1000, "the alerts should have arrived in the middle of the run"


@pytest.mark.parametrize(("second_worker", "lease"), [("test-1", 60.0), ("test-2", 1.5)])
async def test_restart_after_a_crash_delivers_everything(
    sessions: async_sessionmaker[AsyncSession], emulator: Emulator, bot: Bot, second_worker: str, lease: float
) -> None:
    """Same worker id: takes its rows back at once; another id: after the dead one's lease."""
    users = [emulator.user(f"u{i}") for i in range(400)]
    await queue(sessions, users)
    first = dispatcher(sessions, bot, lease_seconds=lease)
    await first.start()
    await until(lambda: len(delivered(emulator)) >= 120, timeout=10)
    at_risk = first.at_risk()
    await first.abort()
    async with sessions() as session:
        held = set((await session.scalars(select(Outbox.text).where(Outbox.state == "sending"))).all())
    second = dispatcher(sessions, bot, worker=second_worker, lease_seconds=lease)
    await second.start()
    await until(lambda: len(delivered(emulator)) == 400, timeout=20)
    await asyncio.sleep(0.2)
    await second.stop()
    counts = delivered(emulator)
    duplicated = {text for text, n in counts.items() if n > 1}
    assert max(counts.values()) <= 2
    assert duplicated <= held, "only rows held by the dead worker may go out twice"
    assert len(duplicated) <= at_risk <= first.max_in_flight + 150
    async with sessions() as session:
        assert await outbox.queue_depth(session) == {}


async def test_two_dispatchers_share_one_postgresql_queue(
    sessions: async_sessionmaker[AsyncSession], backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SKIP LOCKED between processes is a PostgreSQL matter")
    total = 10_000
    async with Emulator(limits=Limits(global_per_second=1000), record_calls=False) as emu:
        users = [emu.user(f"u{i}") for i in range(total)]
        await queue(sessions, users)
        bots = [make_bot(token=emu.token, base_url=emu.base_url, pool_size=16) for _ in range(2)]
        workers = [dispatcher(sessions, b, rate=500, worker=f"pg-{i}", max_in_flight=8) for i, b in enumerate(bots)]
        for worker in workers:
            await worker.start()
        await until(lambda: len(delivered(emu)) == total, timeout=120, every=0.2)
        for worker in workers:
            await worker.stop()
        for b in bots:
            await b.shutdown()
        counts = delivered(emu)
    assert len(counts) == total and set(counts.values()) == {1}
    assert all(worker.stats.sent > total // 4 for worker in workers)


async def test_each_group_is_paced_by_one_of_two_dispatchers_and_a_stopped_ones_pass_to_the_other(
    sessions: async_sessionmaker[AsyncSession], backend: str
) -> None:
    """Telegram allows a group 20 a minute whoever sends: two workers each pacing it at 20 would send 40.
    Scaled here to 4 in 3 s, at the emulator and in each dispatcher's limiter."""
    if backend != "postgresql":
        pytest.skip("SKIP LOCKED between processes is a PostgreSQL matter")
    limits = Limits(mode="arrivals", global_per_second=100, group_per_minute=4, group_window=3.0)
    async with Emulator(limits=limits, record_calls=False) as emu:
        groups = [emu.group(f"Posko {i}") for i in range(2)]
        assert {g.id % 2 for g in groups} == {0, 1}, "one group in each worker's share"

        async def alerts(first: int, count: int) -> None:
            async with sessions() as session:
                rows = [
                    NewMessage(
                        chat_id=g.id, text=f"{g.title} {i}", priority=Priority.group_alert, dedup_key=f"{g.id}:{i}"
                    )
                    for g in groups
                    for i in range(first, first + count)
                ]
                await outbox.enqueue_many(session, rows)
                await session.commit()

        async def beating(names: list[str]) -> None:
            while True:
                async with sessions() as session:
                    for name in names:
                        await workers.beat(session, worker=name, now=system_clock())
                    await session.commit()
                await asyncio.sleep(0.5)

        names = ["pg-0", "pg-1"]
        beats = asyncio.create_task(beating(names))
        await asyncio.sleep(0.1)
        await alerts(0, 8)
        bots = [make_bot(token=emu.token, base_url=emu.base_url, pool_size=8) for _ in names]
        pair = [
            Dispatcher(
                sessions=sessions,
                bot=b,
                settings=settings(100),
                worker_id=name,
                limiter=RateLimiter(global_per_second=100, group_per_minute=4, group_window=3.0),
                max_in_flight=8,
                batch_size=2,  # both claim often: without the share, both would send to both groups
            )
            for name, b in zip(names, bots, strict=True)
        ]
        for dispatcher_ in pair:
            await dispatcher_.start()
        await until(lambda: all(len(emu.sent_to(g)) == 8 for g in groups), timeout=30)
        assert emu.rejections == []
        assert [d.stats.sent for d in pair] == [8, 8], "each sent one group's eight"

        beats.cancel()
        await pair[1].stop()
        async with sessions() as session:
            await workers.leave(session, worker="pg-1")
            await session.commit()
        beats = asyncio.create_task(beating(["pg-0"]))
        # the new owner does not know the old one's sends of the last window: past it, no 429 is possible
        await asyncio.sleep(3.0)
        await alerts(8, 4)
        await until(lambda: all(len(emu.sent_to(g)) == 12 for g in groups), timeout=30)
        beats.cancel()
        await pair[0].stop()
        async with sessions() as session:
            await workers.leave(session, worker="pg-0")  # a beat left behind would keep a share of the groups
            await session.commit()
        for b in bots:
            await b.shutdown()
        assert emu.rejections == []
        assert pair[0].stats.sent == 16, "pg-0 sent its own group's four and the stopped pg-1's"
        assert set(delivered(emu).values()) == {1}


# -- against a limiter that counts arrivals, as Telegram does ----------------------------------------


@pytest.fixture
async def arrivals() -> AsyncIterator[Callable[[Limits], Awaitable[tuple[Emulator, Bot]]]]:
    """An emulator counting arrivals in sliding windows with the given limits, and a dispatcher's Bot for it."""
    stack: list[tuple[Emulator, Bot]] = []

    async def start(limits: Limits) -> tuple[Emulator, Bot]:
        emu = Emulator(limits=limits)
        await emu.start()
        bot = make_bot(token=emu.token, base_url=emu.base_url, pool_size=32)
        await bot.initialize()
        stack.append((emu, bot))
        return emu, bot

    yield start
    for emu, bot in stack:
        await bot.shutdown()
        await emu.stop()


async def test_a_fan_out_of_600_gets_no_429_from_a_limiter_counting_arrivals(
    sessions: async_sessionmaker[AsyncSession], arrivals: Callable[[Limits], Awaitable[tuple[Emulator, Bot]]]
) -> None:
    emu, bot = await arrivals(Limits(mode="arrivals", global_per_second=200))
    users = [emu.user(f"u{i}") for i in range(600)]
    await queue(sessions, users)
    worker = dispatcher(sessions, bot, rate=200)
    await worker.start()
    await until(lambda: len(delivered(emu)) == 600, timeout=15)
    await worker.stop()
    assert set(delivered(emu).values()) == {1}
    assert emu.rejections == [] and worker.stats.rate_limited == 0


async def test_a_429_for_one_group_pauses_that_group_while_the_others_continue(
    sessions: async_sessionmaker[AsyncSession], arrivals: Callable[[Limits], Awaitable[tuple[Emulator, Bot]]]
) -> None:
    """The group has room for two messages in three seconds at Telegram (as if replies had used the rest)."""
    emu, bot = await arrivals(Limits(mode="arrivals", global_per_second=100, group_per_minute=2, group_window=3.0))
    posko = emu.group("Posko Polres")
    users = [emu.user(f"u{i}") for i in range(500)]
    async with sessions() as session:
        rows = [
            NewMessage(chat_id=posko.id, text=f"alert {i}", priority=Priority.group_alert, dedup_key=f"g:{i}")
            for i in range(4)
        ]
        await outbox.enqueue_many(session, rows)
        await session.commit()
    await queue(sessions, users)
    worker = dispatcher(sessions, bot, rate=100)
    await worker.start()
    await until(lambda: len(emu.sent_to(posko)) == 4 and len(delivered(emu)) == 504, timeout=15)
    await worker.stop()
    [refused] = emu.rejections
    assert (refused.chat_id, refused.reason, refused.retry_after) == (posko.id, "group", 1)
    assert worker.stats.chat_pauses == 1 and worker.stats.rate_limited == 1
    private = sorted(m.current.mono for u in users for m in emu.sent_to(u))
    during = [t for t in private if refused.mono < t < refused.mono + 0.9]
    assert len(during) > 30, "the private chats should go on while the group waits"
    group_times = [m.current.mono for m in emu.sent_to(posko)]
    assert [m.text for m in emu.sent_to(posko)] == [f"alert {i}" for i in range(4)]
    assert min(t for t in group_times if t > refused.mono) >= refused.mono + 1.0
    assert set(delivered(emu).values()) == {1}


async def test_a_bot_wide_429_pauses_every_chat_for_its_retry_after(
    sessions: async_sessionmaker[AsyncSession], arrivals: Callable[[Limits], Awaitable[tuple[Emulator, Bot]]]
) -> None:
    """Telegram allows 50 a second here, the dispatcher believes 200: the 51st private message draws a 429."""
    emu, bot = await arrivals(Limits(mode="arrivals", global_per_second=50))
    users = [emu.user(f"u{i}") for i in range(120)]
    await queue(sessions, users)
    worker = dispatcher(sessions, bot, rate=200)
    await worker.start()
    await until(lambda: len(delivered(emu)) == 120, timeout=15)
    await worker.stop()
    first = emu.rejections[0]
    assert first.reason == "global" and first.retry_after == 1
    calls = [c.mono for c in emu.calls_to("sendMessage")]
    assert not [t for t in calls if first.mono + 0.2 < t < first.mono + 0.95], "nobody may send during the pause"
    assert worker.stats.chat_pauses == 0
    assert worker.limiter.margin > settings().jitter_margin_seconds  # the bunching it did not allow for
    assert set(delivered(emu).values()) == {1}
