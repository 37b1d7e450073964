"""Fixtures: a real database per test, SQLite always and PostgreSQL when configured.

Set SIAGA_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/DB
to run every database test on PostgreSQL as well (`.ci/run` does).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import models
from bot.storage.db import make_engine, make_sessionmaker
from tests.pg import CONFIGURED_URL, PG_URL, XDIST_WORKER, drop_pg_database, fresh_pg_database

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
_pg_schema_ready = False


def pytest_sessionstart(session: pytest.Session) -> None:
    if CONFIGURED_URL and XDIST_WORKER:
        asyncio.run(fresh_pg_database(CONFIGURED_URL, XDIST_WORKER))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if PG_URL and XDIST_WORKER:
        asyncio.run(drop_pg_database(PG_URL))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> str:
    if backend == "postgresql":
        assert PG_URL
        return PG_URL
    return f"sqlite+aiosqlite:///{tmp_path / 'siaga.db'}"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A schema with no rows: created fresh on SQLite, emptied on PostgreSQL."""
    global _pg_schema_ready
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            if not _pg_schema_ready:
                await connection.run_sync(models.Base.metadata.drop_all)
                await connection.run_sync(models.Base.metadata.create_all)
                _pg_schema_ready = True
            tables = ", ".join(models.Base.metadata.tables)
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        else:
            await connection.run_sync(models.Base.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session
