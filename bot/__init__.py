"""Siaga: Telegram chat-ops for election-day security."""
