"""One-time registration codes: issued by operators, redeemed once by the person they name.

Only a hash of a code is stored: a leaked database cannot register anyone.
Codes avoid look-alike characters because people type them on a phone.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import audit
from models import Personnel, RegistrationCode

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


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
    people = {
        person.nrp: person
        for person in await session.scalars(select(Personnel).where(Personnel.nrp.in_(nrps)))
    }
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
