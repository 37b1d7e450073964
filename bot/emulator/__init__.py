"""Local emulator of the Telegram Bot API for end-to-end tests, benchmarks and demos.

Usage::

    async with Emulator() as emu:
        app = (ApplicationBuilder().token(emu.token).base_url(emu.base_url)
               .base_file_url(emu.base_file_url).build())
        app.add_handler(CommandHandler("start", start))
        async with running(app):
            budi = emu.user("Budi")
            await budi.send("/start")
            reply = await budi.next_message()

See ``core.Emulator`` for the test API, ``limits`` for the 429 model.
"""

from bot.emulator.core import Emulator, EmulatorTimeout
from bot.emulator.errors import ApiError
from bot.emulator.harness import running
from bot.emulator.limits import Faults, Limits
from bot.emulator.simulate import ButtonNotFound, Press, SimGroup, SimUser
from bot.emulator.state import CallbackAnswer, SentMessage, StoredFile, Version

__all__ = [
    "ApiError",
    "ButtonNotFound",
    "CallbackAnswer",
    "Emulator",
    "EmulatorTimeout",
    "Faults",
    "Limits",
    "Press",
    "SentMessage",
    "SimGroup",
    "SimUser",
    "StoredFile",
    "Version",
    "running",
]
