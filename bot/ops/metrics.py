"""Counters of one worker process, and the Prometheus text format they are read in.

Updates are timed from receipt to handler completion: `ReceiptQueue` (the
Application's update queue, filled by the webhook server or the poller)
notes when each update arrived, and `TimedUpdateProcessor` (the
Application's update processor) observes the time when its handlers are
done. Both go in through `instrument(builder)` when the Application is
built. Outbox counters are the dispatcher's own (`DispatcherStats`); the
health endpoint reads everything at scrape time.

The page is written by prometheus_client from families built at each
scrape (`Exposition`); the counters themselves are plain attributes the
event loop updates without locks.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, SimpleUpdateProcessor

UPDATE_CONCURRENCY = 256  # what ApplicationBuilder.concurrent_updates(True) means
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Histogram:
    """Cumulative buckets as Prometheus wants them, plus the sum and count."""

    bounds: Sequence[float] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, count) pairs, `+Inf` last."""
        running, out = 0, []
        for bound, count in zip([*self.bounds, math.inf], self.counts, strict=True):
            running += count
            out.append((floatToGoString(bound), running))
        return out


@dataclass
class UpdateMetrics:
    """Updates this worker handled: how many, of which kind, how long, how many failed."""

    handled: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    in_progress: int = 0
    latency: Histogram = field(default_factory=Histogram)


def update_kind(update: object) -> str:
    """`message`, `callback_query`, ...: the first field an Update carries besides its id."""
    if isinstance(update, Update):
        for kind in ("message", "callback_query", "edited_message", "my_chat_member", "chat_member"):
            if getattr(update, kind, None) is not None:
                return kind
        return "other"
    return "internal"


class ReceiptQueue(asyncio.Queue[object]):
    """The Application's update queue, noting when each update was put in (its receipt)."""

    def __init__(self) -> None:
        super().__init__()
        self.received: dict[int, float] = {}

    def put_nowait(self, item: object) -> None:
        if isinstance(item, Update):
            self.received[id(item)] = time.perf_counter()
        super().put_nowait(item)


class TimedUpdateProcessor(SimpleUpdateProcessor):
    """PTB's default concurrent processor, observing each update's time from receipt to completion."""

    __slots__ = ("metrics", "queue")

    def __init__(self, queue: ReceiptQueue, max_concurrent_updates: int = UPDATE_CONCURRENCY) -> None:
        super().__init__(max_concurrent_updates)
        self.queue = queue
        self.metrics = UpdateMetrics()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        started = self.queue.received.pop(id(update), None) or time.perf_counter()
        self.metrics.in_progress += 1
        try:
            await coroutine
        finally:
            self.metrics.in_progress -= 1
            self.metrics.handled[update_kind(update)] += 1
            self.metrics.latency.observe(time.perf_counter() - started)


def instrument(
    builder: ApplicationBuilder,
    processor: type[TimedUpdateProcessor] = TimedUpdateProcessor,
) -> ApplicationBuilder:
    """Build with the timed queue and processor (this replaces `.concurrent_updates(True)`)."""
    queue = ReceiptQueue()
    return builder.update_queue(queue).concurrent_updates(processor(queue))


def update_metrics(application: Any) -> UpdateMetrics | None:
    """The metrics of an Application built through `instrument`, else None."""
    processor = getattr(application, "update_processor", None)
    return processor.metrics if isinstance(processor, TimedUpdateProcessor) else None


async def count_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An error handler that only counts: handlers/common.on_error does the answering."""
    metrics = update_metrics(context.application)
    if metrics is not None:
        metrics.errors += 1


class RateMeter:
    """Messages per second over the last `window` seconds, from samples of a growing counter."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()

    def sample(self, now: float, total: int) -> None:
        self.samples.append((now, total))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()

    def rate(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        (start, first), (end, last) = self.samples[0], self.samples[-1]
        return (last - first) / (end - start) if end > start else 0.0


# -- the Prometheus exposition ----------------------------------------------------------------


class Exposition:
    """One scrape's metric families, written out by prometheus_client.

    The families are built from the live objects at scrape time (counters the
    event loop keeps without locks, the database asked just now) rather than
    kept in prometheus_client's global registry, so a number on the page is
    true at the moment it is read.
    """

    def __init__(self, prefix: str = "siaga_") -> None:
        self.prefix = prefix
        self.families: list[Metric] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
        rows = list(samples)
        keys = list(rows[0][0]) if rows else []
        full = self.prefix + (name.removesuffix("_total") if kind == "counter" else name)
        made = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        family = made(full, help_text, labels=keys)
        for labels, value in rows:
            family.add_metric([labels[key] for key in keys], value)
        self.families.append(family)

    def gauge(self, name: str, help_text: str, value: float, **labels: str) -> None:
        self.family(name, "gauge", help_text, [(labels, value)])

    def counter(self, name: str, help_text: str, value: float, **labels: str) -> None:
        self.family(name, "counter", help_text, [(labels, value)])

    def histogram(self, name: str, help_text: str, histogram: Histogram) -> None:
        buckets = [(le, float(count)) for le, count in histogram.cumulative()]
        self.families.append(
            HistogramMetricFamily(self.prefix + name, help_text, buckets=buckets, sum_value=histogram.total)
        )

    def text(self) -> str:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Scrape(self.families))
        return generate_latest(registry).decode()


class _Scrape(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def parse(text: str) -> dict[str, float]:
    """`name{labels}` -> value, for tests and quick checks (`siaga` never parses its own output)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


__all__ = [
    "CONTENT_TYPE",
    "Exposition",
    "Histogram",
    "RateMeter",
    "ReceiptQueue",
    "TimedUpdateProcessor",
    "UpdateMetrics",
    "count_error",
    "instrument",
    "parse",
    "update_metrics",
]
