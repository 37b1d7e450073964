"""Check-in: nearest assigned TPS, distance, geofence flag, lateness; refusals keep nothing.

A location counts at the time it was sent, however late it is read: the
factory's PAGI shift starts at START (07:00 WIB), opens for check-in two
hours before, and is late after 15 minutes.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import CheckinSettings, load_settings
from bot.render.checkin import checkin_text, checkout_text
from bot.services.checkin import (
    CheckinOutcome,
    CheckoutOutcome,
    Presence,
    StaleReason,
    check_in,
    check_in_all,
    check_out,
    decide,
    reading,
)
from bot.services.checkin.deciding import CheckinRow, Seen
from bot.services.schedule import Post, ShiftPlan, shift_plans
from models import AuditLog, Checkin
from tests.factories import NOW, TPS_PLACES, build_roster

SETTINGS = CheckinSettings()
START = NOW - timedelta(hours=1)  # PAGI; SORE runs NOW+5h .. NOW+12h
WIB = ZoneInfo("Asia/Jakarta")


async def _check_in(
    session: AsyncSession,
    personnel_id: int,
    lat: float,
    lon: float,
    *,
    now=NOW,
    sent_at=None,
    forwarded=False,
    settings: CheckinSettings = SETTINGS,
):
    return await check_in(
        session,
        personnel_id=personnel_id,
        lat=lat,
        lon=lon,
        sent_at=sent_at or now,
        forwarded=forwarded,
        now=now,
        settings=settings,
    )


def _text(result, lang: str = "id") -> str:
    return checkin_text(
        result, lang, WIB, geofence_m=SETTINGS.geofence_meters, opens_before_minutes=SETTINGS.opens_before_minutes
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


async def test_forwarded_and_too_old_locations_are_not_presence(session: AsyncSession) -> None:
    """Too old means only: older than Telegram's 24 h, sent before its shift opened, or after it ended."""
    roster = await build_roster(session)
    lat, lon = TPS_PLACES["TPS-A1-001"]
    budi = roster.person("budi").id
    assert (await _check_in(session, budi, lat, lon, forwarded=True)).outcome is CheckinOutcome.forwarded
    expired = await _check_in(session, budi, lat, lon, sent_at=NOW - timedelta(hours=25))
    assert (expired.outcome, expired.stale_reason) == (CheckinOutcome.stale, StaleReason.expired)
    assert "lebih dari 24 jam" in _text(expired)
    early = await _check_in(session, budi, lat, lon, sent_at=START - timedelta(hours=2, minutes=10))  # 04:50 WIB
    assert (early.outcome, early.stale_reason) == (CheckinOutcome.stale, StaleReason.before_open)
    assert early.shift and early.shift.shift_code == "PAGI"
    assert "dikirim 04:50 WIB, sebelum hadir untuk <b>Pemungutan</b> dibuka (05:00 WIB)" in _text(early)
    after = await _check_in(
        session, budi, lat, lon, sent_at=NOW + timedelta(hours=12, minutes=1), now=NOW + timedelta(hours=12, minutes=3)
    )
    assert (after.outcome, after.stale_reason) == (CheckinOutcome.stale, StaleReason.after_end)
    assert after.shift and after.shift.shift_code == "SORE"
    assert "dikirim 20:01 WIB, setelah shift <b>Penghitungan</b> berakhir (20:00 WIB)" in _text(after)
    assert await _count(session) == 0


async def test_a_location_that_waited_out_an_outage_counts_at_the_time_it_was_sent(session: AsyncSession) -> None:
    """Sent 5 minutes before the shift, read 10 minutes later: on time, recorded at the sent time, not too old."""
    roster = await build_roster(session)
    lat, lon = TPS_PLACES["TPS-A1-001"]
    sent = START - timedelta(minutes=5)
    result = await _check_in(
        session, roster.person("budi").id, lat, lon, sent_at=sent, now=sent + timedelta(minutes=10)
    )
    assert result.outcome is CheckinOutcome.checked_in and not result.late
    assert result.checked_in_at == sent and result.delay == timedelta(minutes=10)
    row = await session.scalar(select(Checkin))
    assert row and row.checked_in_at == sent and not row.late
    text = _text(result)
    assert "Hadir tercatat 06:55 WIB di <b>TPS-A1-001</b>" in text and "Tercatat terlambat" not in text
    assert "terlambat sampai (10 menit setelah dikirim), tetapi tetap dihitung" in text
    assert "arrived late (10 min after you sent it), but it still counts" in _text(result, "en")


async def test_the_answer_says_the_sent_time_and_only_a_late_read_is_mentioned(session: AsyncSession) -> None:
    roster = await build_roster(session)
    sent = START - timedelta(minutes=29)  # 06:31 WIB
    late_read = await _check_in(
        session, roster.person("budi").id, *TPS_PLACES["TPS-A1-001"], sent_at=sent, now=sent + timedelta(minutes=7)
    )
    assert "Hadir tercatat 06:31 WIB" in _text(late_read) and "terlambat sampai (7 menit" in _text(late_read)
    prompt = await _check_in(
        session, roster.person("eko").id, *TPS_PLACES["TPS-A2-001"], sent_at=sent, now=sent + timedelta(seconds=50)
    )
    assert "Hadir tercatat 06:31 WIB" in _text(prompt) and "terlambat sampai" not in _text(prompt)


async def test_lateness_and_the_shift_are_decided_by_the_time_sent(session: AsyncSession) -> None:
    roster = await build_roster(session)
    ids = {key: roster.person(key).id for key in ("budi", "citra", "eko", "fajar")}
    on_time = await _check_in(
        session,
        ids["budi"],
        *TPS_PLACES["TPS-A1-001"],
        sent_at=START + timedelta(minutes=10),
        now=START + timedelta(minutes=40),
    )
    assert on_time.outcome is CheckinOutcome.checked_in and not on_time.late
    late = await _check_in(
        session,
        ids["citra"],
        *TPS_PLACES["TPS-A1-002"],
        sent_at=START + timedelta(minutes=20),
        now=START + timedelta(minutes=21),
    )
    assert late.outcome is CheckinOutcome.checked_in and late.late
    # sent during PAGI (SORE not open yet), read once SORE had opened and is the nearer: it counts for PAGI
    pagi = await _check_in(
        session,
        ids["eko"],
        *TPS_PLACES["TPS-A2-001"],
        sent_at=NOW + timedelta(hours=2),
        now=NOW + timedelta(hours=4, minutes=30),
    )
    assert pagi.outcome is CheckinOutcome.checked_in and pagi.shift and pagi.shift.shift_code == "PAGI"
    # sent in the last minutes of SORE, read after it ended: still counted, for SORE, at the sent time
    closing = await _check_in(
        session,
        ids["fajar"],
        *TPS_PLACES["TPS-A2-001"],
        sent_at=NOW + timedelta(hours=11, minutes=55),
        now=NOW + timedelta(hours=12, minutes=10),
    )
    assert closing.outcome is CheckinOutcome.checked_in and closing.shift and closing.shift.shift_code == "SORE"
    rows = {(row.personnel_id, row.shift_id): row for row in await session.scalars(select(Checkin))}
    assert {key: (row.checked_in_at, row.late) for key, row in rows.items()} == {
        (ids["budi"], roster.shifts["PAGI"].id): (START + timedelta(minutes=10), False),
        (ids["citra"], roster.shifts["PAGI"].id): (START + timedelta(minutes=20), True),
        (ids["eko"], roster.shifts["PAGI"].id): (NOW + timedelta(hours=2), True),
        (ids["fajar"], roster.shifts["SORE"].id): (NOW + timedelta(hours=11, minutes=55), True),
    }


async def test_a_sent_time_ahead_of_the_clock_counts_as_the_time_read(session: AsyncSession) -> None:
    roster = await build_roster(session)
    result = await _check_in(
        session, roster.person("budi").id, *TPS_PLACES["TPS-A1-001"], sent_at=NOW + timedelta(minutes=3), now=NOW
    )
    assert result.checked_in_at == NOW and result.delay == timedelta(0)
    row = await session.scalar(select(Checkin))
    assert row and row.checked_in_at == NOW


async def test_the_old_age_limit_is_accepted_and_ignored(
    session: AsyncSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Operators' files still carry `max_location_age_seconds = 300`: they load, and it refuses nothing."""
    config = tmp_path / "config.toml"
    config.write_text("[checkin]\nmax_location_age_seconds = 300\n")
    with caplog.at_level(logging.WARNING, logger="siaga.config"):
        settings = load_settings(config).checkin
    assert "max_location_age_seconds is obsolete" in caplog.text
    roster = await build_roster(session)
    result = await _check_in(
        session,
        roster.person("budi").id,
        *TPS_PLACES["TPS-A1-001"],
        sent_at=START,
        now=START + timedelta(minutes=10),
        settings=settings,
    )
    assert result.outcome is CheckinOutcome.checked_in and not result.late


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


async def test_check_out_counts_at_the_time_sent(session: AsyncSession) -> None:
    """/selesai sent in the last minute of PAGI and read after SORE began closes PAGI, at the time sent."""
    roster = await build_roster(session)
    budi = roster.person("budi").id
    await _check_in(session, budi, *TPS_PLACES["TPS-A1-001"])
    sent = NOW + timedelta(hours=4, minutes=59)  # 12:59 WIB
    done = await check_out(
        session, personnel_id=budi, now=sent + timedelta(minutes=12), settings=SETTINGS, sent_at=sent
    )
    assert done.outcome is CheckoutOutcome.checked_out and done.shift and done.shift.shift_code == "PAGI"
    assert done.at == sent
    row = await session.scalar(select(Checkin))
    assert row and row.checked_out_at == sent
    text = checkout_text(done, "id", WIB)
    assert "Selesai tugas tercatat 12:59 WIB (Pemungutan)" in text and "terlambat sampai (12 menit" in text


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
        Presence(ids["dedi"], *TPS_PLACES["TPS-A1-001"], NOW - timedelta(hours=25), False),
        Presence(ids["kapolres"], *a1, NOW, False),
        Presence(ids["fajar"], *a2, NOW, False),
        Presence(ids["budi"], *a1, NOW, False),
    ]
    results = await check_in_all(session, bunch, now=NOW, settings=SETTINGS)
    assert [r.outcome for r in results] == [
        CheckinOutcome.checked_in,
        CheckinOutcome.checked_in,
        CheckinOutcome.forwarded,
        CheckinOutcome.moved_closer,
        CheckinOutcome.stale,
        CheckinOutcome.no_shift,
        CheckinOutcome.already,
        CheckinOutcome.moved_closer,
    ]
    assert (
        results[0].post
        and results[0].post.tps_code == "TPS-A1-002"
        and results[0].distance_m == pytest.approx(55.6, abs=1)
    )
    assert results[1].far and not results[3].far
    rows = {row.personnel_id: row for row in await session.scalars(select(Checkin))}
    assert set(rows) == {ids["budi"], ids["eko"], ids["fajar"]}
    assert not rows[ids["eko"]].far and rows[ids["budi"]].distance_m < 1
    actions = sorted((row.action, row.actor_id) for row in await session.scalars(select(AuditLog)))
    assert actions == sorted(
        [
            ("checkin.created", ids["fajar"]),
            ("checkin.created", ids["budi"]),
            ("checkin.created", ids["eko"]),
            ("checkin.moved_closer", ids["eko"]),
            ("checkin.moved_closer", ids["budi"]),
        ]
    )


async def test_a_bunch_judges_each_location_at_its_own_sent_time(session: AsyncSession) -> None:
    """Read together after an outage: one sent before the shift, one after the grace, one before check-in opened."""
    roster = await build_roster(session)
    ids = {key: roster.person(key).id for key in ("budi", "eko", "dedi")}
    read = START + timedelta(minutes=30)
    bunch = [
        Presence(ids["budi"], *TPS_PLACES["TPS-A1-001"], START - timedelta(minutes=5), False),
        Presence(ids["eko"], *TPS_PLACES["TPS-A2-001"], START + timedelta(minutes=20), False),
        Presence(ids["dedi"], *TPS_PLACES["TPS-A1-001"], START - timedelta(hours=2, minutes=5), False),
    ]
    results = await check_in_all(session, bunch, now=read, settings=SETTINGS)
    assert [(r.outcome, r.late, r.checked_in_at) for r in results] == [
        (CheckinOutcome.checked_in, False, START - timedelta(minutes=5)),
        (CheckinOutcome.checked_in, True, START + timedelta(minutes=20)),
        (CheckinOutcome.stale, False, None),
    ]
    rows = {row.personnel_id: row.checked_in_at for row in await session.scalars(select(Checkin))}
    assert rows == {ids["budi"]: START - timedelta(minutes=5), ids["eko"]: START + timedelta(minutes=20)}


def _plan(shift_id: int, starts_at, hours: int, *places: tuple[int, float, float]) -> ShiftPlan:
    posts = tuple(
        Post(tps_id, f"TPS-{tps_id}", "001", "", "rawan", "darat", lat, lon, "Polsek", None)
        for tps_id, lat, lon in places
    )
    ends_at = starts_at + timedelta(hours=hours)
    return ShiftPlan(shift_id, f"S{shift_id}", f"Shift {shift_id}", "pemungutan", starts_at, ends_at, posts)


def test_deciding_a_bunch_needs_no_database() -> None:
    """What was read in, what to write out: a first check-in, then nearer (a move), then farther (nothing to write)."""
    shift = _plan(1, START, 6, (10, -2.99, 104.75), (11, -3.0, 104.76))
    at_tps, on_the_road = (-3.0, 104.76), (-3.0, 104.77)
    bunch = [
        (Presence(7, *on_the_road, NOW, False), NOW),
        (Presence(7, *at_tps, NOW, False), NOW),
        (Presence(7, *on_the_road, NOW, False), NOW),
        (Presence(8, *at_tps, NOW, True), NOW),
    ]
    decided = decide(bunch, Seen(plans={7: [shift]}), now=NOW, settings=SETTINGS)
    assert [r.outcome for r in decided.results] == [
        CheckinOutcome.checked_in,
        CheckinOutcome.moved_closer,
        CheckinOutcome.already,
        CheckinOutcome.forwarded,
    ]
    assert decided.rests_on == [(7, 1), (7, 1), (7, 1), None]
    assert [(first.key, first.post.tps_id, first.far) for first in decided.firsts] == [((7, 1), 11, True)]
    assert [(move.key, move.post.tps_id, move.far, round(move.from_m)) for move in decided.moves] == [
        ((7, 1), 11, False, 1110)
    ]


def test_a_location_matching_a_stored_check_in_is_already_without_writing() -> None:
    """Judged against the row that was read: its lateness and time stand, nothing is written."""
    shift = _plan(1, START, 6, (10, -3.0, 104.76))
    stored = CheckinRow(10, 0.0, False, True, START + timedelta(minutes=20))
    seen = Seen(plans={7: [shift]}, rows={(7, 1): stored})
    decided = decide([(Presence(7, -3.0, 104.76, NOW, False), NOW)], seen, now=NOW, settings=SETTINGS)
    [result] = decided.results
    assert (result.outcome, result.late, result.checked_in_at) == (CheckinOutcome.already, True, stored.checked_in_at)
    assert not decided.firsts and not decided.moves


async def test_a_first_check_in_another_transaction_wrote_first_is_decided_again(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The insert finds the row already there (read before it was written): the bunch is answered against that row."""
    roster = await build_roster(session)
    budi, eko = roster.person("budi").id, roster.person("eko").id
    a1, a2 = TPS_PLACES["TPS-A1-002"], TPS_PLACES["TPS-A2-001"]
    await _check_in(session, budi, *a1)
    unread = reading._rows
    reads = []

    async def missing_the_first_time(session: AsyncSession, plans):
        reads.append(plans)
        return {} if len(reads) == 1 else await unread(session, plans)

    monkeypatch.setattr(reading, "_rows", missing_the_first_time)
    bunch = [
        Presence(budi, a1[0] + 0.001, a1[1], NOW, False),
        Presence(eko, *a2, NOW, False),
        Presence(budi, *a1, NOW, False),
    ]
    results = await check_in_all(session, bunch, now=NOW, settings=SETTINGS)
    assert [r.outcome for r in results] == [CheckinOutcome.already, CheckinOutcome.checked_in, CheckinOutcome.already]
    assert len(reads) == 2 and await _count(session) == 2
    actions = sorted((row.action, row.actor_id) for row in await session.scalars(select(AuditLog)))
    assert actions == sorted([("checkin.created", budi), ("checkin.created", eko)])
