"""Fixtures of the worker-process tests: an emulator in this event loop, a fresh database, workers.

Every test here needs PostgreSQL (`SIAGA_TEST_DATABASE_URL`), the production
engine of several workers; each module skips without it (`harness.needs_postgresql`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.emulator import Emulator, Limits
from tests.pg import drop_pg_database, fresh_pg_database
from tests.workers.harness import PG_URL, TOKEN, Cluster, build_cluster

MakeCluster = Callable[..., Awaitable[Cluster]]


@pytest.fixture
async def make_cluster(tmp_path: Path) -> AsyncIterator[MakeCluster]:
    """`await make_cluster(workers=2, extra={...}, url=None)`: started, ready, webhook set; torn down after."""
    made: list[Cluster] = []
    created: list[str] = []

    async def make(workers: int = 2, extra: dict[str, dict[str, Any]] | None = None, url: str | None = None) -> Cluster:
        emu = await Emulator(token=TOKEN, limits=Limits(enforce=False)).start()
        if url is None:
            assert PG_URL is not None, "no database for the workers"
            url = await fresh_pg_database(PG_URL, "workers")
            created.append(url)
        cluster = await build_cluster(emu, url, tmp_path)
        made.append(cluster)
        cluster.add_workers(workers, extra)
        await cluster.start()
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            await cluster.stop()
            await cluster.engine.dispose()
            await cluster.emu.stop()
        for url in created:
            await drop_pg_database(url)
