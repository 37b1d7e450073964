"""Sitreps: the reporter files once, commanders of the unit verify, others are refused."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.render.sitrep import review_pages
from bot.services import sitrep
from bot.services.people import actor_for
from bot.services.sitrep import SitrepOutcome
from models import AuditLog, Sitrep
from tests.factories import NOW, build_roster, link

OPENS = timedelta(hours=2)
WIB = ZoneInfo("Asia/Jakarta")


async def _actors(session: AsyncSession):
    roster = await build_roster(session)
    ids = {}
    for number, key in enumerate(["budi", "citra", "kapolsek_a1", "kapolsek_a2", "kapolres"], start=1):
        await link(session, roster.person(key), 900 + number)
        ids[key] = await actor_for(session, telegram_user_id=900 + number, now=NOW)
    return roster, ids


async def test_filed_once_with_phase_from_shift(session: AsyncSession) -> None:
    roster, actors = await _actors(session)
    sitrep_id = await sitrep.draft(session, actor=actors["budi"], text="Antrean panjang", now=NOW, opens_before=OPENS)
    assert (
        await sitrep.file(session, sitrep_id=sitrep_id, actor=actors["citra"], category="aman", now=NOW)
        is SitrepOutcome.not_yours
    )
    assert (
        await sitrep.file(session, sitrep_id=sitrep_id, actor=actors["budi"], category="gangguan", now=NOW)
        is SitrepOutcome.filed
    )
    assert (
        await sitrep.file(session, sitrep_id=sitrep_id, actor=actors["budi"], category="aman", now=NOW)
        is SitrepOutcome.already
    )
    row = await session.get(Sitrep, sitrep_id)
    assert row and (row.category, row.phase, row.tps_id) == ("gangguan", "pemungutan", roster.tps["TPS-A1-001"].id)


async def test_verify_needs_authority_over_the_unit(session: AsyncSession) -> None:
    _, actors = await _actors(session)
    sitrep_id = await sitrep.draft(session, actor=actors["budi"], text="Banjir", now=NOW, opens_before=OPENS)
    await sitrep.file(session, sitrep_id=sitrep_id, actor=actors["budi"], category="bencana", now=NOW)
    assert [item.id for item in await sitrep.recent(session, actor=actors["kapolres"])] == [sitrep_id]
    assert await sitrep.recent(session, actor=actors["kapolsek_a2"]) == []
    for who, expected in [
        ("budi", SitrepOutcome.forbidden),
        ("kapolsek_a2", SitrepOutcome.forbidden),
        ("kapolsek_a1", SitrepOutcome.verified),
        ("kapolres", SitrepOutcome.already),
    ]:
        assert await sitrep.verify(session, sitrep_id=sitrep_id, actor=actors[who], now=NOW) is expected, who
    audits = (await session.scalars(select(AuditLog.action).where(AuditLog.entity == "sitrep"))).all()
    assert audits == ["sitrep.drafted", "sitrep.filed", "sitrep.verified"]


async def test_a_report_comes_from_the_tps_the_reporter_checked_in_at(session: AsyncSession) -> None:
    from bot.config import CheckinSettings
    from bot.services.checkin import check_in
    from tests.factories import TPS_PLACES

    roster, actors = await _actors(session)
    lat, lon = TPS_PLACES["TPS-A1-002"]
    await check_in(
        session,
        personnel_id=actors["budi"].personnel_id,
        lat=lat,
        lon=lon,
        sent_at=NOW,
        forwarded=False,
        now=NOW,
        settings=CheckinSettings(),
    )
    sitrep_id = await sitrep.draft(session, actor=actors["budi"], text="Perahu terlambat", now=NOW, opens_before=OPENS)
    row = await session.get(Sitrep, sitrep_id)
    assert row and row.tps_id == roster.tps["TPS-A1-002"].id


async def test_a_nul_character_in_a_report_is_dropped_not_fatal(session: AsyncSession) -> None:
    """Hypothesis found it: PostgreSQL text cannot hold U+0000, and a report must still be saved."""
    _, actors = await _actors(session)
    sitrep_id = await sitrep.draft(session, actor=actors["budi"], text="aman\x00 sekali", now=NOW, opens_before=OPENS)
    row = await session.get(Sitrep, sitrep_id)
    assert row and row.text in ("aman sekali", "aman\x00 sekali")


async def test_a_report_read_late_keeps_both_times_and_the_shift_it_was_sent_in(session: AsyncSession) -> None:
    """Sent at 12:58 WIB on PAGI, read at 13:06 on SORE: a voting-day report, listed at 12:58, received 8 min later."""
    roster, actors = await _actors(session)
    sent, read = NOW + timedelta(hours=4, minutes=58), NOW + timedelta(hours=5, minutes=6)
    sitrep_id = await sitrep.draft(
        session, actor=actors["budi"], text="Kotak suara basah", now=read, sent_at=sent, opens_before=OPENS
    )
    await sitrep.file(session, sitrep_id=sitrep_id, actor=actors["budi"], category="logistik", now=read)
    row = await session.get(Sitrep, sitrep_id)
    assert row and (row.sent_at, row.created_at) == (sent, read)
    assert (row.phase, row.shift_id) == ("pemungutan", roster.shifts["PAGI"].id)
    [(text, _)] = review_pages(await sitrep.recent(session, actor=actors["kapolsek_a1"]), "id", WIB)
    assert f"#{sitrep_id} 12:58 WIB (diterima 8 menit kemudian) · 📦 Logistik" in text
    prompt = await sitrep.draft(session, actor=actors["budi"], text="Aman", now=read, sent_at=read, opens_before=OPENS)
    await sitrep.file(session, sitrep_id=prompt, actor=actors["budi"], category="aman", now=read)
    [(text, _)] = review_pages(await sitrep.recent(session, actor=actors["kapolsek_a1"]), "id", WIB)
    assert f"#{prompt} 13:06 WIB · ✅ Aman" in text
