"""`siaga demo`: the real bot plays an election morning against the built-in emulator.

No token and no network: a small province is generated and imported into a
fresh SQLite file, the Bot API emulator starts on loopback, and the
unmodified bot (handlers, dispatcher, scheduler) runs against it on a fast
clock while simulated personnel register, get reminded, check in (some
late, some far from their TPS), file reports, and raise a contingency at a
water-access TPS that climbs the chain of command until the Polda group
takes it. Then the clock moves on to the counting night, and one escort of
ballot boxes goes by road and boat in OKI (bot/demo/escort_scene.py). The
chats are printed as they happen; the database stays behind.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import build_application
from bot.clock import FastClock
from bot.config import Settings, load_settings
from bot.demo import demodata
from bot.demo.escort_leg import regions_with_oki, stage_leg, voting_only
from bot.demo.escort_scene import EscortScene
from bot.demo.script import Cast, Script
from bot.demo.transcript import Transcript
from bot.emulator import Emulator, Limits, running
from bot.services.roster import import_files
from bot.storage.db import make_engine, make_sessionmaker
from bot.storage.migrate import upgrade
from models import Checkin, Contingency, Outbox, Personnel, Sitrep

PROGRESS_EVERY = timedelta(minutes=15)
STOP_MINUTES = 5
"""`berhenti` after this long instead of 15: the stall of the night's boat costs seconds, not a quarter-hour."""

EPILOG = """\
Make it longer or bigger:
  --speed 30          half as fast (a virtual minute every two seconds)
  --tps 400           a bigger province (more personnel, groups and messages)
  --from 04:00 --until 08:00   a longer stretch of the day
The database stays in OUT/siaga-demo.db; open it with sqlite3 to inspect
every check-in, report, escalation step, outbox row and audit entry.
"""


@dataclass
class Options:
    tps: int = 100
    seed: int = 7
    speed: float = 100.0
    start: str = "04:55"
    until: str = "06:40"
    out: Path = Path("demo-out")
    quiet: bool = False


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="siaga demo",
        description="The real bot plays an election morning against the built-in emulator.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--tps", type=int, default=100, help="polling stations in the province (default 100)")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated province and the day's events")
    p.add_argument("--speed", type=float, default=100.0, help="virtual seconds per real second (default 100)")
    p.add_argument("--from", dest="start", default="04:55", help="local time the day starts (default 04:55)")
    p.add_argument("--until", default="06:40", help="local time the demo ends (default 06:40)")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="folder for the database and roster")
    p.add_argument("--quiet", action="store_true", help="no transcript, only the final board")
    return p


class Demo:
    def __init__(self, options: Options) -> None:
        self.options = options

    async def run(self) -> int:
        logging.getLogger().setLevel(logging.WARNING)
        out = self.options.out
        if out.exists():
            shutil.rmtree(out)
        (out / "roster").mkdir(parents=True)
        province = voting_only(
            demodata.generate(
                tps=self.options.tps,
                seed=self.options.seed,
                regions=regions_with_oki(self.options.tps),
                full_pattern=True,
            )
        )
        leg = stage_leg(province)
        demodata.write_csv(province, out / "roster")
        voting = next(shift for shift in province.shifts if shift.phase == "pemungutan")
        starts = datetime.fromisoformat(voting.starts_at)
        day_start = self._local(starts, self.options.start)
        self.end = self._local(starts, self.options.until)
        self.voting_start = starts
        cast = Cast.of(province, voting.code)
        async with Emulator(limits=Limits()) as emu:
            settings = demo_settings(emu, out / "siaga-demo.db")
            await self._prepare_database(settings, out)
            self.clock = FastClock(start=day_start, speed=self.options.speed)
            application = build_application(settings, clock=self.clock)
            self.transcript = Transcript(emu, self.clock, settings.operation.zone, self.options.quiet)
            self.next_progress = day_start
            engine = make_engine(settings.database.url)
            self.sessions = make_sessionmaker(engine)
            async with running(application):
                script = Script(self, emu, settings, cast, seed=self.options.seed, speed=self.options.speed)
                await script.play()
                night = EscortScene(script, leg)
                await night.play()
                await script.final_status()
                await night.final_board()
            await engine.dispose()
        print(f"\nThe database is in {out / 'siaga-demo.db'}; the roster it was imported from in {out / 'roster'}.")
        return 0

    @staticmethod
    def _local(day: datetime, hhmm: str) -> datetime:
        hour, minute = (int(part) for part in hhmm.split(":"))
        return day.replace(hour=hour, minute=minute, second=0)

    async def _prepare_database(self, settings: Settings, out: Path) -> None:
        engine = make_engine(settings.database.url)
        await upgrade(engine)
        async with make_sessionmaker(engine)() as session:
            report = await import_files(
                session, paths=sorted((out / "roster").glob("*.csv")), actor="demo", staffing=settings.staffing
            )
        await engine.dispose()
        if not report.ok:
            raise SystemExit(report.format())
        counts = report.counts
        print(
            f"Imported a generated province: {counts['units'].created} units, {counts['personnel'].created} personnel, "
            f"{counts['tps'].created} TPS, {counts['assignments'].created} assignments."
        )

    async def at(self, local: datetime) -> None:
        """Wait, printing what arrives, until the virtual clock reaches `local`; the morning's figures on the way."""
        while self.clock() < local:
            self.transcript.flush()
            if self.next_progress <= self.clock() < self.end:
                await self.progress()
            await asyncio.sleep(0.1)
        self.transcript.flush()

    def skip_to(self, local: datetime) -> None:
        """The virtual clock jumps ahead to `local` (never back): the hours in between have nothing to show."""
        self.clock.start += max(local - self.clock(), timedelta(0))

    async def progress(self) -> None:
        """A line of figures every quarter of an hour: the chats the transcript does not show."""
        self.next_progress = self.clock() + PROGRESS_EVERY
        async with self.sessions() as session:
            figures = await day_figures(session, self.clock())
        delivered = len(self.transcript.emu.state.sent_index)
        self.transcript.narrate(
            f"── registered {figures.registered}/{figures.personnel} · checked in {figures.checked_in} "
            f"({figures.far} far, {figures.late} late) · reports {figures.sitreps} · open contingencies "
            f"{figures.open_contingencies} · messages delivered {delivered} · outbox due {figures.outbox_waiting}"
        )


@dataclass(frozen=True)
class Figures:
    personnel: int
    registered: int
    checked_in: int
    far: int
    late: int
    sitreps: int
    open_contingencies: int
    outbox_waiting: int


async def day_figures(session: AsyncSession, now: datetime) -> Figures:
    def count(*where: Any) -> Any:
        return select(func.count()).where(*where).scalar_subquery()

    row = (
        await session.execute(
            select(
                count(Personnel.id.is_not(None)),
                count(Personnel.telegram_user_id.is_not(None)),
                count(Checkin.id.is_not(None)),
                count(Checkin.far.is_(True)),
                count(Checkin.late.is_(True)),
                count(Sitrep.filed_at.is_not(None)),
                count(Contingency.state != "resolved", Contingency.severity.is_not(None)),
                count(Outbox.state.in_(["pending", "sending"]), Outbox.due_at <= now),
            )
        )
    ).one()
    return Figures(*row)


def demo_settings(emu: Emulator, database: Path) -> Settings:
    data = load_settings(None).model_dump()
    data["telegram"].update(
        token=emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url, bot_username=emu.bot_username
    )
    data["database"]["url"] = f"sqlite+aiosqlite:///{database}"
    data["reminders"]["before_minutes"] = [60, 0]
    data["scheduler"].update(
        escalation_seconds=0.5,
        reminders_seconds=1,
        missed_checkins_seconds=1,
        broadcast_reports_seconds=1,
        escort_alerts_seconds=1,
    )
    data["escort"]["stop_minutes"] = STOP_MINUTES
    data["logging"]["level"] = "WARNING"
    return Settings.model_validate(data)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options = Options(args.tps, args.seed, args.speed, args.start, args.until, args.out, args.quiet)
    try:
        return asyncio.run(Demo(options).run())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


__all__ = ["Demo", "main"]
