"""SQLite writers of one process take turns; a turn always ends with its transaction.

`quick` sessions run on the event loop's thread; they must never stop the
loop to wait for a writer, in this process or another. PostgreSQL: a pooled
connection that sat idle is checked before use.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

import bot.storage.sqlite_driver
import models
from bot.services.updates import claim_update
from bot.storage import db
from bot.storage.db import make_engine, make_sessionmaker, quick
from models import InboxUpdate
from tests.pg import PG_URL

NOW = datetime(2024, 2, 14, 6, 0, tzinfo=UTC)


@pytest.fixture
async def sqlite_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AsyncEngine]:
    """A short busy timeout: a turn that was never handed on shows up as 'database is locked'."""
    monkeypatch.setattr(bot.storage.sqlite_driver, "BUSY_TIMEOUT_MS", 500)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(models.Base.metadata.create_all)
    yield engine
    await engine.dispose()


async def stored(engine: AsyncEngine) -> int:
    async with make_sessionmaker(engine)() as session:
        return await session.scalar(select(func.count()).select_from(InboxUpdate)) or 0


async def test_a_failed_write_hands_the_turn_on(sqlite_engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(sqlite_engine)
    async with sessions() as session:
        assert await claim_update(session, update_id=1, now=NOW)
    async with sessions() as other:
        await other.execute(select(1))  # keeps a connection of its own, not the one that failed
        for _ in range(3):
            async with sessions() as session:
                session.add(InboxUpdate(update_id=1, payload={}, received_at=NOW))
                with pytest.raises(IntegrityError):
                    await session.commit()
        assert await claim_update(other, update_id=2, now=NOW), "the next writer is not locked out"
    assert await stored(sqlite_engine) == 2


async def test_many_writers_at_once_all_land(sqlite_engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(sqlite_engine)

    async def claim(update_id: int) -> bool:
        async with sessions() as session:
            return await claim_update(session, update_id=update_id, now=NOW)

    results = await asyncio.gather(*(claim(i) for i in range(200)), *(claim(i) for i in range(0, 200, 10)))
    assert results.count(True) == 200 and results.count(False) == 20
    assert await stored(sqlite_engine) == 200


async def test_readers_do_not_wait_for_a_writer(sqlite_engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(sqlite_engine)
    read_done = asyncio.Event()

    async def writer() -> None:
        async with sessions() as session:
            session.add(InboxUpdate(update_id=7, payload={}, received_at=NOW))
            await session.flush()
            await asyncio.wait_for(read_done.wait(), timeout=5)
            await session.commit()

    async def reader() -> int:
        await asyncio.sleep(0.05)
        count = await stored(sqlite_engine)
        read_done.set()
        return count

    _, seen = await asyncio.gather(writer(), reader())
    assert seen == 0, "the reader saw the state before the writer's commit, without waiting for it"
    assert await stored(sqlite_engine) == 1


async def hold_then_claim(engine: AsyncEngine, other: AsyncEngine, hold_seconds: float) -> bool:
    """`engine` holds a write for `hold_seconds` while `other` tries to write to the same file."""
    first, second = make_sessionmaker(engine), make_sessionmaker(other)
    holding = asyncio.Event()

    async def slow_writer() -> None:
        async with first() as session:
            session.add(InboxUpdate(update_id=1, payload={}, received_at=NOW))
            await session.flush()
            holding.set()
            await asyncio.sleep(hold_seconds)
            await session.commit()

    async def waiting_writer() -> bool:
        await holding.wait()
        async with second() as session:
            return await claim_update(session, update_id=2, now=NOW)

    _, claimed = await asyncio.gather(slow_writer(), waiting_writer(), return_exceptions=True)
    if isinstance(claimed, BaseException):
        raise claimed
    return claimed


async def test_two_engines_on_one_file_take_turns(sqlite_engine: AsyncEngine, tmp_path: Path) -> None:
    other = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    try:
        assert await hold_then_claim(sqlite_engine, other, hold_seconds=0.2)
    finally:
        await other.dispose()
    assert await stored(sqlite_engine) == 2


async def test_a_writer_kept_waiting_past_the_busy_timeout_fails_cleanly(
    sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    other = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            await hold_then_claim(sqlite_engine, other, hold_seconds=1.5)
        async with make_sessionmaker(other)() as session:
            assert await claim_update(session, update_id=3, now=NOW), "the failed writer left no turn behind"
    finally:
        await other.dispose()
    assert await stored(sqlite_engine) == 2


async def test_quick_and_threaded_writers_at_once_all_land_once(sqlite_engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(sqlite_engine)

    async def claim(update_id: int) -> bool:
        session_of = quick(sessions) if update_id % 2 else sessions()
        async with session_of as session:
            return await claim_update(session, update_id=update_id, now=NOW)

    results = await asyncio.gather(*(claim(i) for i in range(200)), *(claim(i) for i in range(0, 200, 7)))
    assert results.count(True) == 200 and results.count(False) == 29
    assert await stored(sqlite_engine) == 200


async def loop_ticks_while(work: asyncio.Future[bool], *, for_seconds: float) -> int:
    """How often a 10 ms ticker ran during the first `for_seconds` of `work`: 0 if the loop was stopped."""
    ticks, ends = 0, time.monotonic() + for_seconds
    while time.monotonic() < ends:
        await asyncio.sleep(0.01)
        ticks += 1
    return ticks


async def test_a_quick_writer_waits_for_another_connections_turn_off_the_loop(sqlite_engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(sqlite_engine)
    async with sessions() as holder:
        holder.add(InboxUpdate(update_id=1, payload={}, received_at=NOW))
        await holder.flush()  # this connection has the turn until its commit

        async def quick_claim() -> bool:
            async with quick(sessions) as session:
                return await claim_update(session, update_id=2, now=NOW)

        claim = asyncio.ensure_future(quick_claim())
        ticks = await loop_ticks_while(claim, for_seconds=0.2)
        assert not claim.done(), "the quick writer did not wait for the turn"
        await holder.commit()
    assert await asyncio.wait_for(claim, timeout=2)
    assert ticks >= 5, f"the event loop stopped while the quick writer waited ({ticks} ticks in 0.2 s)"
    assert await stored(sqlite_engine) == 2


async def test_a_quick_writer_does_not_stop_the_loop_while_another_process_writes(
    sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    """Another process (an import from the command line) holds SQLite's write lock for a while."""
    other_process = sqlite3.connect(tmp_path / "turns.db", isolation_level=None, check_same_thread=False)
    other_process.execute("BEGIN IMMEDIATE")
    other_process.execute(
        "INSERT INTO inbox (update_id, payload, received_at, attempts) VALUES (1, '{}', '2024-02-14 06:00:00', 1)"
    )

    async def quick_claim() -> bool:
        async with quick(make_sessionmaker(sqlite_engine)) as session:
            return await claim_update(session, update_id=2, now=NOW)

    try:
        claim = asyncio.ensure_future(quick_claim())
        ticks = await loop_ticks_while(claim, for_seconds=0.3)
        assert not claim.done(), "the quick writer did not wait for the other process"
    finally:
        other_process.execute("COMMIT")
        other_process.close()
    assert await asyncio.wait_for(claim, timeout=2)
    assert ticks >= 5, f"the event loop stopped while the quick writer waited ({ticks} ticks in 0.3 s)"
    assert await stored(sqlite_engine) == 2


async def test_a_connection_that_sat_idle_through_a_lost_server_session_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a database restart does to pooled connections: the next user gets a working one, no error."""
    if not PG_URL:
        pytest.skip("needs PostgreSQL (SIAGA_TEST_DATABASE_URL)")
    monkeypatch.setattr(db, "IDLE_BEFORE_PING_SECONDS", 0.2)
    engine, admin = make_engine(PG_URL, pool_size=1, max_overflow=0), make_engine(PG_URL)
    try:
        async with engine.connect() as connection:
            first = await connection.scalar(text("SELECT pg_backend_pid()"))
        async with admin.connect() as connection:
            assert await connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        await asyncio.sleep(0.3)
        async with engine.connect() as connection:
            second = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
    finally:
        await engine.dispose()
        await admin.dispose()


async def test_the_aiosqlite_internals_the_driver_uses_are_there(tmp_path: Path) -> None:
    """`sqlite_driver` reaches past aiosqlite's public API (pinned in pyproject.toml): an upgrade that moves
    `_connection`, `_conn` or `_execute` must fail here, by name, not as a hang or an AttributeError mid-check-in."""
    import inspect
    import threading
    from importlib.metadata import version

    import aiosqlite

    found = f"aiosqlite {version('aiosqlite')}"
    assert isinstance(inspect.getattr_static(aiosqlite.Connection, "_conn", None), property), (
        f"{found}: Connection._conn is no longer a property returning the sqlite3 connection"
    )
    assert inspect.iscoroutinefunction(getattr(aiosqlite.Connection, "_execute", None)), (
        f"{found}: Connection._execute(fn, *args) is no longer a coroutine function"
    )
    assert {"connector", "iter_chunk_size"} <= set(inspect.signature(aiosqlite.Connection).parameters), (
        f"{found}: Connection(connector, iter_chunk_size) changed its signature"
    )
    turn_taking = bot.storage.sqlite_driver.TurnTakingConnection
    connection = bot.storage.sqlite_driver.connect(str(tmp_path / "internals.db"), factory=turn_taking)
    assert getattr(connection, "_connection", "missing") is None, (
        f"{found}: Connection._connection (the sqlite3 connection, None until connected) is missing"
    )
    await connection
    try:
        raw = getattr(connection, "_connection", None)
        assert isinstance(raw, turn_taking), (
            f"{found}: Connection._connection is not the sqlite3 connection its connector made ({raw!r})"
        )
        assert connection._conn is raw, f"{found}: Connection._conn is not Connection._connection"
        thread, result = await connection._execute(lambda a, b: (threading.get_ident(), a + b), 2, b=3)
        assert result == 5 and thread != threading.get_ident(), (
            f"{found}: Connection._execute(fn, *args, **kwargs) no longer returns fn's result from its own thread"
        )
    finally:
        await connection.close()
    assert getattr(connection, "_connection", "missing") is None, f"{found}: Connection._connection kept after close"


async def test_a_deadlock_victim_is_handled_again_later_not_failed() -> None:
    """PostgreSQL rolls one of two deadlocked transactions back; what it was doing is worth doing again
    (the intake handles the update again), not a failure to tell the sender of."""
    if not PG_URL:
        pytest.skip("a deadlock needs PostgreSQL")
    pg_url_engine = make_engine(PG_URL)
    async with pg_url_engine.begin() as setup:
        await setup.execute(text("CREATE TABLE IF NOT EXISTS deadlock_probe (id int PRIMARY KEY, n int)"))
        await setup.execute(text("DELETE FROM deadlock_probe"))
        await setup.execute(text("INSERT INTO deadlock_probe VALUES (1, 0), (2, 0)"))
    both_hold_one = asyncio.Barrier(2)

    async def take(first: int, second: int) -> BaseException | None:
        try:
            async with pg_url_engine.begin() as connection:
                await connection.execute(text("UPDATE deadlock_probe SET n = n + 1 WHERE id = :id"), {"id": first})
                await both_hold_one.wait()
                await connection.execute(text("UPDATE deadlock_probe SET n = n + 1 WHERE id = :id"), {"id": second})
        except Exception as error:
            return error
        return None

    outcomes = await asyncio.gather(take(1, 2), take(2, 1))
    [victim] = [error for error in outcomes if error is not None]
    assert getattr(getattr(victim, "orig", None), "sqlstate", None) == "40P01"
    assert db.retry_later(victim)
    assert not db.retry_later(IntegrityError("INSERT", {}, Exception("duplicate key")))
    async with pg_url_engine.begin() as cleanup:
        await cleanup.execute(text("DROP TABLE deadlock_probe"))
    await pg_url_engine.dispose()
