"""Shared pieces of the benchmarks: a generated province in a fresh database, and figures."""

from __future__ import annotations

import platform
import statistics
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

import models
from bot.demo import demodata
from bot.services.roster import import_files
from bot.storage.db import make_engine, make_sessionmaker

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"


async def fresh_database(backend: str, name: str, workdir: Path) -> str:
    """An empty database with the schema: a new SQLite file, or a recreated PostgreSQL database."""
    if backend == "sqlite":
        path = workdir / f"{name}.db"
        path.unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        admin = make_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        url = f"{PG_SERVER}/{name}"
    engine = make_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(models.Base.metadata.create_all)
    await engine.dispose()
    return url


async def load_province(url: str, *, tps: int, seed: int = 1) -> demodata.Province:
    """Generate a province and import it with the real importer."""
    province = demodata.generate(tps=tps, seed=seed)
    with tempfile.TemporaryDirectory() as directory:
        demodata.write_csv(province, Path(directory))
        engine = make_engine(url)
        async with make_sessionmaker(engine)() as session:
            report = await import_files(session, paths=sorted(Path(directory).glob("*.csv")), actor="bench")
        await engine.dispose()
    assert report.ok, report.format()
    return province


async def move_operation(session: AsyncSession, by: timedelta) -> None:
    """Move the whole timeline (shifts and escorts) by `by`: a bench that puts voting at the wall clock keeps the
    counting night's escorts hours ahead, as on the day, not long overdue (each would raise `terlambat` and take
    its members' check-ins as departures)."""
    for shift in await session.scalars(select(models.Shift)):
        shift.starts_at, shift.ends_at = shift.starts_at + by, shift.ends_at + by
    for escort in await session.scalars(select(models.Escort)):
        escort.depart_at, escort.arrive_by = escort.depart_at + by, escort.arrive_by + by


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:.0f} ms, p99 {percentile(values, 0.99) * 1000:.0f} ms"


def machine() -> str:
    import os

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {datetime.now():%Y-%m-%d}"
    )
