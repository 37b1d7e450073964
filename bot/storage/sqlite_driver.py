"""SQLite under asyncio: one thread round trip a statement, none for short work, and writers that take turns.

aiosqlite runs each connection in a thread of its own and, as SQLAlchemy
drives it, crosses to that thread four times a statement (open a cursor,
execute, fetch, close): about 0.7 ms a statement against 0.05 ms for the
work itself, most of a check-in's time. `OneTripConnection` does the four
in one crossing. `TurnTakingConnection`, the sqlite3 connection underneath,
queues writers instead of letting them poll.

Inside `on_loop()` (the few indexed statements every update makes: its
claim, the sender, a check-in) statements run on the event loop's own
thread, where a crossing costs more than the work. Such a transaction
never gives the loop away between its statements, so it holds the writer's
turn only while it works: the turn cannot wait behind a busy loop. A
statement that would have to wait (the turn is another connection's, or
another process holds the file) goes to the connection's thread instead.

Both reach past aiosqlite's public API, to `Connection._connection`,
`_conn` and `_execute`: the same in 0.20 to 0.22, the range pinned in
pyproject.toml; `tests/test_db.py` fails by name if an upgrade moves them.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any, cast

import aiosqlite

BUSY_TIMEOUT_MS = 10_000
_WRITE_STATEMENT = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)


def connect_args() -> dict[str, Any]:
    """What `create_async_engine` passes on to each new connection."""
    return {
        "timeout": BUSY_TIMEOUT_MS / 1000,
        "factory": TurnTakingConnection,
        "async_creator_fn": connect,
        "check_same_thread": False,  # a checked-out connection is used by one caller, on the loop or in its thread
    }


_ON_LOOP: ContextVar[bool] = ContextVar("sqlite_on_loop", default=False)


@contextmanager
def on_loop() -> Iterator[None]:
    """Run this block's SQLite statements on the event loop's thread: for short, indexed work only.

    A long statement here would stop every other update for its duration;
    reports, imports and sweeps stay in the connection's thread.
    """
    token = _ON_LOOP.set(True)
    try:
        yield
    finally:
        _ON_LOOP.reset(token)


def connect(database: str, **kwargs: Any) -> OneTripConnection:
    """aiosqlite.connect, with our connection class."""
    return OneTripConnection(partial(sqlite3.connect, database, **kwargs), iter_chunk_size=64)


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors cross to the connection's thread once a statement."""

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    async def commit(self) -> None:
        await self._end("commit")

    async def rollback(self) -> None:
        """The pool rolls back every connection it takes back; most have nothing to undo."""
        await self._end("rollback")

    async def _end(self, how: str) -> None:
        """Commit or roll back: not at all when idle, on the loop inside `on_loop()`, else in the thread."""
        if self._idle():
            return
        if _ON_LOOP.get():
            getattr(self._connection, how)()
        else:
            await getattr(aiosqlite.Connection, how)(self)

    def _idle(self) -> bool:
        """No transaction open and no writer's turn held: nothing to end, no trip to make.

        Safe to ask from the event loop: the connection is checked out to
        this caller, so its thread is not running anything.
        """
        connection = self._connection
        return (
            isinstance(connection, TurnTakingConnection) and not connection.in_transaction and not connection.has_turn
        )


class OneTripCursor:
    """aiosqlite's cursor as SQLAlchemy uses it; a statement's rows come back with its execution."""

    arraysize = 1

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: deque[Any] = deque()

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        return await self._run("execute", sql, () if parameters is None else parameters)

    async def executemany(self, sql: str, parameters: Any) -> OneTripCursor:
        return await self._run("executemany", sql, parameters)

    async def _run(self, method: str, sql: str, parameters: Any) -> OneTripCursor:
        connection = self._connection
        raw = cast(TurnTakingConnection, connection._conn)  # `connect_args` makes it one
        done = raw.run_here(method, sql, parameters) if _ON_LOOP.get() else None
        if done is None:
            done = await connection._execute(_in_thread, raw, method, sql, parameters)
        self.description, self.rowcount, self.lastrowid, rows = done
        self._rows = deque(rows)
        return self

    async def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    async def close(self) -> None:
        self._rows.clear()


Done = tuple[Any, int, Any, Sequence[Any]]


def _in_thread(connection: sqlite3.Connection, method: str, sql: str, parameters: Any) -> Done:
    cursor = connection.cursor()
    try:
        getattr(cursor, method)(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class TurnTakingConnection(sqlite3.Connection):
    """A SQLite connection whose writers queue for their turn instead of polling for it.

    SQLite has one writer lock. A connection that finds it taken sleeps in
    SQLite's busy handler (up to 100 ms a try) and can miss release after
    release: under a check-in storm a few updates waited a second. Here the
    first write of a transaction waits on a lock shared by every connection of
    this process to the same file, and the commit or rollback that ends it
    hands the turn on at once. All of it runs in aiosqlite's thread for the
    connection, so a hand-over never waits for the event loop. Reads never
    wait: WAL keeps them off the writer's way.
    """

    _turns: dict[str, threading.Lock] = {}
    _turns_guard = threading.Lock()

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._turn = self._turn_for(os.path.realpath(database) if os.path.exists(database) else database)
        self.has_turn = False
        self._wait = float(kwargs.get("timeout", BUSY_TIMEOUT_MS / 1000))

    @classmethod
    def _turn_for(cls, key: str) -> threading.Lock:
        with cls._turns_guard:
            return cls._turns.setdefault(key, threading.Lock())

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or _TurnTakingCursor)

    def run_here(self, method: str, sql: str, parameters: Any) -> Done | None:
        """Run a statement on the calling thread if it need not wait; None if it would.

        A first write takes the turn only if it is free, and meets another
        process's write lock with SQLite's busy timeout at zero; either way
        it is left to the connection's thread, which may wait.
        """
        if not self._first_write(sql):
            return _in_thread(self, method, sql, parameters)
        if not self._turn.acquire(blocking=False):
            return None
        self.has_turn = True
        self.execute("PRAGMA busy_timeout = 0")
        try:
            return _in_thread(self, method, sql, parameters)
        except sqlite3.OperationalError as error:
            if "database is locked" not in str(error):
                raise
            self.end_turn()
            return None
        finally:
            self.execute(f"PRAGMA busy_timeout = {round(self._wait * 1000)}")

    def take_turn(self, statement: str) -> None:
        if not self._first_write(statement):
            return
        if not self._turn.acquire(timeout=self._wait):
            raise sqlite3.OperationalError("database is locked")
        self.has_turn = True

    def _first_write(self, statement: str) -> bool:
        """A write, and this transaction's first: the one that needs the turn."""
        return not self.has_turn and bool(_WRITE_STATEMENT.match(statement))

    def end_turn(self) -> None:
        if self.has_turn:
            self.has_turn = False
            self._turn.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_turn()


class _TurnTakingCursor(sqlite3.Cursor):
    connection: TurnTakingConnection

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        self.connection.take_turn(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
        self.connection.take_turn(sql)
        return super().executemany(sql, seq_of_parameters)


def pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # the busy timeout is connect_args' "timeout"
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
