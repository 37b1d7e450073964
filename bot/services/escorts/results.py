"""What the escort services answer: frozen values a handler renders, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.services.geo import Point


@dataclass(frozen=True)
class Waypoint:
    """An origin, via or destination: a place (`kind` its place kind) or a TPS (`kind` "tps")."""

    code: str
    name: str
    kind: str
    lat: float
    lon: float
    unit_id: int
    place_id: int | None = None
    tps_id: int | None = None

    @property
    def point(self) -> Point:
        return (self.lat, self.lon)


@dataclass(frozen=True)
class Via:
    seq: int
    waypoint: Waypoint
    passed_at: datetime | None


@dataclass(frozen=True)
class Route:
    origin: Waypoint
    vias: tuple[Via, ...]
    destination: Waypoint

    def points(self) -> list[Point]:
        """The corridor's line: from, each via in order, to."""
        return [self.origin.point, *(via.waypoint.point for via in self.vias), self.destination.point]

    def ahead(self) -> list[Point]:
        """What is still to pass: the vias not passed after the last one passed, then the destination."""
        passed = [i for i, via in enumerate(self.vias) if via.passed_at is not None]
        start = passed[-1] + 1 if passed else 0
        return [*(via.waypoint.point for via in self.vias[start:]), self.destination.point]

    def last_dermaga(self) -> int | None:
        """The seq of the last jetty on the way: past it a `darat_air` escort is on the water."""
        jetties = [via.seq for via in self.vias if via.waypoint.kind == "dermaga"]
        return jetties[-1] if jetties else None


@dataclass(frozen=True)
class EscortSummary:
    """One escort as a list shows it; `position_age` and `remaining_m` are None without a position."""

    id: int
    code: str
    kind: str
    cargo: str
    state: str
    access: str
    unit_id: int
    unit_code: str
    unit_name: str
    origin: Waypoint
    destination: Waypoint
    depart_at: datetime
    arrive_by: datetime
    departed_at: datetime | None
    arrived_at: datetime | None
    received_at: datetime | None
    last_position: Point | None
    last_at: datetime | None
    position_age: timedelta | None
    remaining_m: float | None
    open_alerts: tuple[str, ...]
    live_chat_id: int | None
    live_message_id: int | None

    @property
    def underway(self) -> bool:
        return self.state == "berangkat"


@dataclass(frozen=True)
class Member:
    """An escort member as confirmations need them; `chat_id` is None until they register."""

    personnel_id: int
    name: str
    rank: str
    role: str
    chat_id: int | None
    language: str

    @property
    def title(self) -> str:
        return f"{self.rank} {self.name}".strip()


@dataclass(frozen=True)
class MemberEscort:
    """An escort of `/kawal` for one of its members, with that member's role."""

    escort: EscortSummary
    role: str


@dataclass(frozen=True)
class AlertEpisode:
    """One episode of an automatic alert; `severity` from `escort.severity`."""

    id: int
    escort_id: int
    escort_code: str
    unit_id: int
    kind: str
    severity: str
    opened_at: datetime
    cleared_at: datetime | None = None
    clear_reason: str | None = None
    contingency_id: int | None = None


@dataclass(frozen=True)
class EscortDetail:
    summary: EscortSummary
    route: Route
    members: tuple[Member, ...]
    alerts: tuple[AlertEpisode, ...]
    track_points: int
    received_by: Member | None


class ActionOutcome(StrEnum):
    done = "done"
    already = "already"
    not_member = "not_member"
    not_found = "not_found"


@dataclass(frozen=True)
class ActionResult:
    """The depart or arrive button: `already` when pressed again, with the escort as it stands."""

    outcome: ActionOutcome
    escort: EscortSummary | None = None
    cleared: tuple[AlertEpisode, ...] = ()


@dataclass(frozen=True)
class PositionResult:
    """What one position of a member did to their escort.

    `latest`: it is the newest position (the group's live location moves to
    it); `kept`: it became a track point; `passed`: via codes marked passed
    by it; `cleared` / `opened`: alert episodes it ended or began (menyimpang);
    `route` with the vias it passed; `summary`, the escort as it left it, when
    its sender is to be answered (asked for, or a departure, via or arrival).
    """

    escort_id: int
    escort_code: str
    unit_id: int
    state: str
    lat: float
    lon: float
    at: datetime
    latest: bool
    kept: bool
    departed: bool
    arrived: bool
    passed: tuple[str, ...]
    cleared: tuple[AlertEpisode, ...]
    opened: tuple[AlertEpisode, ...]
    live_chat_id: int | None
    live_message_id: int | None
    route: Route
    summary: EscortSummary | None = None


class ReceiveOutcome(StrEnum):
    received = "received"
    already = "already"
    not_found = "not_found"
    not_departed = "not_departed"
    not_registered = "not_registered"
    not_allowed = "not_allowed"
    own_escort = "own_escort"


@dataclass(frozen=True)
class ReceiveResult:
    """Serah terima: what both confirmations need, or why it was refused.

    `already`: `received_by` and `received_at` are the first handover's.
    """

    outcome: ReceiveOutcome
    code: str
    cargo: str = ""
    place: Waypoint | None = None
    received_at: datetime | None = None
    lead: Member | None = None
    received_by: Member | None = None
    escort: EscortSummary | None = None
    cleared: tuple[AlertEpisode, ...] = ()
