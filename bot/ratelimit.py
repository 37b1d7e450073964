"""Pacing for Telegram's flood limits: as close to them as possible, never past them.

Telegram allows a bot about 30 messages per second overall, one per second
into one chat and 20 per minute into one group, and answers `429` with a
`retry_after` when a bot goes over. Three rules follow, each a small class:

* `Pacer` spaces sends evenly on a schedule; a sender woken a little late
  may catch up (so timer jitter does not cost throughput), but a cold start
  never bursts: the first second of a run is as even as any other.
* `SlidingWindow` counts the sends really made in the last period and
  refuses the next one while that count is at the limit: whatever the
  pacer's catch-up or the timer jitter, no window of the period ever holds
  more than the limit.
* `RateLimiter` holds one global pair, one state per chat (private: one per
  second; group, negative chat id: one per second and 20 per minute) and the
  bot-wide pause a 429 imposes.

The limiter never sleeps: it says *when* a chat may send (`ready_at`), so the
dispatcher can pick another chat's row meanwhile. A chat held back by its own
limit therefore never holds up the others. Time is a float of monotonic
seconds passed in by the caller, so tests drive it with a fake clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

GROUP_WINDOW_SECONDS = 60.0
PRUNE_EVERY = 4096


def is_group(chat_id: int) -> bool:
    """Groups, supergroups and channels have negative ids in the Bot API."""
    return chat_id < 0


class Pacer:
    """Sends spaced `1/rate` apart on a schedule that a slightly late sender may catch up on.

    `_next` is when the next send is due. A send never goes before it; a send
    that goes late by at most `catch_up` seconds keeps the schedule (the next
    one is due one interval after the *scheduled* time), so timer lateness
    does not erode the rate. Later than that, or on a cold start, the schedule
    restarts from now: there is never a burst to "use up" idle time.
    """

    __slots__ = ("interval", "catch_up", "_next")

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
    """At most `limit` sends in any `period` seconds, counted from the sends really made."""

    __slots__ = ("limit", "period", "_sent")

    def __init__(self, limit: float, period: float) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a window needs a limit of at least 1 and a positive period")
        self.limit = int(limit)
        self.period = period
        self._sent: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.period:
            self._sent.popleft()

    def ready_at(self, now: float) -> float:
        self._expire(now)
        if len(self._sent) < self.limit:
            return now
        return self._sent[len(self._sent) - self.limit] + self.period

    def record(self, now: float) -> None:
        self._sent.append(now)

    def idle(self, now: float) -> bool:
        self._expire(now)
        return not self._sent


@dataclass
class _ChatState:
    pacer: Pacer
    window: SlidingWindow | None

    def ready_at(self, now: float) -> float:
        ready = self.pacer.ready_at(now)
        if self.window is not None:
            ready = max(ready, self.window.ready_at(now))
        return ready

    def record(self, now: float) -> None:
        self.pacer.record(now)
        if self.window is not None:
            self.window.record(now)

    def idle(self, now: float) -> bool:
        return self.pacer.idle(now) and (self.window is None or self.window.idle(now))


class RateLimiter:
    """Telegram's limits for one bot: global, per chat, and the bot-wide 429 pause.

    `catch_up_seconds` is how late the global pacer may be and still keep its
    schedule (a tenth of a second by default: three sends at 30/s); the
    sliding window caps every second at the limit regardless.
    """

    def __init__(
        self,
        *,
        global_per_second: float = 30,
        private_per_second: float = 1,
        group_per_minute: float = 20,
        catch_up_seconds: float = 0.1,
        group_window: float = GROUP_WINDOW_SECONDS,
    ) -> None:
        self.global_per_second = global_per_second
        self.private_per_second = private_per_second
        self.group_per_minute = group_per_minute
        self.group_window = group_window
        self._global_pacer = Pacer(global_per_second, catch_up=catch_up_seconds)
        self._global_window = SlidingWindow(max(1.0, global_per_second), 1.0)
        self._chats: dict[int, _ChatState] = {}
        self._paused_until = float("-inf")
        self._records = 0

    # -- queries --------------------------------------------------------------------------------

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def paused(self, now: float) -> bool:
        return now < self._paused_until

    def global_ready_at(self, now: float) -> float:
        """When the bot as a whole may send next (pause, pacing and window)."""
        return max(now, self._paused_until, self._global_pacer.ready_at(now), self._global_window.ready_at(now))

    def chat_ready_at(self, chat_id: int, now: float) -> float:
        """When this chat may receive next, ignoring the global limit."""
        state = self._chats.get(chat_id)
        return now if state is None else state.ready_at(now)

    def ready_at(self, chat_id: int, now: float) -> float:
        return max(self.global_ready_at(now), self.chat_ready_at(chat_id, now))

    # -- events ---------------------------------------------------------------------------------

    def record(self, chat_id: int, now: float) -> None:
        """A send to `chat_id` is going out now; count it everywhere."""
        self._global_pacer.record(now)
        self._global_window.record(now)
        self._chat(chat_id).record(now)
        self._records += 1
        if self._records % PRUNE_EVERY == 0:
            self.prune(now)

    def record_global(self, now: float) -> None:
        """A direct reply is going out: it fills the bot-wide window, and nothing else.

        Not the pacer: replies do not wait for it, so charging them there
        would push its schedule ever further ahead under a burst and starve
        the outbox, contingency alerts included. Not the chat: Telegram
        tolerates an answer and a prompt at once in one private chat. The
        window alone makes the outbox give way while replies use the budget.
        """
        self._global_window.record(now)

    def pause(self, seconds: float, now: float) -> None:
        """A 429: nobody sends for `seconds`, a flood wait applies to the whole bot."""
        self._paused_until = max(self._paused_until, now + max(0.0, seconds))

    def prune(self, now: float) -> int:
        """Forget idle chats, so a run to 60,000 recipients does not keep 60,000 states."""
        idle = [chat_id for chat_id, state in self._chats.items() if state.idle(now)]
        for chat_id in idle:
            del self._chats[chat_id]
        return len(idle)

    def tracked_chats(self) -> int:
        return len(self._chats)

    def _chat(self, chat_id: int) -> _ChatState:
        state = self._chats.get(chat_id)
        if state is None:
            pacer = Pacer(self.private_per_second)
            window = SlidingWindow(self.group_per_minute, self.group_window) if is_group(chat_id) else None
            state = self._chats[chat_id] = _ChatState(pacer, window)
        return state
