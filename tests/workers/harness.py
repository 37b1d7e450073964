"""Real worker processes (`siaga run --webhook`) on one PostgreSQL database, fed by an in-process emulator.

The emulator runs in the test's event loop and plays Telegram and the load
balancer at once: it delivers webhook updates round-robin to the workers'
own ports (`route`), retries a delivery that got no 2xx on the next worker,
and records which worker answered which update. The workers are the
console script's code path, started as `python -m bot.cli --config FILE run
--webhook` with one config file each, logging to a file the tests read.

The roster is `tests/factories.build_roster`, dated now (the workers use
the wall clock), plus as many extra Linmas as a load test wants.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.emulator import Emulator, SimGroup, SimUser
from bot.ops.metrics import parse
from bot.storage.db import make_engine, make_sessionmaker
from models import Assignment, CommandGroup, Personnel
from tests.factories import Roster, build_roster, link
from tests.pg import PG_URL

REPO = Path(__file__).resolve().parents[2]
TOKEN = "7123456789:AAFakeTokenForTestsOnly_abcdefghijk"  # shaped like a real token, so the log test means it
SECRET = "workers-secret_42"
PUBLIC_URL = "https://siaga.test"
needs_postgresql = pytest.mark.skipif(
    PG_URL is None, reason="worker tests need PostgreSQL: set SIAGA_TEST_DATABASE_URL"
)

BASE_CONFIG: dict[str, dict[str, Any]] = {
    "delivery": {"poll_seconds": 0.05, "global_per_second": 15},
    "scheduler": {
        "escalation_seconds": 0.5,
        "reminders_seconds": 30,
        "missed_checkins_seconds": 30,
        "broadcast_reports_seconds": 1,
    },
    "escalation": {"ack_timeout_minutes": {"tinggi": 0.05, "sedang": 0.5, "rendah": 1}},
    "reminders": {"before_minutes": []},
    "checkin": {"grace_minutes": 600},  # no missed-check-in digests in the groups during a test
    "logging": {"level": "DEBUG"},  # the log test wants everything a library may write
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def toml(config: dict[str, dict[str, Any]]) -> str:
    """The few TOML shapes a config needs: strings, numbers, booleans, lists and inline tables."""

    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, dict):
            return "{ " + ", ".join(f"{key} = {value(inner)}" for key, inner in item.items()) + " }"
        if isinstance(item, list):
            return "[" + ", ".join(value(inner) for inner in item) + "]"
        return json.dumps(item) if isinstance(item, str) else repr(item)

    return "".join(
        f"[{section}]\n" + "".join(f"{key} = {value(item)}\n" for key, item in keys.items()) + "\n"
        for section, keys in config.items()
    )


def merge(*configs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for config in configs:
        for section, keys in config.items():
            out.setdefault(section, {}).update(keys)
    return out


@dataclass
class Worker:
    """One `siaga run --webhook` process and the files and ports it owns."""

    name: str
    config: Path
    log: Path
    hook_port: int
    health_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"http://127.0.0.1:{self.hook_port}/telegram"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "--config", str(self.config), "run", "--webhook"],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no hand-back, leases left to run out."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    async def stop(self) -> int | None:
        """SIGTERM, as systemd stops a worker; the exit status (None if it had to be killed)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        for _ in range(300):
            if self.process.poll() is not None:
                return self.process.returncode
            await asyncio.sleep(0.1)
        self.process.kill()
        self.process.wait(10)
        return None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.health_port}{path}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, http.get(url) as response:
            return response.status, await response.text()

    async def metrics(self) -> dict[str, float]:
        status, body = await self.get("/metrics")
        assert status == 200, body
        return parse(body)

    async def ready(self, timeout: float = 60.0) -> None:
        """/readyz answers 200 and the webhook port takes connections."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if not self.alive:
                raise AssertionError(f"worker {self.name} exited:\n{self.log_text()[-3000:]}")
            try:
                if (await self.get("/readyz"))[0] == 200:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.hook_port)
                    writer.close()
                    return
            except (OSError, aiohttp.ClientError, TimeoutError):
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"worker {self.name} not ready after {timeout}s:\n{self.log_text()[-3000:]}")
            await asyncio.sleep(0.2)


@dataclass
class Cluster:
    """The emulator, the database, the roster and the workers of one test."""

    emu: Emulator
    url: str
    workdir: Path
    engine: AsyncEngine
    roster: Roster = field(default_factory=Roster)
    workers: list[Worker] = field(default_factory=list)
    users: dict[str, SimUser] = field(default_factory=dict)
    groups: dict[str, SimGroup] = field(default_factory=dict)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return make_sessionmaker(self.engine)

    def config(self, worker: Worker | None = None, extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        telegram: dict[str, Any] = {
            "token": TOKEN,
            "base_url": self.emu.base_url,
            "base_file_url": self.emu.base_file_url,
            "bot_username": self.emu.bot_username,
            "webhook_url": PUBLIC_URL,
            "webhook_secret": SECRET,
        }
        own: dict[str, dict[str, Any]] = {"telegram": telegram, "database": {"url": self.url}}
        if worker is not None:
            telegram.update(webhook_listen="127.0.0.1", webhook_port=worker.hook_port)
            own["health"] = {"listen": "127.0.0.1", "port": worker.health_port}
        return merge(own, BASE_CONFIG, extra or {})

    def add_workers(self, count: int, extra: dict[str, dict[str, Any]] | None = None) -> list[Worker]:
        for index in range(len(self.workers), len(self.workers) + count):
            name = "AB"[index] if index < 2 else str(index)
            worker = Worker(
                name,
                self.workdir / f"worker-{name}.toml",
                self.workdir / f"worker-{name}.log",
                free_port(),
                free_port(),
            )
            worker.config.write_text(toml(self.config(worker, extra)))
            self.workers.append(worker)
        return self.workers

    async def siaga(self, *args: str) -> str:
        """A `siaga` command against this database (no event-loop blocking: the emulator lives here)."""
        config = self.workdir / "cli.toml"
        config.write_text(toml(self.config()))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "--config",
            str(config),
            *args,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode()

    async def invite(self, *nrps: str) -> dict[str, str]:
        """NRP -> code, as `siaga invite` prints them."""
        lines = (await self.siaga("invite", *nrps)).splitlines()
        return {nrp: code for nrp, code, _link in (line.split("\t") for line in lines)}

    async def start(self) -> None:
        """Every worker up and ready, and the webhook set (by whichever worker came first)."""
        for worker in self.workers:
            worker.start()
        await asyncio.gather(*(worker.ready() for worker in self.workers))
        await eventually(lambda: self.emu.webhook.active, timeout=30)
        assert self.emu.webhook.secret_token == SECRET and self.emu.webhook.url == PUBLIC_URL + "/telegram"
        self.route(*self.workers)

    def route(self, *workers: Worker) -> None:
        """Where the balancer sends updates from now on (round robin over `workers`)."""
        self.emu.set_webhook_targets([worker.target for worker in workers])

    def answered_by(self, update_id: int) -> list[str]:
        """The workers that acknowledged an update with a 2xx (Telegram stops after the first)."""
        names = {worker.target: worker.name for worker in self.workers}
        return [
            names.get(d.target, d.target)
            for d in self.emu.webhook.deliveries
            if d.update_id == update_id and d.status is not None and 200 <= d.status < 300
        ]

    async def stop(self) -> dict[str, int | None]:
        return {worker.name: await worker.stop() for worker in self.workers}

    # -- people and groups ------------------------------------------------------------------------

    def user(self, key: str) -> SimUser:
        if key not in self.users:
            self.users[key] = self.emu.user(self.roster.person(key).name)
        return self.users[key]

    async def registered(self, key: str) -> SimUser:
        user = self.user(key)
        async with self.sessions() as session:
            person = await session.get(Personnel, self.roster.person(key).id)
            assert person is not None
            await link(session, person, user.id, now=datetime.now(UTC))
        return user

    async def command_group(self, unit_code: str, members: list[SimUser]) -> SimGroup:
        group = self.emu.group(f"Posko {unit_code}", members=members)
        async with self.sessions() as session:
            session.add(CommandGroup(unit_id=self.roster.units[unit_code].id, chat_id=group.id, title=group.title))
            await session.commit()
        self.groups[unit_code] = group
        return group

    async def linmas(self, count: int) -> list[SimUser]:
        """`count` more registered Linmas of POLSEK-A1 on duty at TPS-A1-001 this shift."""
        people = []
        async with self.sessions() as session:
            unit, tps, shift = (
                self.roster.units["POLSEK-A1"],
                self.roster.tps["TPS-A1-001"],
                self.roster.shifts["PAGI"],
            )
            for n in range(count):
                user = self.emu.user(f"Linmas {n}")
                person = Personnel(
                    nrp=f"LM9{n:06d}",
                    name=f"Linmas {n}",
                    rank="Linmas",
                    force="linmas",
                    unit_id=unit.id,
                    role="anggota",
                    phone=f"+62813{n:07d}",
                    telegram_user_id=user.id,
                    registered_at=datetime.now(UTC),
                )
                session.add(person)
                people.append((person, user))
            await session.flush()
            session.add_all(Assignment(personnel_id=p.id, tps_id=tps.id, shift_id=shift.id) for p, _ in people)
            await session.commit()
        for person, _user in people:
            self.roster.people[f"linmas{person.nrp}"] = person
        return [user for _, user in people]


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll `predicate` (worker processes change things the emulator's waiters do not see)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.05)


async def build_cluster(emu: Emulator, url: str, workdir: Path) -> Cluster:
    """`siaga db upgrade`, then the factory roster dated now."""
    # The test's own reads follow database restarts it makes: every checkout pings.
    cluster = Cluster(emu=emu, url=url, workdir=workdir, engine=make_engine(url, pool_pre_ping=True))
    await cluster.siaga("db", "upgrade")
    async with cluster.sessions() as session:
        cluster.roster = await build_roster(session, now=datetime.now(UTC).replace(microsecond=0))
    return cluster


__all__ = [
    "PG_URL",
    "SECRET",
    "TOKEN",
    "Cluster",
    "Worker",
    "build_cluster",
    "eventually",
    "free_port",
    "needs_postgresql",
]
