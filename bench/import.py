"""Benchmark of `siaga import` on a Sumsel-sized workbook, against openpyxl's own reading time.

The goal: an import takes under twice what openpyxl alone needs to read the
same workbook (read-only, every row of every sheet), under 500 MB peak.

Measured, each in a child process of its own so peak memory does not mix:
  floor      openpyxl `load_workbook(read_only=True, data_only=False)`, iterating every row
  sqlite     `import_files` into a fresh SQLite file (schema made beforehand, not timed)
  sqlite-re  the same workbook again into that file: nothing changes, nothing is written
  pg, pg-re  the same on PostgreSQL when `--pg URL` is given; the database named in
             URL is dropped and created afresh (use a name of its own, e.g. siaga_bench)
Every run is paired with a floor measured just before it, and its ratio is
to that floor: on a shared machine the load changes by the minute, and a
ratio of neighbours is what stays comparable. Wall time covers the import
call only; CPU time is this process's (user + system, all threads, so
SQLite's work but not the PostgreSQL server's); peak RSS is the child's
whole life (ru_maxrss). `--repeat N` repeats the plan and reports medians.

Usage::

    python -m bench.import [--tps 25985] [--seed 1] [--repeat 1] \\
        [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/siaga_bench]

The workbook is generated with `bot.demo.demodata` once and cached under /tmp/siaga-bench/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path("/tmp/siaga-bench")


def workbook(tps: int, seed: int) -> Path:
    """The cached workbook, generated on first use."""
    from bot.demo import demodata

    path = CACHE / f"province-{tps}-seed{seed}.xlsx"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        partial = path.with_suffix(".partial.xlsx")
        demodata.write_xlsx(demodata.generate(tps=tps, seed=seed), partial)
        partial.rename(path)
        print(f"generated {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def floor(path: Path) -> dict[str, Any]:
    from openpyxl import load_workbook

    started, cpu = time.perf_counter(), cpu_seconds()
    book = load_workbook(path, read_only=True, data_only=False)
    rows = 0
    for sheet in book.worksheets:
        for _ in sheet.iter_rows(values_only=True):
            rows += 1
    book.close()
    return {"seconds": time.perf_counter() - started, "cpu": cpu_seconds() - cpu, "rows": rows}


async def fresh(url: str) -> None:
    """Drop and create the database named in a PostgreSQL URL, or delete a SQLite file; then the schema."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    import models
    from bot.storage.db import make_engine

    target = make_url(url)
    if target.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target.database}{suffix}").unlink(missing_ok=True)
    else:
        admin = make_engine(
            target.set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
        )
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{target.database}"'))
        await admin.dispose()
    engine = make_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(models.Base.metadata.create_all)
    await engine.dispose()


async def run_import(path: Path, url: str, *, create: bool) -> dict[str, Any]:
    from bot.services.roster import import_files
    from bot.storage.db import make_engine, make_sessionmaker

    if create:
        await fresh(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            started, cpu = time.perf_counter(), cpu_seconds()
            report = await import_files(session, paths=[path], actor="bench")
            seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    finally:
        await engine.dispose()
    if not report.ok:
        raise SystemExit(report.format(limit=20))
    counts = {entity: vars(c) for entity, c in report.counts.items()}
    return {"seconds": seconds, "cpu": cpu, "counts": counts}


def child(mode: str, path: Path, url: str | None) -> None:
    """One measurement; prints a JSON line for the parent."""
    if mode == "floor":
        result = floor(path)
    else:
        assert url is not None
        result = asyncio.run(run_import(path, url, create=not mode.endswith("-re")))
    result["peak_mb"] = peak_mb()
    print(json.dumps(result))


def measure(mode: str, path: Path, url: str | None = None) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.import", "--child", mode, "--workbook", str(path)]
    if url:
        command += ["--url", url]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tps", type=int, default=25_985)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg", metavar="URL", help="PostgreSQL URL whose database is recreated for the run")
    parser.add_argument("--repeat", type=int, default=1, help="repeat the whole plan; medians are reported")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workbook", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.workbook, args.url)
        return 0

    path = workbook(args.tps, args.seed)
    sqlite_url = f"sqlite+aiosqlite:///{CACHE / 'bench-import.db'}"
    plan = [("sqlite", sqlite_url), ("sqlite-re", sqlite_url)]
    if args.pg:
        plan += [("pg", args.pg), ("pg-re", args.pg)]
    runs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {mode: [] for mode, _ in plan}
    for _ in range(args.repeat):
        for mode, url in plan:
            base = measure("floor", path)
            result = measure(mode, path, url)
            runs[mode].append((base, result))
            print(
                f"  floor {base['seconds']:5.1f} s, {mode:<9} {result['seconds']:5.1f} s "
                f"(cpu {result['cpu']:5.1f} s), peak {result['peak_mb']:4.0f} MB",
                file=sys.stderr,
            )
    report(args, path, runs)
    return 0


NAMES = {
    "sqlite": "import, SQLite (fresh file)",
    "sqlite-re": "re-import, SQLite (no change)",
    "pg": "import, PostgreSQL (fresh db)",
    "pg-re": "re-import, PostgreSQL (no change)",
}


def report(args: argparse.Namespace, path: Path, runs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]) -> None:
    """The figures as a Markdown table (medians over repeats), ready for bench/RESULTS.md."""
    median = statistics.median
    floors = [base for pairs in runs.values() for base, _ in pairs]
    print(
        f"python -m bench.import --tps {args.tps} --seed {args.seed} --repeat {args.repeat}"
        + (" --pg URL" if args.pg else "")
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now():%Y-%m-%d %H:%M}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"workbook: {path.name}, {path.stat().st_size / 2**20:.1f} MB, {floors[0]['rows']:,} rows with headers")
    counts = next(iter(runs.values()))[0][1]["counts"]
    print("rows: " + ", ".join(f"{e} {sum(c.values()):,}" for e, c in counts.items()))
    print()
    print("| run | wall | CPU | peak RSS | wall / floor | CPU / floor CPU |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| openpyxl floor (all {len(floors)} runs) | {median(f['seconds'] for f in floors):.1f} s | "
        f"{median(f['cpu'] for f in floors):.1f} s | {max(f['peak_mb'] for f in floors):.0f} MB | 1.00 | 1.00 |"
    )
    for mode, pairs in runs.items():
        wall = median(r["seconds"] for _, r in pairs)
        cpu = median(r["cpu"] for _, r in pairs)
        ratio = median(r["seconds"] / b["seconds"] for b, r in pairs)
        cpu_ratio = median(r["cpu"] / b["cpu"] for b, r in pairs)
        peak = max(r["peak_mb"] for _, r in pairs)
        print(f"| {NAMES[mode]} | {wall:.1f} s | {cpu:.1f} s | {peak:.0f} MB | {ratio:.2f} | {cpu_ratio:.2f} |")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
