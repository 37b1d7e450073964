"""`/status` and `/rekap` end to end: what each commander reads, pressed through the emulator.

Check-ins are made the way personnel make them (`/hadir`, a location,
`/selesai`); the expected numbers come from `tests.test_status.expected`, a
plain-Python count over the same rows, never from the service under test.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import update
from telegram.ext import CommandHandler

from bot.emulator import SentMessage, SimUser
from bot.render.status import clock
from handlers import reports as report_handlers
from handlers import status as status_handlers
from handlers.fallback import unknown
from models import Personnel
from tests.e2e.conftest import World, no_more_messages
from tests.factories import TPS_PLACES
from tests.test_status import Expected, expected

COMMANDERS = {"kapolda": "POLDA-X", "kapolres": "POLRES-A", "kapolsek_a1": "POLSEK-A1"}


@pytest.fixture
async def wired(world: World) -> AsyncIterator[World]:
    """The world with `/status` and `/rekap`, for as long as `handlers.register_all` does not add them."""
    registered = {
        c
        for handlers in world.application.handlers.values()
        for h in handlers
        if isinstance(h, CommandHandler)
        for c in h.commands
    }
    if "status" not in registered:
        status_handlers.register_handlers(world.application)
    if "rekap" not in registered:
        report_handlers.register_handlers(world.application)
    for handler in [h for h in world.application.handlers.get(0, []) if getattr(h, "callback", None) is unknown]:
        world.application.remove_handler(handler)  # the catch-all answers only what nothing else took
        world.application.add_handler(handler)
    yield world


async def _check_in(world: World, user: SimUser, tps: str, *, north: float = 0.0) -> None:
    await world.reply(user, "/hadir")
    lat, lon = TPS_PLACES[tps]
    await world.send_location_now(user, lat + north, lon)
    assert "tercatat" in ((await user.next_message()).text or "")


async def _morning(world: World) -> dict[str, SimUser]:
    """Budi at his TPS, Dedi (Linmas) 1 km off, Eko in, Fajar in and out again; Citra never registers."""
    users = {key: await world.registered(key) for key in [*COMMANDERS, "budi", "dedi", "eko", "fajar"]}
    await _check_in(world, users["budi"], "TPS-A1-001")
    await _check_in(world, users["dedi"], "TPS-A1-001", north=0.01)
    await _check_in(world, users["eko"], "TPS-A2-001")
    await _check_in(world, users["fajar"], "TPS-A2-001")
    assert "Selesai tugas tercatat" in ((await world.reply(users["fajar"], "/selesai")).text or "")
    async with world.sessions() as session:
        await session.execute(
            update(Personnel).where(Personnel.id == world.roster.person("eko").id).values(reachable=False)
        )
        await session.commit()
    return users


async def _expect(world: World, unit: str) -> Expected:
    async with world.sessions() as session:
        return await expected(session, unit_code=unit, shift_code="PAGI", staffing=world.settings.staffing)


def _figures_in(text: str, want: Expected) -> None:
    """Every number of the summary, as the commander reads it."""
    people = want.people
    covered = sum(c.covered for c in want.tps.values())
    total = sum(c.total for c in want.tps.values())
    meets = sum(c.meets_pattern for c in want.tps.values())
    for fragment in [
        f"Bertugas {people.assigned} · terdaftar {people.registered}",
        f"Hadir {people.checked_in}/{people.assigned}",
        f"terlambat {people.late}",
        f"jauh dari TPS {people.far}",
        f"Belum hadir {people.missing} · 📵 tak terjangkau {people.unreachable}",
        f"TPS terjaga {covered}/{total}",
        f"belum terjaga {total - covered}",
        f"sesuai pola {meets}",
    ]:
        assert fragment in text, (fragment, text)
    for level, label in [("sangat_rawan", "sangat rawan"), ("rawan", "   rawan"), ("kurang_rawan", "kurang rawan")]:
        coverage = want.tps[level]
        if coverage.total:
            assert f"{label}: {coverage.covered}/{coverage.total} terjaga, {coverage.meets_pattern} sesuai pola" in text


def _buttons(message: SentMessage) -> list[str]:
    return [b["text"] for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]


def _button(message: SentMessage, prefix: str) -> str:
    return next(text for text in _buttons(message) if text.startswith(prefix))


async def test_numbers_match_the_database_for_three_levels(wired: World) -> None:
    world = wired
    users = await _morning(world)
    for key, unit in COMMANDERS.items():
        before = world.emu.count(users[key])
        reply = (await world.reply(users[key], "/status")).text or ""
        assert f"Status {unit}" in reply and "Shift Pemungutan" in reply and "sedang berjalan" in reply
        assert f"per {clock(world.clock(), world.settings.operation.zone)}" in reply
        _figures_in(reply, await _expect(world, unit))
        await no_more_messages(world, users[key], before + 1)
    polres = world.emu.last(users["kapolres"])
    assert polres
    for child in ["POLSEK-A1", "POLSEK-A2"]:
        mine = await _expect(world, child)
        covered, total = sum(c.covered for c in mine.tps.values()), sum(c.total for c in mine.tps.values())
        line = f"{child}: hadir {mine.people.checked_in}/{mine.people.assigned} · TPS {covered}/{total}"
        assert line in (polres.text or "")


async def test_siblings_members_and_strangers_are_refused(wired: World) -> None:
    world = wired
    users = await _morning(world)
    refusal = (await world.reply(users["kapolsek_a1"], "/status POLSEK-A2")).text or ""
    assert "POLSEK-A2 di luar satuan Anda" in refusal and "Hadir" not in refusal
    assert "hanya untuk komandan" in ((await world.reply(users["budi"], "/status")).text or "")
    assert "belum terdaftar" in ((await world.reply(world.user("citra"), "/status")).text or "")
    assert "di luar satuan Anda" in ((await world.reply(users["kapolsek_a1"], "/rekap POLSEK-A2")).text or "")
    assert "hanya untuk komandan" in ((await world.reply(users["budi"], "/rekap")).text or "")
    for key in ["kapolsek_a1", "budi"]:
        await no_more_messages(world, users[key], world.emu.count(users[key]))


async def test_drill_down_and_missing_list_are_authorized_on_every_press(wired: World) -> None:
    world = wired
    users = await _morning(world)
    kapolres = users["kapolres"]
    summary = await world.reply(kapolres, "/status")
    press = await kapolres.press(summary, _button(summary, "POLSEK-A1 "))
    assert (await press.answer()).show_alert is False
    down = await kapolres.next_message()
    assert "Status POLSEK-A1" in (down.text or "") and "⬆️ POLRES-A" in _buttons(down)
    _figures_in(down.text or "", await _expect(world, "POLSEK-A1"))

    await (await kapolres.press(down, _button(down, "❌ Belum hadir"))).answer()
    missing = await kapolres.next_message()
    assert "Belum hadir — POLSEK-A1" in (missing.text or "")
    assert "Briptu Citra (Polri) · POLSEK-A1 · TPS-A1-002 · ✉️ belum daftar" in (missing.text or "")

    world.clock.advance(timedelta(seconds=7))
    await (await kapolres.press(summary, "🔄 Perbarui")).answer()
    await world.eventually(lambda: len(summary.versions) == 2)
    assert f"per {clock(world.clock(), world.settings.operation.zone)}" in (summary.text or "")

    async with world.sessions() as session:  # the Kapolres is moved to a Polsek: the old buttons stop working
        await session.execute(
            update(Personnel)
            .where(Personnel.id == world.roster.person("kapolres").id)
            .values(unit_id=world.roster.units["POLSEK-A2"].id)
        )
        await session.commit()
    count = world.emu.count(kapolres)
    for target in [summary, down]:
        label = _button(target, "POLSEK-A1 ") if target is summary else _button(target, "❌ Belum hadir")
        answer = await (await kapolres.press(target, label)).answer()
        assert answer.show_alert and "di luar satuan Anda" in (answer.text or "")
    async with world.sessions() as session:  # demoted: no button answers a member
        await session.execute(
            update(Personnel).where(Personnel.id == world.roster.person("kapolres").id).values(role="anggota")
        )
        await session.commit()
    answer = await (await kapolres.press(summary, "🔄 Perbarui")).answer()
    assert answer.show_alert and "hanya untuk komandan" in (answer.text or "")
    await no_more_messages(world, kapolres, count)


async def test_a_command_group_sees_its_unit_and_an_unregistered_group_nothing(wired: World) -> None:
    world = wired
    users = await _morning(world)
    group = await world.command_group("POLSEK-A1", members=[users["budi"], world.user("citra")])
    await world.user("citra").send_in(group, "/status")
    reply = await group.next_message()
    assert "Status POLSEK-A1" in (reply.text or "")
    _figures_in(reply.text or "", await _expect(world, "POLSEK-A1"))
    await users["budi"].send_in(group, "/status POLSEK-A2")
    assert "di luar satuan grup komando ini" in ((await group.next_message()).text or "")
    await (await users["budi"].press(reply, _button(reply, "❌ Belum hadir"))).answer()
    assert "Briptu Citra" in ((await group.next_message()).text or "")

    other = world.emu.group("Grup Lain", members=[users["kapolda"]])
    await users["kapolda"].send_in(other, "/status")
    answer = (await other.next_message()).text or ""
    assert "belum terdaftar sebagai grup komando" in answer and "Hadir" not in answer
    await no_more_messages(world, other, 1)
    await no_more_messages(world, group, 3)


async def test_rekap_sends_a_chart_a_workbook_and_a_geojson(wired: World) -> None:
    world = wired
    users = await _morning(world)
    kapolres = users["kapolres"]
    before = world.emu.count(kapolres)
    await kapolres.send("/rekap")
    await world.eventually(lambda: world.emu.count(kapolres) == before + 3, timeout=30)
    photo, workbook, geojson = world.emu.sent_to(kapolres)[before:]
    assert photo.kind == "photo" and photo.file and photo.file.data.startswith(b"\x89PNG")
    assert "Rekap POLRES-A" in (photo.caption or "")
    assert workbook.kind == "document" and workbook.file and (workbook.file.filename or "").endswith(".xlsx")
    book = load_workbook(io.BytesIO(workbook.file.data))
    want = await _expect(world, "POLRES-A")
    assert len(list(book["checkins"].iter_rows(min_row=2))) == want.people.assigned
    assert geojson.file and (geojson.file.filename or "").endswith(".geojson")
    features = json.loads(geojson.file.data)["features"]
    assert sorted(f["properties"]["code"] for f in features if f["properties"]["kind"] == "tps") == sorted(TPS_PLACES)
    await no_more_messages(world, kapolres, before + 3)
