"""Telegram adapters, one module per capability: read the update, call a service, render.

`register_all` is the one place that decides handler groups:
group -1 drops redelivered updates before anything else runs.
"""

from telegram.ext import Application

from handlers import common, start

DEDUPE_GROUP = -1


def register_all(application: Application) -> None:
    common.register(application, group=DEDUPE_GROUP)
    start.register(application)
