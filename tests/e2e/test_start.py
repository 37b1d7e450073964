"""The greeting, the help, and the refusals anyone may meet before registering."""

from __future__ import annotations

from tests.e2e.conftest import World, no_more_messages


async def test_start_greets_in_the_users_language(world: World) -> None:
    stranger = world.emu.user("Tamu", language_code="en")
    await stranger.send("/start")
    reply = await stranger.next_message()
    assert "Welcome to" in (reply.text or "") and "/register NRP CODE" in (reply.text or "")
    orang = world.emu.user("Orang", language_code="id")
    await orang.send("/start")
    assert "Selamat datang" in ((await orang.next_message()).text or "")
    await no_more_messages(world, stranger, 1)


async def test_unregistered_user_gets_an_explanation_and_no_data(world: World) -> None:
    stranger = world.emu.user("Tamu")
    for command in ["/jadwal", "/hadir", "/lapor banjir", "/selesai", "/bahasa en"]:
        await stranger.send(command)
        reply = await stranger.next_message()
        assert "belum terdaftar" in (reply.text or ""), command
    await no_more_messages(world, stranger, 5)


async def test_help_shows_each_audience_only_what_it_may_use(world: World) -> None:
    stranger = world.emu.user("Tamu")
    help_text = (await world.reply(stranger, "/bantuan")).text or ""
    assert "/daftar" in help_text and "/hadir" not in help_text and "/status" not in help_text
    budi = await world.registered("budi")
    help_text = (await world.reply(budi, "/bantuan")).text or ""
    assert "/hadir" in help_text and "/status" not in help_text
    kapolsek = await world.registered("kapolsek_a1")
    help_text = (await world.reply(kapolsek, "/help")).text or ""
    assert "/hadir" in help_text and "/status" in help_text and "/siaran" in help_text
