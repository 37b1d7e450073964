"""Flood limits and fault injection over real HTTP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from telegram import Bot
from telegram.error import NetworkError, RetryAfter

from bot.emulator import Emulator, Faults, Limits
from bot.emulator.limits import RateLimiter
from tests.emulator.helpers import call


async def _send_many(
    http: aiohttp.ClientSession, emu: Emulator, chat_ids: list[int]
) -> list[tuple[int, dict[str, Any]]]:
    return list(await asyncio.gather(*(call(http, emu, "sendMessage", chat_id=c, text="x") for c in chat_ids)))


@pytest.mark.asyncio
async def test_global_limit_answers_429_with_retry_after(http: aiohttp.ClientSession) -> None:
    limits = Limits(global_per_second=5, private_per_second=100, private_burst=100)
    async with Emulator(limits=limits) as emu:
        users = [emu.user(f"U{i}").id for i in range(6)]
        results = await _send_many(http, emu, users[:5])
        assert [s for s, _ in results] == [200] * 5
        status, body = await call(http, emu, "sendMessage", chat_id=users[5], text="x")
        assert (status, body) == (
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            },
        )
        assert emu.rejections[-1].reason == "global" and emu.count(users[5]) == 0


@pytest.mark.asyncio
async def test_private_chat_burst_allowance_then_429(http: aiohttp.ClientSession) -> None:
    async with Emulator(limits=Limits(private_per_second=10, private_burst=3)) as emu:
        budi, siti = emu.user("Budi"), emu.user("Siti")
        statuses = [s for s, _ in await _send_many(http, emu, [budi.id] * 4)]
        assert sorted(statuses) == [200, 200, 200, 429]
        assert emu.rejections[-1].reason == "private"
        assert (await call(http, emu, "sendMessage", chat_id=siti.id, text="x"))[0] == 200
        await asyncio.sleep(1.0)  # retry_after = 1 s honoured -> accepted again
        assert (await call(http, emu, "sendMessage", chat_id=budi.id, text="x"))[0] == 200


@pytest.mark.asyncio
async def test_group_limit_with_a_shrunk_window(http: aiohttp.ClientSession) -> None:
    async with Emulator(limits=Limits(group_per_minute=4, group_window=0.4)) as emu:
        posko = emu.group("Posko", [emu.user("Ketua")])
        other = emu.group("Lain", [emu.user("Ketua2")])
        statuses = [s for s, _ in await _send_many(http, emu, [posko.id] * 5)]
        assert statuses.count(200) == 4 and statuses.count(429) == 1
        assert (await call(http, emu, "sendMessage", chat_id=other.id, text="x"))[0] == 200
        assert emu.count(posko) == 4 and emu.rejections[-1].reason == "group"


@pytest.mark.asyncio
async def test_default_numbers(http: aiohttp.ClientSession) -> None:
    """Real-sized limits, checked in well under 2 s."""
    async with Emulator() as emu:
        assert emu.limits == Limits()
        users = [emu.user(f"U{i}").id for i in range(31)]
        statuses = [s for s, _ in await _send_many(http, emu, users)]
        assert statuses.count(200) == 30 and statuses.count(429) == 1
    async with Emulator() as emu:
        posko = emu.group("Posko", [emu.user("Ketua")])
        statuses = [s for s, _ in await _send_many(http, emu, [posko.id] * 21)]
        assert statuses.count(200) == 20
        rejected = [b for s, b in await _send_many(http, emu, [posko.id]) if s == 429]
        assert rejected[0]["parameters"]["retry_after"] == 3  # 20/min -> a token per 3 s
    async with Emulator() as emu:
        budi = emu.user("Budi")
        statuses = [s for s, _ in await _send_many(http, emu, [budi.id] * 4)]
        assert statuses.count(200) == 3 and statuses.count(429) == 1


@pytest.mark.asyncio
async def test_pacer_at_the_limit_is_never_rejected_but_a_faster_one_is(http: aiohttp.ClientSession) -> None:
    limits = Limits(group_per_minute=5, group_window=0.5, global_per_second=1000)
    async with Emulator(limits=limits) as emu:
        paced = emu.group("Paced", [emu.user("A")])
        rushed = emu.group("Rushed", [emu.user("B")])

        async def pace(chat_id: int, interval: float, n: int) -> list[int]:
            """Sends on a fixed schedule; a stalled sender restarts it rather than burst."""
            next_at, out = time.monotonic(), []
            for k in range(n):
                now = time.monotonic()
                if now - next_at > interval:
                    next_at = now
                await asyncio.sleep(max(0.0, next_at - now))
                out.append((await call(http, emu, "sendMessage", chat_id=chat_id, text=str(k)))[0])
                next_at += interval
            return out

        at_limit, too_fast = await asyncio.gather(pace(paced.id, 0.1, 15), pace(rushed.id, 0.025, 15))
        assert at_limit == [200] * 15  # three windows at exactly 5 per 0.5 s
        assert 429 in too_fast  # four times the rate: the 5-token bucket runs dry


@pytest.mark.asyncio
async def test_edits_count_towards_the_limit(http: aiohttp.ClientSession) -> None:
    async with Emulator(limits=Limits(private_per_second=1, private_burst=2)) as emu:
        budi = emu.user("Budi")
        _, body = await call(http, emu, "sendMessage", chat_id=budi.id, text="v0")
        mid = body["result"]["message_id"]
        assert (await call(http, emu, "editMessageText", chat_id=budi.id, message_id=mid, text="v1"))[0] == 200
        status, _ = await call(http, emu, "editMessageText", chat_id=budi.id, message_id=mid, text="v2")
        assert status == 429


@pytest.mark.asyncio
async def test_fault_injection_shares_and_no_delivery_on_failure(http: aiohttp.ClientSession) -> None:
    faults = Faults(rate_429=0.25, rate_5xx=0.15, seed=5)
    async with Emulator(limits=Limits(enforce=False), faults=faults) as emu:
        budi = emu.user("Budi")
        statuses = [(await call(http, emu, "sendMessage", chat_id=budi.id, text="x"))[0] for _ in range(300)]
        share_429, share_5xx = statuses.count(429) / 300, statuses.count(502) / 300
        assert 0.17 < share_429 < 0.33 and 0.09 < share_5xx < 0.22
        assert emu.count(budi) == statuses.count(200)
        assert (await call(http, emu, "getMe"))[0] == 200  # getters are not faulted
        emu.faults.deliver_on_5xx = True
        emu.faults.rate_429, emu.faults.rate_5xx = 0.0, 1.0
        before = emu.count(budi)
        assert (await call(http, emu, "sendMessage", chat_id=budi.id, text="lost answer"))[0] == 502
        assert emu.count(budi) == before + 1  # delivered although the bot saw an error


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_ptb_sees_retry_after_and_network_error() -> None:
    async with Emulator(faults=Faults(rate_429=1.0, retry_after=7)) as emu:
        budi = emu.user("Budi")
        async with Bot(emu.token, base_url=emu.base_url) as bot:
            with pytest.raises(RetryAfter) as err:
                await bot.send_message(budi.id, "x")
            assert "7" in str(err.value)
            emu.faults.rate_429, emu.faults.rate_5xx = 0.0, 1.0
            with pytest.raises(NetworkError, match="Bad Gateway"):
                await bot.send_message(budi.id, "x")


# -- arrivals counted in sliding windows, as Telegram must -------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _admitted(limits: Limits, arrivals: list[tuple[float, int]]) -> list[bool]:
    """Which of these (time, chat) arrivals a limiter on a fake clock admits."""
    clock = _Clock()
    limiter = RateLimiter(limits, clock)
    out = []
    for at, chat in arrivals:
        clock.t = 1000.0 + at
        out.append(limiter.check(chat, private=chat > 0) is None)
    return out


def test_one_arrival_held_up_on_the_way_is_the_thirty_first_in_a_second() -> None:
    """Sent exactly 30 a second, the first held up 20 ms: 31 arrive within one second."""
    arrivals = [(k / 30 + (0.02 if k == 0 else 0.0), 1_000 + k) for k in range(60)]
    assert all(_admitted(Limits(), arrivals))  # the forgiving bucket lets the bunch through
    strict = Limits(mode="arrivals", honour_retry_after=False)
    admitted = _admitted(strict, arrivals)
    assert admitted.index(False) == 30 and admitted.count(False) == 1
    assert all(_admitted(strict, [(k / 30, 1_000 + k) for k in range(60)]))


def test_arrivals_per_chat_one_a_second_private_twenty_a_minute_group() -> None:
    private = [(0.0, 7), (0.9, 7), (1.0, 7), (1.95, 7), (2.0, 7)]
    assert _admitted(Limits(), private)[:2] == [True, True]  # a private burst of three passes a bucket
    assert _admitted(Limits(mode="arrivals", honour_retry_after=False), private) == [True, False, True, False, True]
    group = [(float(k), -5) for k in range(20)] + [(59.9, -5), (60.0, -5)]
    assert _admitted(Limits(mode="arrivals", honour_retry_after=False), group) == [True] * 20 + [False, True]


def test_arrival_refusal_gives_the_seconds_until_the_oldest_leaves_and_counts_nothing() -> None:
    clock = _Clock()
    limiter = RateLimiter(Limits(mode="arrivals", group_per_minute=20), clock)
    for k in range(20):
        clock.t = 1000.0 + k
        assert limiter.check(-5, private=False) is None
    clock.t = 1030.0
    verdict = limiter.check(-5, private=False)
    assert verdict is not None and (verdict.scope, verdict.retry_after) == ("group", 30)
    clock.t = 1059.5  # the arrival at 1000 still counts
    early = limiter.check(-5, private=False)
    assert early is not None and early.retry_after == 1
    clock.t = 1060.5  # past that answer's flood wait: the refusals took no place in the window
    assert limiter.check(-5, private=False) is None
    assert limiter.check(-6, private=False) is None  # another group was never held


@pytest.mark.asyncio
async def test_arrival_mode_over_http_counts_a_sliding_second(http: aiohttp.ClientSession) -> None:
    limits = Limits(mode="arrivals", global_per_second=5, private_per_second=100, honour_retry_after=False)
    async with Emulator(limits=limits) as emu:
        users = [emu.user(f"U{i}").id for i in range(12)]
        assert [s for s, _ in await _send_many(http, emu, users[:3])] == [200] * 3
        await asyncio.sleep(0.5)
        assert [s for s, _ in await _send_many(http, emu, users[3:5])] == [200] * 2
        status, body = await call(http, emu, "sendMessage", chat_id=users[5], text="x")
        assert (status, body["parameters"]) == (429, {"retry_after": 1})
        assert emu.rejections[-1].reason == "global"
        await asyncio.sleep(0.6)  # the first three left the window, the two of 0.5 s did not
        statuses = [s for s, _ in await _send_many(http, emu, users[6:10])]
        assert sorted(statuses) == [200, 200, 200, 429]
