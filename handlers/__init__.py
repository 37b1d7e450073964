"""Telegram adapters, one module per capability: read the update, call a service, render.

`register_all` is the one place that decides handler groups: group -1 drops
redelivered updates before anything else runs; each capability then adds
its handlers to the default group.
"""

from telegram.ext import Application

from handlers import checkin, common, fallback, menus, registration, schedule, sitrep

DEDUPE_GROUP = -1


def register_all(application: Application) -> None:
    common.register(application, group=DEDUPE_GROUP)
    registration.register_handlers(application)
    menus.register_handlers(application)
    schedule.register_handlers(application)
    checkin.register_handlers(application)
    sitrep.register_handlers(application)
    fallback.register_handlers(application)
