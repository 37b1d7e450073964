"""Pengawalan: escorts of logistics and ballot boxes, tracked from their members' positions (DESIGN.md, "Escorts").

Session and plain values in, frozen results (`results`) out, `now` passed
in, no Telegram. None of these functions commits: the caller commits, so
that what it sends (a confirmation, the live location's move, a
contingency for an opened episode) commits with the change it is about.

- `views`: `escorts_of_member`, `escorts_of_units`, `escort_counts`, `escort_detail`;
- `tracking`: `record_position` (`hold_for_positions` first for a bunch), `depart`, `arrive`;
- `alerts`: `sweep_alerts`, `link_contingency`, `unraised`;
- `handover`: `receive` (serah terima);
- `imports`: the `siaga import` of places, escorts and escort_members.
"""

from bot.services.escorts.alerts import link_contingency, sweep_alerts, unraised
from bot.services.escorts.handover import receive
from bot.services.escorts.results import (
    ActionOutcome,
    ActionResult,
    AlertEpisode,
    EscortDetail,
    EscortSummary,
    Member,
    MemberEscort,
    PositionResult,
    ReceiveOutcome,
    ReceiveResult,
    Route,
    Via,
    Waypoint,
)
from bot.services.escorts.tracking import Held, arrive, depart, hold_for_positions, record_position
from bot.services.escorts.views import EscortCounts, escort_counts, escort_detail, escorts_of_member, escorts_of_units

__all__ = [
    "ActionOutcome",
    "ActionResult",
    "AlertEpisode",
    "EscortCounts",
    "EscortDetail",
    "EscortSummary",
    "Held",
    "Member",
    "MemberEscort",
    "PositionResult",
    "ReceiveOutcome",
    "ReceiveResult",
    "Route",
    "Via",
    "Waypoint",
    "arrive",
    "depart",
    "escort_counts",
    "escort_detail",
    "escorts_of_member",
    "escorts_of_units",
    "link_contingency",
    "receive",
    "hold_for_positions",
    "record_position",
    "sweep_alerts",
    "unraised",
]
