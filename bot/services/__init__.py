"""Domain operations, one module per capability: plain async functions over a session.

No Telegram import here: a service returns what happened, and messages to
other chats go through the outbox.
"""
