"""Automatic escort alerts end to end: raised once at their time in the escort unit's group, acknowledged, climbing,
and cleared by the escort itself (moving again, a position coming in, arrival), every copy edited.

The real Application runs against the emulator with a manual clock; the
scheduler's sweeps are run by hand (`_tick`) after the clock moves, as the
job queue would run them. Positions are the members' live locations
(each move an `edited_message` stamped with the clock), and arrival is the
member's button on `/kawal`, all handled by the bot as on the day.

    KWL-1  PPS-A1 -> DERMAGA-A1 -> PPK-A2, POLSEK-A1, Budi (ketua); 0.001 degree of longitude is 111 m
    KWL-2  TPS-A1-001 -> PPS-A1, POLSEK-A1, Dedi (ketua), due an hour after it departs
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.emulator import SentMessage, SimGroup
from bot.ops.scheduler import SWEEPS, run_sweep
from models import Escort
from tests.e2e.conftest import World, no_more_messages
from tests.e2e.live_shares import Shares, move
from tests.factories import build_escorts

UNITS = ["POLSEK-A1", "POLSEK-A2", "POLRES-A", "POLDA-X"]
COMMANDERS = {"POLSEK-A1": "kapolsek_a1", "POLSEK-A2": "kapolsek_a2", "POLRES-A": "kapolres", "POLDA-X": "kapolda"}
LAT = -3.0


@pytest.fixture
async def escorted(world: World) -> dict[str, Escort]:
    async with world.sessions() as session:
        return await build_escorts(session, world.roster, now=world.clock())


async def _groups(world: World) -> dict[str, SimGroup]:
    for code in UNITS:
        commander = await world.registered(COMMANDERS[code])
        await world.command_group(code, members=[commander])
    return world.groups


def _east(meters: float) -> float:
    return 104.700 + meters / 111_000


@pytest.fixture
def shares() -> Shares:
    return {}


async def _position(world: World, shares: Shares, who: str, meters: float, *, lat: float = LAT) -> None:
    await move(world, shares, who, lat, _east(meters))


async def _tick(world: World, minutes: float = 0) -> None:
    """Time passes; the escort-alert and escalation jobs run as the scheduler runs them."""
    world.clock.advance(timedelta(minutes=minutes))
    for sweep in SWEEPS:
        if sweep.name in ("escort_alerts", "escalation"):
            await run_sweep(sweep, world.runtime)
    await world.outbox_drained()


def _counts(world: World, groups: dict[str, SimGroup]) -> dict[str, int]:
    return {code: world.emu.count(group) for code, group in groups.items()}


def _only(world: World, group: SimGroup) -> SentMessage:
    [message] = world.emu.sent_to(group)
    return message


async def test_berhenti_is_raised_once_at_its_time_acknowledged_and_cleared_when_the_escort_moves(
    world: World, escorted: dict[str, Escort], shares: Shares
) -> None:
    groups = await _groups(world)
    await _position(world, shares, "budi", 1_000)
    for minute in range(1, 15):
        await _tick(world, 1)
        await _position(world, shares, "budi", 1_000 + minute * 5)  # creeping within the 200 m stop radius
    await _tick(world, 0.5)
    assert _counts(world, groups) == {"POLSEK-A1": 0, "POLSEK-A2": 0, "POLRES-A": 0, "POLDA-X": 0}
    await _tick(world, 0.5)
    await _position(world, shares, "budi", 1_075)  # 15 minutes without moving beyond the radius
    await _tick(world)
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 0, "POLRES-A": 0, "POLDA-X": 0}
    alert = _only(world, groups["POLSEK-A1"])
    text = alert.text or ""
    assert "KONTINJENSI #1" in text and "Sedang" in text and "BERHENTI" in text
    assert "Pengawalan KWL-1 · 12 kotak suara" in text and "PPS Desa Uji → PPK Kec. Uji" in text
    assert "Oleh: Siaga (otomatis)" in text and "0 menit sebelum peringatan" in text
    assert alert.button_texts == ["✔️ Terima", "✅ Selesai", "⬆️ Naik"]
    for _ in range(5):
        await _tick(world, 1)
        await _position(world, shares, "budi", 1_080)
    await no_more_messages(world, groups["POLSEK-A1"], 1)  # still stopped: the same alert, never again

    press = await world.users["kapolsek_a1"].press(alert, "✔️ Terima")
    assert (await press.answer()).show_alert is False
    await world.outbox_drained()
    assert "DITERIMA oleh AKP Kapolsek A1" in (alert.text or "")
    assert alert.button_texts == ["✅ Selesai", "⬆️ Naik"]

    await _tick(world, 1)
    await _position(world, shares, "budi", 1_600)
    await world.outbox_drained()
    text = alert.text or ""
    assert "Berakhir sendiri" in text and "pengawalan bergerak lagi" in text and "SELESAI otomatis" in text
    assert alert.button_texts == [] and len(alert.edits) == 2
    await _tick(world, 90)  # its timers stopped: no climb, no reminder to resolve it
    assert len(alert.edits) == 2 and _counts(world, groups)["POLRES-A"] == 0
    assert not any("belum selesai" in text for text in world.texts(world.users["kapolsek_a1"]))


async def test_hilang_sinyal_unacknowledged_climbs_to_the_polres_and_a_position_clears_it_in_both_groups(
    world: World, escorted: dict[str, Escort], shares: Shares
) -> None:
    groups = await _groups(world)
    await _position(world, shares, "dedi", 500, lat=-2.99)  # KWL-2 leaves TPS-A1-001, then nothing
    await _tick(world, 9.5)
    assert _counts(world, groups) == {"POLSEK-A1": 0, "POLSEK-A2": 0, "POLRES-A": 0, "POLDA-X": 0}
    await _tick(world, 0.5)
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 0, "POLRES-A": 0, "POLDA-X": 0}
    assert "HILANG SINYAL" in (_only(world, groups["POLSEK-A1"]).text or "")
    await _tick(world, 14.5)
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 0, "POLRES-A": 0, "POLDA-X": 0}
    await _tick(world, 0.5)  # sedang: 15 minutes unacknowledged, one unit up
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 0, "POLRES-A": 1, "POLDA-X": 0}
    assert "tingkat Polres A" in (_only(world, groups["POLSEK-A1"]).text or "")
    assert "HILANG SINYAL" in (_only(world, groups["POLRES-A"]).text or "")

    await _position(world, shares, "dedi", 700, lat=-2.99)
    await world.outbox_drained()
    for code in ("POLSEK-A1", "POLRES-A"):
        message = _only(world, groups[code])
        assert "posisi kembali masuk" in (message.text or "") and "SELESAI otomatis" in (message.text or ""), code
        assert message.button_texts == [], code
    for step in range(1, 7):  # on its way again; its timer stopped: nothing climbs to the Polda
        await _tick(world, 5)
        await _position(world, shares, "dedi", 700 + step * 300, lat=-2.99)
    await _tick(world)
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 0, "POLRES-A": 1, "POLDA-X": 0}


async def test_terlambat_is_raised_at_arrive_by_and_cleared_by_the_arrive_button(
    world: World, escorted: dict[str, Escort], shares: Shares
) -> None:
    groups = await _groups(world)
    for minute in range(0, 61, 5):  # KWL-2 on its way, a position every five minutes, never there
        await _position(world, shares, "dedi", 500 + minute * 60, lat=-2.99)
        await _tick(world, 5 if minute < 60 else 0)
    late = [m for m in world.emu.sent_to(groups["POLSEK-A1"]) if "TERLAMBAT" in (m.text or "")]
    assert len(late) == 1 and "KWL-2" in (late[0].text or "") and "Rendah" in (late[0].text or "")
    assert world.emu.count(groups["POLSEK-A1"]) == 1
    dedi = world.users["dedi"]
    await dedi.send("/kawal")
    await world.eventually(lambda: any("🏁 Tiba KWL-2" in m.button_texts for m in world.emu.sent_to(dedi)))
    board = next(m for m in world.emu.sent_to(dedi) if "🏁 Tiba KWL-2" in m.button_texts)
    press = await dedi.press(board, "🏁 Tiba KWL-2")
    await press.answer()
    await world.outbox_drained()
    assert "pengawalan tiba di tujuan" in (late[0].text or "") and late[0].button_texts == []
    await _tick(world, 30)
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 0, "POLRES-A": 0, "POLDA-X": 0}
