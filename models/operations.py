"""What happens on the day: check-ins, situation reports, contingencies, command groups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, one_of, utcnow
from models.enums import ContingencyState, Phase, Severity, SitrepCategory


class Checkin(Base):
    """Presence of one person for one shift, at the assigned TPS nearest to where they stood."""

    __tablename__ = "checkins"
    __table_args__ = (
        UniqueConstraint("personnel_id", "shift_id", name="uq_checkins_person_shift"),
        Index("ix_checkins_shift_tps", "shift_id", "tps_id"),
        Index("ix_checkins_shift_at", "shift_id", "checked_in_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    personnel_id: Mapped[int] = mapped_column(ForeignKey("personnel.id", ondelete="CASCADE"))
    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"))
    tps_id: Mapped[int] = mapped_column(ForeignKey("tps.id", ondelete="CASCADE"))
    checked_in_at: Mapped[datetime] = mapped_column(default=utcnow)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    distance_m: Mapped[float] = mapped_column(Float)
    far: Mapped[bool] = mapped_column(default=False)
    late: Mapped[bool] = mapped_column(default=False)
    checked_out_at: Mapped[datetime | None]


class Sitrep(Base):
    """A situation report; filed once its category is chosen, verified by a commander.

    `sent_at` is when the reporter sent it (`message.date`), `created_at` when
    the bot read it: after an outage the two differ, and the report is about
    the moment it was sent. Rows from before `sent_at` existed have it NULL.
    """

    __tablename__ = "sitreps"
    __table_args__ = (
        one_of("phase", Phase),
        one_of("category", SitrepCategory),
        Index("ix_sitreps_tps_created", "tps_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    personnel_id: Mapped[int] = mapped_column(ForeignKey("personnel.id", ondelete="CASCADE"), index=True)
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("shifts.id", ondelete="SET NULL"))
    tps_id: Mapped[int | None] = mapped_column(ForeignKey("tps.id", ondelete="SET NULL"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    phase: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    photo_file_id: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    filed_at: Mapped[datetime | None]
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("personnel.id"))
    verified_at: Mapped[datetime | None]


class Contingency(Base):
    """A contingency and its escalation state machine.

    `level_unit_id` is the unit whose group holds it now; `deadline_at` is the
    timer (a row, so it survives restarts) and `version` grows with every
    transition, so a sweep that read an older state cannot act on a newer one.
    `sent_at` is when the reporter sent `/darurat` (`message.date`),
    `created_at` when the bot read it (NULL `sent_at`: rows from before it
    was kept); the timers run from the bot's own moments, never from `sent_at`.

    An automatic escort alert is a contingency nobody reported: `reporter_id`
    is NULL (the alert says Siaga raised it), `escort_id` names the escort,
    `lat`/`lon` and `position_at` are its last position when the alert was
    raised, and `sent_at` is when the episode opened.
    """

    __tablename__ = "contingencies"
    __table_args__ = (
        one_of("severity", Severity),
        one_of("state", ContingencyState),
        Index("ix_contingencies_state_deadline", "state", "deadline_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("personnel.id"), index=True)
    escort_id: Mapped[int | None] = mapped_column(ForeignKey("escorts.id", ondelete="SET NULL"), index=True)
    tps_id: Mapped[int | None] = mapped_column(ForeignKey("tps.id"), index=True)
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("shifts.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    severity: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    position_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default=ContingencyState.open.value)
    level_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    deadline_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    raised_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("personnel.id"))
    acknowledged_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("personnel.id"))
    resolved_at: Mapped[datetime | None]


class ContingencyStep(Base):
    """One transition of a contingency (raised, escalated, acknowledged, reminded, resolved)."""

    __tablename__ = "contingency_steps"
    __table_args__ = (UniqueConstraint("contingency_id", "version", name="uq_contingency_steps_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contingency_id: Mapped[int] = mapped_column(ForeignKey("contingencies.id", ondelete="CASCADE"))
    version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("personnel.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ContingencyMessage(Base):
    """Where an alert was posted, so every copy can be edited when the state changes."""

    __tablename__ = "contingency_messages"
    __table_args__ = (UniqueConstraint("contingency_id", "chat_id", name="uq_contingency_messages_chat"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contingency_id: Mapped[int] = mapped_column(ForeignKey("contingencies.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)


class CommandGroup(Base):
    """The Telegram group that speaks for a unit: one per unit, one unit per group."""

    __tablename__ = "command_groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    registered_by_id: Mapped[int | None] = mapped_column(ForeignKey("personnel.id"))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    reachable: Mapped[bool] = mapped_column(default=True)


class ChatState(Base):
    """What the bot waits for from one user (a location after /hadir, a category after /lapor).

    Kept in the database so a button pressed on one worker is understood by another.
    """

    __tablename__ = "chat_states"

    telegram_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    ref_id: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]
