"""How updates come in and who is alive to handle them: the inbox and the workers' heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class InboxUpdate(Base):
    """One Telegram update, kept from the moment it was accepted until its effect is committed.

    A webhook answers 2xx, and polling confirms an offset, only after this row
    is committed, so Telegram keeps whatever the bot has not stored. The
    primary key makes a redelivered update a no-op. `claimed_by` is the worker
    handling it; `handled_at` is written in the transaction that commits the
    update's effect, `done_at` when its handlers returned. A row that is not
    done and whose worker is dead is handled again by a live one, unless its
    effect was already committed.
    """

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_open", "done_at", "claimed_by"),)

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=1)
    handled_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]


class WorkerBeat(Base):
    """A bot process that says it is alive; what a worker held comes back once its beat stops."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
