"""Fixtures: a real database per test, SQLite always and PostgreSQL when configured.

Set SIAGA_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/DB
to run every database test on PostgreSQL as well (`.ci/run` does).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import models
from bot.storage.db import make_engine, make_sessionmaker

PG_URL = os.environ.get("SIAGA_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
_pg_schema_ready = False


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


async def fresh_pg_database(url: str, suffix: str) -> str:
    """A new, empty PostgreSQL database beside the test one, for tests that need a bare server."""
    base, _, name = url.rpartition("/")
    admin = make_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    fresh = f"{name}_{suffix}"
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)'))
        await connection.execute(text(f'CREATE DATABASE "{fresh}"'))
    await admin.dispose()
    return f"{base}/{fresh}"


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        yield session
