"""Telegram adapters, one module per capability: read the update, call a service, render.

`register_all` is the one place that decides handler groups: group -1 drops
redelivered updates before anything else runs; each capability then adds
its handlers to the default group, and the fallback comes last, so it only
answers what nothing else took.
"""

from telegram.ext import Application

from handlers import (
    broadcast,
    checkin,
    common,
    escorts,
    fallback,
    groups,
    incidents,
    menus,
    registration,
    reports,
    schedule,
    sitrep,
    status,
)

CONTEXT_TYPES = common.CONTEXT_TYPES
DEDUPE_GROUP = -1


def register_all(application: Application) -> None:
    common.register(application, group=DEDUPE_GROUP)
    capabilities = (
        registration,
        menus,
        schedule,
        checkin,
        escorts,
        sitrep,
        incidents,
        groups,
        broadcast,
        status,
        reports,
    )
    for capability in capabilities:
        capability.register_handlers(application)
    fallback.register_handlers(application)
