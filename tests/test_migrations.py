"""`siaga db upgrade` builds exactly the schema the models describe, on every engine."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

import models
from bot.storage.db import make_engine
from bot.storage.migrate import current_revision, upgrade
from tests.pg import fresh_pg_database


async def test_upgrade_matches_models_and_is_repeatable(database_url: str, backend: str) -> None:
    if backend == "postgresql":
        database_url = await fresh_pg_database(database_url, "migrations")
    engine = make_engine(database_url)
    await upgrade(engine)
    await upgrade(engine)

    def diff(connection: Connection) -> list[object]:
        return compare_metadata(MigrationContext.configure(connection), models.Base.metadata)

    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []
    assert await current_revision(engine) == "0008"
    if backend == "sqlite":
        async with engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
            timeout = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
        assert (mode, timeout) == ("wal", 10_000)
    await engine.dispose()
