"""Benchmark of `/status`: how long the counting takes for commanders of every level.

Rosters:
- Sumsel: `bot.demo.demodata.generate(tps=25985)` through the real importer
  (`bot.services.roster.import_files`), on SQLite and on PostgreSQL, with a
  full morning of check-ins in the voting shift (85% of the people on duty,
  some late, some far from their TPS), a few open contingencies and sitreps.
- National: ~800,000 TPS under a national head (38 Polda, 532 Polres,
  5,320 Polsek), generated directly in PostgreSQL with INSERT ... SELECT
  over generate_series (a workbook of 11 million rows would take longer to
  import than the whole bench may run).

Usage::

    python -m bench.status --sqlite /tmp/sumsel.db \\
        --pg postgresql+asyncpg://postgres@127.0.0.1/siaga_bench \\
        --national postgresql+asyncpg://postgres@127.0.0.1/siaga_bench_national [--record]

Both rosters get their live tallies the way production does: `tally.rebuild`
after the data is in (the import will call it; the bench's morning and the
national generator insert check-ins directly, so it is called after them).

Each figure is the median of `--runs` calls of `bot.services.status.status_for`
(the whole request: authorization, shift, the counting statement, children,
sitreps) on a warm connection; `count` times the counting alone from the
tallies, `direct` the same figures counted from the source tables (the
statement `/status` used before the tallies), and `agree` says whether both
gave the same numbers. `--writes N` then times N check-ins and N check-outs
of police on 15 TPS each through bot.services.checkin (hooks included) and
checks the tallies against the direct count again. `--record` appends a
section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import exists, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

import models
from bench.common import load_province
from bench.common import machine as common_machine
from bot.config import CheckinSettings, Settings, StaffingSettings
from bot.demo import demodata
from bot.services import reports, status, tally
from bot.services.checkin import check_in, check_out
from bot.services.people import Actor
from bot.storage.db import make_engine, make_sessionmaker
from models import (
    Assignment,
    Checkin,
    Contingency,
    Personnel,
    Shift,
    Sitrep,
    Tps,
    Unit,
    UnitClosure,
)

VOTING_SHIFT = "H1-PEMUNGUTAN"
CHECKED_IN_SHARE, LATE_SHARE, FAR_SHARE = 0.85, 0.08, 0.04
RESULTS = Path(__file__).with_name("RESULTS.md")
STAFFING = StaffingSettings()
CHECKIN = CheckinSettings()


# --- building the rosters -------------------------------------------------------------------------


async def fresh_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(models.Base.metadata.drop_all)
        await connection.run_sync(models.Base.metadata.create_all)


async def build_sumsel(engine: AsyncEngine) -> dict[str, float]:
    """The generated province through the importer, then a morning of check-ins."""
    started = time.perf_counter()
    await fresh_schema(engine)
    await load_province(engine.url.render_as_string(hide_password=False), tps=demodata.SUMSEL_TPS)
    imported = time.perf_counter()
    async with make_sessionmaker(engine)() as session:
        await _morning(session)
    morning = time.perf_counter()
    tallied = await _tallies(engine)
    await _analyze(engine)
    return {"import_s": imported - started, "checkins_s": morning - imported, "tally_rebuild_s": tallied}


async def _tallies(engine: AsyncEngine) -> float:
    """`tally.rebuild` of every shift in one transaction, as the import does at its end; seconds."""
    began = time.perf_counter()
    async with make_sessionmaker(engine)() as session:
        await tally.rebuild(session, staffing=STAFFING)
        await session.commit()
    return time.perf_counter() - began


async def _morning(session: AsyncSession) -> None:
    """85% of the people on duty check in over the two hours around the start; some late, some far."""
    rng = random.Random(7)
    shift = await session.scalar(select(Shift).where(Shift.code == VOTING_SHIFT))
    assert shift is not None
    duty = await session.execute(
        select(Assignment.personnel_id, func.min(Assignment.tps_id))
        .where(Assignment.shift_id == shift.id)
        .group_by(Assignment.personnel_id)
    )
    rows = []
    for personnel_id, tps_id in duty:
        if rng.random() >= CHECKED_IN_SHARE:
            continue
        late, far = rng.random() < LATE_SHARE, rng.random() < FAR_SHARE
        minutes = rng.uniform(-100, 15) if not late else rng.uniform(16, 120)
        rows.append(
            {
                "personnel_id": personnel_id,
                "shift_id": shift.id,
                "tps_id": tps_id,
                "checked_in_at": shift.starts_at + timedelta(minutes=minutes),
                "lat": 0.0,
                "lon": 0.0,
                "distance_m": rng.uniform(400, 5000) if far else rng.uniform(0, 250),
                "far": far,
                "late": late,
            }
        )
    for start in range(0, len(rows), 5_000):
        await session.execute(insert(Checkin), rows[start : start + 5_000])
    await _incidents(session, shift, rng)
    await session.commit()


async def _incidents(session: AsyncSession, shift: Shift, rng: random.Random) -> None:
    """A few hundred open contingencies and a thousand sitreps, spread over the TPS."""
    tps = (await session.execute(select(Tps.id, Tps.unit_id).order_by(Tps.id))).all()
    reporter = await session.scalar(select(Assignment.personnel_id).where(Assignment.shift_id == shift.id).limit(1))
    at = shift.starts_at + timedelta(hours=1)
    contingencies = [
        {
            "reporter_id": reporter,
            "tps_id": tps_id,
            "shift_id": shift.id,
            "unit_id": unit_id,
            "level_unit_id": unit_id,
            "severity": rng.choice(["rendah", "sedang", "tinggi"]),
            "text": "bench",
            "state": rng.choice(["open", "acknowledged", "resolved"]),
            "created_at": at,
            "raised_at": at,
        }
        for tps_id, unit_id in rng.sample(tps, min(300, len(tps)))
    ]
    sitreps = [
        {
            "personnel_id": reporter,
            "shift_id": shift.id,
            "tps_id": tps_id,
            "unit_id": unit_id,
            "phase": "pemungutan",
            "category": "aman",
            "text": "bench",
            "created_at": at,
            "filed_at": at + timedelta(seconds=i),
        }
        for i, (tps_id, unit_id) in enumerate(rng.sample(tps, min(1000, len(tps))))
    ]
    await session.execute(insert(Contingency), contingencies)
    await session.execute(insert(Sitrep), sitreps)


# The national roster, generated in PostgreSQL. Ids are arithmetic so every
# statement is one INSERT ... SELECT: head 1, Polda 2.., Polres, Polsek, then
# TPS in contiguous blocks per Polsek; guards in pairs over 15 consecutive
# TPS (every 7th pair with a TNI member on BKO), two Linmas per TPS.
POLDA, POLRES_PER_POLDA, POLSEK_PER_POLRES, TEAM_TPS = 38, 14, 10, 15


def national_sql(tps: int) -> list[str]:
    polres = POLDA * POLRES_PER_POLDA
    polsek = polres * POLSEK_PER_POLRES
    first_polres, first_polsek = 2 + POLDA, 2 + POLDA + polres
    teams = -(-tps // TEAM_TPS)
    guards = 2 * teams
    people = guards + 2 * tps
    polsek_of = f"({first_polsek} + (i::bigint * {polsek} / {tps}))"
    base = "TIMESTAMPTZ '2024-02-14 00:00+07'"
    return [
        "SET session_replication_role = replica",  # no FK triggers while loading
        f"""INSERT INTO units (id, code, name, kind, force, parent_id, region, depth)
            SELECT 1, 'MABES', 'Mabes Polri', 'other', 'polri', NULL, 'Indonesia', 0
            UNION ALL SELECT 2 + k, 'POLDA-' || k, 'Polda ' || k, 'polda', 'polri', 1, '', 1 FROM generate_series(0, {POLDA - 1}) k
            UNION ALL SELECT {first_polres} + j, 'POLRES-' || j, 'Polres ' || j, 'polres', 'polri', 2 + j / {POLRES_PER_POLDA}, '', 2
                FROM generate_series(0, {polres - 1}) j
            UNION ALL SELECT {first_polsek} + m, 'POLSEK-' || m, 'Polsek ' || m, 'polsek', 'polri', {first_polres} + m / {POLSEK_PER_POLRES}, '', 3
                FROM generate_series(0, {polsek - 1}) m""",
        """WITH RECURSIVE up(ancestor_id, unit_id, distance) AS (
               SELECT id, id, 0 FROM units
               UNION ALL SELECT u.parent_id, up.unit_id, up.distance + 1 FROM up JOIN units u ON u.id = up.ancestor_id
               WHERE u.parent_id IS NOT NULL)
           INSERT INTO unit_closure (ancestor_id, unit_id, distance) SELECT * FROM up""",
        f"""INSERT INTO shifts (id, code, name, phase, starts_at, ends_at) VALUES
            (1, 'H0-LOGISTIK', 'Logistik', 'logistik', {base} - interval '12 hours', {base} + interval '6 hours'),
            (2, 'H1-PEMUNGUTAN', 'Pemungutan', 'pemungutan', {base} + interval '6 hours', {base} + interval '13 hours'),
            (3, 'H1-PENGHITUNGAN', 'Penghitungan', 'penghitungan', {base} + interval '13 hours', {base} + interval '24 hours'),
            (4, 'H2-MALAM', 'Malam', 'penghitungan', {base} + interval '24 hours', {base} + interval '30 hours'),
            (5, 'H2-PENGAWALAN', 'Pengawalan', 'pengawalan', {base} + interval '30 hours', {base} + interval '42 hours')""",
        f"""INSERT INTO tps (id, code, number, village, district, regency, lat, lon, kerawanan, access, unit_id)
            SELECT i + 1, 'TPS-' || i, (i % 150 + 1)::text, '', '', '', -6 + (i % 1000) * 0.001, 106 + (i / 1000) * 0.001,
                   CASE WHEN i % 100 < 8 THEN 'sangat_rawan' WHEN i % 100 < 30 THEN 'rawan' ELSE 'kurang_rawan' END,
                   'darat', {polsek_of}
            FROM generate_series(0, {tps - 1}) i""",
        f"""INSERT INTO personnel (id, nrp, name, rank, force, unit_id, role, phone, telegram_user_id, language, registered_at, reachable)
            SELECT n + 1, 'N' || n, 'Person ' || n, '',
                   CASE WHEN n >= {guards} THEN 'linmas' WHEN n % 14 = 1 THEN 'tni' ELSE 'polri' END,
                   CASE WHEN n < {guards} THEN ({first_polsek} + ((n / 2) * {TEAM_TPS})::bigint * {polsek} / {tps})
                        ELSE ({first_polsek} + ((n - {guards}) / 2)::bigint * {polsek} / {tps}) END,
                   'anggota', '', CASE WHEN n % 10 < 9 THEN n + 1 END, 'id', CASE WHEN n % 10 < 9 THEN {base} END,
                   n % 100 <> 3
            FROM generate_series(0::bigint, {people - 1}) n""",
        f"""INSERT INTO personnel (id, nrp, name, rank, force, unit_id, role, phone, language, reachable)
            SELECT {people} + u.id, 'K' || u.id, 'Komandan ' || u.code, '', 'polri', u.id,
                   CASE WHEN u.id = 1 THEN 'admin' ELSE 'komandan' END, '', 'id', true FROM units u""",
        f"""INSERT INTO assignments (personnel_id, tps_id, shift_id)
            SELECT g + 1, t + 1, s FROM generate_series(0, {guards - 1}) g,
                   LATERAL generate_series((g / 2) * {TEAM_TPS}, least((g / 2) * {TEAM_TPS} + {TEAM_TPS - 1}, {tps - 1})) t,
                   generate_series(1, 5) s""",
        f"""INSERT INTO assignments (personnel_id, tps_id, shift_id)
            SELECT {guards} + n + 1, n / 2 + 1, s FROM generate_series(0, {2 * tps - 1}) n, generate_series(2, 3) s""",
        f"""INSERT INTO checkins (personnel_id, shift_id, tps_id, checked_in_at, lat, lon, distance_m, far, late)
            SELECT n + 1, 2, CASE WHEN n < {guards} THEN (n / 2) * {TEAM_TPS} + 1 ELSE (n - {guards}) / 2 + 1 END,
                   {base} + interval '6 hours' + ((n * 37) % 135 - 100) * interval '1 minute', 0, 0,
                   CASE WHEN (n * 7) % 100 < 4 THEN 900 ELSE 40 END, (n * 7) % 100 < 4, (n * 37) % 135 > 15
            FROM generate_series(0::bigint, {people - 1}) n WHERE (n * 7919) % 100 < 85""",
        f"""INSERT INTO contingencies (reporter_id, tps_id, shift_id, unit_id, level_unit_id, severity, text, state, version, created_at, raised_at)
            SELECT 1, t.id, 2, t.unit_id, t.unit_id, (ARRAY['rendah','sedang','tinggi'])[t.id % 3 + 1], 'bench',
                   (ARRAY['open','acknowledged','resolved'])[(t.id / 3) % 3 + 1], 0, {base} + interval '7 hours', {base} + interval '7 hours'
            FROM tps t WHERE t.id % 1000 = 0""",
        f"""INSERT INTO sitreps (personnel_id, shift_id, tps_id, unit_id, phase, category, text, created_at, filed_at)
            SELECT 1, 2, t.id, t.unit_id, 'pemungutan', 'aman', 'bench', {base} + interval '7 hours',
                   {base} + interval '7 hours' + t.id * interval '1 millisecond'
            FROM tps t WHERE t.id % 40 = 0""",
        "SET session_replication_role = origin",
    ] + [
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        for table in ("units", "tps", "personnel", "shifts")
    ]


async def build_national(engine: AsyncEngine, *, tps: int) -> dict[str, float]:
    started = time.perf_counter()
    await fresh_schema(engine)
    async with engine.begin() as connection:
        for statement in national_sql(tps):
            await connection.execute(text(statement))
    generated = time.perf_counter()
    await _analyze(engine)  # the rebuild's plans need statistics
    tallied = await _tallies(engine)
    await _analyze(engine)
    return {"generate_s": generated - started, "tally_rebuild_s": tallied}


async def _analyze(engine: AsyncEngine) -> None:
    """Planner statistics (and, on PostgreSQL, the visibility map index-only scans need), as after an import.

    Production gets the same from autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite).
    """
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))


# --- measuring ---------------------------------------------------------------------------------------


async def measure(
    engine: AsyncEngine, *, codes: list[str], runs: int, now: datetime, direct: bool
) -> list[dict[str, object]]:
    """Median milliseconds of `status_for`, of the counting alone (tallies, direct) and of the first missing page."""
    results = []
    async with make_sessionmaker(engine)() as session:
        shift = await status.pick_shift(session, now=now)
        assert shift is not None
        for code in codes:
            unit = await session.scalar(select(Unit).where(Unit.code == code))
            assert unit is not None, code
            viewer = status.Viewer(Actor(0, "bench", "", "admin", unit.id, unit.code, unit.name, "id"))
            counted = {
                "shift_id": shift.id,
                "scope": unit.id,
                "groups": status.children_and_self(unit.id),
                "staffing": STAFFING,
            }
            timings, counting, missing, view = [], [], [], None
            for _ in range(runs):
                began = time.perf_counter()
                view = await status.status_for(session, viewer=viewer, now=now, staffing=STAFFING)
                timings.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                tallied = await status.figures_by_unit(session, **counted)
                counting.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                await status.missing_for(session, viewer=viewer, unit_id=unit.id, page=0, now=now)
                missing.append((time.perf_counter() - began) * 1000)
            direct_ms, agree = None, None
            if direct:
                began = time.perf_counter()
                agree = await status.direct_figures(session, **counted) == tallied
                direct_ms = (time.perf_counter() - began) * 1000
            assert isinstance(view, status.UnitStatus)
            people, tps = view.figures.people, view.figures.coverage
            results.append(
                {
                    "unit": code,
                    "median_ms": statistics.median(timings),
                    "min_ms": min(timings),
                    "count_ms": statistics.median(counting),
                    "direct_ms": direct_ms,
                    "agree": agree,
                    "missing_ms": statistics.median(missing),
                    "assigned": people.assigned,
                    "checked_in": people.checked_in,
                    "tps": tps.total,
                    "covered": tps.covered,
                    "meets": tps.meets_pattern,
                    "children": len(view.children),
                }
            )
            print(
                f"  {code:<28} status {statistics.median(timings):8.1f} ms (min {min(timings):.1f})"
                f"  count {statistics.median(counting):6.1f} ms"
                + (f"  direct {direct_ms:8.1f} ms agree {agree}" if direct else "")
                + f"  missing p1 {statistics.median(missing):7.1f} ms   people {people.assigned} in {people.checked_in}"
                f"  tps {tps.total} covered {tps.covered} pattern {tps.meets_pattern}",
                flush=True,
            )
    return results


async def writes(engine: AsyncEngine, *, count: int, now: datetime) -> dict[str, float]:
    """`count` check-ins, then their check-outs, of police holding the most TPS, through the services (hooks included)."""
    async with make_sessionmaker(engine)() as session:
        shift = await status.pick_shift(session, now=now)
        assert shift is not None
        load = func.count().label("posts")
        absent = ~exists().where(Checkin.personnel_id == Assignment.personnel_id, Checkin.shift_id == shift.id)
        rows = (
            await session.execute(
                select(Assignment.personnel_id, func.min(Tps.lat), func.min(Tps.lon), load)
                .join(Tps, Tps.id == Assignment.tps_id)
                .join(Personnel, Personnel.id == Assignment.personnel_id)
                .where(Assignment.shift_id == shift.id, Personnel.force.in_(status.SECURITY), absent)
                .group_by(Assignment.personnel_id)
                .order_by(load.desc(), Assignment.personnel_id)
                .limit(count)
            )
        ).all()
    ins, outs = [], []
    for personnel_id, lat, lon, _ in rows:
        async with make_sessionmaker(engine)() as session:
            began = time.perf_counter()
            result = await check_in(
                session,
                personnel_id=personnel_id,
                lat=lat,
                lon=lon,
                sent_at=now,
                forwarded=False,
                now=now,
                settings=CHECKIN,
            )
            ins.append((time.perf_counter() - began) * 1000)
            assert result.outcome.value == "checked_in", result
    for personnel_id, *_ in rows:
        async with make_sessionmaker(engine)() as session:
            began = time.perf_counter()
            out = await check_out(session, personnel_id=personnel_id, now=now, settings=CHECKIN)
            outs.append((time.perf_counter() - began) * 1000)
            assert out.outcome.value == "checked_out", out
    figures = {
        "people": len(rows),
        "posts": max((r[3] for r in rows), default=0),
        "checkin_p50_ms": statistics.median(ins),
        "checkout_p50_ms": statistics.median(outs),
    }
    print(
        f"  {len(rows)} check-ins p50 {figures['checkin_p50_ms']:.1f} ms, check-outs p50 {figures['checkout_p50_ms']:.1f} ms"
        f" (police on {figures['posts']} TPS)",
        flush=True,
    )
    return figures


async def explain(engine: AsyncEngine, *, code: str, shift_id: int) -> str:
    """The plan of the counting statement (PostgreSQL: executed, with buffers)."""
    async with make_sessionmaker(engine)() as session:
        unit = await session.scalar(select(Unit).where(Unit.code == code))
        assert unit is not None
        statement = await status.figures_statement(
            session, shift_id=shift_id, scope=unit.id, groups=status.children_and_self(unit.id), staffing=STAFFING
        )
        sql = str(statement.compile(engine.sync_engine, compile_kwargs={"literal_binds": True}))
        if engine.dialect.name == "sqlite":
            rows = await session.execute(text("EXPLAIN QUERY PLAN " + sql))
            return "\n".join(_plan_lines(rows.all()))
        rows = await session.execute(text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql))
        return "\n".join(row[0] for row in rows)


def _plan_lines(rows: list) -> list[str]:
    """SQLite's (id, parent, _, detail) rows as an indented tree."""
    depth: dict[int, int] = {}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


async def time_recap(engine: AsyncEngine, *, code: str, now: datetime) -> float:
    async with make_sessionmaker(engine)() as session:
        unit = await session.scalar(select(Unit).where(Unit.code == code))
        assert unit is not None
        viewer = status.Viewer(Actor(0, "bench", "", "admin", unit.id, unit.code, unit.name, "id"))
        began = time.perf_counter()
        files = await reports.recap_for(session, viewer=viewer, now=now, settings=Settings())
        assert isinstance(files, reports.ExportFiles)
        return time.perf_counter() - began


# --- the run ------------------------------------------------------------------------------------------


async def shift_of(engine: AsyncEngine) -> tuple[int, datetime]:
    """The voting shift, and a moment two hours into it (the morning is over, the day is not)."""
    async with make_sessionmaker(engine)() as session:
        shift = await session.scalar(select(Shift).where(Shift.code == VOTING_SHIFT))
        assert shift is not None, "no voting shift: build the roster first"
        return shift.id, shift.starts_at + timedelta(hours=2)


async def sumsel_units(engine: AsyncEngine) -> list[str]:
    """The Polda, its largest Polres, and that Polres's largest Polsek (by TPS)."""
    async with make_sessionmaker(engine)() as session:
        polda = await session.scalar(select(Unit.code).where(Unit.kind == "polda"))
        polres = await _largest(session, kind="polres", parent=None)
        polsek = await _largest(session, kind="polsek", parent=polres)
    return [str(polda), polres, polsek]


async def _largest(session: AsyncSession, *, kind: str, parent: str | None) -> str:
    ancestor = aliased(Unit)
    query = (
        select(ancestor.code)
        .join(UnitClosure, UnitClosure.ancestor_id == ancestor.id)
        .join(Tps, Tps.unit_id == UnitClosure.unit_id)
        .where(ancestor.kind == kind)
        .group_by(ancestor.code)
        .order_by(func.count().desc(), ancestor.code)
        .limit(1)
    )
    if parent is not None:
        query = query.where(ancestor.parent_id == select(Unit.id).where(Unit.code == parent).scalar_subquery())
    code = await session.scalar(query)
    assert code is not None
    return code


async def run_target(
    label: str,
    engine: AsyncEngine,
    *,
    build,
    codes,
    runs: int,
    direct: bool,  # type: ignore[no-untyped-def]
    write_count: int,
) -> dict[str, object]:
    print(f"== {label}", flush=True)
    built = await build(engine) if build else {}
    if built:
        print(f"  built in {', '.join(f'{k} {v:.1f}' for k, v in built.items())}", flush=True)
    shift_id, now = await shift_of(engine)
    unit_codes = codes if isinstance(codes, list) else await codes(engine)
    rounds: dict[str, object] = {"built": built}
    rounds["tallies"] = await measure(engine, codes=unit_codes, runs=runs, now=now, direct=direct)
    print(f"  plan of the counting statement for {unit_codes[0]}:", flush=True)
    print("    " + (await explain(engine, code=unit_codes[0], shift_id=shift_id)).replace("\n", "\n    "), flush=True)
    if write_count:
        rounds["writes"] = await writes(engine, count=write_count, now=now)
        print("  after the writes:", flush=True)
        rounds["after writes"] = await measure(engine, codes=unit_codes, runs=1, now=now, direct=direct)
    return rounds


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{common_machine()}; load average at the end {load} (other work on the machine)"


def record(command: str, started: str, sections: dict[str, dict[str, object]], notes: list[str]) -> None:
    """Append one section to bench/RESULTS.md, in a single write."""
    lines = [
        "",
        f"## bench/status.py — {started}",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine()}",
        "",
        "`/status` = `bot.services.status.status_for` (authorization, shift, the counting statement, child units,",
        "sitreps), with the figures read from the live tallies; `count` = `figures_by_unit` alone (tallies);",
        "`direct` = the same figures counted from the source tables (the statement of the earlier sections);",
        "`agree` = both gave equal figures; `missing p1` = the first page of the missing list.",
        "",
    ]
    for label, rounds in sections.items():
        lines.append(f"### {label}")
        built = rounds.get("built") or {}
        if built:
            lines.append("Built in " + ", ".join(f"{k} {v:.1f}" for k, v in built.items()) + " s.")  # type: ignore[union-attr]
        lines += [
            "",
            (
                "| when | unit | /status median ms | min ms | count ms | direct ms | agree | missing p1 ms | people | "
                "checked in | TPS | covered | meets pattern |"
            ),
            "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for when in ("tallies", "after writes"):
            for row in rounds.get(when, []):  # type: ignore[union-attr]
                direct = f"{row['direct_ms']:.1f}" if row["direct_ms"] is not None else "-"
                agree = {True: "yes", False: "NO", None: "-"}[row["agree"]]
                lines.append(
                    f"| {'built' if when == 'tallies' else when} | {row['unit']} | {row['median_ms']:.1f} | {row['min_ms']:.1f} | "
                    f"{row['count_ms']:.1f} | {direct} | {agree} | {row['missing_ms']:.1f} | "
                    f"{row['assigned']} | {row['checked_in']} | {row['tps']} | {row['covered']} | {row['meets']} |"
                )
        written = rounds.get("writes")
        if written:
            lines += [
                "",
                (
                    f"Writes through bot.services.checkin (hooks included), one transaction each: "  # type: ignore[index]
                    f"{written['people']} check-ins p50 {written['checkin_p50_ms']:.1f} ms, their check-outs "
                    f"p50 {written['checkout_p50_ms']:.1f} ms (police on {written['posts']} TPS each)."
                ),
            ]
        lines.append("")
    lines += [f"- {note}" for note in notes]
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", type=Path, help="SQLite file for the Sumsel roster (rebuilt unless --reuse)")
    parser.add_argument("--pg", help="PostgreSQL URL for the Sumsel roster (its tables are dropped and rebuilt)")
    parser.add_argument("--national", help="PostgreSQL URL for the national roster (dropped and rebuilt)")
    parser.add_argument("--national-tps", type=int, default=800_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--direct", action="store_true", help="also count each unit from the source tables and compare")
    parser.add_argument(
        "--writes", type=int, default=0, help="time this many check-ins and check-outs through the services"
    )
    parser.add_argument("--reuse", action="store_true", help="measure the databases as they are")
    parser.add_argument("--recap", action="store_true", help="also time /rekap of the Sumsel Polres and Polda (SQLite)")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args(argv)
    started = subprocess.run(["date"], capture_output=True, text=True).stdout.strip()
    sections: dict[str, dict[str, object]] = {}
    notes: list[str] = []

    async def go() -> None:
        if args.sqlite:
            engine = make_engine(f"sqlite+aiosqlite:///{args.sqlite}")
            sections["Sumsel on SQLite"] = await run_target(
                "Sumsel on SQLite",
                engine,
                build=None if args.reuse else build_sumsel,
                codes=sumsel_units,
                runs=args.runs,
                direct=args.direct,
                write_count=args.writes,
            )
            if args.recap:
                _, now = await shift_of(engine)
                for code in (await sumsel_units(engine))[:2][::-1]:
                    seconds = await time_recap(engine, code=code, now=now)
                    notes.append(f"/rekap of {code} on SQLite (chart, workbook, GeoJSON): {seconds:.1f} s")
                    print(f"  /rekap {code}: {seconds:.1f} s", flush=True)
            await engine.dispose()
        if args.pg:
            engine = make_engine(args.pg)
            sections["Sumsel on PostgreSQL"] = await run_target(
                "Sumsel on PostgreSQL",
                engine,
                build=None if args.reuse else build_sumsel,
                codes=sumsel_units,
                runs=args.runs,
                direct=args.direct,
                write_count=args.writes,
            )
            await engine.dispose()
        if args.national:
            engine = make_engine(args.national)

            async def national(e: AsyncEngine) -> dict[str, float]:
                return await build_national(e, tps=args.national_tps)

            sections[f"National ({args.national_tps} TPS) on PostgreSQL"] = await run_target(
                "National on PostgreSQL",
                engine,
                build=None if args.reuse else national,
                codes=["MABES", "POLDA-0", "POLRES-0", "POLSEK-0"],
                runs=max(3, args.runs // 2),
                direct=args.direct,
                write_count=args.writes,
            )
            await engine.dispose()

    asyncio.run(go())
    if args.record:
        record("python -m bench.status " + " ".join(sys.argv[1:] if argv is None else argv), started, sections, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
