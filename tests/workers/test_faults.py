"""Faults under load: a worker killed with SIGKILL, PostgreSQL restarted during a check-in burst.

People behave as people do: a person whose location got no answer, or the
answer that it was not saved, sends it again a little later. The tests then
hold the bot to its word: every check-in it confirmed is in the database,
every message the outbox accepted is delivered, and nothing the dead worker
held is lost.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from bot.db import make_engine
from bot.emulator import SentMessage, SimUser
from models import Checkin, Outbox, Personnel
from tests.factories import TPS_PLACES
from tests.workers.conftest import MakeCluster
from tests.workers.harness import Cluster, eventually, free_port, needs_postgresql

CONFIRMED = ("Hadir tercatat", "sudah tercatat hadir")
NOT_SAVED = "belum tersimpan"
PG_BIN = Path(os.environ.get("SIAGA_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass
class Person:
    """One Linmas in a burst: what they sent and what the bot answered."""

    user: SimUser
    sent: int = 0
    answers: list[str] = field(default_factory=list)

    def seen(self, messages: list[SentMessage]) -> None:
        self.answers = [m.text or "" for m in messages if any(word in (m.text or "") for word in (*CONFIRMED, NOT_SAVED))]

    @property
    def confirmed(self) -> bool:
        return any(word in answer for answer in self.answers for word in CONFIRMED)


async def check_in(person: Person, delay: float = 0.0) -> None:
    await asyncio.sleep(delay)
    await person.user.send_location(*TPS_PLACES["TPS-A1-001"])
    person.sent += 1


async def until_everyone_is_confirmed(cluster: Cluster, people: list[Person], timeout: float = 60.0) -> int:
    """Whoever has no answer to their last location after `patience` seconds, or was told it was
    not saved, sends it again; returns how many times people had to."""
    patience, retries = 6.0, 0
    loop = asyncio.get_running_loop()
    deadline, last_try = loop.time() + timeout, {id(p): loop.time() for p in people}
    while True:
        for person in people:
            person.seen(cluster.emu.sent_to(person.user))
        waiting = [p for p in people if not p.confirmed]
        if not waiting:
            return retries
        assert loop.time() < deadline, f"{len(waiting)} people never got a confirmation"
        for person in waiting:
            told_not_saved = len(person.answers) >= person.sent and NOT_SAVED in person.answers[-1]
            if told_not_saved or loop.time() - last_try[id(person)] > patience:
                last_try[id(person)] = loop.time()
                retries += 1
                await check_in(person)
        await asyncio.sleep(0.3)


async def confirmed_in_database(cluster: Cluster, people: list[Person]) -> None:
    """Every person the bot told "recorded" has a check-in row."""
    async with cluster.sessions() as session:
        rows = await session.execute(
            select(Personnel.telegram_user_id, func.count(Checkin.id))
            .join(Checkin, Checkin.personnel_id == Personnel.id)
            .group_by(Personnel.telegram_user_id)
        )
        stored = dict(rows.all())
    missing = [p.user.id for p in people if p.confirmed and not stored.get(p.user.id)]
    assert missing == [], f"confirmed but not stored: {missing}"
    assert all(stored.get(p.user.id) == 1 for p in people), "one check-in per person and shift"


# -- a worker killed ----------------------------------------------------------------------------


@needs_postgresql
async def test_a_worker_killed_mid_run_loses_nothing(make_cluster: MakeCluster) -> None:
    # A short lease (the default is 120 s), so the test need not wait two minutes for A's rows.
    cluster = await make_cluster(extra={"delivery": {"global_per_second": 10, "lease_seconds": 5}})
    a, b = cluster.workers
    people = [Person(user) for user in await cluster.linmas(40)]
    kapolres = await cluster.registered("kapolres")

    await kapolres.send("/siaran Apel pagi pukul 07.00 di Polsek")  # ~40 messages through the outbox
    burst = [asyncio.create_task(check_in(person, delay=i * 0.05)) for i, person in enumerate(people)]
    holding = 0.0
    for _ in range(200):  # kill A while it holds outbox rows: claimed, buffered or in flight
        metrics = await a.metrics()
        holding = metrics.get("siaga_outbox_buffered", 0) + metrics.get("siaga_outbox_in_flight", 0)
        if holding:
            break
        await asyncio.sleep(0.02)
    a.kill()
    assert holding > 0, "A never held a row: nothing was tested"
    await asyncio.gather(*burst)

    retries = await until_everyone_is_confirmed(cluster, people)
    await confirmed_in_database(cluster, people)
    recipients = [p.user for p in people]
    await eventually(lambda: all(_broadcasts(cluster, user) >= 1 for user in recipients), timeout=30,
                     what="the broadcast to everyone (A's rows after their lease)")  # fmt: skip
    async with cluster.sessions() as session:
        waiting = await session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.state.in_(["pending", "sending", "failed"]))
        )
    assert waiting == 0
    twice = sum(_broadcasts(cluster, user) - 1 for user in recipients)
    assert twice <= 10, f"{twice} broadcast copies sent twice: more than A could have had in flight"
    assert b.alive and (await b.get("/readyz"))[0] == 200
    print(f"\nkilled A holding {holding:.0f} rows; {retries} check-ins sent again; {twice} messages sent twice")


def _broadcasts(cluster: Cluster, user: SimUser) -> int:
    return sum("Apel pagi" in (m.text or "") for m in cluster.emu.sent_to(user))


# -- the Bot API unreachable --------------------------------------------------------------------


@needs_postgresql
async def test_the_bot_api_unreachable_for_a_while_delays_the_outbox_but_loses_nothing(
    make_cluster: MakeCluster,
) -> None:
    """Scaled down from a minute to five seconds: the rows back off, then go once Telegram answers."""
    cluster = await make_cluster(extra={"delivery": {"global_per_second": 5}})
    recipients = await cluster.linmas(30)
    kapolres = await cluster.registered("kapolres")
    await kapolres.send("/siaran Apel pagi pukul 07.00 di Polsek")
    await eventually(lambda: any(_broadcasts(cluster, user) for user in recipients), timeout=10)
    await cluster.emu.stop()  # connections refused from here on
    down = [_broadcasts(cluster, user) for user in recipients].count(0)
    await asyncio.sleep(5)
    await cluster.emu.start()  # same port, same state
    await eventually(lambda: all(_broadcasts(cluster, user) >= 1 for user in recipients), timeout=45,
                     what="the broadcast to everyone after the outage")  # fmt: skip
    twice = sum(_broadcasts(cluster, user) - 1 for user in recipients)
    assert twice <= 2 * 8, "more sent twice than were in flight when the connection dropped"
    metrics = [await worker.metrics() for worker in cluster.workers]
    assert sum(m["siaga_outbox_retried_total"] for m in metrics) > 0
    assert all(m["siaga_outbox_failed_total"] == 0 for m in metrics)
    print(f"\n{down} of {len(recipients)} messages waited out the outage; {twice} sent twice")


# -- PostgreSQL restarted -----------------------------------------------------------------------


@dataclass
class Postgres:
    """A throw-away PostgreSQL server in a temporary directory, on a free port."""

    directory: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/siaga"

    async def ctl(self, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-l",
            str(self.directory / "server.log"), "-w", "-t", "60", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await process.communicate()
        assert process.returncode == 0, out.decode()

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c max_connections=100"
        await self.ctl("-o", options, "start")

    async def restart(self) -> None:
        """`-m immediate`: no checkpoint, no goodbye to clients; a crash, recovered from the WAL."""
        await self.ctl("-m", "immediate", "restart")


@pytest.fixture
async def postgres() -> AsyncIterator[Postgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL binaries in {PG_BIN}")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user and not shutil.which("runuser"):
        pytest.skip("running as root without runuser: initdb refuses root")
    directory = Path(tempfile.mkdtemp(prefix="siaga-pg-"))
    if as_user:
        shutil.chown(directory, "postgres")
    process = await asyncio.create_subprocess_exec(
        *as_user, str(PG_BIN / "initdb"), "-D", str(directory / "data"), "-U", "postgres", "-A", "trust",
        "--no-sync", "-E", "UTF8", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    server = Postgres(directory, free_port(), as_user)
    await server.start()
    admin = make_engine(server.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text("CREATE DATABASE siaga"))
    await admin.dispose()
    try:
        yield server
    finally:
        await server.ctl("-m", "immediate", "stop")
        shutil.rmtree(directory, ignore_errors=True)


async def test_postgresql_restarted_during_a_checkin_burst_keeps_every_confirmed_checkin(
    make_cluster: MakeCluster, postgres: Postgres
) -> None:
    cluster = await make_cluster(url=postgres.url)
    people = [Person(user) for user in await cluster.linmas(60)]
    rng = random.Random(7)
    burst = [asyncio.create_task(check_in(person, delay=rng.uniform(0, 4))) for person in people]
    await asyncio.sleep(1.0)
    await postgres.restart()
    await asyncio.gather(*burst)

    retries = await until_everyone_is_confirmed(cluster, people)
    await confirmed_in_database(cluster, people)
    await asyncio.sleep(1.0)  # a late second answer to one location would arrive now
    for person in people:
        person.seen(cluster.emu.sent_to(person.user))
    told_not_saved = sum(NOT_SAVED in answer for p in people for answer in p.answers)
    twice = [p.answers for p in people if len(p.answers) != p.sent]
    assert twice == [], f"locations answered more than once ('not saved', then saved after all): {twice[:3]}"
    logs = "".join(worker.log_text() for worker in cluster.workers)
    assert "level=error" in logs, "no worker noticed the database going away: the restart missed the burst"
    for worker in cluster.workers:
        assert worker.alive and (await worker.get("/readyz"))[0] == 200
    print(f"\n{told_not_saved} answers said 'not saved'; {retries} check-ins sent again; all {len(people)} stored once")
