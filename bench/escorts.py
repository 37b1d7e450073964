"""Escorts underway: every escort's live location moves every 30 s, through two `siaga run --webhook` workers.

One PostgreSQL database, one emulator (flood limits enforced per chat; the
bot-wide 30/s is lifted, since the check-in baseline's replies alone exceed
it), two worker processes as `siaga run` runs them, except that
`escort.stop_minutes` is --stop-minutes (2 by default, for a short run).

  baseline  people on TPS duty send a location each at the escorts' rate (the
            plain check-in path, as bench/checkin_storm.py's paced phase)
  escorts   --escorts escorts underway, one registered member each, share a
            live location and move it every 30 s for --minutes; --stopped of
            them stand still after the first minute (the same position again)

Handling = from the bench posting the update to the inbox row's `handled_at`
(the commit of its effect: the check-in, or the escort row and track point),
the same measure on both paths. `berhenti` latency = from the moment the
escort had stood still for stop_minutes (its anchor time plus stop_minutes)
to the contingency's `created_at` and to its message in the group.

    python -m bench.escorts [--escorts 5000] [--minutes 6] [--stop-minutes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from bench.checkin_storm import prepare
from bench.common import fresh_database, machine, percentile
from bot.config import load_settings
from bot.emulator import Emulator, Limits, SimUser
from bot.storage.db import make_engine, make_sessionmaker
from models import (
    CommandGroup,
    Contingency,
    Escort,
    EscortAlert,
    EscortMember,
    EscortTrackPoint,
    InboxUpdate,
    Personnel,
    Place,
    Unit,
)
from tests.workers.harness import TOKEN, Cluster

FIRST_ESCORT_USER = 950_000_001
MOVE_EVERY = 30.0
STEP_DEGREES = 0.003  # ~333 m a move (40 km/h): always beyond the 200 m stop radius
LIVE_PERIOD = 6 * 3600
SETTLE_SECONDS = 5.0


async def add_escorts(url: str, count: int) -> tuple[list[tuple[int, str, float, float]], dict[int, str]]:
    """`count` escorts underway since now, one registered member each, 60 km to go; and the Polres to group.

    Returns (telegram id, escort code, start lat, start lon) per escort and
    the Polres units (id -> code) that get a command group.
    """
    engine = make_engine(url)
    now = datetime.now(UTC).replace(microsecond=0)
    async with make_sessionmaker(engine)() as session:
        polsek = (await session.execute(select(Unit.id, Unit.parent_id).where(Unit.kind == "polsek"))).all()
        polres = dict((await session.execute(select(Unit.id, Unit.code).where(Unit.kind == "polres"))).all())
        starts: list[tuple[int, str, float, float]] = []
        for n in range(count):
            unit_id = polsek[n % len(polsek)].id
            lat, lon = -3.0 - (n % 100) * 0.01, 104.0 + (n // 100) * 0.01
            people = Personnel(
                nrp=f"KW9{n:06d}",
                name=f"Pengawal {n}",
                rank="Bripda",
                force="polri",
                unit_id=unit_id,
                telegram_user_id=FIRST_ESCORT_USER + n,
                registered_at=now,
            )
            here = Place(code=f"BX-F-{n}", name=f"PPS {n}", kind="pps", lat=lat, lon=lon, unit_id=unit_id)
            there = Place(code=f"BX-T-{n}", name=f"PPK {n}", kind="ppk", lat=lat, lon=lon + 0.54, unit_id=unit_id)
            session.add_all([people, here, there])
            await session.flush()
            escort = Escort(
                code=f"KWL-BX-{n:05d}",
                kind="kotak_suara",
                cargo="5 kotak suara",
                from_place_id=here.id,
                to_place_id=there.id,
                unit_id=unit_id,
                depart_at=now,
                arrive_by=now + timedelta(hours=6),
                access="darat",
                state="berangkat",
                departed_at=now,
            )
            session.add(escort)
            await session.flush()
            session.add(EscortMember(escort_id=escort.id, personnel_id=people.id, role="ketua"))
            starts.append((FIRST_ESCORT_USER + n, escort.code, lat, lon))
            if n % 500 == 499:
                await session.commit()
        await session.commit()
    await engine.dispose()
    return starts, polres


@asynccontextmanager
async def workers(emu: Emulator, url: str, count: int, workdir: Path, stop_minutes: float) -> AsyncIterator[Cluster]:
    """As bench/checkin_storm.workers, with the short `stop_minutes`."""
    defaults = load_settings(None).model_dump()
    sections = ("scheduler", "escalation", "reminders", "checkin", "delivery")
    config = {name: {k: v for k, v in defaults[name].items() if v is not None} for name in sections}  # TOML has no null
    config["logging"] = {"level": "WARNING"}
    config["escort"] = {"stop_minutes": stop_minutes}
    cluster = Cluster(emu=emu, url=url, workdir=workdir, engine=make_engine(url))
    cluster.add_workers(count, config)
    try:
        await cluster.start()
        yield cluster
    finally:
        await cluster.stop()
        await cluster.engine.dispose()


async def handled(url: str, kind: str, since: datetime) -> dict[tuple[int, int], tuple[datetime | None, int]]:
    """(sender, message or edit date) -> (handled_at, update_id) of the inbox rows of one kind of update."""
    engine = make_engine(url)
    found: dict[tuple[int, int], tuple[datetime | None, int]] = {}
    async with make_sessionmaker(engine)() as session:
        rows = await session.execute(
            select(InboxUpdate.update_id, InboxUpdate.payload, InboxUpdate.handled_at).where(
                InboxUpdate.received_at >= since
            )
        )
        for update_id, payload, at in rows:
            message = payload.get(kind)
            if message and "location" in message:
                found[(message["from"]["id"], message.get("edit_date") or message["date"])] = (at, update_id)
    await engine.dispose()
    return found


async def baseline(
    emu: Emulator, users: list[SimUser], places: dict[int, tuple[float, float]], rate: float
) -> dict[str, Any]:
    """A location from each person on duty at `rate` a second: sent -> reply, sent -> handled."""
    counts = {user.id: emu.count(user) for user in users}
    sent: dict[int, tuple[float, int]] = {}
    started = time.perf_counter()
    for index, user in enumerate(users):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        message = await user.send_location(*places[user.id])
        sent[user.id] = (time.time(), message["date"])
    await emu.until(lambda: True if all(emu.count(u) > counts[u.id] for u in users) else None, timeout=600)
    replies = [emu.sent_to(user)[counts[user.id]].wall - sent[user.id][0] for user in users]
    return {"sent": sent, "replies": replies, "seconds": time.perf_counter() - started}


async def escorting(
    emu: Emulator, starts: list[tuple[int, str, float, float]], minutes: float, stopped: int
) -> dict[str, Any]:
    """Share and move every escort's live location every 30 s, staggered; the last `stopped` stand still after a minute."""
    users = {uid: emu.user(f"K{uid}", user_id=uid) for uid, _, _, _ in starts}
    shares: dict[int, dict[str, Any]] = {}
    sent: dict[tuple[int, int], float] = {}
    first: set[tuple[int, int]] = set()
    rounds = max(2, int(minutes * 60 / MOVE_EVERY))
    standing = {uid for uid, _, _, _ in starts[len(starts) - stopped :]}
    began = time.perf_counter()
    step = MOVE_EVERY / len(starts)
    for turn in range(rounds):
        for index, (uid, _code, lat, lon) in enumerate(starts):
            delay = began + turn * MOVE_EVERY + index * step - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            moved = turn if uid not in standing else min(turn, 2)
            where = (lat, lon + moved * STEP_DEGREES)
            date = datetime.now(UTC)
            if uid not in shares:
                shares[uid] = await users[uid].send_location(*where, live_period=LIVE_PERIOD, date=date)
                sent[(uid, shares[uid]["date"])] = time.time()
                first.add((uid, shares[uid]["date"]))
            else:
                message = await users[uid].move_live_location(shares[uid], *where, date=date)
                sent[(uid, message["edit_date"])] = time.time()
    return {
        "sent": sent,
        "first": first,
        "began": time.time() - (time.perf_counter() - began),
        "seconds": time.perf_counter() - began,
        "shares": set(shares),
    }


def latencies(
    sent: dict[tuple[int, int], float], rows: dict[tuple[int, int], tuple[datetime | None, int]]
) -> tuple[list[float], int]:
    found, missing = [], 0
    for key, at in sent.items():
        row = rows.get(key)
        if row is None or row[0] is None:
            missing += 1
        else:
            found.append(row[0].timestamp() - at)
    return found, missing


def by_minute(
    sent: dict[tuple[int, int], float], rows: dict[tuple[int, int], tuple[datetime | None, int]], began: float
) -> list[str]:
    """p99 of the moves sent in each minute of the run: where the slow ones are."""
    minutes: dict[int, list[float]] = {}
    for key, at in sent.items():
        row = rows.get(key)
        if row is not None and row[0] is not None:
            minutes.setdefault(int((at - began) // 60), []).append(row[0].timestamp() - at)
    return [f"{minute}: {ms(values, 0.99)}" for minute, values in sorted(minutes.items())]


def edits_per_minute(emu: Emulator, group_ids: set[int]) -> tuple[int, int, dict[int, int]]:
    """The most live-location calls any group got in any 60 s, the 429s on groups, and the calls per group."""
    worst, calls = 0, {}
    for chat_id in group_ids:
        times = sorted(
            version.mono
            for message in emu.state.sent.get(chat_id, [])
            if message.kind == "location"
            for version in message.versions
        )
        calls[chat_id] = len(times)
        low = 0
        for high, moment in enumerate(times):
            while times[low] <= moment - 60:
                low += 1
            worst = max(worst, high - low + 1)
    rejected = sum(1 for r in emu.state.rejections if r.chat_id in group_ids)
    return worst, rejected, calls


async def berhenti(
    url: str, still_since: dict[str, float], stop_minutes: float, emu: Emulator, groups: set[int]
) -> dict[str, Any]:
    """Per stopped escort: stood still for stop_minutes -> contingency row, -> its message in a group."""
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session:
        rows = (
            await session.execute(
                select(Escort.code, Escort.anchor_at, Contingency.created_at)
                .join(EscortAlert, EscortAlert.escort_id == Escort.id)
                .join(Contingency, Contingency.id == EscortAlert.contingency_id)
                .where(EscortAlert.kind == "berhenti")
            )
        ).all()
        kinds = dict((await session.execute(select(EscortAlert.kind, func.count()).group_by(EscortAlert.kind))).all())
    await engine.dispose()
    shown: dict[str, float] = {}
    for chat_id in groups:
        for message in emu.state.sent.get(chat_id, []):
            for code in still_since:
                if code in message.content and code not in shown:
                    shown[code] = message.wall
    stop = stop_minutes * 60
    raised = {code: (anchor, created) for code, anchor, created in rows if code in still_since}
    to_row = [created.timestamp() - anchor.timestamp() - stop for anchor, created in raised.values()]
    to_group = [shown[code] - anchor.timestamp() - stop for code, (anchor, _) in raised.items() if code in shown]
    false = sum(1 for code, _, _ in rows if code not in still_since)
    return {
        "raised": len(raised),
        "shown": len(to_group),
        "to_row": to_row,
        "to_group": to_group,
        "false": false,
        "kinds": kinds,
    }


async def storage(url: str, escort_hours: float) -> dict[str, float]:
    engine = make_engine(url)
    async with engine.connect() as connection:
        rows = await connection.scalar(select(func.count()).select_from(EscortTrackPoint))
        size = await connection.scalar(text("SELECT pg_total_relation_size('escort_track_points')"))
        heap = await connection.scalar(text("SELECT pg_relation_size('escort_track_points')"))
    await engine.dispose()
    return {
        "rows": rows or 0,
        "bytes": size or 0,
        "heap": heap or 0,
        "per_hour_rows": (rows or 0) / escort_hours,
        "per_hour_bytes": (size or 0) / escort_hours,
    }


def split(
    sent: dict[tuple[int, int], float], first: set[tuple[int, int]]
) -> tuple[dict[tuple[int, int], float], dict[tuple[int, int], float]]:
    return {k: v for k, v in sent.items() if k in first}, {k: v for k, v in sent.items() if k not in first}


def ms(values: list[float], share: float) -> str:
    return f"{percentile(values, share) * 1000:.0f} ms" if values else "-"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--escorts", type=int, default=5000)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--stopped", type=float, default=0.02, help="share of escorts that stand still")
    parser.add_argument("--stop-minutes", type=float, default=2.0)
    parser.add_argument("--baseline-seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    args.minutes = max(args.minutes, args.stop_minutes + 2)  # standing from minute 1, seen by a move after stop_minutes
    rate = args.escorts / MOVE_EVERY
    people = max(100, int(rate * args.baseline_seconds))
    stopped = max(1, int(args.escorts * args.stopped))
    print(
        f"escorts: {args.escorts} underway, a move each every 30 s = {rate:.0f}/s, {args.minutes} min, "
        f"{stopped} stand still, stop_minutes {args.stop_minutes}; {args.workers} workers; {machine()}"
    )
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        url = await fresh_database("postgresql", "siaga_bench_escorts", workdir)
        built = time.perf_counter()
        _clock, places = await prepare(url, people)
        starts, polres = await add_escorts(url, args.escorts)
        print(
            f"  built: {people} on TPS duty, {args.escorts} escorts, {len(polres)} Polres groups in {time.perf_counter() - built:.0f} s"
        )
        limits = Limits(global_per_second=1_000_000)
        async with Emulator(token=TOKEN, limits=limits, record_calls=False) as emu:
            groups = {}
            for unit_id, code in polres.items():
                groups[unit_id] = emu.group(f"Posko {code}", members=[emu.user(f"Kapolres {code}")])
            engine = make_engine(url)
            async with make_sessionmaker(engine)() as session:
                session.add_all(CommandGroup(unit_id=u, chat_id=g.id, title=g.title) for u, g in groups.items())
                await session.commit()
            await engine.dispose()
            group_ids = {g.id for g in groups.values()}
            async with workers(emu, url, args.workers, workdir, args.stop_minutes):
                await asyncio.sleep(SETTLE_SECONDS)
                since = datetime.now(UTC) - timedelta(seconds=1)
                users = [emu.user(f"P{uid}", user_id=uid) for uid, _, _ in places]
                base = await baseline(emu, users, {uid: (lat, lon) for uid, lat, lon in places}, rate)
                base_rows = await handled(url, "message", since)
                base_sent = {(uid, date): at for uid, (at, date) in base["sent"].items()}
                base_lat, base_missing = latencies(base_sent, base_rows)
                since = datetime.now(UTC) - timedelta(seconds=1)
                run = await escorting(emu, starts, args.minutes, stopped)
                await asyncio.sleep(20.0)  # the last sweeps of alerts and pins
                rows = {**await handled(url, "message", since), **await handled(url, "edited_message", since)}
                move_lat, move_missing = latencies(run["sent"], rows)
                worst, rejected, calls = edits_per_minute(emu, group_ids)
                still = {code: 0.0 for _, code, _, _ in starts[len(starts) - stopped :]}
                alerts = await berhenti(url, still, args.stop_minutes, emu, group_ids)
        hours = args.escorts * run["seconds"] / 3600
        stored = await storage(url, hours)
    updates = len(run["sent"])
    print(
        f"  baseline check-ins: {len(base_lat)} at {rate:.0f}/s, handled p50 {ms(base_lat, 0.5)}, p99 {ms(base_lat, 0.99)}; "
        f"reply p50 {ms(base['replies'], 0.5)}, p99 {ms(base['replies'], 0.99)}; not handled {base_missing}"
    )
    print(
        f"  escort moves: {updates} in {run['seconds']:.0f} s = {updates / run['seconds']:.0f}/s, handled p50 "
        f"{ms(move_lat, 0.5)}, p99 {ms(move_lat, 0.99)}, max {ms(move_lat, 1.0)}; not handled {move_missing}"
    )
    shares, later = split(run["sent"], run["first"])
    share_lat, _ = latencies(shares, rows)
    later_lat, _ = latencies(later, rows)
    print(
        f"  first shares: {len(shares)}, handled p50 {ms(share_lat, 0.5)}, p99 {ms(share_lat, 0.99)}; "
        f"the moves after them p50 {ms(later_lat, 0.5)}, p99 {ms(later_lat, 0.99)}"
    )
    print(f"  moves' p99 by minute sent: {', '.join(by_minute(run['sent'], rows, run['began']))}")
    if base_lat and move_lat:
        print(
            f"  ratio p99 escort / check-in: {percentile(move_lat, 0.99) / percentile(base_lat, 0.99):.2f}; "
            f"p50 {statistics.median(move_lat) / statistics.median(base_lat):.2f}"
        )
    print(
        f"  berhenti: {alerts['raised']}/{stopped} raised, late after stop_minutes: row max {ms(alerts['to_row'], 1.0)}, "
        f"group message p50 {ms(alerts['to_group'], 0.5)}, max {ms(alerts['to_group'], 1.0)} ({alerts['shown']} shown); "
        f"raised for moving escorts {alerts['false']}; escort contingencies by kind {alerts['kinds']}"
    )
    per_group = sorted(calls.values())
    print(
        f"  group live calls: most in any 60 s {worst} (limit 20, share 10), 429 on groups {rejected}; "
        f"calls per group {per_group[0]}-{per_group[-1]} over {len(per_group)} groups"
    )
    print(
        f"  track: {stored['rows']} points, {stored['bytes'] / 1e6:.1f} MB with indexes (heap {stored['heap'] / 1e6:.1f} MB) "
        f"over {hours:.0f} escort-hours = {stored['per_hour_rows']:.0f} rows, {stored['per_hour_bytes'] / 1024:.0f} KiB an escort-hour"
    )


if __name__ == "__main__":
    asyncio.run(main())
