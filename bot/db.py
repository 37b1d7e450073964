"""Database engine and sessions: SQLite embedded by default, PostgreSQL in production."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000
_WRITE_STATEMENT = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)


def make_engine(url: str, *, echo: bool = False, **kwargs: Any) -> AsyncEngine:
    """An engine tuned for its backend.

    SQLite gets WAL (readers never block the one writer), writers that take
    turns (`TurnTakingConnection`), a busy timeout (for another process's
    writer) and enforced foreign keys.
    Statement parameters are hidden from logs and errors: they hold NRPs and
    phone numbers.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "factory": TurnTakingConnection}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(url, echo=echo, **kwargs)
    event.listen(engine.sync_engine, "before_cursor_execute", _drop_nul_characters, retval=True)
    return engine


def _drop_nul_characters(
    _connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
) -> tuple[str, Any]:
    """PostgreSQL text cannot hold U+0000; a person's message may. Drop it rather than fail the save."""
    if executemany:
        return statement, [_scrub(row) for row in parameters]
    return statement, _scrub(parameters)


def _scrub(row: Any) -> Any:
    if isinstance(row, (tuple, list)) and any(isinstance(v, str) and "\x00" in v for v in row):
        return type(row)(v.replace("\x00", "") if isinstance(v, str) else v for v in row)
    return row


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
        self._has_turn = False
        self._wait = float(kwargs.get("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000))

    @classmethod
    def _turn_for(cls, key: str) -> threading.Lock:
        with cls._turns_guard:
            return cls._turns.setdefault(key, threading.Lock())

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or _TurnTakingCursor)

    def take_turn(self, statement: str) -> None:
        if self._has_turn or not _WRITE_STATEMENT.match(statement):
            return
        if not self._turn.acquire(timeout=self._wait):
            raise sqlite3.OperationalError("database is locked")
        self._has_turn = True

    def end_turn(self) -> None:
        if self._has_turn:
            self._has_turn = False
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def dialect_insert(session: AsyncSession) -> Callable[..., Any]:
    """The backend's INSERT, which knows ON CONFLICT (upserts and insert-or-ignore)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    async with sessions() as session, session.begin():
        yield session
