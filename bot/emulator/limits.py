"""Telegram flood limits and fault injection for the emulator.

Why a token bucket
------------------
Telegram documents its limits only loosely ("about 30 messages per second
overall", "no more than 20 messages per minute in the same group", "avoid more
than one message per second in a single chat") and in practice tolerates short
bursts. The client-side limiter python-telegram-bot ships (``AIORateLimiter``,
built on ``aiolimiter``) is a leaky bucket whose capacity equals the per-window
count. The emulator therefore models every limit as a token bucket:

* ``capacity`` tokens, refilled continuously at ``count / window`` tokens per
  second; each counted request takes one token.
* **global**: ``global_per_second`` per ``global_window`` (1 s), capacity
  ``global_per_second`` -> a burst of 30 passes, the 31st inside the same
  instant gets 429.
* **group / supergroup** (per chat): ``group_per_minute`` per ``group_window``
  (60 s), capacity ``group_per_minute`` -> 20 at once, then one every 3 s.
* **private chat** (per chat): ``private_per_second`` per ``private_window``
  (1 s) sustained, capacity ``private_burst`` (default 3) -> real Telegram lets
  a bot answer with a few quick messages in a row but not stream into one chat.

A sender that paces itself at exactly the documented rate never runs the
bucket dry; a request is admitted while the bucket holds at least
``1 - tolerance`` tokens, so arrival jitter of up to ``tolerance`` of one
emission interval (default 10 %) is absorbed. A sender that bursts past the
capacity is rejected at the first request over it.

A rejected request gets ``429 Too Many Requests: retry after N`` with
``parameters.retry_after = N`` = ceil(seconds until a token is available),
at least 1. With ``honour_retry_after`` (default) the emulator then holds the
exhausted bucket closed until that deadline, like Telegram's flood wait: a
client that retries early is rejected again, one that waits N seconds passes.

Counting arrivals, as Telegram must
-----------------------------------
A bucket with a tolerance forgives a little bunching; Telegram, counting on
its own side, need not. ``Limits(mode="arrivals")`` replaces every bucket by
an :class:`ArrivalWindow`: a request is admitted only while fewer than
``count`` requests were admitted in the ``window`` seconds before it, so no
window of that length, wherever it starts, holds more than ``count``
admitted arrivals (30 in any second bot-wide, 1 in any second per private
chat, 20 in any minute per group; ``private_burst`` and ``tolerance`` do not
apply). The time is taken when the request is handled on the emulator's
loop, which is when Telegram counts it: requests that left a sender evenly
spaced but were held up on the way arrive bunched, and the bunch is what is
counted. A refused request is not counted (it did not deliver a message),
and ``retry_after`` is the whole seconds until the oldest counted arrival
leaves the window, at least 1, held closed like a bucket's.

What counts: every message-creating method (``MESSAGE_METHODS``) and, when
``count_edits`` is true (default, as on Telegram), the edit methods
(``EDIT_METHODS``). answerCallbackQuery, deleteMessage, sendChatAction and
getters are never limited.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

MESSAGE_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendlocation",
        "sendvenue",
        "sendcontact",
        "sendaudio",
        "sendvideo",
        "sendvoice",
        "sendanimation",
        "sendsticker",
        "sendpoll",
        "senddice",
        "sendmediagroup",
        "copymessage",
        "copymessages",
        "forwardmessage",
        "forwardmessages",
    }
)
EDIT_METHODS = frozenset(
    {
        "editmessagetext",
        "editmessagecaption",
        "editmessagereplymarkup",
        "editmessagemedia",
        "editmessagelivelocation",
        "stopmessagelivelocation",
    }
)


@dataclass
class Limits:
    """Flood-limit configuration; the ``*_window`` fields let tests shrink time.

    ``Limits(group_per_minute=3, group_window=0.3)`` means "3 messages per 0.3 s
    per group", which keeps a test of the group limit fast while exercising the
    same code path as the real 20-per-minute numbers. ``mode`` is ``"bucket"``
    (forgiving, the default) or ``"arrivals"`` (strict sliding windows over the
    arrival times, see the module docstring).
    """

    global_per_second: float = 30.0
    private_per_second: float = 1.0
    group_per_minute: float = 20.0
    private_burst: int = 3
    global_window: float = 1.0
    private_window: float = 1.0
    group_window: float = 60.0
    count_edits: bool = True
    honour_retry_after: bool = True
    tolerance: float = 0.1
    enforce: bool = True
    mode: Literal["bucket", "arrivals"] = "bucket"

    def counts(self, method: str) -> bool:
        """Whether a call of ``method`` (any case) takes a token."""
        m = method.lower()
        return m in MESSAGE_METHODS or (self.count_edits and m in EDIT_METHODS)


class TokenBucket:
    """One refilling bucket; see the module docstring for the model."""

    __slots__ = ("rate", "capacity", "level", "stamp", "closed_until")

    def __init__(self, count: float, window: float, capacity: float, now: float):
        self.rate = count / window
        self.capacity = max(1.0, float(capacity))
        self.level = self.capacity
        self.stamp = now
        self.closed_until = 0.0

    def wait_needed(self, now: float, tolerance: float) -> float:
        """Seconds until one request would be admitted (0.0 = admit now)."""
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now
        if now < self.closed_until:
            return self.closed_until - now
        missing = (1.0 - tolerance) - self.level
        return missing / self.rate if missing > 0 else 0.0

    def take(self, now: float) -> None:
        self.level -= 1.0


class ArrivalWindow:
    """At most ``limit`` admitted arrivals in any ``window`` seconds; see the module docstring."""

    __slots__ = ("limit", "window", "arrivals", "closed_until")

    def __init__(self, count: float, window: float):
        self.limit = max(1, int(count))
        self.window = window
        self.arrivals: deque[float] = deque()
        self.closed_until = 0.0

    def wait_needed(self, now: float, tolerance: float) -> float:
        """Seconds until one more arrival fits in the window ending at it (0.0 = admit now)."""
        while self.arrivals and self.arrivals[0] <= now - self.window:
            self.arrivals.popleft()
        if now < self.closed_until:
            return self.closed_until - now
        if len(self.arrivals) < self.limit:
            return 0.0
        return self.arrivals[len(self.arrivals) - self.limit] + self.window - now

    def take(self, now: float) -> None:
        self.arrivals.append(now)


class FloodCounter(Protocol):
    """What the limiter asks of one scope's count: a bucket or an arrival window."""

    closed_until: float

    def wait_needed(self, now: float, tolerance: float) -> float: ...

    def take(self, now: float) -> None: ...


@dataclass(frozen=True)
class Verdict:
    """Why a request was refused: which bucket and the retry_after returned."""

    scope: Literal["global", "private", "group"]
    retry_after: int


class RateLimiter:
    """Applies :class:`Limits` to requests; one global and one bucket (or arrival window) per chat."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._clock = clock
        self._global: FloodCounter | None = None
        self._chats: dict[int, FloodCounter] = {}

    def reset(self) -> None:
        """Forget all bucket state (e.g. after tests change ``limits``)."""
        self._global = None
        self._chats.clear()

    def _counter(self, count: float, window: float, capacity: float, now: float) -> FloodCounter:
        if self.limits.mode == "arrivals":
            return ArrivalWindow(count, window)
        return TokenBucket(count, window, capacity, now)

    def _global_bucket(self, now: float) -> FloodCounter:
        lim = self.limits
        if self._global is None:
            self._global = self._counter(lim.global_per_second, lim.global_window, lim.global_per_second, now)
        return self._global

    def _chat_bucket(self, chat_id: int, private: bool, now: float) -> FloodCounter:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            lim = self.limits
            if private:
                bucket = self._counter(lim.private_per_second, lim.private_window, lim.private_burst, now)
            else:
                bucket = self._counter(lim.group_per_minute, lim.group_window, lim.group_per_minute, now)
            self._chats[chat_id] = bucket
        return bucket

    def check(self, chat_id: int, private: bool, now: float | None = None) -> Verdict | None:
        """Admit (take a token from every bucket, return None) or refuse.

        Nothing is consumed when refused, so a refused request does not make the
        next one wait longer than the retry_after it was told.
        """
        if not self.limits.enforce:
            return None
        now = self._clock() if now is None else now
        tol = self.limits.tolerance
        chat_scope: Literal["private", "group"] = "private" if private else "group"
        buckets = [
            ("global", self._global_bucket(now)),
            (chat_scope, self._chat_bucket(chat_id, private, now)),
        ]
        worst: tuple[float, str] = (0.0, "")
        for scope, bucket in buckets:
            wait = bucket.wait_needed(now, tol)
            if wait > worst[0]:
                worst = (wait, scope)
        if worst[0] <= 0.0:
            for _, bucket in buckets:
                bucket.take(now)
            return None
        retry = max(1, math.ceil(worst[0] - 1e-9))
        if self.limits.honour_retry_after:
            for _, bucket in buckets:
                if bucket.wait_needed(now, tol) > 0:
                    bucket.closed_until = max(bucket.closed_until, now + retry)
        return Verdict(worst[1], retry)  # type: ignore[arg-type]


FaultKind = Literal["429", "5xx"]


@dataclass
class Faults:
    """Injected failures, changeable while the emulator runs.

    ``rate_429`` / ``rate_5xx`` are probabilities per call of a method in
    ``methods`` (default: the limited methods, so getUpdates keeps working);
    one seeded draw decides per call, so a run with a fixed ``seed`` is
    reproducible. An injected 5xx means "not delivered" unless
    ``deliver_on_5xx`` is set, which models the nastier real case where the
    message went out but the answer was lost (tests of retry idempotency).

    ``blocked`` / ``deactivated`` hold user ids whose private chats answer 403;
    ``unknown_chats`` holds chat ids that answer 400 "chat not found" even if
    known (e.g. a chat that was deleted).
    """

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    seed: int | None = None
    retry_after: int = 1
    status_5xx: int = 502
    deliver_on_5xx: bool = False
    methods: frozenset[str] | None = None
    blocked: set[int] = field(default_factory=set)
    deactivated: set[int] = field(default_factory=set)
    unknown_chats: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def reseed(self, seed: int | None) -> None:
        """Restart the random sequence (reproducible fault patterns)."""
        self.seed = seed
        self._rng = random.Random(seed)

    def applies_to(self, method: str) -> bool:
        m = method.lower()
        if self.methods is None:
            return m in MESSAGE_METHODS or m in EDIT_METHODS
        return m in {x.lower() for x in self.methods}

    def roll(self, method: str) -> FaultKind | None:
        """Decide whether this call fails by injection."""
        if (self.rate_429 <= 0 and self.rate_5xx <= 0) or not self.applies_to(method):
            return None
        r = self._rng.random()
        if r < self.rate_429:
            return "429"
        if r < self.rate_429 + self.rate_5xx:
            return "5xx"
        return None
