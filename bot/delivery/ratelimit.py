"""Pacing for Telegram's flood limits as Telegram counts them: on arrival, at the far end.

Telegram allows a bot about 30 messages per second overall, one per second
into one chat and 20 per minute into one group, and answers `429` with a
`retry_after` when a bot goes over. It counts on its side, over the times the
requests *arrive*. Requests that leave evenly spaced arrive bunched when the
host is loaded (a send task waits for a core, the server's loop is busy):
pacing exact at the sender drew 17-18 429s per 600-message broadcast from an
arrival-counting limiter on a 2-core host with CPU hogs beside it (53% of
the limit), and a fixed margin of 40 ms still drew one in two runs of five,
the delays on the way differing by up to 54 ms (bench/pacing.py,
bench/RESULTS.md).

So a send is counted where it may have arrived, not where it left. Telegram
counted it somewhere between the moment it was decided (`Send.decided`) and
its answer less the quickest round trip seen lately (`rtt_floor`, which is
what keeps a far server's steady latency from costing pacing). Until it is
answered it counts as arriving now. Each limit is a `SlidingWindow` over those times that refuses the next
send while `limit` sends may have arrived in the last `period + margin`
seconds; the next send arrives no earlier than it leaves, so no window
Telegram counts holds more than the limit, however the delays on the way
vary. What that costs is the jitter the answers show, measured send by send,
not guessed: with the margin, 98.3% of the limit and no 429 on that host.

* `Pacer` spaces the global sends evenly on a schedule a sender woken a
  little late may catch up; a cold start never bursts.
* `RateLimiter` holds the global pair, one state per chat (private: one per
  second; group, negative chat id: one per second and 20 per minute), the
  pauses 429s impose, bot-wide or for one group (see `flood_wait` for how the
  scope is told), and `margin`: `jitter_margin_seconds` on every window,
  for what the answers cannot show (the floor also holds the way out, which
  was before the arrival), widened by each bot-wide 429 and narrowed again
  after a quiet minute. Direct replies count in the global window too, and
  take the outbox's next place when it fills it (`reply_ready_at`).

The limiter never sleeps: it says *when* a chat may send (`ready_at`), so the
dispatcher can pick another chat's row meanwhile. Time is a float of
monotonic seconds passed in by the caller, so tests drive it with a fake clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Literal

GROUP_WINDOW_SECONDS = 60.0
PRUNE_EVERY = 4096
JITTER_MARGIN_SECONDS = 0.01
MAX_MARGIN_SECONDS = 0.25
MARGIN_STEP_SECONDS = 0.05
NARROW_AFTER_SECONDS = 60.0
CORROBORATE_SECONDS = 1.0
FLOOR_SAMPLES = 128
REPLY_WAIT_SECONDS = 0.1

FloodScope = Literal["bot", "chat"]


def is_group(chat_id: int) -> bool:
    """Groups, supergroups and channels have negative ids in the Bot API."""
    return chat_id < 0


class Send:
    """One request as the windows count it: decided at `decided`, counted by Telegram at the latest at `at`.

    `at` is None while the request is in flight: its arrival may still be to come.
    """

    __slots__ = ("at", "decided")

    def __init__(self, decided: float, at: float | None = None) -> None:
        self.decided = decided
        self.at = at

    def latest(self, now: float, floor: float) -> float:
        """The latest it may have arrived: settled, or (in flight) no earlier than now less the floor."""
        return self.at if self.at is not None else max(self.decided, now - floor)


class Pacer:
    """Sends spaced `1/rate` apart on a schedule that a slightly late sender may catch up on.

    `_next` is when the next send is due. A send never goes before it; a send
    that goes late by at most `catch_up` seconds keeps the schedule (the next
    one is due one interval after the *scheduled* time), so timer lateness
    does not erode the rate. Later than that, or on a cold start, the schedule
    restarts from now: there is never a burst to "use up" idle time.
    """

    __slots__ = ("_next", "catch_up", "interval")

    def __init__(self, rate: float, *, catch_up: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.catch_up = max(0.0, catch_up)
        self._next: float | None = None

    def ready_at(self, now: float) -> float:
        return now if self._next is None else max(now, self._next)

    def record(self, now: float) -> None:
        if self._next is None or now - self._next > self.catch_up:
            self._next = now + self.interval
        else:
            self._next += self.interval

    def idle(self, now: float) -> bool:
        """Nothing scheduled ahead: forgetting the state changes no answer but a catch-up."""
        return self._next is None or self._next <= now


class SlidingWindow:
    """At most `limit` sends that may have arrived in any `period` seconds (see `Send.latest`)."""

    __slots__ = ("_sent", "limit", "period")

    def __init__(self, limit: float, period: float) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a window needs a limit of at least 1 and a positive period")
        self.limit = int(limit)
        self.period = period
        self._sent: deque[Send] = deque()

    def _expire(self, now: float) -> None:
        """Drop settled sends from the front that left the window; one in flight keeps its place."""
        sent = self._sent
        while sent and sent[0].at is not None and sent[0].at <= now - self.period:
            sent.popleft()

    def ready_at(self, now: float, floor: float = 0.0, reserved: int = 0, *, beyond: float = math.inf) -> float:
        """When one more send fits, with `reserved` places kept for others (at least one is left).

        A caller that only asks whether it fits by `beyond` may be answered
        with any time past it: any `limit` sends of the window arrived no
        later than the one that frees the place, so the newest `limit` bound
        it from below without a sort of the whole window (a burst of
        replies fills it with hundreds).
        """
        self._expire(now)
        limit = max(1, self.limit - reserved)
        if len(self._sent) < limit:
            return now
        if beyond < math.inf:
            soonest = min(send.latest(now, floor) for send in islice(reversed(self._sent), limit)) + self.period
            if soonest > beyond:
                return soonest
        # Settled sends are nearly in order already: sorting them is linear.
        latest = sorted(send.latest(now, floor) for send in self._sent)
        return max(now, latest[len(latest) - limit] + self.period)

    def record(self, send: Send) -> None:
        self._sent.append(send)

    def idle(self, now: float) -> bool:
        self._expire(now)
        return not self._sent


@dataclass
class _ChatState:
    windows: list[SlidingWindow]
    paused_until: float = float("-inf")

    def ready_at(self, now: float, floor: float) -> float:
        return max(self.paused_until, *(window.ready_at(now, floor) for window in self.windows))

    def record(self, send: Send) -> None:
        for window in self.windows:
            window.record(send)

    def idle(self, now: float) -> bool:
        return self.paused_until <= now and all(window.idle(now) for window in self.windows)


class _Floor:
    """The quickest round trip among about the last `FLOOR_SAMPLES` answers (two blocks, the older one dropped).

    Nothing until `FLOOR_SAMPLES // 8` answers came: the first ones open connections, and a connect
    before the arrival is no time the answer may be taken back by.
    """

    __slots__ = ("_count", "_current", "_previous", "_seen")

    def __init__(self) -> None:
        self._current = self._previous = float("inf")
        self._count = self._seen = 0

    def add(self, seconds: float) -> None:
        self._current = min(self._current, seconds)
        self._seen += 1
        self._count += 1
        if self._count >= FLOOR_SAMPLES:
            self._previous, self._current, self._count = self._current, float("inf"), 0

    @property
    def seconds(self) -> float:
        if self._seen < FLOOR_SAMPLES // 8:
            return 0.0
        return min(self._current, self._previous)


class RateLimiter:
    """Telegram's limits for one bot: global, per chat, counted where the sends may have arrived.

    `catch_up_seconds` is how late the global pacer may be and still keep its
    schedule (a tenth of a second by default: three sends at 30/s); the global
    window caps every `1 + margin` seconds at the limit regardless.
    `jitter_margin` is the margin every window keeps beyond what the answers
    show; `max_margin` is how far bot-wide 429s may widen the global one (at
    `jitter_margin` it never widens). `count_answers=False` counts sends where
    they left instead: with `jitter_margin=0, max_margin=0` that is the pacing
    exact at the sender this module had before it counted arrivals
    (bench/pacing.py runs it as the baseline).
    """

    def __init__(
        self,
        *,
        global_per_second: float = 30,
        private_per_second: float = 1,
        group_per_minute: float = 20,
        catch_up_seconds: float = 0.1,
        group_window: float = GROUP_WINDOW_SECONDS,
        jitter_margin: float = JITTER_MARGIN_SECONDS,
        max_margin: float = MAX_MARGIN_SECONDS,
        count_answers: bool = True,
    ) -> None:
        self.global_per_second = global_per_second
        self.private_per_second = private_per_second
        self.group_per_minute = group_per_minute
        self.group_window = group_window
        self.count_answers = count_answers
        self._global_pacer = Pacer(global_per_second, catch_up=catch_up_seconds)
        self._global_window = SlidingWindow(max(1.0, global_per_second), 1.0)
        self._chats: dict[int, _ChatState] = {}
        self._paused_until = float("-inf")
        self._records = 0
        self._last_group_429: tuple[int, float] | None = None
        self._widened_at = float("-inf")
        self._floor = _Floor()
        self._reserved = 0
        self.base_margin = self.margin = self.max_margin = 0.0
        self.set_margin(jitter_margin, max_margin=max_margin)

    # -- the margin -------------------------------------------------------------------------------

    def set_margin(self, seconds: float, *, max_margin: float | None = None) -> None:
        """The margin every window keeps from now on (the delivery settings' `jitter_margin_seconds`)."""
        self.base_margin = max(0.0, seconds)
        self.max_margin = max(self.base_margin, self.max_margin if max_margin is None else max_margin)
        self._set_global_margin(self.base_margin)

    def _set_global_margin(self, seconds: float) -> None:
        self.margin = seconds
        self._global_window.period = 1.0 + seconds
        self._global_pacer.interval = (1.0 + seconds) / self.global_per_second

    def _widen(self, now: float) -> None:
        """A bot-wide 429: arrivals bunched beyond what the window allowed for, so allow for more."""
        self._widened_at = now
        if self.margin < self.max_margin:
            self._set_global_margin(min(self.max_margin, self.margin + MARGIN_STEP_SECONDS))

    def _maybe_narrow(self, now: float) -> None:
        """After a quiet minute, one step back towards the configured margin: a stall passes."""
        if self.margin > self.base_margin and now - self._widened_at >= NARROW_AFTER_SECONDS:
            self._widened_at = now
            self._set_global_margin(max(self.base_margin, self.margin - MARGIN_STEP_SECONDS))

    @property
    def chat_interval(self) -> float:
        """Seconds between two sends into one chat, margin included."""
        return 1.0 / self.private_per_second + self.base_margin

    @property
    def rtt_floor(self) -> float:
        """The quickest round trip seen lately: no answer comes back faster than this after its arrival."""
        return self._floor.seconds

    # -- queries --------------------------------------------------------------------------------

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def paused(self, now: float) -> bool:
        return now < self._paused_until

    def chat_paused_until(self, chat_id: int | None) -> float:
        """Until when a 429 for this chat alone holds it back (the bot-wide pause is apart)."""
        state = None if chat_id is None else self._chats.get(chat_id)
        return float("-inf") if state is None else state.paused_until

    def global_ready_at(self, now: float) -> float:
        """When the bot as a whole may send next (pause, pacing and window)."""
        window = self._global_window.ready_at(now, self._floor.seconds, self._reserved)
        return max(now, self._paused_until, self._global_pacer.ready_at(now), window)

    def reply_ready_at(self, now: float) -> float:
        """When a direct reply may go: at the window's next free place if that comes within
        `REPLY_WAIT_SECONDS`, else now.

        The outbox sends evenly, so while it fills the window a place frees
        every 1/30 s: a reply then waits those milliseconds (`reserving`
        makes the outbox leave it that place) rather than arrive as the 31st.
        A burst of replies that filled the window itself would wait up to a
        second: it goes at once, as replies always did, and rides out the 429.
        """
        beyond = now + REPLY_WAIT_SECONDS
        ready = self._global_window.ready_at(now, self._floor.seconds, beyond=beyond)
        return ready if ready <= beyond else now

    @contextmanager
    def reserving(self) -> Iterator[None]:
        """While a reply waits for its place in the window, the outbox counts one place fewer."""
        self._reserved += 1
        try:
            yield
        finally:
            self._reserved -= 1

    def chat_ready_at(self, chat_id: int, now: float) -> float:
        """When this chat may receive next, ignoring the global limit."""
        state = self._chats.get(chat_id)
        return now if state is None else max(now, state.ready_at(now, self._floor.seconds))

    def ready_at(self, chat_id: int, now: float) -> float:
        return max(self.global_ready_at(now), self.chat_ready_at(chat_id, now))

    # -- events ---------------------------------------------------------------------------------

    def record(self, chat_id: int, now: float) -> Send:
        """A send to `chat_id` is going out now; count it everywhere. Give its answer to `settle`."""
        self._maybe_narrow(now)
        send = self._send(now)
        self._global_pacer.record(now)
        self._global_window.record(send)
        self._chat(chat_id).record(send)
        self._records += 1
        if self._records % PRUNE_EVERY == 0:
            self.prune(now)
        return send

    def record_global(self, now: float) -> Send:
        """A direct reply is going out: it fills the bot-wide window, and nothing else.

        Not the pacer: replies do not wait for it, so charging them there
        would push its schedule ever further ahead under a burst and starve
        the outbox, contingency alerts included. Not the chat: Telegram
        tolerates an answer and a prompt at once in one private chat. The
        window alone makes the outbox give way while replies use the budget.
        """
        send = self._send(now)
        self._global_window.record(send)
        return send

    def settle(self, send: Send, now: float, *, answered: bool = True) -> None:
        """The request came back at `now`: answered by Telegram (whatever the answer), or not at all.

        An answer bounds the arrival: no later than now less the quickest
        round trip, which the answer also teaches. Without one (a timeout, a
        broken connection) the request may have arrived until now.
        """
        if send.at is not None:
            return
        if answered:
            self._floor.add(max(0.0, now - send.decided))
            send.at = max(send.decided, now - self._floor.seconds)
        else:
            send.at = max(send.decided, now)

    def pause(self, seconds: float, now: float) -> None:
        """Nobody sends for `seconds` (a bot-wide flood wait, or a refused token)."""
        self._paused_until = max(self._paused_until, now + max(0.0, seconds))

    def flood_wait(self, chat_id: int | None, seconds: float, now: float) -> FloodScope:
        """A 429 for a send to `chat_id`: pause the scope it concerns for `seconds`, and say which.

        Telegram's answer names no scope, only `retry_after`, so the scope is
        told from the chat and from what else was refused:

        * a group's 429 pauses that group alone: a group has a limit of its
          own (20 a minute) that this limiter cannot fully see (replies in the
          group, another worker, the minute before a restart), and pausing
          the whole bot for its retry_after, up to a minute, would stop every
          other chat for nothing;
        * a private chat's 429 pauses the bot: this limiter keeps each private
          chat under its one a second, so what ran out is the bot-wide budget;
        * a group's 429 within `CORROBORATE_SECONDS` of another group's also
          pauses the bot: two chats refused at once is the bot-wide budget
          (Telegram refuses everything while a bot-wide flood wait runs, so
          the second answer comes within milliseconds);
        * no chat known (an @username, a method without a chat): the bot.

        A bot-wide 429 also widens the global margin one step, up to
        `max_margin`: the arrivals bunched beyond what it allowed for.
        """
        seconds = max(0.0, seconds)
        if chat_id is not None and is_group(chat_id):
            last, self._last_group_429 = self._last_group_429, (chat_id, now)
            if last is None or last[0] == chat_id or now - last[1] > CORROBORATE_SECONDS:
                state = self._chat(chat_id)
                state.paused_until = max(state.paused_until, now + seconds)
                return "chat"
        self.pause(seconds, now)
        self._widen(now)
        return "bot"

    def prune(self, now: float) -> int:
        """Forget idle chats, so a run to 60,000 recipients does not keep 60,000 states."""
        idle = [chat_id for chat_id, state in self._chats.items() if state.idle(now)]
        for chat_id in idle:
            del self._chats[chat_id]
        return len(idle)

    def tracked_chats(self) -> int:
        return len(self._chats)

    def _send(self, now: float) -> Send:
        return Send(now) if self.count_answers else Send(now, at=now)

    def _chat(self, chat_id: int) -> _ChatState:
        state = self._chats.get(chat_id)
        if state is None:
            windows = [SlidingWindow(1, self.chat_interval)]
            if is_group(chat_id):
                windows.append(SlidingWindow(self.group_per_minute, self.group_window + self.base_margin))
            state = self._chats[chat_id] = _ChatState(windows)
        return state
