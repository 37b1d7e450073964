"""The election morning that `siaga demo` plays, scene by scene, on the virtual clock.

Every action goes through the emulator as a Telegram client would send it;
nothing here touches the bot's internals except issuing registration codes,
which operators do from the command line.
"""

from __future__ import annotations

import asyncio
import html
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot import demodata
from bot.config import Settings
from bot.db import make_engine, make_sessionmaker
from bot.emulator import Emulator, SentMessage, SimGroup, SimUser
from bot.services.registration import issue_codes

def plain_text(text: str) -> str:
    """What a chat shows, without the HTML markup."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


if TYPE_CHECKING:
    from bot.demo import Demo

FAR_OFFSET_DEG = 0.02  # about 2 km: beyond the geofence
NEAR_OFFSET_DEG = 0.0008  # under 100 m


@dataclass
class Cast:
    """The roster as the script needs it: who guards where, who commands what."""

    province: demodata.Province
    guards: dict[str, list[demodata.Tps]] = field(default_factory=dict)
    commanders: dict[str, demodata.Person] = field(default_factory=dict)
    people: dict[str, demodata.Person] = field(default_factory=dict)

    @classmethod
    def of(cls, province: demodata.Province, shift_code: str) -> Cast:
        tps = {row.code: row for row in province.tps}
        cast = cls(province, people={p.nrp: p for p in province.personnel})
        for assignment in province.assignments:
            if assignment.shift_code == shift_code:
                cast.guards.setdefault(assignment.nrp, []).append(tps[assignment.tps_code])
        for person in province.personnel:
            if person.role == "komandan":
                cast.commanders.setdefault(person.unit_code, person)
        return cast

    def unit(self, code: str) -> demodata.Unit:
        return next(unit for unit in self.province.units if unit.code == code)

    def root(self) -> demodata.Unit:
        return next(u for u in self.province.units if u.kind == "polda")

    def parent_of(self, code: str) -> str:
        return self.unit(code).parent_code


async def issue(settings: Settings, nrps: list[str], now: datetime) -> dict[str, str]:
    """What an operator's `siaga invite` does, for every registering person at once."""
    engine = make_engine(settings.database.url)
    async with make_sessionmaker(engine)() as session:
        invitations = await issue_codes(session, nrps=nrps, now=now, ttl=timedelta(hours=72), actor="demo")
        await session.commit()
    await engine.dispose()
    return {invitation.nrp: invitation.code for invitation in invitations if invitation.code}


class Script:
    def __init__(self, demo: Demo, emu: Emulator, settings: Settings, cast: Cast) -> None:
        self.demo, self.emu, self.settings, self.cast = demo, emu, settings, cast
        self.random = random.Random(demo.options.seed)
        self.users: dict[str, SimUser] = {}
        self.groups: dict[str, SimGroup] = {}
        self.start = demo.voting_start
        self.say = demo.transcript.say

    def minutes(self, delta: float) -> datetime:
        return self.start + timedelta(minutes=delta)

    async def play(self) -> None:
        await self.register_everyone()
        reporter, water_tps = self.pick_water_reporter()
        self.water_unit = water_tps.unit_code
        await self.open_command_groups()
        arrivals = self.plan_arrivals(exclude=reporter)
        events = sorted(
            [(when, "checkin", nrp) for nrp, when in arrivals.items()]
            + [(self.minutes(5), "sitrep_aman", ""), (self.minutes(10), "sitrep_logistik", ""),
               (self.minutes(18), "contingency", reporter)],
            key=lambda event: event[0],
        )
        acknowledging: asyncio.Task[None] | None = None
        tasks: list[asyncio.Task[None]] = []
        for when, kind, nrp in events:
            if when > self.demo.end:
                break
            await self.demo.at(when)
            if kind == "checkin":
                tasks.append(asyncio.create_task(self.check_in(nrp, water_tps if nrp == reporter else None)))
            elif kind == "contingency":
                await self.raise_contingency(nrp, water_tps)
                acknowledging = asyncio.create_task(self.acknowledge_at_the_top())
            else:
                await self.file_sitrep(kind)
        await self.demo.at(self.demo.end)
        await asyncio.gather(*tasks, *([acknowledging] if acknowledging else []))
        await self.final_status()

    # -- before the day starts -----------------------------------------------------------------

    async def register_everyone(self) -> None:
        """Nine in ten open their deep link; the rest never do (the readiness gap /status shows)."""
        people = self.cast.province.personnel
        joining = [p for p in people if p.role != "anggota" or self.random.random() < 0.9]
        codes = await issue(self.settings, [p.nrp for p in joining], self.demo.clock())
        for person in joining:
            user = self.emu.user(person.name.split()[0])
            self.users[person.nrp] = user
            await user.send(f"/start {codes[person.nrp]}")
            await asyncio.sleep(0.02)
        self.say(f"{len(joining)} of {len(people)} personnel opened their registration link")
        await self.demo.at(self.demo.clock() + timedelta(minutes=3))

    async def open_command_groups(self) -> None:
        """Each commander adds the bot to their unit's group and registers it with /daftargrup."""
        for unit_code, commander in sorted(self.cast.commanders.items()):
            user = self.users.get(commander.nrp)
            if user is None or self.cast.unit(unit_code).kind not in ("polda", "polres", "polsek"):
                continue
            group = self.emu.group(f"Posko {self.cast.unit(unit_code).name}", members=[user])
            self.groups[unit_code] = group
            if self.cast.unit(unit_code).kind != "polsek" or unit_code == self.water_unit:
                self.demo.transcript.follow(group.id, f"[{group.title}]")
            await user.send_in(group, f"/daftargrup {unit_code}")
        self.say(f"{len(self.groups)} command groups registered; the transcript follows the Polda and Polres groups"
                 " and the Polsek of the water-access TPS")

    # -- the morning ---------------------------------------------------------------------------

    def pick_water_reporter(self) -> tuple[str, demodata.Tps]:
        for nrp, posts in sorted(self.cast.guards.items()):
            water = [tps for tps in posts if tps.access != "darat"]
            if water and nrp in self.users and self.cast.people[nrp].force == "polri":
                self.demo.transcript.follow(self.users[nrp].id, f"[{self.cast.people[nrp].name}]")
                return nrp, water[0]
        raise SystemExit("the generated province has no water-access TPS with a registered guard")

    def plan_arrivals(self, *, exclude: str) -> dict[str, datetime]:
        """Most arrive in the hour before opening; some late, a few never."""
        arrivals: dict[str, datetime] = {}
        for nrp in self.cast.guards:
            if nrp not in self.users or nrp == exclude:
                continue
            roll = self.random.random()
            if roll < 0.05:
                continue
            minutes = self.random.uniform(16, 40) if roll < 0.17 else self.random.uniform(-55, 8)
            arrivals[nrp] = self.minutes(minutes)
        arrivals[exclude] = self.minutes(-20)
        return arrivals

    async def check_in(self, nrp: str, at: demodata.Tps | None = None) -> None:
        user = self.users[nrp]
        tps = at or self.cast.guards[nrp][0]
        far = at is None and self.random.random() < 0.08
        offset = FAR_OFFSET_DEG if far else self.random.uniform(0, NEAR_OFFSET_DEG)
        before = self.emu.count(user)
        await user.send("/hadir")
        for _ in range(100):
            if self.emu.count(user) > before:
                break
            await asyncio.sleep(0.05)
        await user.send_location(tps.lat + offset, tps.lon, date=self.demo.clock())

    async def file_sitrep(self, kind: str) -> None:
        text, button = {
            "sitrep_aman": ("Situasi TPS aman, pemilih mulai antre dengan tertib", "✅ Aman"),
            "sitrep_logistik": ("Surat suara DPRD kurang 20 lembar, sudah dilaporkan ke PPS", "📦 Logistik"),
        }[kind]
        nrp = self.random.choice(sorted(n for n in self.cast.guards if n in self.users))
        user = self.users[nrp]
        self.demo.transcript.follow(user.id, f"[{self.cast.people[nrp].name}]")
        await user.send(f"/lapor {text}")
        await user.press(await self._offered(user, button), button)

    async def raise_contingency(self, nrp: str, tps: demodata.Tps) -> None:
        user = self.users[nrp]
        self.say(f"{self.cast.people[nrp].name} at water-access {tps.code} raises a contingency")
        await user.send("/darurat Perahu logistik tertahan di dermaga, air pasang; massa berkumpul")
        await user.press(await self._offered(user, "🔴 Tinggi"), "🔴 Tinggi")
        await asyncio.sleep(0.3)
        await user.send_location(tps.lat, tps.lon, date=self.demo.clock())

    async def _offered(self, user: SimUser, button: str) -> SentMessage:
        """The bot's latest message in this chat that offers `button`, once it arrives."""
        for _ in range(200):
            offering = [m for m in self.emu.sent_to(user) if button in m.button_texts]
            if offering:
                return offering[-1]
            await asyncio.sleep(0.05)
        raise SystemExit(f"the bot did not offer {button!r}")

    async def acknowledge_at_the_top(self) -> None:
        """Nobody below acknowledges: the alert climbs; the Polda commander takes it."""
        root = self.cast.root()
        group = self.groups.get(root.code)
        commander = self.cast.commanders.get(root.code)
        if group is None or commander is None:
            return
        user = self.users[commander.nrp]
        while self.demo.clock() < self.demo.end:
            alerts = [m for m in self.emu.sent_to(group) if "✔️ Terima" in m.button_texts]
            if alerts:
                await asyncio.sleep(120 / self.demo.options.speed)
                self.say(f"{commander.rank} {commander.name} acknowledges in the Polda group")
                await user.press(alerts[-1], "✔️ Terima")
                return
            await asyncio.sleep(0.2)

    async def final_status(self) -> None:
        root = self.cast.root()
        commander = self.cast.commanders.get(root.code)
        if commander is None or commander.nrp not in self.users:
            return
        user = self.users[commander.nrp]
        before = self.emu.count(user)
        await user.send("/status")
        for _ in range(200):
            if self.emu.count(user) > before:
                break
            await asyncio.sleep(0.05)
        print("\n" + "=" * 72 + "\nFinal /status of the Polda commander:\n")
        for message in self.emu.sent_to(user)[before:]:
            print(plain_text(message.content))
        print("=" * 72)
