"""The notification outbox and what is built on it (broadcasts, missed check-in digests)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, one_of, utcnow
from models.enums import OutboxState


class Outbox(Base):
    """One message to send, durable until Telegram accepted it.

    The dispatcher takes due rows by (priority, due_at); `dedup_key` makes
    planning idempotent, so a re-planned reminder never becomes a second one.
    `send_by` is when the recipient must have it (a reminder's shift offset).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        one_of("state", OutboxState),
        Index("ix_outbox_due", "state", "priority", "due_at"),
        Index("ix_outbox_ref", "ref"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    personnel_id: Mapped[int | None] = mapped_column(ForeignKey("personnel.id", ondelete="SET NULL"))
    priority: Mapped[int] = mapped_column(default=3)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    send_by: Mapped[datetime | None]
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    method: Mapped[str] = mapped_column(String(32), default="sendMessage")
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ref: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.pending.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)


class Broadcast(Base):
    """A commander's `/siaran`; its outbox rows carry `ref = broadcast:<id>`."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("personnel.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    text: Mapped[str] = mapped_column(Text)
    recipients: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reported_at: Mapped[datetime | None]


class CheckinAlert(Base):
    """The missed check-in digest last sent to a unit's group for a shift.

    `digest` is a hash of who was missing, so a sweep sends an update only
    when the list changed.
    """

    __tablename__ = "checkin_alerts"
    __table_args__ = (UniqueConstraint("unit_id", "shift_id", name="uq_checkin_alerts_unit_shift"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64))
    missing: Mapped[int] = mapped_column(default=0)
    revision: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
