"""The counting night of `siaga demo`: one leg of ballot boxes, PPS -> dermaga by road, then by boat to the PPK.

After the morning the demo's clock moves on to the evening of the leg, and
the transcript follows only its chats: the lead's, the command group of the
escort's unit, and the receiver's at the PPK. The lead is reminded, sends
/kawal and presses Berangkat, shares a live location and travels; the boat
stalls mid-river until the bot raises `berhenti` in the group, a commander
acknowledges it with the alert's button, the boat moves on (the alert says
it ended by itself), arrives within the radius, and a person of the PPK's
unit receives the boxes with /terima. Everything goes through the emulator
as the people's phones would send it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.demo.escort_leg import Leg, km
from bot.demo.script import Script, issue
from bot.demo.transcript import plain_text
from bot.emulator import SentMessage, SimGroup

ROAD_KMH, BOAT_KMH = 30.0, 30.0  # a pickup on the village road, a speedboat on the river
STEP = timedelta(minutes=1)  # a phone's live location moves about this often on the way
STALL_SHARE = 0.35  # how far across the water the engine fails
DRIFT_DEG = 0.0002  # about 20 m: a stalled boat turning on the current
LIVE_PERIOD = 8 * 3600  # the 8 hours the bot's guide asks for
WAIT_STEPS = 120  # virtual minutes the scene waits for something the bot should do well before
ACK = "✔️ Terima"
SHARED_LIVE = "📡 (lokasi langsung dibagikan, 8 jam)"
REMINDER = "Pengingat pengawalan"
HANDED_OVER, LEAD_DONE = "Serah terima", "Pengawalan selesai"  # the receiver's answer, the lead's note


class EscortScene:
    def __init__(self, script: Script, leg: Leg) -> None:
        self.script, self.leg = script, leg
        self.stage, self.emu, self.chats = script.stage, script.emu, script.chats
        self.lead = leg.crew[0]
        self.live: dict[str, object] = {}
        self.here = (leg.origin.lat, leg.origin.lon)

    async def play(self) -> None:
        depart = self.leg.depart_at
        await self.night(depart - timedelta(minutes=61))
        await self.reminded(depart)
        await self.depart()
        await self.travel((self.leg.dermaga.lat, self.leg.dermaga.lon), ROAD_KMH)
        await self.until(lambda: self._said(self.lead, "Melewati") > 0, "the dermaga marked as passed")
        self.chats.narrate(f"At {self.leg.dermaga.name} the boxes go onto a speedboat")
        stall = _along(self.here, (self.leg.destination.lat, self.leg.destination.lon), STALL_SHARE)
        await self.travel(stall, BOAT_KMH)
        await self.stall()
        await self.travel((self.leg.destination.lat, self.leg.destination.lon), BOAT_KMH)
        await self.until(lambda: self._said(self.lead, "tiba di") > 0, "the arrival")
        await self.hand_over()

    # -- the night begins ------------------------------------------------------------------------------

    async def night(self, local: datetime) -> None:
        """The clock moves on to the evening of the leg; the story follows its chats from now on."""
        self.chats.unfollow_all()
        self.stage.skip_to(local)
        leg, cast = self.leg, self.script.cast
        self.chats.heading(
            f"\n── The counting night in {leg.regency}: {leg.escort.code}, {leg.escort.cargo},"
            f" {leg.origin.name} → {leg.dermaga.name} by road, then by boat to {leg.destination.name}"
        )
        await self.registered(self.lead)
        self.script.follow(self.lead)
        self.group = self.command_group()
        self.chats.follow(self.group.id, self.group.title, group=True)
        self.receiver = self.pick_receiver()
        await self.registered(self.receiver)
        self.script.follow(self.receiver)
        lead = cast.people[self.lead]
        self.chats.narrate(f"{lead.rank} {lead.name} leads the escort; {len(leg.crew) - 1} more ride with the boxes")

    async def registered(self, nrp: str) -> None:
        """One who never opened the registration link does it now: they cannot take part otherwise."""
        script = self.script
        if nrp in script.users:
            return
        person = script.cast.people[nrp]
        codes = await issue(script.settings, [nrp], self.stage.clock())
        script.users[nrp] = self.emu.user(person.name.split()[0])
        script.follow(nrp)
        await script.send(nrp, f"/start {codes[nrp]}")
        await script._answered(script.users[nrp], since=0)

    def command_group(self) -> SimGroup:
        """The group the escort's alerts go to first: its unit's, or the nearest above that has one."""
        code = self.leg.escort.unit_code
        while code not in self.script.groups:
            code = self.script.cast.parent_of(code)
        self.acknowledger = self.script.cast.commanders[code].nrp
        return self.script.groups[code]

    def pick_receiver(self) -> str:
        """A registered guard of the PPK's unit who did not ride with the boxes; its commander if there is none."""
        cast, unit = self.script.cast, self.leg.destination.unit_code
        guards = sorted(
            person.nrp
            for person in cast.province.personnel
            if person.unit_code == unit
            and person.role == "anggota"
            and person.force == "polri"
            and person.nrp not in self.leg.crew
            and person.nrp in self.script.users
        )
        return guards[0] if guards else cast.commanders[unit].nrp

    async def reminded(self, depart: datetime) -> None:
        """The hour before and the minute of departure, as the lead's phone shows them (the hour between skipped)."""
        await self.until(lambda: self._said(self.lead, REMINDER) >= 1, "the reminder an hour before")
        self.stage.skip_to(depart - timedelta(minutes=1))
        await self.until(lambda: self._said(self.lead, REMINDER) >= 2, "the reminder at departure")

    # -- the journey -----------------------------------------------------------------------------------

    async def depart(self) -> None:
        script, code = self.script, self.leg.escort.code
        user = script.users[self.lead]
        await script.send(self.lead, "/kawal")
        button = f"🚚 Berangkat {code}"
        await script.press(self.lead, await script._offered(user, button), button)
        await self.stage.at(self.stage.clock() + STEP)
        self.chats.person(user.id, script.speaker(self.lead), SHARED_LIVE)
        self.live = await user.send_location(*self.here, live_period=LIVE_PERIOD, date=self.stage.clock())

    async def travel(self, to: tuple[float, float], kmh: float) -> None:
        """Positions a minute apart along a straight line to `to`, the last one on it."""
        steps = max(1, math.ceil(km(self.here, to) / (kmh / 60)))
        start = self.here
        for step in range(1, steps + 1):
            await self.move(_along(start, to, step / steps))

    async def move(self, at: tuple[float, float]) -> None:
        await self.stage.at(self.stage.clock() + STEP)
        self.here = at
        self.live = await self.script.users[self.lead].move_live_location(self.live, *at, date=self.stage.clock())

    async def stall(self) -> None:
        """Drift in place until the group gets `berhenti`; the commander takes it, and the boat goes on."""
        lead, commander = self.script.cast.people[self.lead], self.script.cast.people[self.acknowledger]
        self.chats.narrate(
            f"Mid-river the engine fails; {lead.rank} {lead.name}'s phone keeps sharing where they drift"
        )
        anchor = self.here
        alert: SentMessage | None = None
        for minute in range(WAIT_STEPS):
            await self.move((anchor[0] + DRIFT_DEG * (minute % 2), anchor[1] + DRIFT_DEG * (minute % 3) / 2))
            alert = self._alert()
            if alert is not None:
                break
        if alert is None:
            raise SystemExit("the bot raised no berhenti alert for the stalled boat")
        for _ in range(2):
            await self.move((anchor[0] + DRIFT_DEG, anchor[1]))
        self.chats.narrate(f"{commander.rank} {commander.name} calls the boat and acknowledges the alert")
        await self.script.press(self.acknowledger, alert, ACK)
        for _ in range(2):
            await self.move(anchor)
        self.chats.narrate("The engine starts again")

    def _alert(self) -> SentMessage | None:
        return next(
            (m for m in self.emu.sent_to(self.group) if "BERHENTI" in m.content and ACK in m.button_texts), None
        )

    # -- at the PPK ------------------------------------------------------------------------------------

    async def hand_over(self) -> None:
        receiver = self.script.cast.people[self.receiver]
        self.chats.narrate(f"At {self.leg.destination.name}, {receiver.rank} {receiver.name} counts the boxes")
        await self.stage.at(self.stage.clock() + 2 * STEP)
        await self.script.send(self.receiver, f"/terima {self.leg.escort.code}")
        await self.until(lambda: self._said(self.receiver, HANDED_OVER) > 0, "the receiver's confirmation")
        await self.until(lambda: self._said(self.lead, LEAD_DONE) > 0, "the lead's confirmation")

    async def until(self, done: Callable[[], bool], what: str) -> None:
        """Play on, a minute at a time, until `done`; the bot should never need the two hours."""
        for _ in range(WAIT_STEPS):
            if done():
                return
            await self.stage.at(self.stage.clock() + STEP)
        raise SystemExit(f"the demo waited two virtual hours for {what}")

    def _said(self, nrp: str, words: str) -> int:
        """How many of the bot's messages to this person say `words`."""
        return sum(words in plain_text(m.content) for m in self.emu.sent_to(self.script.users[nrp]))

    async def final_board(self) -> None:
        """The commander's `/kawal` after the night: the leg received, with its place and time."""
        commander = self.script.cast.people[self.acknowledger]
        user = self.script.users[self.acknowledger]
        before = self.emu.count(user)
        await user.send("/kawal")
        for _ in range(200):
            if self.emu.count(user) > before:
                break
            await asyncio.sleep(0.05)
        print("\n" + "=" * 72 + f"\nFinal /kawal of {commander.rank} {commander.name}:\n")
        for message in self.emu.sent_to(user)[before:]:
            print(plain_text(message.content))
        print("=" * 72)


def _along(a: tuple[float, float], b: tuple[float, float], share: float) -> tuple[float, float]:
    return (round(a[0] + share * (b[0] - a[0]), 6), round(a[1] + share * (b[1] - a[1]), 6))
