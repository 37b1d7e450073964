"""Delivery: what the bot sends, in priority order, at the pace Telegram allows.

`dispatcher` sends the outbox's due rows (contingencies before bulk
reminders), `ratelimit` paces every send as Telegram counts it (on arrival,
per chat, per group, bot-wide), and `replies` sends direct answers to people
who wait, sharing the same budget and riding out a 429.
"""
