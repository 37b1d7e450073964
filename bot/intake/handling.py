"""Which updates the running task handles, marked handled in the transaction that commits their effect.

An update counts as handled only together with its effect: a worker killed
after the commit must not handle it again, and one killed before must. The
inbox processor (bot/intake/updater.py) sets `HANDLING` for the task that runs an
update's handlers; every session of the bot is a `MarkingSession`, which,
when a transaction that wrote something commits while an update is being
handled, adds one UPDATE of that update's inbox row to the same transaction.
Work done for several updates at once (bot/intake/coalesce.py) runs under a `Mark`
of all of them.

A handler that only reads (a /jadwal, a /status) writes nothing, so its
update stays unhandled until its handlers return and it is marked done.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, event, update
from sqlalchemy.orm import ORMExecuteState, Session

from models import InboxUpdate


@dataclass
class Mark:
    """The inbox ids of what is being handled, and what happened to them so far."""

    update_ids: list[int]
    parts: list[Mark] = field(default_factory=list)
    handled: bool = False
    retry: bool = False

    @classmethod
    def of(cls, marks: list[Mark | None]) -> Mark | None:
        """One mark for work done for several updates at once; None if none of them is marked."""
        present = [mark for mark in marks if mark is not None]
        if not present:
            return None
        return cls([update_id for mark in present for update_id in mark.update_ids], parts=present)

    def set_handled(self) -> None:
        self.handled = True
        for part in self.parts:
            part.set_handled()


HANDLING: contextvars.ContextVar[Mark | None] = contextvars.ContextVar("siaga_handling", default=None)

_MARK_HANDLED = (
    update(InboxUpdate)
    .where(InboxUpdate.update_id.in_(bindparam("ids", expanding=True)), InboxUpdate.handled_at.is_(None))
    .values(handled_at=bindparam("at"))
    .execution_options(synchronize_session=False)
)
_WROTE, _MARKING = "siaga_wrote", "siaga_marking"


class MarkingSession(Session):
    """A Session that marks the current update handled in the first transaction that writes and commits."""


@event.listens_for(MarkingSession, "do_orm_execute")
def _note_write(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


@event.listens_for(MarkingSession, "after_flush")
def _note_flush(session: Session, _context: Any) -> None:
    if session.new or session.dirty or session.deleted:
        session.info[_WROTE] = True


@event.listens_for(MarkingSession, "before_commit")
def _before_commit(session: Session) -> None:
    mark = HANDLING.get()
    wrote = session.info.pop(_WROTE, False) or bool(session.new or session.dirty or session.deleted)
    if mark is None or mark.handled or not wrote:
        return
    session.execute(_MARK_HANDLED, {"ids": mark.update_ids, "at": datetime.now(UTC)})
    session.info[_MARKING] = mark


@event.listens_for(MarkingSession, "after_commit")
def _after_commit(session: Session) -> None:
    mark = session.info.pop(_MARKING, None)
    if mark is not None:
        mark.set_handled()


@event.listens_for(MarkingSession, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_MARKING, None)
    session.info.pop(_WROTE, None)
