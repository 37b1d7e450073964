"""Registration: a code works once, for its NRP, before it expires; guessing is throttled."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.registration import Outcome, issue_codes, register
from models import AuditLog, Personnel
from tests.factories import NOW, build_roster

TTL = timedelta(hours=72)


async def _code(session: AsyncSession, nrp: str) -> str:
    [invitation] = await issue_codes(session, nrps=[nrp], now=NOW, ttl=TTL)
    await session.commit()
    assert invitation.code
    return invitation.code


async def _register(session: AsyncSession, user: int, code: str, nrp: str | None, *, at=NOW) -> Outcome:
    result = await register(session, telegram_user_id=user, code=code, nrp=nrp, now=at, max_failures_per_hour=5)
    return result.outcome


async def test_code_links_account_once(session: AsyncSession) -> None:
    roster = await build_roster(session)
    budi = roster.person("budi")
    code = await _code(session, budi.nrp)
    assert await _register(session, 501, code.lower(), budi.nrp) is Outcome.registered
    await session.refresh(budi)
    assert budi.telegram_user_id == 501 and budi.reachable
    assert await _register(session, 501, code, None) is Outcome.already
    assert await _register(session, 502, code, budi.nrp) is Outcome.used


async def test_refusals_change_nothing(session: AsyncSession) -> None:
    roster = await build_roster(session)
    budi, citra = roster.person("budi"), roster.person("citra")
    code = await _code(session, budi.nrp)
    assert await _register(session, 501, "WRONGCODE1", budi.nrp) is Outcome.invalid
    assert await _register(session, 501, code, citra.nrp) is Outcome.invalid, "a code of another NRP"
    assert await _register(session, 501, code, budi.nrp, at=NOW + TTL) is Outcome.expired
    linked = await session.scalar(
        select(func.count()).select_from(Personnel).where(Personnel.telegram_user_id.is_not(None))
    )
    assert linked == 0


async def test_account_and_person_are_linked_at_most_once(session: AsyncSession) -> None:
    roster = await build_roster(session)
    budi, citra = roster.person("budi"), roster.person("citra")
    assert await _register(session, 501, await _code(session, budi.nrp), budi.nrp) is Outcome.registered
    assert await _register(session, 501, await _code(session, citra.nrp), citra.nrp) is Outcome.account_taken
    budi_again = await _code(session, budi.nrp)
    assert await _register(session, 777, budi_again, budi.nrp) is Outcome.person_taken


async def test_five_failures_an_hour_then_refused_even_with_the_right_code(session: AsyncSession) -> None:
    roster = await build_roster(session)
    budi = roster.person("budi")
    code = await _code(session, budi.nrp)
    for attempt in range(5):
        assert (
            await _register(session, 666, f"GUESS{attempt:05d}", budi.nrp, at=NOW + timedelta(minutes=attempt))
            is Outcome.invalid
        )
    assert await _register(session, 666, code, budi.nrp, at=NOW + timedelta(minutes=10)) is Outcome.throttled
    assert await _register(session, 666, code, budi.nrp, at=NOW + timedelta(minutes=61)) is Outcome.registered
    refused = await session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "registration.refused")
    )
    assert refused == 5
