"""The PostgreSQL server the tests run on, and one database of it per pytest-xdist worker.

`SIAGA_TEST_DATABASE_URL` names the database CI made. Workers running side by
side would empty each other's tables between tests, so each works in its own
database beside it (`<name>_gw0`, `<name>_gw1`), made when its session starts
and dropped when it ends.
"""

from __future__ import annotations

import os

from sqlalchemy import text

from bot.storage.db import make_engine

CONFIGURED_URL = os.environ.get("SIAGA_TEST_DATABASE_URL")
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
PG_URL = f"{CONFIGURED_URL}_{XDIST_WORKER}" if CONFIGURED_URL and XDIST_WORKER else CONFIGURED_URL


async def fresh_pg_database(url: str, suffix: str) -> str:
    """A new, empty PostgreSQL database beside `url`'s, for tests that need a bare server."""
    base, _, name = url.rpartition("/")
    fresh = f"{name}_{suffix}"
    await _admin(base, f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)', f'CREATE DATABASE "{fresh}"')
    return f"{base}/{fresh}"


async def drop_pg_database(url: str) -> None:
    """Drop a database `fresh_pg_database` made (CI drops only the one it created itself)."""
    base, _, name = url.rpartition("/")
    await _admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(base: str, *statements: str) -> None:
    admin = make_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        for statement in statements:
            await connection.execute(text(statement))
    await admin.dispose()
