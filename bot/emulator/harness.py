"""Run a python-telegram-bot Application against the emulator, in-process.

``running(app)`` performs what ``Application.run_polling`` does - initialize,
post_init, start, start_polling, and on exit stop polling, stop, post_stop,
shutdown, post_shutdown - but as an async context manager so a test can act
while the bot runs. ``poll_interval=0`` plus the emulator's prompt long-poll
answer keep the round trip to a few milliseconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from telegram.ext import Application


@contextlib.asynccontextmanager
async def running(
    application: Application[Any, Any, Any, Any, Any, Any],
    *,
    timeout: float = 5.0,
    poll_interval: float = 0.0,
    drop_pending_updates: bool = False,
    allowed_updates: Sequence[str] | None = None,
    run_post_hooks: bool = True,
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """Yield ``application`` while it polls; always shut it down cleanly."""
    await application.initialize()
    try:
        if run_post_hooks and application.post_init:
            await application.post_init(application)
        updater = application.updater
        if updater is None:
            raise RuntimeError("the Application has no Updater; build it without updater(None)")
        await updater.start_polling(
            poll_interval=poll_interval,
            timeout=int(timeout),
            drop_pending_updates=drop_pending_updates,
            allowed_updates=allowed_updates,
        )
        await application.start()
        try:
            yield application
        finally:
            if updater.running:
                await updater.stop()
            if application.running:
                await application.stop()
            if run_post_hooks and application.post_stop:
                await application.post_stop(application)
    finally:
        await application.shutdown()
        if run_post_hooks and application.post_shutdown:
            await application.post_shutdown(application)
