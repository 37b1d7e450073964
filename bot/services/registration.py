"""One-time registration codes: issued by operators, redeemed once by the person they name.

Only a hash of a code is stored: a leaked database cannot register anyone.
Codes avoid look-alike characters because people type them on a phone.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import audit, tally
from bot.storage.db import rowcount
from models import Personnel, RegistrationCode, RegistrationFailure

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10


def new_code() -> str:
    """Letters and digits mixed, always: the log redaction (bot/ops/logs.py) knows a code by that, not a word."""
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if any(ch.isdigit() for ch in code) and any(ch.isalpha() for ch in code):
            return code


def normalize_code(code: str) -> str:
    """What a person may type: lower case, spaces and dashes are forgiven."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_code(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode()).hexdigest()


def deep_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start={code}"


@dataclass(frozen=True)
class Invitation:
    nrp: str
    code: str | None
    expires_at: datetime | None
    error: str | None = None


async def issue_codes(
    session: AsyncSession, *, nrps: list[str], now: datetime, ttl: timedelta, actor: str = "cli"
) -> list[Invitation]:
    """A fresh code per NRP; earlier unused codes of that person stop working."""
    people = {person.nrp: person for person in await session.scalars(select(Personnel).where(Personnel.nrp.in_(nrps)))}
    invitations: list[Invitation] = []
    for nrp in nrps:
        person = people.get(nrp)
        if person is None:
            invitations.append(Invitation(nrp=nrp, code=None, expires_at=None, error="not on the roster"))
            continue
        await _revoke_unused(session, personnel_id=person.id, now=now)
        code = new_code()
        session.add(
            RegistrationCode(personnel_id=person.id, code_hash=hash_code(code), created_at=now, expires_at=now + ttl)
        )
        audit.record(session, action="registration.invited", entity="personnel", entity_id=person.id, actor=actor)
        invitations.append(Invitation(nrp=nrp, code=code, expires_at=now + ttl))
    await session.flush()
    return invitations


async def _revoke_unused(session: AsyncSession, *, personnel_id: int, now: datetime) -> None:
    rows = await session.scalars(
        select(RegistrationCode).where(
            RegistrationCode.personnel_id == personnel_id, RegistrationCode.used_at.is_(None)
        )
    )
    for row in rows:
        row.expires_at = min(row.expires_at, now)


class Outcome(StrEnum):
    registered = "registered"
    already = "already"
    throttled = "throttled"
    invalid = "invalid"
    expired = "expired"
    used = "used"
    account_taken = "account_taken"
    person_taken = "person_taken"


@dataclass(frozen=True)
class Registration:
    outcome: Outcome
    personnel_id: int | None = None
    name: str = ""
    rank: str = ""


async def register(
    session: AsyncSession,
    *,
    telegram_user_id: int,
    code: str,
    nrp: str | None,
    now: datetime,
    max_failures_per_hour: int,
) -> Registration:
    """Link a Telegram account to the roster entry a code was issued for.

    Every refusal but throttling counts as a failure of this account, and
    after `max_failures_per_hour` the account is refused before the code is
    even looked at: guessing a code is hopeless at five tries an hour.
    """
    linked = await session.scalar(select(Personnel).where(Personnel.telegram_user_id == telegram_user_id))
    if linked is not None:
        outcome = Outcome.already if nrp in (None, linked.nrp) else Outcome.account_taken
        return Registration(outcome, linked.id, linked.name, linked.rank)
    if await _recent_failures(session, telegram_user_id=telegram_user_id, now=now) >= max_failures_per_hour:
        return Registration(Outcome.throttled)
    outcome, row, person = await _check_code(session, code=code, nrp=nrp, now=now)
    if outcome is not Outcome.registered:
        return await _fail(session, telegram_user_id=telegram_user_id, outcome=outcome, now=now)
    assert row is not None and person is not None
    claimed = await session.execute(
        update(RegistrationCode)
        .where(RegistrationCode.id == row.id, RegistrationCode.used_at.is_(None))
        .values(used_at=now)
    )
    if rowcount(claimed) != 1:
        return await _fail(session, telegram_user_id=telegram_user_id, outcome=Outcome.used, now=now)
    await tally.on_registered(session, personnel_id=person.id)
    person.telegram_user_id = telegram_user_id
    person.registered_at = now
    person.reachable = True
    person.unreachable_reason = None
    audit.record(session, action="registration.registered", entity="personnel", entity_id=person.id, actor_id=person.id)
    await session.commit()
    return Registration(Outcome.registered, person.id, person.name, person.rank)


async def _check_code(
    session: AsyncSession, *, code: str, nrp: str | None, now: datetime
) -> tuple[Outcome, RegistrationCode | None, Personnel | None]:
    found = (
        await session.execute(
            select(RegistrationCode, Personnel)
            .join(Personnel, Personnel.id == RegistrationCode.personnel_id)
            .where(RegistrationCode.code_hash == hash_code(code))
        )
    ).first()
    if found is None:
        return Outcome.invalid, None, None
    row, person = found
    if nrp is not None and person.nrp != nrp.strip():
        return Outcome.invalid, None, None
    if row.used_at is not None:
        return Outcome.used, None, None
    if row.expires_at <= now:
        return Outcome.expired, None, None
    if person.telegram_user_id is not None:
        return Outcome.person_taken, None, None
    return Outcome.registered, row, person


async def _recent_failures(session: AsyncSession, *, telegram_user_id: int, now: datetime) -> int:
    return (
        await session.scalar(
            select(func.count())
            .select_from(RegistrationFailure)
            .where(
                RegistrationFailure.telegram_user_id == telegram_user_id,
                RegistrationFailure.at > now - timedelta(hours=1),
            )
        )
        or 0
    )


async def _fail(session: AsyncSession, *, telegram_user_id: int, outcome: Outcome, now: datetime) -> Registration:
    session.add(RegistrationFailure(telegram_user_id=telegram_user_id, at=now))
    audit.record(
        session,
        action="registration.refused",
        entity="telegram_user",
        entity_id=telegram_user_id,
        detail={"outcome": outcome.value},
    )
    await session.commit()
    return Registration(outcome)
