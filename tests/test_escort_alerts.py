"""Automatic escort alerts as contingencies, on a real database: raised once, in the right group, cleared by itself.

The roster is tests/factories.py's with its escorts, every unit with a
command group: KWL-1 (POLSEK-A1) goes east from PPS-A1 led by Budi (0.001
degree of longitude = 111 m); KWL-2 (POLSEK-A1) is Dedi's from TPS-A1-001,
due an hour after NOW. No dispatcher runs: `_deliver` does what it would.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings, load_settings
from bot.services import escorts, outbox
from bot.services.outbox import SendResult
from bot.services.people import Actor, actor_for
from flows import incidents as flow
from models import AuditLog, CommandGroup, Contingency, ContingencyStep, EscortAlert, Outbox
from models.enums import OutboxState
from tests.factories import NOW, Roster, build_escorts, build_roster, link

GROUPS = {"POLSEK-A1": -1001, "POLSEK-A2": -1002, "POLRES-A": -1003, "POLDA-X": -1004}
A1, A2, RES, DA = GROUPS.values()
LAT = -3.0


@pytest.fixture
def settings() -> Settings:
    return load_settings(None)


@pytest.fixture
async def roster(session: AsyncSession) -> Roster:
    roster = await build_roster(session)
    await build_escorts(session, roster)
    for code, chat in GROUPS.items():
        session.add(CommandGroup(unit_id=roster.units[code].id, chat_id=chat, title=f"Posko {code}"))
    await session.commit()
    return roster


@pytest.fixture
def people(roster: Roster) -> dict[str, int]:
    """Personnel ids, read before any sweep's rollback expires the roster's rows."""
    return {key: person.id for key, person in roster.people.items()}


def minutes(n: float) -> datetime:
    return NOW + timedelta(minutes=n)


def east(meters: float) -> float:
    return 104.700 + meters / 111_000


async def _position(
    session: AsyncSession,
    people: dict[str, int],
    settings: Settings,
    who: str,
    meters: float,
    at: datetime,
    lat: float = LAT,
) -> escorts.PositionResult | None:
    """A member's position, handled as the chat flow handles it: its episodes raised and cleared with it."""
    result = await escorts.record_position(
        session, personnel_id=people[who], lat=lat, lon=east(meters), at=at, now=at, settings=settings.escort
    )
    if result is not None:
        await flow.clear_escort_alerts(session, settings=settings, episodes=result.cleared, now=at)
        await flow.raise_escort_alerts(session, settings=settings, episodes=result.opened, now=at)
    await session.commit()
    return result


async def _sweep(session: AsyncSession, settings: Settings, at: datetime) -> int:
    return await flow.sweep_escort_alerts(session, now=at, settings=settings)


async def _deliver(session: AsyncSession, at: datetime) -> list[int]:
    """What a dispatcher does: claim every due row and record Telegram's message ids."""
    rows = await outbox.claim(session, worker="test", limit=100, now=at, lease_seconds=60)
    await outbox.mark_sent_many(session, results=[SendResult(row.id, 7000 + row.id, at) for row in rows])
    await session.commit()
    return [row.chat_id for row in rows]


async def _rows(session: AsyncSession, method: str, *, waiting: bool = False) -> list[tuple[int, str]]:
    """(group, text) of every row of `method` to a group; `waiting`: only those no dispatcher took yet."""
    query = select(Outbox.chat_id, Outbox.text).where(Outbox.method == method, Outbox.chat_id < 0).order_by(Outbox.id)
    if waiting:
        query = query.where(Outbox.state == OutboxState.pending.value)
    return [(chat, text) for chat, text in await session.execute(query)]


async def _contingencies(session: AsyncSession) -> list[Contingency]:
    query = select(Contingency).order_by(Contingency.id).execution_options(populate_existing=True)
    return list(await session.scalars(query))


async def _steps(session: AsyncSession, contingency_id: int) -> list[str]:
    query = (
        select(ContingencyStep.kind)
        .where(ContingencyStep.contingency_id == contingency_id)
        .order_by(ContingencyStep.version)
    )
    return list(await session.scalars(query))


async def _actor(session: AsyncSession, roster: Roster, key: str, telegram_user_id: int) -> Actor:
    await link(session, roster.person(key), telegram_user_id)
    actor = await actor_for(session, telegram_user_id=telegram_user_id, now=NOW)
    assert actor is not None
    return actor


async def _stopped(session: AsyncSession, people: dict[str, int], settings: Settings) -> None:
    """KWL-1 leaves PPS-A1 and creeps within 200 m for 15 minutes, swept every minute: berhenti at minute 15."""
    await _position(session, people, settings, "budi", 1_000, minutes(0))
    for minute in range(1, 16):
        await _position(session, people, settings, "budi", 1_000 + minute * 5, minutes(minute))
        await _sweep(session, settings, minutes(minute))


async def test_berhenti_is_raised_once_in_its_units_group_and_cleared_when_the_escort_moves(
    session: AsyncSession, roster: Roster, people: dict[str, int], settings: Settings
) -> None:
    await _position(session, people, settings, "budi", 1_000, minutes(0))
    for minute in range(1, 15):
        await _position(session, people, settings, "budi", 1_000 + minute * 5, minutes(minute))
        await _sweep(session, settings, minutes(minute))
    assert await _rows(session, "sendMessage") == []
    await _position(session, people, settings, "budi", 1_075, minutes(15))
    await _sweep(session, settings, minutes(15))
    [(chat, text)] = await _rows(session, "sendMessage")
    assert chat == A1
    assert "KONTINJENSI #1" in text and "🟠 Sedang" in text
    assert "Pengawalan KWL-1</b> · 12 kotak suara" in text and "PPS Desa Uji → PPK Kec. Uji" in text
    assert "BERHENTI" in text and "Oleh: Siaga (otomatis) · 14 Feb 08:15 WIB" in text
    assert "Posisi terakhir" in text and "08:15 WIB, 0 menit sebelum peringatan" in text
    assert "Satuan: Polsek A1" in text and "TERBUKA" in text
    [row] = await _contingencies(session)
    assert (row.reporter_id, row.escort_id, row.tps_id, row.severity, row.state) == (
        None,
        (await session.scalar(select(EscortAlert.escort_id))),
        None,
        "sedang",
        "open",
    )
    assert row.deadline_at == minutes(30)  # sedang: 15 minutes to acknowledge before it climbs
    for minute in range(16, 25):
        await _position(session, people, settings, "budi", 1_080, minutes(minute))
        await _sweep(session, settings, minutes(minute))
    assert len(await _rows(session, "sendMessage")) == 1  # the same episode: never again while stopped
    assert await _deliver(session, minutes(24)) == [A1]

    moved = await _position(session, people, settings, "budi", 1_600, minutes(25))
    assert moved is not None and [episode.clear_reason for episode in moved.cleared] == ["moved"]
    [(chat, edited)] = await _rows(session, "editMessageText")
    assert chat == A1
    assert "✅ Berakhir sendiri 08:25 WIB: pengawalan bergerak lagi" in edited
    assert "SELESAI</b> otomatis, 08:25 WIB" in edited and "Pengawalan KWL-1" in edited
    [row] = await _contingencies(session)
    assert (row.state, row.resolved_at, row.resolved_by_id, row.deadline_at) == ("resolved", minutes(25), None, None)
    assert await _steps(session, row.id) == ["raised", "resolved"]
    audit = await session.execute(
        select(AuditLog.action, AuditLog.actor, AuditLog.detail)
        .where(AuditLog.entity == "contingency", AuditLog.entity_id == str(row.id))
        .order_by(AuditLog.id)
    )
    assert [(action, actor, detail.get("kind"), detail.get("reason")) for action, actor, detail in audit] == [
        ("contingency.drafted", "escort_alert", "berhenti", None),
        ("contingency.raised", "escalation", None, None),
        ("contingency.resolved", "escort_alert", "berhenti", "moved"),
    ]
    edit = await session.scalar(select(Outbox.payload).where(Outbox.method == "editMessageText"))
    assert edit is not None and "reply_markup" not in edit  # no buttons left on a closed alert
    assert await flow.sweep(session, now=minutes(60), settings=settings) == 0  # its timer stopped


async def test_an_alert_nobody_acknowledges_climbs_the_tree_and_a_commander_stops_it(
    session: AsyncSession, roster: Roster, people: dict[str, int], settings: Settings
) -> None:
    await _stopped(session, people, settings)
    await _deliver(session, minutes(15))
    assert await flow.sweep(session, now=minutes(29), settings=settings) == 0
    assert await flow.sweep(session, now=minutes(30), settings=settings) == 1
    assert [chat for chat, _ in await _rows(session, "sendMessage")] == [A1, RES]
    await _deliver(session, minutes(30))
    kapolres = await _actor(session, roster, "kapolres", 903)
    [row] = await _contingencies(session)
    result = await flow.acknowledge(session, contingency_id=row.id, actor=kapolres, now=minutes(31), settings=settings)
    assert result.outcome.value == "acknowledged"
    edits = await _rows(session, "editMessageText", waiting=True)
    assert sorted(chat for chat, _ in edits) == sorted([A1, RES])
    assert all("DITERIMA</b> oleh AKBP Kapolres" in text and "BERHENTI" in text for _, text in edits)
    assert await flow.sweep(session, now=minutes(50), settings=settings) == 0  # nothing climbs (no reminder yet)
    assert [chat for chat, _ in await _rows(session, "sendMessage")] == [A1, RES]
    await _deliver(session, minutes(50))
    await _position(session, people, settings, "budi", 2_000, minutes(52))  # moving again: resolved, both edited
    edits = [(chat, text) for chat, text in await _rows(session, "editMessageText") if "Berakhir sendiri" in text]
    assert sorted(chat for chat, _ in edits) == sorted([A1, RES])
    assert (await _contingencies(session))[0].state == "resolved"


async def test_a_commander_from_another_subtree_may_not_acknowledge(
    session: AsyncSession, roster: Roster, people: dict[str, int], settings: Settings
) -> None:
    await _stopped(session, people, settings)
    kapolsek_a2 = await _actor(session, roster, "kapolsek_a2", 905)
    [row] = await _contingencies(session)
    result = await flow.acknowledge(
        session, contingency_id=row.id, actor=kapolsek_a2, now=minutes(16), settings=settings
    )
    assert result.outcome.value == "forbidden"


async def test_an_alert_a_commander_resolved_stays_resolved_by_them_when_it_clears(
    session: AsyncSession, roster: Roster, people: dict[str, int], settings: Settings
) -> None:
    await _stopped(session, people, settings)
    await _deliver(session, minutes(15))
    kapolsek = await _actor(session, roster, "kapolsek_a1", 904)
    [row] = await _contingencies(session)
    await flow.resolve(session, contingency_id=row.id, actor=kapolsek, now=minutes(17), settings=settings)
    await _deliver(session, minutes(17))
    await _position(session, people, settings, "budi", 2_000, minutes(18))
    [row] = await _contingencies(session)
    assert row.resolved_by_id == people["kapolsek_a1"] and row.resolved_at == minutes(17)
    assert len(await _rows(session, "editMessageText")) == 1  # the commander's resolve, nothing after


async def test_hilang_sinyal_and_terlambat_are_raised_and_cleared_with_their_reasons(
    session: AsyncSession, roster: Roster, people: dict[str, int], settings: Settings
) -> None:
    await _position(session, people, settings, "dedi", 500, minutes(0), lat=-2.99)  # KWL-2 leaves TPS-A1-001
    assert await _sweep(session, settings, minutes(9.9)) == 0
    assert await _sweep(session, settings, minutes(10)) == 1
    [(chat, text)] = await _rows(session, "sendMessage")
    assert chat == A1 and "HILANG SINYAL" in text and "Pengawalan KWL-2</b> · 3 kotak suara" in text
    assert "10 menit sebelum peringatan" in text
    await _deliver(session, minutes(10))
    await _position(session, people, settings, "dedi", 600, minutes(12), lat=-2.99)
    [(_, edited)] = await _rows(session, "editMessageText")
    assert "posisi kembali masuk" in edited

    assert await _sweep(session, settings, minutes(60)) == 2  # KWL-2 late, and silent again since minute 12
    late = [text for _, text in await _rows(session, "sendMessage") if "TERLAMBAT" in text]
    assert len(late) == 1 and "KWL-2" in late[0] and "🟢 Rendah" in late[0]
    await _deliver(session, minutes(60))
    kwl2 = await session.scalar(select(EscortAlert.escort_id).where(EscortAlert.kind == "terlambat"))
    assert kwl2 is not None
    arrived = await escorts.arrive(
        session, escort_id=kwl2, personnel_id=people["dedi"], now=minutes(70), settings=settings.escort
    )
    await flow.clear_escort_alerts(session, settings=settings, episodes=arrived.cleared, now=minutes(70))
    await session.commit()
    cleared = [text for _, text in await _rows(session, "editMessageText") if "pengawalan tiba di tujuan" in text]
    assert len(cleared) == 2 and all("KWL-2" in text for text in cleared)  # arrival ends both
    assert sum("TERLAMBAT" in text for text in cleared) == 1 and sum("HILANG SINYAL" in text for text in cleared) == 1


async def test_an_episode_left_without_its_contingency_is_raised_once_by_the_next_sweep(
    session: AsyncSession, roster: Roster, people: dict[str, int], settings: Settings
) -> None:
    await _position(session, people, settings, "dedi", 500, minutes(0), lat=-2.99)
    opened = await escorts.sweep_alerts(session, settings=settings.escort, now=minutes(10))
    await session.commit()  # a worker died here: the episode is open, its contingency never made
    assert [episode.kind for episode in opened] == ["hilang_sinyal"]
    assert await _rows(session, "sendMessage") == []
    await _sweep(session, settings, minutes(10.5))
    await _sweep(session, settings, minutes(11))
    await flow.raise_escort_alerts(session, settings=settings, episodes=opened, now=minutes(11))  # a late retry
    await session.commit()
    assert [chat for chat, _ in await _rows(session, "sendMessage")] == [A1]
    count = await session.scalar(select(func.count()).select_from(Contingency))
    linked = await session.scalar(select(EscortAlert.contingency_id))
    assert count == 1 and linked == (await _contingencies(session))[0].id


async def test_menyimpang_opened_by_a_position_is_raised_once_and_ends_back_on_the_route(
    session: AsyncSession, roster: Roster, people: dict[str, int], settings: Settings
) -> None:
    await _position(session, people, settings, "budi", 1_000, minutes(0))
    off = await _position(session, people, settings, "budi", 2_000, minutes(1), lat=-3.04)  # 4.4 km south
    assert off is not None and [episode.kind for episode in off.opened] == ["menyimpang"]
    await _position(session, people, settings, "budi", 2_500, minutes(2), lat=-3.04)
    [(chat, text)] = await _rows(session, "sendMessage")
    assert chat == A1 and "MENYIMPANG" in text and "🔴 Tinggi" in text
    await _deliver(session, minutes(2))
    await _position(session, people, settings, "budi", 3_000, minutes(3))
    [(_, edited)] = await _rows(session, "editMessageText")
    assert "kembali ke rute" in edited


async def test_an_alert_sent_while_waiting_is_rewritten_rather_than_edited(
    session: AsyncSession, roster: Roster, people: dict[str, int], settings: Settings
) -> None:
    await _stopped(session, people, settings)
    await _position(session, people, settings, "budi", 2_000, minutes(16))  # cleared before any dispatcher ran
    [(chat, text)] = await _rows(session, "sendMessage")
    assert chat == A1 and "Berakhir sendiri" in text
    assert await _rows(session, "editMessageText") == []
    state = await session.scalar(select(Outbox.state).where(Outbox.method == "sendMessage"))
    assert state == OutboxState.pending.value


@pytest.mark.parametrize("crashed", [False, True])
async def test_two_workers_sweeping_at_once_raise_each_alert_once(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, roster: Roster, settings: Settings, crashed: bool
) -> None:
    """Both escorts are late at minute 120; with `crashed`, their episodes were opened by a pass that died."""
    if crashed:
        await escorts.sweep_alerts(session, settings=settings.escort, now=minutes(120))
        await session.commit()

    async def worker() -> int:
        async with sessions() as own:
            return await flow.sweep_escort_alerts(own, now=minutes(120), settings=settings)

    await asyncio.gather(worker(), worker())
    sends = await _rows(session, "sendMessage")
    assert sorted(text.count("TERLAMBAT") for _, text in sends) == [1, 1] and {chat for chat, _ in sends} == {A1}
    assert {text.split("Pengawalan ")[1][:5] for _, text in sends} == {"KWL-1", "KWL-2"}
    assert await session.scalar(select(func.count()).select_from(Contingency)) == 2


async def test_an_operation_in_english_words_the_escort_alert_in_english(
    session: AsyncSession, roster: Roster, people: dict[str, int], settings: Settings
) -> None:
    settings = settings.model_copy(update={"operation": settings.operation.model_copy(update={"language": "en"})})
    await _stopped(session, people, settings)
    [(_, text)] = await _rows(session, "sendMessage")
    assert "CONTINGENCY #1" in text and "🟠 Medium" in text and "Escort KWL-1</b> · 12 kotak suara" in text
    assert "STOPPED — not moving from where it is" in text and "By: Siaga (automatic)" in text
    assert "Last position" in text and "0 min before the alert" in text and "Unit: Polsek A1" in text
    await _deliver(session, minutes(15))
    await _position(session, people, settings, "budi", 2_000, minutes(16))
    [(_, edited)] = await _rows(session, "editMessageText")
    assert "Ended by itself" in edited and "the escort is moving again" in edited
    assert "RESOLVED</b> automatically" in edited
