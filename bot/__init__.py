"""Siaga: Telegram chat-ops for election-day security."""

import os

# Opt in to python-telegram-bot's coming durations as timedelta (retry_after and
# friends); every reader here accepts both, and the deprecation noise goes away.
os.environ.setdefault("PTB_TIMEDELTA", "1")
