"""The copies of a contingency alert in the command groups, kept in step with its state.

Each group reached holds one copy (`ContingencyMessage`), sent through the
outbox and edited through the outbox when the contingency changes. Its
Telegram message id is only known once a dispatcher sent it, so it is read
from the outbox row (found by its dedup key) lazily. A change made before the
copy was sent rewrites the waiting row's text instead; a change made while
the row was on the wire is caught by the next `sync_copies(only_stale=True)`
(the escalation sweep's `reconcile`), which edits every copy whose sent text
is older than the contingency. Either way each group ends up showing the
latest state, with one message.

Edits of one copy are keyed by the contingency's version, so a state is
edited in once however many workers notice it; an older edit still waiting
is cancelled so that a stale state never lands last.

The alert comes worded (its text, and its Bot API options with the
keyboard) from flows/incidents.py: every copy shows the same wording, and
a copy shows the latest state when its text and keyboard are the latest.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, String, cast, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.groups import GroupTarget
from bot.services.outbox import enqueue
from bot.storage.db import rowcount
from models import ContingencyMessage, Outbox
from models.enums import OutboxState, Priority

if TYPE_CHECKING:
    from bot.services.escalation import ContingencyView

NO_MESSAGE = 0  # a copy whose send failed for good: nothing to edit, nothing to look up again


def send_key(contingency_id: int, chat_id: int) -> str:
    return f"cont:{contingency_id}:s:{chat_id}"


def _send_key_of(copy: Any) -> ColumnElement[str]:
    """`send_key` of a copy row, in SQL."""
    return "cont:" + cast(copy.contingency_id, String) + ":s:" + cast(copy.chat_id, String)


RECONCILE_LIMIT = 500
_UNRECORDED = (
    select(ContingencyMessage.contingency_id)
    .join(Outbox, Outbox.dedup_key == _send_key_of(ContingencyMessage))
    .where(
        ContingencyMessage.message_id.is_(None),
        Outbox.state.not_in((OutboxState.pending.value, OutboxState.sending.value)),
    )
    .distinct()
    .limit(RECONCILE_LIMIT)
)


async def unrecorded(session: AsyncSession) -> list[int]:
    """Contingencies with a copy sent (or given up) whose message id is not recorded yet: what `reconcile`
    has to catch up. A copy still waiting, or on the wire, is not: a burst of alerts queued behind a
    group's 20 a minute would otherwise be read again by every sweep of every worker until it is sent."""
    return list(await session.scalars(_UNRECORDED))


def _ref(contingency_id: int, chat_id: int) -> str:
    return f"cont:{contingency_id}:{chat_id}"


def _shown(text: str, payload: dict[str, Any] | None) -> tuple[str, Any]:
    """What a copy shows: its text and its keyboard."""
    return text, (payload or {}).get("reply_markup")


async def reach(
    session: AsyncSession,
    view: ContingencyView,
    targets: Iterable[GroupTarget],
    *,
    text: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Post the alert in each group, once: the (contingency, chat) row and the dedup key both guard it."""
    for target in targets:
        session.add(ContingencyMessage(contingency_id=view.id, chat_id=target.chat_id))
        await enqueue(
            session,
            chat_id=target.chat_id,
            text=text,
            priority=Priority.escalation,
            dedup_key=send_key(view.id, target.chat_id),
            payload=payload,
            ref=_ref(view.id, target.chat_id),
            now=now,
        )
    await session.flush()


async def sync_copies(
    session: AsyncSession,
    view: ContingencyView,
    *,
    text: str,
    payload: dict[str, Any],
    now: datetime,
    only_stale: bool = False,
) -> int:
    """Bring every copy of the alert to `view`'s state; returns how many edits or rewrites were queued.

    A copy already sent is edited (the edit's dedup key carries the version,
    so an edit is queued once per state); a copy still waiting has its text
    rewritten in place; a copy on the wire right now is left for the next
    `reconcile`. With `only_stale`, only copies just found sent with an older
    text are edited (what `reconcile` needs).
    """
    copies = list(
        await session.scalars(
            select(ContingencyMessage)
            .where(ContingencyMessage.contingency_id == view.id)
            .order_by(ContingencyMessage.id)
            .execution_options(populate_existing=True)
        )
    )
    sent_as = await _fill_message_ids(session, view.id, [copy for copy in copies if copy.message_id is None])
    latest = _shown(text, payload)
    changed = 0
    for copy in copies:
        shown = sent_as.get(copy.chat_id)
        if copy.message_id == NO_MESSAGE or shown == latest or (only_stale and shown is None):
            continue
        if copy.message_id is None:
            changed += await _rewrite_waiting(session, view, copy.chat_id, text, payload)
        else:
            changed += await _enqueue_edit(session, view, copy, text, payload, now=now)
    return changed


async def _fill_message_ids(
    session: AsyncSession, contingency_id: int, copies: list[ContingencyMessage]
) -> dict[int, tuple[str, Any]]:
    """Take the message ids the dispatcher recorded; returns what each newly known copy showed."""
    if not copies:
        return {}
    keys = {send_key(contingency_id, copy.chat_id): copy for copy in copies}
    rows = await session.execute(
        select(Outbox.dedup_key, Outbox.state, Outbox.telegram_message_id, Outbox.text, Outbox.payload).where(
            Outbox.dedup_key.in_(list(keys))
        )
    )
    shown: dict[int, tuple[str, Any]] = {}
    for key, state, message_id, text, payload in rows:
        copy = keys[key]
        if state == OutboxState.sent.value:
            copy.message_id = message_id or NO_MESSAGE
            shown[copy.chat_id] = _shown(text, payload)
        elif state in (OutboxState.failed.value, OutboxState.cancelled.value):
            copy.message_id = NO_MESSAGE
    await session.flush()
    return shown


async def _rewrite_waiting(
    session: AsyncSession, view: ContingencyView, chat_id: int, text: str, payload: dict[str, Any]
) -> int:
    """A send not yet claimed by a dispatcher goes out with the new text; 0 if it is already on the wire."""
    result = await session.execute(
        update(Outbox)
        .where(Outbox.dedup_key == send_key(view.id, chat_id), Outbox.state == OutboxState.pending.value)
        .values(text=text, payload=payload)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


async def _enqueue_edit(
    session: AsyncSession,
    view: ContingencyView,
    copy: ContingencyMessage,
    text: str,
    payload: dict[str, Any],
    *,
    now: datetime,
) -> int:
    """Queue the edit of one copy; an older edit still waiting is cancelled, so no stale state lands last."""
    key = f"cont:{view.id}:e{view.version}:{copy.chat_id}"
    await session.execute(
        update(Outbox)
        .where(
            Outbox.ref == _ref(view.id, copy.chat_id),
            Outbox.method == "editMessageText",
            Outbox.state == OutboxState.pending.value,
            Outbox.dedup_key != key,
        )
        .values(state=OutboxState.cancelled.value)
        .execution_options(synchronize_session=False)
    )
    queued = await enqueue(
        session,
        chat_id=copy.chat_id,
        text=text,
        priority=Priority.escalation,
        dedup_key=key,
        method="editMessageText",
        payload={**payload, "message_id": copy.message_id},
        ref=_ref(view.id, copy.chat_id),
        now=now,
    )
    return int(queued)


async def notify_person(
    session: AsyncSession,
    *,
    chat_id: int | None,
    personnel_id: int,
    text: str,
    payload: dict[str, Any],
    dedup_key: str,
    now: datetime,
) -> None:
    """A private note about a contingency (to its reporter or acknowledger), ahead of bulk reminders."""
    if chat_id is None:
        return
    await enqueue(
        session,
        chat_id=chat_id,
        personnel_id=personnel_id,
        text=text,
        priority=Priority.group_alert,
        dedup_key=dedup_key,
        payload=payload,
        now=now,
    )
