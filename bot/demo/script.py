"""The election morning that `siaga demo` plays, scene by scene, on the virtual clock (the transcript: transcript.py).

Every action goes through the emulator as a Telegram client would send it;
nothing here touches the bot's internals except issuing registration codes,
which operators do from the command line. What the featured people send is
printed before it is sent, so the transcript reads as the chats would.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.config import Settings
from bot.demo import demodata
from bot.demo.transcript import LEGEND, Transcript, plain_text
from bot.emulator import Emulator, SentMessage, SimGroup, SimUser
from bot.services.registration import issue_codes
from bot.storage.db import make_engine, make_sessionmaker

FAR_OFFSET_DEG = 0.02  # about 2 km: beyond the geofence
NEAR_OFFSET_DEG = 0.0008  # under 100 m
FORCE_ICONS = {"polri": "👮", "tni": "🪖", "linmas": "🦺"}
SHARED_LOCATION = "📍 (lokasi dibagikan)"


class Stage(Protocol):
    """What a script needs of the demo playing it (bot/demo/play.py): the virtual clock, the morning, the transcript."""

    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def voting_start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...

    @property
    def transcript(self) -> Transcript: ...

    async def at(self, local: datetime) -> None: ...

    def skip_to(self, local: datetime) -> None: ...


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
    def __init__(self, stage: Stage, emu: Emulator, settings: Settings, cast: Cast, *, seed: int, speed: float) -> None:
        self.stage, self.emu, self.settings, self.cast, self.speed = stage, emu, settings, cast, speed
        self.random = random.Random(seed)
        self.users: dict[str, SimUser] = {}
        self.groups: dict[str, SimGroup] = {}
        self.start = stage.voting_start
        self.chats = stage.transcript

    def minutes(self, delta: float) -> datetime:
        return self.start + timedelta(minutes=delta)

    async def play(self) -> None:
        self.chats.heading(LEGEND)
        reporter, water_tps = await self.register_everyone()
        self.water_unit = water_tps.unit_code
        await self.open_command_groups()
        arrivals = self.plan_arrivals(exclude=reporter)
        events = sorted(
            [(when, "checkin", nrp) for nrp, when in arrivals.items()]
            + [
                (self.minutes(5), "sitrep_aman", ""),
                (self.minutes(10), "sitrep_logistik", ""),
                (self.minutes(18), "contingency", reporter),
            ],
            key=lambda event: event[0],
        )
        acknowledging: asyncio.Task[None] | None = None
        tasks: list[asyncio.Task[None]] = []
        for when, kind, nrp in events:
            if when > self.stage.end:
                break
            await self.stage.at(when)
            if kind == "checkin":
                tasks.append(asyncio.create_task(self.check_in(nrp, water_tps if nrp == reporter else None)))
            elif kind == "contingency":
                await self.raise_contingency(nrp, water_tps)
                acknowledging = asyncio.create_task(self.acknowledge_at_the_top())
            else:
                await self.file_sitrep(kind)
        await self.stage.at(self.stage.end)
        await asyncio.gather(*tasks, *([acknowledging] if acknowledging else []))

    # -- what people do, as the transcript shows it ----------------------------------------------

    def speaker(self, nrp: str) -> str:
        person = self.cast.people[nrp]
        return f"{FORCE_ICONS.get(person.force, '👤')} {person.rank} {person.name}"

    def follow(self, nrp: str) -> None:
        person = self.cast.people[nrp]
        self.chats.follow(self.users[nrp].id, f"{person.rank} {person.name}")

    async def send(self, nrp: str, text: str, *, group: SimGroup | None = None) -> None:
        user = self.users[nrp]
        self.chats.person(user.id if group is None else group.id, self.speaker(nrp), text)
        if group is None:
            await user.send(text)
        else:
            await user.send_in(group, text)

    async def share_location(self, nrp: str, lat: float, lon: float) -> None:
        """A location from the bot's request-location button, dated now: the time it was sent is what counts."""
        user = self.users[nrp]
        self.chats.person(user.id, self.speaker(nrp), SHARED_LOCATION)
        await user.send_location(lat, lon, date=self.stage.clock())

    async def press(self, nrp: str, message: SentMessage, button: str) -> None:
        self.chats.person(message.chat_id, self.speaker(nrp), f"👆 [{button}]")
        await self.users[nrp].press(message, button)

    # -- before the day starts -----------------------------------------------------------------

    async def register_everyone(self) -> tuple[str, demodata.Tps]:
        """Nine in ten open their deep link; the rest never do (the readiness gap /status shows).

        Returns the featured guard of a water-access TPS, whose chat the transcript follows from his `/start` on.
        """
        people = self.cast.province.personnel
        joining = [p for p in people if p.role != "anggota" or self.random.random() < 0.9]
        codes = await issue(self.settings, [p.nrp for p in joining], self.stage.clock())
        self.users = {person.nrp: self.emu.user(person.name.split()[0]) for person in joining}
        reporter, water_tps = self.pick_water_reporter()
        for person in sorted(joining, key=lambda person: person.nrp != reporter):
            await self.send(person.nrp, f"/start {codes[person.nrp]}")
            await asyncio.sleep(0.02)
        self.chats.narrate(f"{len(joining)} of {len(people)} personnel opened their registration link (/start CODE)")
        await self.stage.at(self.stage.clock() + timedelta(minutes=3))
        return reporter, water_tps

    async def open_command_groups(self) -> None:
        """Each commander adds the bot to their unit's group and registers it with /daftargrup."""
        self.chats.narrate(
            "The commanders add the bot to their command groups; the transcript follows the Polda and"
            " Polres groups and the Polsek of a water-access TPS"
        )
        for unit_code, commander in sorted(self.cast.commanders.items()):
            user = self.users.get(commander.nrp)
            if user is None or self.cast.unit(unit_code).kind not in ("polda", "polres", "polsek"):
                continue
            group = self.emu.group(f"Posko {self.cast.unit(unit_code).name}", members=[user])
            self.groups[unit_code] = group
            if self.cast.unit(unit_code).kind != "polsek" or unit_code == self.water_unit:
                self.chats.follow(group.id, group.title, group=True)
            await self.send(commander.nrp, f"/daftargrup {unit_code}", group=group)
        for group in self.groups.values():
            await self._answered(group, since=0)
        self.chats.narrate(f"{len(self.groups)} command groups registered")

    # -- the morning ---------------------------------------------------------------------------

    def pick_water_reporter(self) -> tuple[str, demodata.Tps]:
        for nrp, posts in sorted(self.cast.guards.items()):
            water = [tps for tps in posts if tps.access != "darat"]
            if water and nrp in self.users and self.cast.people[nrp].force == "polri":
                self.follow(nrp)
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
        tps = at or self.cast.guards[nrp][0]
        far = at is None and self.random.random() < 0.08
        offset = FAR_OFFSET_DEG if far else self.random.uniform(0, NEAR_OFFSET_DEG)
        before = self.emu.count(self.users[nrp])
        await self.send(nrp, "/hadir")
        await self._location_asked(self.users[nrp], since=before)
        await self.share_location(nrp, tps.lat + offset, tps.lon)

    async def file_sitrep(self, kind: str) -> None:
        text, button = {
            "sitrep_aman": ("Situasi TPS aman, pemilih mulai antre dengan tertib", "✅ Aman"),
            "sitrep_logistik": ("Surat suara DPRD kurang 20 lembar, sudah dilaporkan ke PPS", "📦 Logistik"),
        }[kind]
        nrp = self.random.choice(sorted(n for n in self.cast.guards if n in self.users))
        self.follow(nrp)
        await self.send(nrp, f"/lapor {text}")
        await self.press(nrp, await self._offered(self.users[nrp], button), button)

    async def raise_contingency(self, nrp: str, tps: demodata.Tps) -> None:
        user = self.users[nrp]
        person = self.cast.people[nrp]
        self.chats.narrate(f"{person.rank} {person.name}, at water-access {tps.code}, raises a contingency")
        await self.send(nrp, "/darurat Perahu logistik tertahan di dermaga, air pasang; massa berkumpul")
        offer = await self._offered(user, "🔴 Tinggi")
        before = self.emu.count(user)
        await self.press(nrp, offer, "🔴 Tinggi")
        await self._location_asked(user, since=before)
        await self.share_location(nrp, tps.lat, tps.lon)

    async def _offered(self, user: SimUser, button: str) -> SentMessage:
        """The bot's latest message in this chat that offers `button`, once it arrives."""
        for _ in range(200):
            offering = [m for m in self.emu.sent_to(user) if button in m.button_texts]
            if offering:
                return offering[-1]
            await asyncio.sleep(0.05)
        raise SystemExit(f"the bot did not offer {button!r}")

    async def _answered(self, chat: SimUser | SimGroup, *, since: int) -> None:
        """Until the bot has sent more than `since` messages into this chat, waiting on the demo's clock."""
        for _ in range(200):
            if self.emu.count(chat) > since:
                return
            await self.stage.at(self.stage.clock() + timedelta(seconds=5))

    async def _location_asked(self, user: SimUser, *, since: int) -> None:
        """Until the bot's request-location button arrives after message `since`: what a person would tap."""
        for _ in range(200):
            if any(button.get("request_location") for m in self.emu.sent_to(user)[since:] for button in m.buttons):
                return
            await asyncio.sleep(0.05)

    async def acknowledge_at_the_top(self) -> None:
        """Nobody below acknowledges: the alert climbs; the Polda commander takes it."""
        root = self.cast.root()
        group = self.groups.get(root.code)
        commander = self.cast.commanders.get(root.code)
        if group is None or commander is None:
            return
        while self.stage.clock() < self.stage.end:
            alerts = [m for m in self.emu.sent_to(group) if "✔️ Terima" in m.button_texts]
            if alerts:
                await asyncio.sleep(120 / self.speed)
                self.chats.narrate(
                    f"Nobody below took it: {commander.rank} {commander.name} acknowledges in the Polda group"
                )
                await self.press(commander.nrp, alerts[-1], "✔️ Terima")
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
        print("\n" + "=" * 72 + f"\nFinal /status of the Polda commander, {commander.rank} {commander.name}:\n")
        for message in self.emu.sent_to(user)[before:]:
            print(plain_text(message.content))
        print("=" * 72)
