"""The database side of one check-in, call by call, with no Telegram in the way.

A location update costs: the update claim (exactly-once), the sender lookup
(every update), the chat-state lookup (is a report waiting for this
location?) and the check-in itself; `/hadir` costs the claim and the two
lookups (it clears the chat state only when something waits). Each is run once for each of N linked personnel,
one after another, and timed in CPU and wall time per call: where
bench/checkin_storm.py's time goes, and what a change to one service buys.
On SQLite each call is timed twice: in a plain session (statements in the
connection's thread) and in a `quick` one, as the bot makes these calls
(statements on the event loop's thread).

    python -m bench.checkin_path [--people 500] [--pg]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bench.checkin_storm import prepare
from bench.common import fresh_database, machine
from bot.config import load_settings
from bot.services import chatstate
from bot.services.checkin import check_in
from bot.services.people import actor_for
from bot.services.updates import claim_update
from bot.storage.db import make_engine, make_sessionmaker, quick
from models import Personnel

Call = Callable[[int, int, float, float], Awaitable[object]]


async def run_backend(backend: str, people: int, workdir: Path) -> None:
    for how in ("plain", "quick") if backend == "sqlite" else ("plain",):
        url = await fresh_database(backend, "siaga_bench_path", workdir)
        clock, places = await prepare(url, people)
        engine = make_engine(url)
        plain = make_sessionmaker(engine)
        print(f"  {backend}, {people} personnel, {how} sessions:")
        await time_calls(plain if how == "plain" else partial(quick, plain), clock(), places)
        await engine.dispose()


Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def time_calls(sessions: Sessions, now: datetime, places: list[tuple[int, float, float]]) -> None:
    people = len(places)
    settings = load_settings(None).checkin
    async with sessions() as session:
        linked = select(Personnel.telegram_user_id, Personnel.id).where(Personnel.telegram_user_id.is_not(None))
        personnel = {user: pid for user, pid in (await session.execute(linked)).all()}

    async def claim(index: int, _user: int, _lat: float, _lon: float) -> object:
        async with sessions() as session:
            return await claim_update(session, update_id=index + 1, now=now)

    async def actor(_index: int, user: int, _lat: float, _lon: float) -> object:
        async with sessions() as session:
            return await actor_for(session, telegram_user_id=user, now=now)

    async def waiting(_index: int, user: int, _lat: float, _lon: float) -> object:
        async with sessions() as session:
            return await chatstate.waiting_for(session, telegram_user_id=user, now=now)

    async def checkin(_index: int, user: int, lat: float, lon: float) -> object:
        async with sessions() as session:
            return await check_in(
                session,
                personnel_id=personnel[user],
                lat=lat,
                lon=lon,
                sent_at=now - timedelta(seconds=5),
                forwarded=False,
                now=now,
                settings=settings,
            )

    calls: list[tuple[str, Call]] = [
        ("claim_update", claim),
        ("actor_for", actor),
        ("chatstate.waiting_for", waiting),
        ("check_in (first)", checkin),
        ("check_in (again)", checkin),
    ]
    for label, call in calls:
        cpu, wall = time.process_time(), time.perf_counter()
        for index, (user, lat, lon) in enumerate(places):
            await call(index, user, lat, lon)
        per = 1000 / people
        print(
            f"    {label:<22} {per * (time.process_time() - cpu):5.2f} ms CPU, {per * (time.perf_counter() - wall):5.2f} ms wall a call"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--pg", action="store_true", help="also on the PostgreSQL at 127.0.0.1:5432")
    args = parser.parse_args()
    print(f"check-in path: {args.people} personnel; {machine()}")
    with tempfile.TemporaryDirectory() as directory:
        for backend in ["sqlite"] + (["postgresql"] if args.pg else []):
            await run_backend(backend, args.people, Path(directory))


if __name__ == "__main__":
    asyncio.run(main())
