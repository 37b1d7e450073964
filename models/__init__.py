"""SQLAlchemy 2.0 tables and the pydantic schemas that validate what comes in."""

from models.audit import AuditLog
from models.base import Base
from models.delivery import Broadcast, CheckinAlert, Outbox
from models.escorts import Escort, EscortAlert, EscortMember, EscortTrackPoint, EscortVia, Place
from models.intake import InboxUpdate, WorkerBeat
from models.operations import (
    ChatState,
    Checkin,
    CommandGroup,
    Contingency,
    ContingencyMessage,
    ContingencyStep,
    Sitrep,
)
from models.roster import (
    Assignment,
    Personnel,
    RegistrationCode,
    RegistrationFailure,
    Shift,
    Tps,
    TpsLocation,
    TpsSecondaryUnit,
    Unit,
    UnitClosure,
)
from models.tally import TallyShift, TpsShiftTally, UnitShiftTally, UnitShiftTpsTally

__all__ = [
    "Assignment",
    "AuditLog",
    "Base",
    "Broadcast",
    "ChatState",
    "Checkin",
    "CheckinAlert",
    "CommandGroup",
    "Contingency",
    "InboxUpdate",
    "ContingencyMessage",
    "ContingencyStep",
    "Escort",
    "EscortAlert",
    "EscortMember",
    "EscortTrackPoint",
    "EscortVia",
    "Outbox",
    "Personnel",
    "Place",
    "RegistrationCode",
    "RegistrationFailure",
    "Shift",
    "Sitrep",
    "TallyShift",
    "Tps",
    "TpsLocation",
    "TpsSecondaryUnit",
    "TpsShiftTally",
    "Unit",
    "UnitClosure",
    "UnitShiftTally",
    "UnitShiftTpsTally",
    "WorkerBeat",
]
