"""`siaga run [--webhook]`: the bot's run loop, with its health endpoint beside it.

Polling suits one process. Webhook mode is how a province runs several
workers on one PostgreSQL database: Telegram posts each update to the public
URL (a reverse proxy), the proxy spreads them over the workers, and each
worker serves python-telegram-bot's webhook server, which refuses a request
without the secret token header. Every worker calls setWebhook with the same
URL and secret at start; pending updates are never dropped, since another
worker may be serving them.

Start-up order: the database and the dispatcher, the health endpoint, the
sweeps and the update fetcher, then setWebhook, retried (loudly) while
Telegram is unreachable and fatal, with Telegram's reason, when it refuses
the URL or the secret. Shutdown runs the other way and always finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import Application

from bot.config import ConfigError, Settings
from bot.ops.health import HealthServer

log = logging.getLogger("siaga.run")

SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")
SET_WEBHOOK_RETRY_SECONDS = (1.0, 30.0)  # first pause, longest pause


@dataclass(frozen=True)
class WebhookOptions:
    """What `Updater.start_webhook` and setWebhook need, checked and spelled out."""

    listen: str
    port: int
    path: str
    url: str
    secret: str
    max_connections: int = 40


def webhook_options(settings: Settings) -> WebhookOptions:
    """The webhook settings, or a ConfigError naming the key to fix.

    `telegram.webhook_url` is the public HTTPS address of the reverse proxy;
    when it has no path of its own, `telegram.webhook_path` is appended, so
    `https://siaga.example.org` with path `telegram` registers
    `https://siaga.example.org/telegram`, the path the workers listen on.
    """
    tg = settings.telegram
    problems = []
    if not tg.webhook_url:
        problems.append("telegram.webhook_url is required for --webhook: the public HTTPS URL of your reverse proxy")
    secret = tg.webhook_secret.get_secret_value() if tg.webhook_secret else ""
    if not secret:
        problems.append("telegram.webhook_secret is required for --webhook (or SIAGA_TELEGRAM__WEBHOOK_SECRET)")
    elif not SECRET_PATTERN.fullmatch(secret):
        problems.append("telegram.webhook_secret: 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
    if problems:
        raise ConfigError("\n".join(problems))
    path = tg.webhook_path.strip("/")
    url = str(tg.webhook_url)
    if urlsplit(url).path in ("", "/"):
        url = url.rstrip("/") + "/" + path
    return WebhookOptions(listen=tg.webhook_listen, port=tg.webhook_port, path=path, url=url, secret=secret)


def run(application: Application, settings: Settings, *, webhook: bool, worker: str = "") -> int:
    """Run until SIGTERM or SIGINT, then stop cleanly: the exit status of `siaga run`."""
    options = webhook_options(settings) if webhook else None
    return asyncio.run(serve(application, settings, webhook=options, worker=worker))


async def serve(
    application: Application,
    settings: Settings,
    *,
    webhook: WebhookOptions | None,
    worker: str = "",
    stop: asyncio.Event | None = None,
) -> int:
    """Start the bot, its health endpoint and the update source; wait for `stop` (default: a signal)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    health = (
        HealthServer.for_application(
            application, listen=settings.health.listen, port=settings.health.port, worker=worker
        )
        if settings.health.enabled
        else None
    )
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        if health is not None:
            await _start_health(health, settings)
        await application.start()  # the job queue (sweeps) and the update fetcher
        await _start_updates(application, webhook, stop)
        mode = f"webhook on {webhook.listen}:{webhook.port}/{webhook.path}" if webhook else "polling"
        log.info("siaga running: %s, worker %s", mode, worker or "-")
        await stop.wait()
        log.info("stopping: no new updates; finishing the ones in hand")
    finally:
        await _stop(application, health)
    return 0


async def _start_health(health: HealthServer, settings: Settings) -> None:
    try:
        await health.start()
    except OSError as error:
        raise ConfigError(
            f"health endpoint: cannot listen on {settings.health.listen}:{settings.health.port} ({error.strerror}); "
            "set health.port (one per worker on a host) or health.enabled = false"
        ) from None


async def _start_updates(application: Application, webhook: WebhookOptions | None, stop: asyncio.Event) -> None:
    updater = application.updater
    if updater is None:
        raise RuntimeError("the Application was built without an Updater")
    if webhook is None:
        await updater.start_polling(drop_pending_updates=False, bootstrap_retries=-1)
        return
    await register_webhook(application, webhook, stop)
    if stop.is_set():
        return
    try:
        await updater.start_webhook(
            listen=webhook.listen,
            port=webhook.port,
            url_path=webhook.path,
            webhook_url=webhook.url,
            secret_token=webhook.secret,
            drop_pending_updates=False,
            max_connections=webhook.max_connections,
            bootstrap_retries=3,
        )
    except OSError as error:
        raise ConfigError(
            f"webhook: cannot listen on {webhook.listen}:{webhook.port} ({error.strerror}); "
            "set telegram.webhook_port (one per worker on a host)"
        ) from None


async def register_webhook(application: Application, webhook: WebhookOptions, stop: asyncio.Event) -> None:
    """setWebhook until Telegram answers: retried while unreachable, fatal when refused."""
    pause, longest = SET_WEBHOOK_RETRY_SECONDS
    while not stop.is_set():
        try:
            await application.bot.set_webhook(
                url=webhook.url,
                secret_token=webhook.secret,
                drop_pending_updates=False,
                max_connections=webhook.max_connections,
            )
            return
        except (BadRequest, InvalidToken) as error:
            raise ConfigError(f"Telegram refused the webhook {webhook.url}: {error}") from None
        except TelegramError as error:
            log.warning("setWebhook failed (%s: %s); retrying in %.0f s", type(error).__name__, error, pause)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        pause = min(longest, pause * 2)


async def _stop(application: Application, health: HealthServer | None) -> None:
    """Reverse order of start; each step runs even if an earlier one failed."""
    steps: list[Any] = []
    if application.updater is not None and application.updater.running:
        steps.append(application.updater.stop)
    if application.running:
        steps.append(application.stop)
    if application.post_stop is not None:
        steps.append(lambda: application.post_stop(application))
    if health is not None:
        steps.append(health.stop)
    steps.append(application.shutdown)
    if application.post_shutdown is not None:
        steps.append(lambda: application.post_shutdown(application))
    for step in steps:
        try:
            await step()
        except Exception:
            log.exception("error while stopping")


__all__ = ["WebhookOptions", "register_webhook", "run", "serve", "webhook_options"]
