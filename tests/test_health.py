"""The health endpoint and the run loop: what a supervisor and Prometheus read, and webhook mode in-process.

The multi-worker and fault tests, with real processes, are in tests/workers.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import Update

from bot.app import build_application
from bot.config import ConfigError, Settings, load_settings
from bot.delivery.dispatcher import DispatcherStats
from bot.emulator import Emulator, Limits
from bot.ops.health import HealthServer
from bot.ops.metrics import Exposition, Histogram, RateMeter, ReceiptQueue, TimedUpdateProcessor, UpdateMetrics, parse
from bot.ops.serving import serve, webhook_options
from bot.services import outbox
from bot.storage.db import make_engine, make_sessionmaker
from models.enums import Priority

NOW = datetime(2024, 2, 14, 1, 0, tzinfo=UTC)
SECRET = "hook-secret_42"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the text format and the counters ---------------------------------------------------------


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    histogram = Histogram(bounds=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    out = Exposition()
    out.histogram("update_duration_seconds", "Latency.", histogram)
    out.gauge("outbox_due", "Due rows.", 3, priority="escalation")
    values = parse(out.text())
    assert values['siaga_update_duration_seconds_bucket{le="0.1"}'] == 2
    assert values['siaga_update_duration_seconds_bucket{le="1.0"}'] == 3
    assert values['siaga_update_duration_seconds_bucket{le="+Inf"}'] == 4
    assert values["siaga_update_duration_seconds_count"] == 4
    assert values["siaga_update_duration_seconds_sum"] == pytest.approx(3.65)
    assert values['siaga_outbox_due{priority="escalation"}'] == 3
    assert "# TYPE siaga_update_duration_seconds histogram" in out.text()


def test_the_send_rate_is_over_the_last_minute() -> None:
    meter = RateMeter(window=60)
    assert meter.rate() == 0.0
    for second in range(0, 121, 5):
        meter.sample(float(second), 30 * second if second <= 60 else 1800)  # 30/s, then idle
    assert meter.rate() == pytest.approx(0.0, abs=2.6)
    meter = RateMeter(window=60)
    for second in range(0, 31, 5):
        meter.sample(float(second), 12 * second)
    assert meter.rate() == pytest.approx(12.0)


async def test_an_update_is_timed_from_receipt_to_the_end_of_its_handlers() -> None:
    queue = ReceiptQueue()
    processor = TimedUpdateProcessor(queue)
    update = Update.de_json(
        {
            "update_id": 1,
            "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "/start"},
        },
        None,
    )
    await queue.put(update)
    await asyncio.sleep(0.05)  # waiting in the queue counts

    async def handlers() -> None:
        await asyncio.sleep(0.05)

    await processor.process_update(await queue.get(), handlers())
    metrics = processor.metrics
    assert metrics.handled == {"message": 1} and metrics.in_progress == 0
    assert metrics.latency.count == 1 and metrics.latency.total >= 0.1
    assert queue.received == {}


# -- the endpoint ---------------------------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def _get(http: aiohttp.ClientSession, port: int, path: str) -> tuple[int, str]:
    async with http.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


async def _ask(http: aiohttp.ClientSession, server: HealthServer) -> dict[str, tuple[int, str]]:
    """Start the server, GET each endpoint once, stop it."""
    await server.start()
    try:
        return {path: await _get(http, server.port, path) for path in ("/healthz", "/readyz", "/metrics")}
    finally:
        await server.stop()


async def test_metrics_show_the_outbox_by_priority_the_dispatcher_and_the_updates(
    sessions: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession
) -> None:
    async with sessions() as session:
        for n in range(3):
            await outbox.enqueue(
                session,
                chat_id=-100 - n,
                text="alert",
                priority=Priority.escalation,
                dedup_key=f"e{n}",
                due_at=NOW - timedelta(seconds=30),
                now=NOW,
            )
        await outbox.enqueue(
            session,
            chat_id=5,
            text="later",
            priority=Priority.reminder,
            dedup_key="r",
            due_at=NOW + timedelta(hours=1),
            now=NOW,
        )
        await session.commit()
    stats = DispatcherStats(sent=41, failed=2, unreachable=1, retried=3, rate_limited=4, in_flight=5)
    updates = UpdateMetrics()
    updates.handled["message"] += 7
    updates.errors = 1
    updates.latency.observe(0.2)
    server = HealthServer(
        sessions=sessions,
        listen="127.0.0.1",
        port=free_port(),
        dispatcher_stats=lambda: stats,
        updates=lambda: updates,
        clock=lambda: NOW,
        worker="host:1",
    )
    answers = await _ask(http, server)
    assert answers["/healthz"] == (200, "ok\n") and answers["/readyz"] == (200, "ready\n")
    assert answers["/metrics"][0] == 200
    values = parse(answers["/metrics"][1])
    assert values["siaga_database_up"] == 1
    assert values['siaga_outbox_due{priority="escalation"}'] == 3
    assert values['siaga_outbox_due{priority="reminder"}'] == 0
    assert values['siaga_outbox_queued{priority="reminder"}'] == 1
    assert values['siaga_outbox_queued{priority="broadcast"}'] == 0
    assert values["siaga_outbox_oldest_due_age_seconds"] == 30
    assert values["siaga_outbox_sent_total"] == 41 and values["siaga_telegram_429_total"] == 4
    assert values["siaga_outbox_failed_total"] == 2 and values["siaga_outbox_unreachable_total"] == 1
    assert values["siaga_outbox_in_flight"] == 5 and "siaga_outbox_send_rate" in values
    assert values['siaga_updates_total{kind="message"}'] == 7 and values["siaga_update_errors_total"] == 1
    assert values["siaga_update_duration_seconds_count"] == 1
    assert values['siaga_info{worker="host:1"}'] == 1


async def test_a_database_that_does_not_answer_makes_the_worker_unready_not_dead(http: aiohttp.ClientSession) -> None:
    engine = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone")  # nobody listens there
    try:
        answers = await _ask(
            http, HealthServer(sessions=make_sessionmaker(engine), listen="127.0.0.1", port=free_port())
        )
    finally:
        await engine.dispose()
    assert answers["/healthz"] == (200, "ok\n") and answers["/readyz"] == (503, "database unreachable\n")
    assert answers["/metrics"][0] == 200 and parse(answers["/metrics"][1])["siaga_database_up"] == 0


# -- webhook mode, in one process -------------------------------------------------------------


async def _eventually(predicate: Callable[[], bool], timeout: float) -> None:
    """Poll: setWebhook changes no state the emulator's own waiters watch."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _settings(emu: Emulator, database_url: str, **telegram: object) -> Settings:
    data = load_settings(None).model_dump()
    data["telegram"].update(
        token=emu.token,
        base_url=emu.base_url,
        base_file_url=emu.base_file_url,
        bot_username=emu.bot_username,
        **telegram,
    )
    data["database"]["url"] = database_url
    data["delivery"]["poll_seconds"] = 0.05
    data["health"].update(listen="127.0.0.1", port=free_port())
    return Settings.model_validate(data)


def test_webhook_mode_needs_a_public_url_and_a_valid_secret() -> None:
    settings = load_settings(None)
    with pytest.raises(ConfigError) as missing:
        webhook_options(settings)
    assert "telegram.webhook_url is required" in str(missing.value)
    assert "telegram.webhook_secret is required" in str(missing.value)
    data = settings.model_dump()
    data["telegram"].update(webhook_url="https://siaga.example.org", webhook_secret="no spaces!")
    with pytest.raises(ConfigError, match="A-Z, a-z, 0-9, _ and -"):
        webhook_options(Settings.model_validate(data))
    data["telegram"].update(webhook_secret=SECRET, webhook_path="/hook/")
    assert webhook_options(Settings.model_validate(data)).url == "https://siaga.example.org/hook"
    data["telegram"].update(webhook_url="https://proxy.example.org/sumsel/telegram")
    options = webhook_options(Settings.model_validate(data))
    assert options.url == "https://proxy.example.org/sumsel/telegram" and options.path == "hook"


async def test_webhook_mode_answers_updates_and_refuses_requests_without_the_secret(
    engine: AsyncEngine, database_url: str, http: aiohttp.ClientSession
) -> None:
    async with Emulator(limits=Limits(enforce=False)) as emu:
        hook_port = free_port()
        settings = _settings(
            emu,
            database_url,
            webhook_listen="127.0.0.1",
            webhook_port=hook_port,
            webhook_url="https://siaga.example.org",
            webhook_secret=SECRET,
        )
        application = build_application(settings)
        stop = asyncio.Event()
        running = asyncio.create_task(serve(application, settings, webhook=webhook_options(settings), stop=stop))
        target = f"http://127.0.0.1:{hook_port}/telegram"
        emu.set_webhook_targets([target])
        try:
            await _eventually(lambda: emu.webhook.active, timeout=15)
            assert emu.webhook.url == "https://siaga.example.org/telegram" and emu.webhook.secret_token == SECRET
            guest = emu.user("Tamu")
            await guest.send("/start")
            greeting = await guest.next_message(timeout=10)
            assert "/daftar" in (greeting.text or "")
            update = {
                "update_id": 999,
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": guest.id, "type": "private"},
                    "from": {"id": guest.id, "is_bot": False, "first_name": "X"},
                    "text": "/start",
                },
            }
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(target, json=update, headers=headers) as response:
                    assert response.status == 403, headers
            status, body = await _get(http, settings.health.port, "/metrics")
        finally:
            stop.set()
            assert await asyncio.wait_for(running, 30) == 0
    values = parse(body)
    assert status == 200 and values["siaga_up"] == 1 and values["siaga_database_up"] == 1
    assert values.get('siaga_updates_total{kind="message"}') == 1, "build_application must use metrics.instrument"
    assert values["siaga_update_duration_seconds_count"] == 1
    assert values["siaga_inbox_stored_total"] == 1 and values["siaga_inbox_open"] == 0
    assert values['siaga_sweep_overruns_total{sweep="reminders"}'] >= 0
    assert emu.count(guest) == 1  # the refused requests were never handled


async def test_polling_mode_runs_the_same_loop(engine: AsyncEngine, database_url: str) -> None:
    async with Emulator(limits=Limits(enforce=False)) as emu:
        settings = _settings(emu, database_url)
        stop = asyncio.Event()
        running = asyncio.create_task(serve(build_application(settings), settings, webhook=None, stop=stop))
        try:
            guest = emu.user("Tamu")
            await guest.send("/start")
            assert "/daftar" in ((await guest.next_message(timeout=15)).text or "")
            assert not emu.webhook.active
        finally:
            stop.set()
            assert await asyncio.wait_for(running, 30) == 0
