"""Intake: how updates come in, are stored before they are accepted, and are handled once.

`updater` takes the place of python-telegram-bot's Updater: the webhook
answers 200 and polling confirms its offset only after the update is committed
to the inbox. `handling` marks an update handled in the transaction that
commits its effect; `liveness` beats for this worker and takes back what dead
workers held; `coalesce` asks the database once for what many updates of the
moment ask of it.
"""
