"""The notification outbox: durable messages, claimed by dispatchers, recorded when Telegram answers.

Every function takes the caller's session and never commits: an `enqueue`
belongs to the transaction of the change it announces (the point of an
outbox), and a `claim` is only visible to other dispatchers once the caller
commits it. Times are passed in (`now`, `at`) so the clock stays the caller's.

Two dispatchers never get the same row: on PostgreSQL the candidates are
locked with `FOR UPDATE SKIP LOCKED` before they are marked `sending`; on
SQLite the claim is one `UPDATE ... RETURNING` statement, and SQLite has one
writer at a time. A claim carries a lease (`claimed_until`). A row whose
worker died comes back as soon as its beat stops (bot/intake/liveness.py), or when
its lease runs out if that worker never beat; never while it is alive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.clock import system_clock
from bot.services import audit, tally
from bot.services.workers import alive, group_share
from bot.storage.db import dialect_insert, rowcount, table_of
from models import CommandGroup, Outbox, Personnel
from models.base import utcnow
from models.enums import OutboxState, Priority

CHUNK = 5000
ERROR_LENGTH = 500
REASON_LENGTH = 200
ACTOR = "dispatcher"

_PENDING = OutboxState.pending.value
_SENDING = OutboxState.sending.value
_SENT = OutboxState.sent.value
_FAILED = OutboxState.failed.value


@dataclass(frozen=True)
class NewMessage:
    """One message to queue; the fields of `enqueue`, for `enqueue_many`."""

    chat_id: int
    text: str
    priority: int
    dedup_key: str
    due_at: datetime | None = None
    send_by: datetime | None = None
    personnel_id: int | None = None
    method: str = "sendMessage"
    payload: dict[str, Any] | None = None
    ref: str | None = None


Say = TypeVar("Say")


@dataclass(frozen=True)
class Outgoing(Generic[Say]):
    """A message a service asks for before it is worded: to whom, how urgent, once (its key), and what to say.

    A service decides who is told what (`say`, a plain value of its capability) but never
    words it: the flow one layer up (flows/) renders `say` with bot/render and queues the
    `worded` message in the service's transaction, so the outbox still commits with the change.
    """

    say: Say
    chat_id: int
    priority: int
    dedup_key: str
    due_at: datetime | None = None
    send_by: datetime | None = None
    personnel_id: int | None = None
    ref: str | None = None

    def worded(self, text: str, payload: dict[str, Any], *, page: int | None = None) -> NewMessage:
        """The row to queue; a message worded over several pages keys each page apart (`<key>:<page>`)."""
        key = self.dedup_key if page is None else f"{self.dedup_key}:{page}"
        return NewMessage(
            self.chat_id,
            text,
            self.priority,
            key,
            self.due_at,
            self.send_by,
            self.personnel_id,
            payload=payload,
            ref=self.ref,
        )


@dataclass(frozen=True)
class OutboxRow:
    """A claimed row, detached from any session, for the dispatcher to send."""

    id: int
    chat_id: int
    personnel_id: int | None
    priority: int
    due_at: datetime
    send_by: datetime | None
    created_at: datetime
    method: str
    text: str
    payload: dict[str, Any]
    ref: str | None
    attempts: int

    @property
    def order(self) -> tuple[int, datetime, int]:
        """The sending order: priority first, then due time, then age."""
        return (self.priority, self.due_at, self.id)


@dataclass(frozen=True)
class SendResult:
    """Telegram accepted a row: the message id to edit it later, and when."""

    row_id: int
    telegram_message_id: int | None
    at: datetime


@dataclass(frozen=True)
class OutboxStats:
    """What `siaga outbox` shows: depth by priority and state, oldest due, failures."""

    depth: dict[int, dict[str, int]] = field(default_factory=dict)
    oldest_due: datetime | None = None
    failures: int = 0
    top_errors: list[tuple[str, int]] = field(default_factory=list)

    @property
    def waiting(self) -> int:
        """Rows not yet answered by Telegram (pending or being sent)."""
        return sum(by_state.get(_PENDING, 0) + by_state.get(_SENDING, 0) for by_state in self.depth.values())


# -- queueing -----------------------------------------------------------------------------------


def _is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _values(message: NewMessage, now: datetime) -> dict[str, Any]:
    """Every column spelled out, so a multi-row INSERT has the same shape on each row."""
    return {
        "chat_id": message.chat_id,
        "personnel_id": message.personnel_id,
        "priority": int(message.priority),
        "due_at": message.due_at or now,
        "send_by": message.send_by,
        "dedup_key": message.dedup_key,
        "method": message.method,
        "text": message.text,
        "payload": dict(message.payload or {}),
        "ref": message.ref,
        "state": _PENDING,
        "attempts": 0,
        "created_at": now,
    }


async def enqueue(
    session: AsyncSession,
    *,
    chat_id: int,
    text: str,
    priority: Priority | int,
    dedup_key: str,
    due_at: datetime | None = None,
    send_by: datetime | None = None,
    personnel_id: int | None = None,
    method: str = "sendMessage",
    payload: dict[str, Any] | None = None,
    ref: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue one message; False when `dedup_key` is already queued (re-planning is harmless).

    `now` (default: the wall clock) is the creation time that the retry
    deadline counts from, and the due time when `due_at` is not given.
    """
    message = NewMessage(chat_id, text, priority, dedup_key, due_at, send_by, personnel_id, method, payload, ref)
    return await enqueue_many(session, [message], now=now) == 1


async def enqueue_many(
    session: AsyncSession, rows: Iterable[NewMessage | Mapping[str, Any]], *, now: datetime | None = None
) -> int:
    """Queue many messages; returns how many were new (a duplicate key, queued or within the run, is skipped).

    One INSERT ... ON CONFLICT DO NOTHING RETURNING id executed over a list of
    parameter sets: SQLAlchemy sends it as multi-row VALUES pages of
    `insertmanyvalues_page_size` rows, far below PostgreSQL's 32,767 bind
    parameters, and compiles it once, which is eight times faster than
    compiling one giant VALUES clause. Input is consumed `CHUNK` rows at a time.
    """
    now = now or utcnow()
    statement = (
        dialect_insert(session)(Outbox).on_conflict_do_nothing(index_elements=["dedup_key"]).returning(Outbox.id)
    )
    inserted = 0
    for chunk in _chunks(rows, CHUNK):
        params = [_values(row if isinstance(row, NewMessage) else NewMessage(**row), now) for row in chunk]
        inserted += len((await session.execute(statement, params)).all())
    return inserted


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


# -- claiming -----------------------------------------------------------------------------------

_ROW_COLUMNS = (
    "id",
    "chat_id",
    "personnel_id",
    "priority",
    "due_at",
    "send_by",
    "created_at",
    "method",
    "text",
    "payload",
    "ref",
    "attempts",
)


def _pending_due(table: Any, now: datetime) -> ColumnElement[bool]:
    return and_(
        table.state == _PENDING,
        table.due_at <= now,
        or_(table.next_attempt_at.is_(None), table.next_attempt_at <= now),
    )


def _lease_expired(table: Any, now: datetime) -> ColumnElement[bool]:
    """A row whose lease ran out and whose worker is not alive: a live worker keeps what it holds."""
    return and_(table.state == _SENDING, table.claimed_until < now, table.claimed_by.not_in(alive(system_clock())))


async def claim(
    session: AsyncSession, *, worker: str, limit: int, now: datetime, lease_seconds: float
) -> list[OutboxRow]:
    """Take up to `limit` due rows for `worker`, in sending order, marked `sending` until the lease ends.

    Rows of a crashed worker (lease expired) come first: they have waited
    longest. Two short index-friendly queries rather than one OR, so a deep
    queue costs an ordered index walk, not a sort of every pending row.
    A command group's rows go only to the worker whose share it is
    (`workers.group_share`): Telegram's 20 a minute for a group is one
    limit, which one process paces exactly and two would each spend in full.
    """
    until = now + timedelta(seconds=lease_seconds)
    share = _groups_of(*await group_share(session, worker=worker, now=system_clock()))
    rows = await _claim_where(session, _lease_expired, share, worker=worker, limit=limit, now=now, until=until)
    if len(rows) < limit:
        rest = limit - len(rows)
        rows += await _claim_where(session, _pending_due, share, worker=worker, limit=rest, now=now, until=until)
    return sorted(rows, key=lambda row: row.order)


def _groups_of(index: int, count: int) -> Callable[[Any], ColumnElement[bool]]:
    """Private chats (positive ids) for anyone; a group (negative id) for the worker of its share."""

    def ours(table: Any) -> ColumnElement[bool]:
        return true() if count == 1 else or_(table.chat_id > 0, (-table.chat_id) % count == index)

    return ours


async def _claim_where(
    session: AsyncSession,
    condition: Callable[[Any, datetime], ColumnElement[bool]],
    share: Callable[[Any], ColumnElement[bool]],
    *,
    worker: str,
    limit: int,
    now: datetime,
    until: datetime,
) -> list[OutboxRow]:
    candidates = aliased(Outbox)
    chosen = (
        select(candidates.id)
        .where(condition(candidates, now), share(candidates))
        .order_by(candidates.priority, candidates.due_at)  # ix_outbox_due's order: a walk, not a sort
        .limit(limit)
    )
    if _is_postgresql(session):
        ids = list(await session.scalars(chosen.with_for_update(skip_locked=True)))
        if not ids:
            return []
        target: Any = Outbox.id.in_(ids)
    else:
        target = Outbox.id.in_(chosen.scalar_subquery())
    statement = (
        update(Outbox)
        .where(target)
        .values(state=_SENDING, claimed_by=worker, claimed_until=until)
        .returning(*(getattr(Outbox, name) for name in _ROW_COLUMNS))
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    return [OutboxRow(**dict(zip(_ROW_COLUMNS, values, strict=True))) for values in result.all()]


# -- recording results --------------------------------------------------------------------------


def _clear_claim() -> dict[str, Any]:
    return {"claimed_by": None, "claimed_until": None}


async def mark_sent(session: AsyncSession, *, row_id: int, telegram_message_id: int | None, at: datetime) -> None:
    """Telegram accepted the row; its message id is kept for a later edit."""
    await mark_sent_many(session, results=[SendResult(row_id, telegram_message_id, at)])


async def mark_sent_many(session: AsyncSession, *, results: Sequence[SendResult]) -> None:
    """Record many answers in one executemany, so a dispatcher at full speed writes in batches."""
    if not results:
        return
    table = table_of(Outbox)
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(
            state=_SENT,
            sent_at=bindparam("sent_at", type_=table.c.sent_at.type),
            telegram_message_id=bindparam("message_id", type_=table.c.telegram_message_id.type),
            attempts=table.c.attempts + 1,
            last_error=None,
            next_attempt_at=None,
            **_clear_claim(),
        )
    )
    params = [{"row_id": r.row_id, "sent_at": r.at, "message_id": r.telegram_message_id} for r in results]
    await session.execute(statement, params)


async def mark_retry(
    session: AsyncSession, *, row_id: int, error: str, next_attempt_at: datetime | None, count_attempt: bool = True
) -> None:
    """Back to pending until `next_attempt_at`; a flood-control wait is not counted as an attempt."""
    values: dict[str, Any] = {
        "state": _PENDING,
        "last_error": error[:ERROR_LENGTH],
        "next_attempt_at": next_attempt_at,
        **_clear_claim(),
    }
    if count_attempt:
        values["attempts"] = Outbox.attempts + 1
    await session.execute(update(Outbox).where(Outbox.id == row_id, Outbox.state == _SENDING).values(**values))


async def release(session: AsyncSession, *, row_ids: Sequence[int], next_attempt_at: datetime | None = None) -> int:
    """Give claimed rows back untouched (shutdown, flood wait, a chat that is not ready yet)."""
    if not row_ids:
        return 0
    result = await session.execute(
        update(Outbox)
        .where(Outbox.id.in_(list(row_ids)), Outbox.state == _SENDING)
        .values(state=_PENDING, next_attempt_at=next_attempt_at, **_clear_claim())
    )
    return rowcount(result)


async def reclaim_worker(session: AsyncSession, *, worker: str) -> int:
    """A restarted worker takes back what it held when it died, without waiting for the lease."""
    result = await session.execute(
        update(Outbox)
        .where(Outbox.state == _SENDING, Outbox.claimed_by == worker)
        .values(state=_PENDING, **_clear_claim())
    )
    return rowcount(result)


async def mark_failed(session: AsyncSession, *, row_id: int, error: str, unreachable: bool = False) -> None:
    """Give up on a row, with an audit row saying why.

    `unreachable` is for a permanent failure of the recipient (blocked the bot,
    deactivated, chat not found): the person or command group is marked
    unreachable so planners and `/status` can tell, and so nobody wonders
    later why an alert was never seen.
    """
    result = await session.execute(
        update(Outbox)
        .where(Outbox.id == row_id)
        .values(state=_FAILED, attempts=Outbox.attempts + 1, last_error=error[:ERROR_LENGTH], **_clear_claim())
        .returning(Outbox.chat_id, Outbox.personnel_id)
    )
    row = result.first()
    if row is None:
        return
    recipient = (
        await _mark_unreachable(session, chat_id=row.chat_id, personnel_id=row.personnel_id, reason=error)
        if unreachable
        else None
    )
    audit.record(
        session,
        action="outbox.failed",
        entity="outbox",
        entity_id=row_id,
        actor=ACTOR,
        detail={"error": error[:REASON_LENGTH], "unreachable": recipient},
    )


async def _mark_unreachable(
    session: AsyncSession, *, chat_id: int, personnel_id: int | None, reason: str
) -> str | None:
    """Flag the recipient; returns `personnel:<id>` / `command_group:<id>`, or None if unknown."""
    reason = reason[:REASON_LENGTH]
    if chat_id < 0 and personnel_id is None:
        group_id = await session.scalar(select(CommandGroup.id).where(CommandGroup.chat_id == chat_id))
        if group_id is None:
            return None
        await session.execute(update(CommandGroup).where(CommandGroup.id == group_id).values(reachable=False))
        audit.record(
            session,
            action="command_group.unreachable",
            entity="command_group",
            entity_id=group_id,
            actor=ACTOR,
            detail={"reason": reason},
        )
        return f"command_group:{group_id}"
    where = Personnel.id == personnel_id if personnel_id is not None else Personnel.telegram_user_id == chat_id
    person_id = await session.scalar(select(Personnel.id).where(where))
    if person_id is None:
        return None
    await tally.on_reachability(session, personnel_id=person_id, reachable=False)
    await session.execute(
        update(Personnel).where(Personnel.id == person_id).values(reachable=False, unreachable_reason=reason)
    )
    audit.record(
        session,
        action="personnel.unreachable",
        entity="personnel",
        entity_id=person_id,
        actor=ACTOR,
        detail={"reason": reason},
    )
    return f"personnel:{person_id}"


async def migrate_chat(session: AsyncSession, *, old_chat_id: int, new_chat_id: int) -> int:
    """A group became a supergroup: its waiting rows and its command group follow the new id."""
    result = await session.execute(
        update(Outbox)
        .where(Outbox.chat_id == old_chat_id, Outbox.state.in_([_PENDING, _SENDING]))
        .values(chat_id=new_chat_id)
    )
    await session.execute(update(CommandGroup).where(CommandGroup.chat_id == old_chat_id).values(chat_id=new_chat_id))
    audit.record(
        session,
        action="command_group.migrated",
        entity="chat",
        entity_id=old_chat_id,
        actor=ACTOR,
        detail={"new_chat_id": new_chat_id},
    )
    return rowcount(result)


# -- reading ------------------------------------------------------------------------------------


async def queue_depth(session: AsyncSession) -> dict[int, int]:
    """Rows not yet answered, by priority: cheap enough for a periodic log line."""
    result = await session.execute(
        select(Outbox.priority, func.count()).where(Outbox.state.in_([_PENDING, _SENDING])).group_by(Outbox.priority)
    )
    return {int(priority): int(count) for priority, count in result.all()}


async def stats(session: AsyncSession) -> OutboxStats:
    """Depth by priority and state, the oldest due pending row, and what failures said."""
    depth: dict[int, dict[str, int]] = {}
    grouped = await session.execute(
        select(Outbox.priority, Outbox.state, func.count()).group_by(Outbox.priority, Outbox.state)
    )
    for priority, state, count in grouped.all():
        depth.setdefault(int(priority), {})[state] = int(count)
    oldest = await session.scalar(select(func.min(Outbox.due_at)).where(Outbox.state == _PENDING))
    errors = await session.execute(
        select(Outbox.last_error, func.count())
        .where(Outbox.state == _FAILED)
        .group_by(Outbox.last_error)
        .order_by(func.count().desc())
        .limit(5)
    )
    top = [(error or "", int(count)) for error, count in errors.all()]
    failures = sum(by_state.get(_FAILED, 0) for by_state in depth.values())
    return OutboxStats(depth=depth, oldest_due=oldest, failures=failures, top_errors=top)


async def report_for_ref(session: AsyncSession, ref: str) -> dict[str, int]:
    """A broadcast's delivery report: delivered, unreachable (given up), pending, cancelled."""
    counts = dict(
        (
            await session.execute(select(Outbox.state, func.count()).where(Outbox.ref == ref).group_by(Outbox.state))
        ).all()
    )
    return {
        "delivered": int(counts.get(_SENT, 0)),
        "unreachable": int(counts.get(_FAILED, 0)),
        "pending": int(counts.get(_PENDING, 0) + counts.get(_SENDING, 0)),
        "cancelled": int(counts.get(OutboxState.cancelled.value, 0)),
    }


async def sent_since(session: AsyncSession, *, since: datetime) -> int:
    """Rows Telegram accepted after `since`: the send rate an operator sees in `siaga outbox`."""
    return await session.scalar(select(func.count()).select_from(Outbox).where(Outbox.sent_at > since)) or 0
