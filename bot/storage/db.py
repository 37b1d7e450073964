"""Database engine and sessions: SQLite embedded by default, PostgreSQL in production."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Result, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from bot.intake.handling import MarkingSession
from bot.storage import sqlite_driver


def make_engine(url: str, *, echo: bool = False, **kwargs: Any) -> AsyncEngine:
    """An engine tuned for its backend.

    SQLite gets the driver of bot/storage/sqlite_driver.py (one thread round trip a
    statement, writers taking turns), WAL and enforced foreign keys.
    Statement parameters are hidden from logs and errors: they hold NRPs and
    phone numbers.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        kwargs.setdefault("pool_size", 15)  # one thread each; a smaller pool would open and close them under load
        kwargs.setdefault("max_overflow", 5)
        engine = create_async_engine(url, echo=echo, connect_args=sqlite_driver.connect_args(), **kwargs)
        event.listen(engine.sync_engine, "connect", sqlite_driver.pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    engine = create_async_engine(url, echo=echo, **kwargs)
    event.listen(engine.sync_engine, "before_cursor_execute", _drop_nul_characters, retval=True)
    if not kwargs.get("pool_pre_ping"):
        _ping_after_idle(engine, IDLE_BEFORE_PING_SECONDS)
    return engine


IDLE_BEFORE_PING_SECONDS = 10.0


def _ping_after_idle(engine: AsyncEngine, seconds: float) -> None:
    """`pool_pre_ping`, for connections that sat idle in the pool: they may have outlived a database restart.

    A connection in steady use has just answered, and a ping per checkout
    cost a quarter of a location's latency at 100 updates a second
    (bench/RESULTS.md). A restart under load fails the statements in
    flight either way; the first failure marks the whole pool stale, so
    the connections after it are new.
    """

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError("connection lost while idle") from error  # the pool connects afresh

    event.listen(engine.sync_engine, "checkin", checked_in)
    event.listen(engine.sync_engine, "checkout", checked_out)


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


TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
"""Serialization failure and deadlock: PostgreSQL rolled this transaction back so another could go on."""


def retry_later(error: BaseException | None) -> bool:
    """Worth handling again later, not worth telling the sender it failed: the database went away (a restart,
    a network cut, no free connection), or chose this transaction as a deadlock's victim. A position lost to
    a deadlock with an alert sweep could not be sent again by the person: a live location moves on."""
    if isinstance(error, DBAPIError):
        if getattr(error.orig, "sqlstate", None) in TRANSIENT_SQLSTATES:
            return True
        return error.connection_invalidated or isinstance(error, (OperationalError, InterfaceError))
    return isinstance(error, (OSError, SQLAlchemyTimeoutError, DisconnectionError))


def dialect_insert(session: AsyncSession) -> Callable[..., Any]:
    """The backend's INSERT, which knows ON CONFLICT (upserts and insert-or-ignore)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def rowcount(result: Result[*tuple[Any, ...]]) -> int:
    """The rows an UPDATE or DELETE matched.

    `AsyncSession.execute` is typed to return a plain `Result` whatever the
    statement; an UPDATE's or DELETE's is a `CursorResult`, which counts.
    """
    return cast(CursorResult[*tuple[Any, ...]], result).rowcount


def table_of(model: type[DeclarativeBase]) -> Table:
    """A model's Core table, for bulk statements and DDL.

    Declarative types `__table__` as any `FromClause` (a mapping may be of
    a join); each of our models maps one `Table`.
    """
    table = model.__table__
    assert isinstance(table, Table), f"{model.__name__} maps a table"
    return table


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that mark the update being handled as handled when its effect commits (bot/intake/handling.py)."""
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=MarkingSession)


@asynccontextmanager
async def quick(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for a few indexed statements: every update's claim and sender, a check-in.

    On SQLite they run on the event loop's thread (`sqlite_driver.on_loop`):
    crossing to the connection's thread costs more than such work, and a
    write transaction that never yields holds the writer's turn only while
    it works. PostgreSQL is unchanged.
    """
    with sqlite_driver.on_loop():
        async with sessions() as session:
            yield session


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    async with sessions() as session, session.begin():
        yield session
