"""``python -m bot.emulator --port 8081``: serve the emulator standalone.

Prints the base_url (and token) to give to the bot, then serves until
interrupted. ``--no-limits`` disables flood limits (load demos);
``--arrivals`` counts them as Telegram does, over arrival times. Simulated
users are driven over HTTP through the control API in ``control.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from bot.emulator.core import Emulator
from bot.emulator.limits import Limits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = random free port")
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--bot-username", default="SiagaTestBot")
    parser.add_argument("--no-limits", action="store_true", help="do not enforce flood limits")
    parser.add_argument(
        "--arrivals", action="store_true", help="count the limits in sliding windows over arrival times"
    )
    args = parser.parse_args(argv)
    limits = Limits(enforce=not args.no_limits, mode="arrivals" if args.arrivals else "bucket")
    emu = Emulator(token=args.token, bot_username=args.bot_username, host=args.host, port=args.port, limits=limits)

    async def serve() -> None:
        await emu.start()
        print(f"base_url={emu.base_url}", flush=True)
        print(f"base_file_url={emu.base_file_url}", flush=True)
        print(f"token={emu.token}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await emu.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
