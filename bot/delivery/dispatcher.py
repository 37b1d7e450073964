"""The outbox dispatcher: sends due rows in priority order, within Telegram's limits.

Two loops share one in-memory buffer of claimed rows:

* the *feeder* is the only one that talks to the database: it claims due
  rows (priority, due time, id), records the answers Telegram gave in
  batches, and hands back rows it will not send soon;
* the *sender* picks the first buffered row whose chat may receive now
  (a chat held back by its own limit never holds up the others), waits for
  the global pace, and starts the send as its own task, so enough requests
  are in flight to reach 30/s whatever Telegram's latency.

Crash safety comes from the outbox: a row is marked `sent` only after
Telegram answered, and a row whose worker died comes back when its lease
runs out (or at once, when a worker restarts under the same id). After a
kill -9 only the rows in flight, or answered and not yet recorded (the
feeder writes every `flush_seconds`; `at_risk()` counts both), can go out
twice.

Pacing is as Telegram counts it, on arrival: each send counts in the
limiter's windows until its answer shows when it may have arrived
(bot/delivery/ratelimit.py), so requests bunched on the way never add up to a 429,
and a 429 pauses only the scope it concerns, one group or the whole bot
(`RateLimiter.flood_wait`). The limits are per bot token,
the limiter per process: N dispatcher processes sharing one token should
each get `global_per_second / N`. A command group's 20 a minute needs no
dividing: each group is claimed by one living worker (outbox.claim).
`max_in_flight` (default: one second's worth of sends, 8 to 64) covers up to
a second of Telegram latency; more costs CPU in httpcore's pool for nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBUserWarning

from bot.clock import Clock, system_clock
from bot.config import DeliverySettings
from bot.delivery.ratelimit import RateLimiter, Send
from bot.services import outbox
from bot.services.outbox import OutboxRow, SendResult
from bot.storage.db import transaction

log = logging.getLogger("siaga.dispatcher")

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 120.0
INVALID_TOKEN_PAUSE_SECONDS = 60.0
TEXT_FIELD = {
    "sendMessage": "text",
    "editMessageText": "text",
    "sendPhoto": "caption",
    "sendDocument": "caption",
    "editMessageCaption": "caption",
}

# do_api_request warns when the endpoint also exists as a Bot method (sendPhoto ...); rows name
# Bot API methods on purpose, so the advice is noise.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.", category=PTBUserWarning)


def make_bot(*, token: str, base_url: str = "https://api.telegram.org/bot", pool_size: int = 64) -> Bot:
    """A plain PTB Bot for the dispatcher: no AIORateLimiter (we pace ourselves), a pool for the sends in flight."""
    request = HTTPXRequest(connection_pool_size=pool_size, read_timeout=10.0, pool_timeout=5.0)
    return Bot(token=token, base_url=base_url, request=request)


@dataclass
class DispatcherStats:
    """Counters since start, for the summary line and a metrics endpoint."""

    sent: int = 0
    failed: int = 0
    unreachable: int = 0
    retried: int = 0
    rate_limited: int = 0
    chat_pauses: int = 0
    claimed: int = 0
    handed_back: int = 0
    db_errors: int = 0
    in_flight: int = 0
    buffered: int = 0
    queue_depth: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Outcome:
    """What happened to one row, waiting for the feeder to write it down."""

    kind: Literal["sent", "retry", "failed", "release", "migrate"]
    row: OutboxRow
    message_id: int | None = None
    at: datetime | None = None
    error: str = ""
    unreachable: bool = False
    new_chat_id: int | None = None


def retry_after_seconds(error: RetryAfter) -> float:
    """`retry_after` as seconds, whichever type PTB's PTB_TIMEDELTA setting makes it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def telegram_answered(error: BaseException) -> bool:
    """Whether Telegram answered (so the request arrived before the answer), or the request was lost on the way."""
    return isinstance(error, TelegramError) and (isinstance(error, BadRequest) or not isinstance(error, NetworkError))


class Dispatcher:
    """Runs inside the bot process as asyncio tasks: `start()`, `wake()`, `stop()`."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        bot: Bot,
        settings: DeliverySettings,
        worker_id: str,
        clock: Clock = system_clock,
        monotonic: Callable[[], float] = time.monotonic,
        lease_seconds: float = 120.0,
        max_in_flight: int | None = None,
        batch_size: int | None = None,
        hold_seconds: float = 2.0,
        flush_seconds: float = 0.05,
        summary_seconds: float = 60.0,
        rng: random.Random | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        """`clock` dates rows (the runtime's, possibly virtual); `monotonic` paces sends in real time.

        `limiter` is shared with the replies' rate limiter, so both spend one flood budget; it
        keeps the settings' `jitter_margin_seconds` whoever built it.
        """
        if getattr(bot, "rate_limiter", None) is not None:
            raise ValueError("give the dispatcher a Bot without PTB's rate limiter: it paces itself")
        self.sessions, self.bot, self.settings, self.worker_id = sessions, bot, settings, worker_id
        self.clock, self.monotonic = clock, monotonic
        self.limiter = limiter or RateLimiter(
            global_per_second=settings.global_per_second,
            private_per_second=settings.private_per_second,
            group_per_minute=settings.group_per_minute,
        )
        self.limiter.set_margin(settings.jitter_margin_seconds)
        rate = settings.global_per_second
        self.lease_seconds, self.hold_seconds = lease_seconds, hold_seconds
        self.max_in_flight = max_in_flight or max(8, min(64, math.ceil(rate)))
        self.batch_size = batch_size or max(10, math.ceil(rate))
        self.flush_seconds, self.summary_seconds = flush_seconds, summary_seconds
        self.stats = DispatcherStats()
        self._rng = rng or random.Random()
        self._buffer: list[OutboxRow] = []
        self._held: set[int] = set()
        self._outcomes: list[_Outcome] = []
        self._sends: set[asyncio.Task[None]] = set()
        self._feed_event = asyncio.Event()
        self._send_event = asyncio.Event()
        self._woken = self._stopping = self._closing = self._dead = self._last_claim_full = False
        self._last_claim, self._summary_at, self._summary_sent = float("-inf"), 0.0, 0
        self._feeder: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Take back what this worker id held before a restart, then run both loops."""
        async with transaction(self.sessions) as session:
            reclaimed = await outbox.reclaim_worker(session, worker=self.worker_id)
        if reclaimed:
            log.info("worker %s took back %d rows it held before a restart", self.worker_id, reclaimed)
        self._summary_at = self.monotonic()
        self._feeder = asyncio.create_task(self._feed_loop(), name=f"outbox-feeder-{self.worker_id}")
        self._sender = asyncio.create_task(self._send_loop(), name=f"outbox-sender-{self.worker_id}")

    def wake(self) -> None:
        """Rows were just queued: claim now instead of at the next poll (a contingency alert)."""
        self._woken = True
        self._feed_event.set()

    async def stop(self, timeout: float = 15.0) -> None:
        """Stop sending, let the sends in flight finish, record them, give the buffer back."""
        self._stopping = True
        self._send_event.set()
        if self._sender is not None:
            await self._sender
        if self._sends:
            _, late = await asyncio.wait(self._sends, timeout=timeout)
            for task in late:  # their rows come back with the lease, or when this worker id restarts
                task.cancel()
        self._closing = True
        self._feed_event.set()
        if self._feeder is not None:
            await self._feeder

    async def abort(self) -> None:
        """Die like a killed process (crash tests): sends cut off, nothing more recorded or given back.

        The feeder finishes the statement it is in, as a database would commit
        or roll back a dead client's last transaction, and writes nothing after.
        """
        self._stopping = self._dead = True
        for task in [self._sender, *self._sends]:
            if task is not None:
                task.cancel()
        self._feed_event.set()
        if self._feeder is not None:
            await self._feeder

    def at_risk(self) -> int:
        """Rows that could go out twice if the process died now: in flight, or answered and not recorded."""
        return self.stats.in_flight + sum(1 for item in self._outcomes if item.kind == "sent")

    # -- feeder: every database write happens here -------------------------------------------------

    async def _feed_loop(self) -> None:
        while not self._dead:
            self._feed_event.clear()
            woken, self._woken = self._woken, False
            try:
                await self._flush()
                if self._closing:
                    for row in list(self._buffer):
                        self._hand_back(row)
                    await self._flush()
                    return
                if self._should_claim(woken) and not self._dead:
                    await self._claim(max(self.batch_size - len(self._buffer), self.batch_size // 10, 1))
                await self._maybe_summarize()
            except Exception:  # the database is away: keep the process alive and try again
                self.stats.db_errors += 1
                log.exception("outbox database error; retrying")
                await asyncio.sleep(self.settings.poll_seconds)
            await self._nap(self._feed_event, self.flush_seconds if self._outcomes else self.settings.poll_seconds)

    def _should_claim(self, woken: bool) -> bool:
        now = self.monotonic()
        if self._stopping or self.limiter.paused(now):
            return False
        if woken or now - self._last_claim >= self.settings.poll_seconds:
            return True
        return self._last_claim_full and len(self._buffer) < self.batch_size // 2

    async def _claim(self, limit: int) -> None:
        self._last_claim = self.monotonic()
        async with transaction(self.sessions) as session:
            rows = await outbox.claim(
                session, worker=self.worker_id, limit=limit, now=self.clock(), lease_seconds=self.lease_seconds
            )
        self._last_claim_full = len(rows) == limit
        fresh = [row for row in rows if row.id not in self._held]
        if fresh:
            self._held.update(row.id for row in fresh)
            self._buffer = sorted(self._buffer + fresh, key=lambda row: row.order)
            self.stats.claimed += len(fresh)
            self.stats.buffered = len(self._buffer)
            self._send_event.set()

    async def _flush(self) -> None:
        """Write every outcome so far in one transaction; kept for the next try if it fails."""
        if not self._outcomes:
            return
        batch = list(self._outcomes)
        async with transaction(self.sessions) as session:
            sent = [SendResult(o.row.id, o.message_id, o.at or self.clock()) for o in batch if o.kind == "sent"]
            await outbox.mark_sent_many(session, results=sent)
            for item in batch:
                await self._record(session, item)
        del self._outcomes[: len(batch)]
        self._held.difference_update(item.row.id for item in batch)

    async def _record(self, session: AsyncSession, item: _Outcome) -> None:
        row = item.row
        if item.kind == "retry":
            await outbox.mark_retry(session, row_id=row.id, error=item.error, next_attempt_at=item.at)
        elif item.kind == "release":
            await outbox.release(session, row_ids=[row.id], next_attempt_at=item.at)
        elif item.kind == "failed":
            await outbox.mark_failed(session, row_id=row.id, error=item.error, unreachable=item.unreachable)
        elif item.kind == "migrate" and item.new_chat_id is not None:
            await outbox.migrate_chat(session, old_chat_id=row.chat_id, new_chat_id=item.new_chat_id)
            await outbox.release(session, row_ids=[row.id])

    async def _maybe_summarize(self) -> None:
        now = self.monotonic()
        if now - self._summary_at < self.summary_seconds:
            return
        async with self.sessions() as session:
            self.stats.queue_depth = await outbox.queue_depth(session)
        rate = (self.stats.sent - self._summary_sent) / max(now - self._summary_at, 1e-9)
        self._summary_at, self._summary_sent = now, self.stats.sent
        depth = " ".join(f"p{p}={n}" for p, n in sorted(self.stats.queue_depth.items())) or "empty"
        s = self.stats
        log.info(
            "outbox %s: %.1f sent/s, sent=%d queue %s, 429s=%d failed=%d unreachable=%d retried=%d in_flight=%d",
            self.worker_id,
            rate,
            s.sent,
            depth,
            s.rate_limited,
            s.failed,
            s.unreachable,
            s.retried,
            s.in_flight,
        )

    # -- sender -----------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while not self._stopping:
            self._send_event.clear()
            now = self.monotonic()
            wait = self._send_next(now)
            if wait is not None:
                await self._nap(self._send_event, wait)

    def _send_next(self, now: float) -> float | None:
        """Start one send if a row may go now; otherwise how long to wait before looking again."""
        if not self._buffer:
            return self.settings.poll_seconds
        if self.stats.in_flight >= self.max_in_flight:
            return self.settings.poll_seconds
        global_ready = self.limiter.global_ready_at(now)
        if global_ready > now:
            return global_ready - now
        row, next_ready = self._pick(now)
        if row is None:
            return max(0.0, (next_ready or now + self.settings.poll_seconds) - now)
        send = self.limiter.record(row.chat_id, now)
        self.stats.in_flight += 1
        task = asyncio.create_task(self._send(row, send))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
        return None

    def _pick(self, now: float) -> tuple[OutboxRow | None, float | None]:
        """The first row, in priority order, whose chat may receive now; far-off ones go back.

        The k-th buffered row of one chat is k intervals behind its chat's next
        slot, so twenty reminders to one person do not fill the buffer and
        starve everyone else: the ones beyond `hold_seconds` go back to the table.
        """
        next_ready: float | None = None
        far: list[tuple[OutboxRow, float]] = []
        chosen: OutboxRow | None = None
        behind: dict[int, int] = {}
        for row in self._buffer:
            queued = behind.get(row.chat_id, 0)
            behind[row.chat_id] = queued + 1
            ready = self.limiter.chat_ready_at(row.chat_id, now) + queued * self.limiter.chat_interval
            if ready <= now:
                chosen = row
                break
            if ready - now > self.hold_seconds:
                far.append((row, ready - now))
            elif next_ready is None or ready < next_ready:
                next_ready = ready
        for row, delay in far:
            self._hand_back(row, delay)
        if chosen is not None:
            self._buffer.remove(chosen)
            self.stats.buffered = len(self._buffer)
        return chosen, next_ready

    def _hand_back(self, row: OutboxRow, delay: float = 0.0) -> None:
        """A row this worker will not send soon goes back to the table, due in `delay` seconds."""
        self._buffer.remove(row)
        self._outcomes.append(_Outcome("release", row, at=self.clock() + timedelta(seconds=max(0.0, delay))))
        self.stats.handed_back += 1
        self.stats.buffered = len(self._buffer)
        self._feed_event.set()

    async def _send(self, row: OutboxRow, send: Send) -> None:
        outcome: _Outcome | None = None
        answered = False
        try:
            result = await self._call(row)
            answered = True
            message_id = result.get("message_id") if isinstance(result, dict) else None
            outcome = _Outcome("sent", row, message_id=message_id, at=self.clock())
            self.stats.sent += 1
        except RetryAfter as error:
            answered = True
            self._flood_wait(row, retry_after_seconds(error))
        except Exception as error:  # every other answer is classified, none may kill the loop
            answered = telegram_answered(error)
            outcome = self._classify(row, error)
        finally:
            self.limiter.settle(send, self.monotonic(), answered=answered)
            self.stats.in_flight -= 1
            if outcome is not None:
                self._outcomes.append(outcome)
                self._feed_event.set()
            self._send_event.set()

    async def _call(self, row: OutboxRow) -> Any:
        """The Bot API call a row describes: its method, its payload, its text and its chat."""
        kwargs = {"chat_id": row.chat_id, **row.payload}
        text_field = TEXT_FIELD.get(row.method)
        if text_field and row.text:
            kwargs.setdefault(text_field, row.text)
        return await self.bot.do_api_request(row.method, api_kwargs=kwargs)

    def _flood_wait(self, row: OutboxRow, seconds: float) -> None:
        """A 429 stops its scope for `retry_after` (that group, or the whole bot); the row, not counted as a
        try, waits in the buffer, or in the table when its wait is longer than the buffer holds rows."""
        self.stats.rate_limited += 1
        scope = self.limiter.flood_wait(row.chat_id, seconds, self.monotonic())
        self._buffer = sorted([*self._buffer, row], key=lambda r: r.order)
        if scope == "chat":
            self.stats.chat_pauses += 1
            if seconds > self.hold_seconds:
                self._hand_back(row, seconds)
            log.warning("flood control: Telegram asked to wait %.0f s; chat %d paused", seconds, row.chat_id)
            return
        if seconds > self.lease_seconds / 4:  # a long flood wait: let the leases go rather than expire
            for waiting in list(self._buffer):
                self._hand_back(waiting, seconds)
        log.warning("flood control: Telegram asked to wait %.0f s; all sending paused", seconds)

    def _classify(self, row: OutboxRow, error: Exception) -> _Outcome:
        """Permanent (the recipient is gone, the request is wrong) or worth another try."""
        text = str(error)
        lowered = text.lower()
        if isinstance(error, Forbidden) or (isinstance(error, BadRequest) and "chat not found" in lowered):
            self.stats.failed += 1
            self.stats.unreachable += 1
            return _Outcome("failed", row, error=text, unreachable=True)
        if isinstance(error, BadRequest):
            if "message is not modified" in lowered:  # an edit that was already applied
                self.stats.sent += 1
                return _Outcome("sent", row, at=self.clock())
            self.stats.failed += 1
            return _Outcome("failed", row, error=text)
        if isinstance(error, ChatMigrated):
            return _Outcome("migrate", row, new_chat_id=int(error.new_chat_id))
        if isinstance(error, InvalidToken):
            log.error("Telegram refused the bot token; pausing deliveries for %.0f s", INVALID_TOKEN_PAUSE_SECONDS)
            self.limiter.pause(INVALID_TOKEN_PAUSE_SECONDS, self.monotonic())
            return _Outcome("release", row, at=self.clock())
        if not isinstance(error, NetworkError):
            log.warning("unexpected %s sending outbox row %d; retrying", type(error).__name__, row.id)
        return self._retry_or_fail(row, f"{type(error).__name__}: {text}")

    def _retry_or_fail(self, row: OutboxRow, error: str) -> _Outcome:
        """Exponential backoff with jitter until the row's deadline, then give up."""
        now = self.clock()
        deadline = row.send_by or row.created_at + timedelta(minutes=self.settings.retry_deadline_minutes)
        if now >= deadline:
            self.stats.failed += 1
            return _Outcome("failed", row, error=f"gave up at the deadline: {error}")
        delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** min(row.attempts, 16))
        delay *= self._rng.uniform(0.5, 1.5)
        self.stats.retried += 1
        return _Outcome("retry", row, error=error, at=min(deadline, now + timedelta(seconds=delay)))

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    async def _nap(event: asyncio.Event, seconds: float) -> None:
        """Sleep until `event` is set or `seconds` pass, whichever comes first."""
        if seconds <= 0 or event.is_set():
            return
        # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that lands as the
        # event fires, and a cancelled dispatcher must stop.
        timer = asyncio.get_running_loop().call_later(seconds, event.set)
        try:
            await event.wait()
        finally:
            timer.cancel()
