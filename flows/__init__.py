"""Flows: where a service's change meets the messages it causes, one module per capability.

A flow calls its capability's service for the change, words what the
service says should be told (plain values, `bot.services.outbox.Outgoing`)
with `bot.render`, queues the messages in the outbox in the same
transaction, and commits. So services never import a text and texts never
query, as Netflix Dispatch keeps `flows.py` apart from `service.py`.
Handlers and the scheduler's sweeps call flows; a flow imports neither
Telegram nor a handler.
"""
