"""Check-in: nearest assigned TPS, distance, geofence flag, lateness; refusals keep nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import CheckinSettings
from bot.services.checkin import CheckinOutcome, CheckoutOutcome, Presence, check_in, check_in_all, check_out
from bot.services.schedule import shift_plans
from models import AuditLog, Checkin
from tests.factories import NOW, TPS_PLACES, build_roster

SETTINGS = CheckinSettings()


async def _check_in(session: AsyncSession, personnel_id: int, lat: float, lon: float, *, now=NOW, sent_at=None, forwarded=False):
    return await check_in(
        session, personnel_id=personnel_id, lat=lat, lon=lon, sent_at=sent_at or now, forwarded=forwarded,
        now=now, settings=SETTINGS,
    )


async def _count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Checkin)) or 0


async def test_check_in_at_the_nearest_assigned_tps(session: AsyncSession) -> None:
    roster = await build_roster(session)
    lat, lon = TPS_PLACES["TPS-A1-002"]
    result = await _check_in(session, roster.person("budi").id, lat + 0.0005, lon, now=NOW - timedelta(minutes=50))
    assert result.outcome is CheckinOutcome.checked_in
    assert result.post and result.post.tps_code == "TPS-A1-002"
    assert result.distance_m == pytest.approx(55.6, abs=1)
    assert not result.far and not result.late
    assert result.shift and result.shift.shift_code == "PAGI"


async def test_far_check_in_is_kept_and_flagged_and_late_is_marked(session: AsyncSession) -> None:
    roster = await build_roster(session)
    lat, lon = TPS_PLACES["TPS-A2-001"]
    result = await _check_in(session, roster.person("eko").id, lat + 0.01, lon, now=NOW + timedelta(minutes=30))
    assert result.outcome is CheckinOutcome.checked_in
    assert result.far and result.distance_m == pytest.approx(1112, abs=5)
    assert result.late
    row = await session.scalar(select(Checkin))
    assert row and row.far and row.late


async def test_twice_is_harmless_and_closer_updates(session: AsyncSession) -> None:
    roster = await build_roster(session)
    eko = roster.person("eko").id
    lat, lon = TPS_PLACES["TPS-A2-001"]
    await _check_in(session, eko, lat + 0.01, lon)
    again = await _check_in(session, eko, lat + 0.02, lon, now=NOW + timedelta(minutes=1))
    assert again.outcome is CheckinOutcome.already and again.far
    closer = await _check_in(session, eko, lat, lon, now=NOW + timedelta(minutes=2))
    assert closer.outcome is CheckinOutcome.moved_closer and not closer.far
    assert await _count(session) == 1
    row = await session.scalar(select(Checkin))
    assert row and row.checked_in_at == NOW and not row.far


async def test_forwarded_and_stale_locations_are_not_presence(session: AsyncSession) -> None:
    roster = await build_roster(session)
    lat, lon = TPS_PLACES["TPS-A1-001"]
    budi = roster.person("budi").id
    assert (await _check_in(session, budi, lat, lon, forwarded=True)).outcome is CheckinOutcome.forwarded
    stale = await _check_in(session, budi, lat, lon, sent_at=NOW - timedelta(hours=2))
    assert stale.outcome is CheckinOutcome.stale
    assert await _count(session) == 0


async def test_no_shift_names_the_next_one(session: AsyncSession) -> None:
    roster = await build_roster(session)
    lat, lon = TPS_PLACES["TPS-A1-001"]
    result = await _check_in(session, roster.person("kapolres").id, lat, lon)
    assert result.outcome is CheckinOutcome.no_shift and result.next_shift is None
    early = NOW - timedelta(hours=4)
    result = await _check_in(session, roster.person("budi").id, lat, lon, now=early)
    assert result.outcome is CheckinOutcome.no_shift
    assert result.next_shift and result.next_shift.shift_code == "PAGI"


async def test_check_out_closes_the_running_shift(session: AsyncSession) -> None:
    roster = await build_roster(session)
    budi = roster.person("budi").id
    first = await check_out(session, personnel_id=budi, now=NOW, settings=SETTINGS)
    assert first.outcome is CheckoutOutcome.not_checked_in
    await _check_in(session, budi, *TPS_PLACES["TPS-A1-001"])
    done = await check_out(session, personnel_id=budi, now=NOW + timedelta(hours=1), settings=SETTINGS)
    assert done.outcome is CheckoutOutcome.checked_out
    again = await check_out(session, personnel_id=budi, now=NOW + timedelta(hours=2), settings=SETTINGS)
    assert again.outcome is CheckoutOutcome.already and again.at == NOW + timedelta(hours=1)


async def test_schedule_current_shift_first_with_every_post(session: AsyncSession) -> None:
    roster = await build_roster(session)
    plans = await shift_plans(session, personnel_id=roster.person("budi").id, now=NOW)
    assert [plan.shift_code for plan in plans] == ["PAGI", "SORE"]
    assert [post.tps_code for post in plans[0].posts] == ["TPS-A1-001", "TPS-A1-002"]
    assert plans[0].posts[1].access == "air"
    later = await shift_plans(session, personnel_id=roster.person("budi").id, now=NOW + timedelta(hours=6))
    assert [plan.shift_code for plan in later] == ["SORE"]


async def test_arriving_before_the_next_shift_checks_in_for_it(session: AsyncSession) -> None:
    """On the PAGI shift until NOW+5h, arriving 30 min before SORE: presence for SORE."""
    roster = await build_roster(session)
    lat, lon = TPS_PLACES["TPS-A1-001"]
    budi = roster.person("budi").id
    first = await _check_in(session, budi, lat, lon, now=NOW + timedelta(hours=4, minutes=30))
    assert first.shift and first.shift.shift_code == "SORE"
    second = await _check_in(session, budi, lat, lon, now=NOW + timedelta(hours=4, minutes=31))
    assert second.outcome is CheckinOutcome.checked_in and second.shift and second.shift.shift_code == "PAGI"


async def test_a_bunch_is_answered_in_order_as_if_each_came_alone(session: AsyncSession) -> None:
    """First check-ins together, everything else one by one after them: outcomes, rows and audit as if sent alone."""
    roster = await build_roster(session)
    ids = {key: roster.person(key).id for key in ("budi", "citra", "dedi", "eko", "fajar", "kapolres")}
    a1, a2 = TPS_PLACES["TPS-A1-002"], TPS_PLACES["TPS-A2-001"]
    await _check_in(session, ids["fajar"], *a2)
    bunch = [
        Presence(ids["budi"], a1[0] + 0.0005, a1[1], NOW, False),
        Presence(ids["eko"], a2[0] + 0.01, a2[1], NOW, False),  # far first ...
        Presence(ids["citra"], *a1, NOW, True),
        Presence(ids["eko"], *a2, NOW, False),  # ... then at the TPS, in the same bunch
        Presence(ids["dedi"], *TPS_PLACES["TPS-A1-001"], NOW - timedelta(hours=2), False),
        Presence(ids["kapolres"], *a1, NOW, False),
        Presence(ids["fajar"], *a2, NOW, False),
        Presence(ids["budi"], *a1, NOW, False),
    ]
    results = await check_in_all(session, bunch, now=NOW, settings=SETTINGS)
    assert [r.outcome for r in results] == [
        CheckinOutcome.checked_in, CheckinOutcome.checked_in, CheckinOutcome.forwarded, CheckinOutcome.moved_closer,
        CheckinOutcome.stale, CheckinOutcome.no_shift, CheckinOutcome.already, CheckinOutcome.moved_closer,
    ]
    assert results[0].post and results[0].post.tps_code == "TPS-A1-002" and results[0].distance_m == pytest.approx(55.6, abs=1)
    assert results[1].far and not results[3].far
    rows = {row.personnel_id: row for row in await session.scalars(select(Checkin))}
    assert set(rows) == {ids["budi"], ids["eko"], ids["fajar"]}
    assert not rows[ids["eko"]].far and rows[ids["budi"]].distance_m < 1
    actions = sorted((row.action, row.actor_id) for row in await session.scalars(select(AuditLog)))
    assert actions == sorted([("checkin.created", ids["fajar"]), ("checkin.created", ids["budi"]),
                              ("checkin.created", ids["eko"]), ("checkin.moved_closer", ids["eko"]),
                              ("checkin.moved_closer", ids["budi"])])
