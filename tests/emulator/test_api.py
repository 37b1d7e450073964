"""Bot API behaviour through a real python-telegram-bot ``Bot`` and raw HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)
from telegram.error import BadRequest, ChatMigrated, Conflict, Forbidden, InvalidToken

from bot.emulator import Emulator
from tests.emulator.helpers import call


@pytest.mark.asyncio
async def test_get_me_describes_the_bot(bot: Bot, emu: Emulator) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.username == emu.bot_username and me.id == 123456
    assert me.can_read_all_group_messages is False  # privacy mode on, like a new bot


@pytest.mark.asyncio
async def test_wrong_token_is_401_and_unknown_method_is_404(emu: Emulator, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{emu.base_url}999:WRONG/getMe") as resp:
        assert resp.status == 401
        assert await resp.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    status, body = await call(http, emu, "sendTelepathy")
    assert (status, body["description"]) == (404, "Not Found")
    with pytest.raises(InvalidToken):
        async with Bot("999:WRONG", base_url=emu.base_url):
            pass


@pytest.mark.asyncio
async def test_send_message_shape_html_and_keyboard(bot: Bot, emu: Emulator) -> None:
    budi = emu.user("Budi")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Hadir", callback_data="hadir:1")]])
    msg = await bot.send_message(budi.id, "<b>Apel</b> pukul 06.00", parse_mode="HTML", reply_markup=markup)
    assert msg.text == "Apel pukul 06.00" and msg.chat.id == budi.id
    assert msg.from_user is not None and msg.from_user.id == bot.id
    assert msg.entities[0].type == "bold" and msg.reply_markup == markup
    [sent] = emu.sent_to(budi)
    assert sent.raw_text == "<b>Apel</b> pukul 06.00" and sent.parse_mode == "HTML"
    assert sent.button_texts == ["Hadir"] and sent.time <= time.monotonic()


@pytest.mark.asyncio
async def test_reply_keyboard_with_location_button_and_reply_parameters(bot: Bot, emu: Emulator) -> None:
    budi = emu.user("Budi")
    user_msg = await budi.send("lapor")
    keyboard = ReplyKeyboardMarkup([[KeyboardButton("Kirim lokasi", request_location=True)]], one_time_keyboard=True)
    answer = await bot.send_message(
        budi.id, "Bagikan lokasi", reply_markup=keyboard, reply_to_message_id=user_msg["message_id"]
    )
    assert answer.reply_to_message is not None
    assert answer.reply_to_message.message_id == user_msg["message_id"]
    assert answer.reply_markup is None  # reply keyboards are not echoed, as on Telegram
    shared = await budi.tap("Kirim lokasi", location=(-2.99, 104.75))
    assert shared["location"] == {"latitude": -2.99, "longitude": 104.75}
    with pytest.raises(AssertionError):  # one-time keyboard is gone after the tap
        await budi.tap("Kirim lokasi", location=(0.0, 0.0))


@pytest.mark.asyncio
async def test_unknown_blocked_and_deactivated_chats(bot: Bot, emu: Emulator) -> None:
    blocked, gone, fresh = emu.user("A"), emu.user("B"), emu.user("C", started=False)
    blocked.block_bot()
    gone.deactivate()
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(424242, "halo")
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(blocked.id, "halo")
    with pytest.raises(Forbidden, match="user is deactivated"):
        await bot.send_message(gone.id, "halo")
    with pytest.raises(Forbidden, match="bot can't initiate conversation"):
        await bot.send_message(fresh.id, "halo")
    assert emu.count(blocked) == emu.count(gone) == 0


@pytest.mark.asyncio
async def test_raw_error_bodies_match_the_bot_api(emu: Emulator, http: aiohttp.ClientSession) -> None:
    budi = emu.user("Budi")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"text": "x" * 4097}, "Bad Request: message is too long"),
        (
            {"text": "<b>tebal</i>", "parse_mode": "HTML"},
            'Bad Request: can\'t parse entities: Unmatched end tag at byte offset 8, expected "</b>", found "</i>"',
        ),
        (
            {"text": "pilih", "reply_markup": {"inline_keyboard": [[{"text": "x", "callback_data": "d" * 65}]]}},
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        ({"text": ""}, "Bad Request: message text is empty"),
    ]
    for params, description in cases:
        status, body = await call(http, emu, "sendMessage", chat_id=budi.id, **params)
        assert (status, body) == (400, {"ok": False, "error_code": 400, "description": description})
    status, body = await call(http, emu, "sendMessage", chat_id=budi.id, text="x" * 4096)
    assert status == 200 and body["ok"] is True
    assert emu.count(budi) == 1  # rejected sends are not delivered


@pytest.mark.asyncio
async def test_edits_history_not_modified_and_not_found(bot: Bot, emu: Emulator) -> None:
    budi = emu.user("Budi")
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("OK", callback_data="ok")]])
    msg = await bot.send_message(budi.id, "Status: menunggu", reply_markup=markup)
    await bot.edit_message_text("Status: aman", budi.id, msg.message_id, reply_markup=markup)
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Status: aman", budi.id, msg.message_id, reply_markup=markup)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", budi.id, 9999)
    await bot.edit_message_reply_markup(budi.id, msg.message_id, reply_markup=None)
    [sent] = emu.sent_to(budi)
    assert [v.text for v in sent.versions] == ["Status: menunggu", "Status: aman", "Status: aman"]
    assert sent.reply_markup is None and len(sent.edits) == 2
    assert await bot.delete_message(budi.id, msg.message_id) is True
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("lagi", budi.id, msg.message_id)


@pytest.mark.asyncio
async def test_form_and_multipart_requests(emu: Emulator, http: aiohttp.ClientSession) -> None:
    budi = emu.user("Budi")
    keyboard = json.dumps({"inline_keyboard": [[{"text": "Ya", "callback_data": "y"}]]})
    async with http.post(
        f"{emu.api_url}/sendMessage", data={"chat_id": str(budi.id), "text": "form", "reply_markup": keyboard}
    ) as resp:
        assert resp.status == 200 and (await resp.json())["result"]["reply_markup"]
    form = aiohttp.FormData()
    form.add_field("chat_id", str(budi.id))
    form.add_field("caption", "<i>rekap</i>")
    form.add_field("parse_mode", "HTML")
    form.add_field("document", b"tps,suara\n12,301\n", filename="rekap.csv", content_type="text/csv")
    async with http.post(f"{emu.api_url}/sendDocument", data=form) as resp:
        result = (await resp.json())["result"]
    assert result["document"]["file_name"] == "rekap.csv" and result["caption"] == "rekap"
    sent = emu.sent_to(budi)[-1]
    assert sent.file is not None and sent.file.data == b"tps,suara\n12,301\n"
    assert (sent.file.filename, sent.file.size) == ("rekap.csv", 17)
    assert [s.content for s in emu.sent_to(budi)] == ["form", "rekap"]


@pytest.mark.asyncio
async def test_ptb_document_upload_and_user_photo_download(bot: Bot, emu: Emulator) -> None:
    budi = emu.user("Budi")
    msg = await bot.send_document(budi.id, b"%PDF-1.4 laporan", filename="laporan.pdf", caption="Laporan")
    assert msg.document is not None and msg.document.file_name == "laporan.pdf"
    assert emu.last(budi).file.data == b"%PDF-1.4 laporan"  # type: ignore[union-attr]
    photo_msg = await budi.send_photo(caption="TPS 7", data=b"\xff\xd8jpegbytes")
    file = await bot.get_file(photo_msg["photo"][-1]["file_id"])
    assert bytes(await file.download_as_bytearray()) == b"\xff\xd8jpegbytes"


@pytest.mark.asyncio
async def test_get_updates_long_poll_wakes_immediately_and_offset_confirms(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    budi = emu.user("Budi")
    poll = asyncio.create_task(call(http, emu, "getUpdates", timeout=10))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await budi.send("/hadir")
    status, body = await asyncio.wait_for(poll, 2)
    assert status == 200 and time.monotonic() - started < 1.0  # not the 10 s timeout
    [update] = body["result"]
    assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    again = (await call(http, emu, "getUpdates", timeout=0))[1]["result"]
    assert again == [update]  # not confirmed yet
    confirmed = await call(http, emu, "getUpdates", offset=update["update_id"] + 1, timeout=0)
    assert confirmed[1]["result"] == [] and emu.pending_updates == 0


@pytest.mark.asyncio
async def test_second_poller_terminates_the_first_with_409(emu: Emulator, http: aiohttp.ClientSession) -> None:
    first = asyncio.create_task(call(http, emu, "getUpdates", timeout=5))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(call(http, emu, "getUpdates", timeout=0))
    status, body = await asyncio.wait_for(first, 2)
    assert status == 409 and "terminated by other getUpdates request" in body["description"]
    assert (await second)[0] == 200


@pytest.mark.asyncio
async def test_get_updates_conflicts_while_webhook_is_set(bot: Bot) -> None:
    assert await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="s3cret")
    info = await bot.get_webhook_info()
    assert info.url == "http://127.0.0.1:9/hook"
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates(timeout=0)
    assert await bot.delete_webhook()
    assert await bot.get_updates(timeout=0) == ()


@pytest.mark.asyncio
async def test_commands_are_stored_per_scope_and_language(bot: Bot, emu: Emulator) -> None:
    budi = emu.user("Budi", language_code="id")
    posko = emu.group("Posko", [budi])
    await bot.set_my_commands([BotCommand("start", "Mulai")])
    await bot.set_my_commands(
        [BotCommand("hadir", "Absen")], scope=BotCommandScopeAllPrivateChats(), language_code="id"
    )
    await bot.set_my_commands([BotCommand("status", "Status posko")], scope=BotCommandScopeChat(posko.id))
    assert emu.commands() == [{"command": "start", "description": "Mulai"}]
    assert emu.commands({"type": "all_private_chats"}, "id") == [{"command": "hadir", "description": "Absen"}]
    assert emu.commands({"type": "all_private_chats"}) is None
    assert [c["command"] for c in emu.effective_commands(budi)] == ["hadir"]
    assert [c["command"] for c in emu.effective_commands(budi, posko)] == ["status"]
    stored = await bot.get_my_commands(scope=BotCommandScopeChat(posko.id))
    assert [c.command for c in stored] == ["status"]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Hadir", "bad: uppercase")])
    await bot.delete_my_commands(scope=BotCommandScopeChat(posko.id))
    assert emu.commands({"type": "chat", "chat_id": posko.id}) is None


@pytest.mark.asyncio
async def test_group_getters(bot: Bot, emu: Emulator) -> None:
    ketua, anggota = emu.user("Ketua"), emu.user("Anggota")
    posko = emu.group("Posko 1", [ketua, anggota], bot_admin=True)
    chat = await bot.get_chat(posko.id)
    assert chat.type == "supergroup" and chat.title == "Posko 1"
    admins = await bot.get_chat_administrators(posko.id)
    assert {a.user.id for a in admins} == {ketua.id, bot.id}
    assert (await bot.get_chat_member(posko.id, anggota.id)).status == "member"
    posko.kick_bot()
    with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
        await bot.send_message(posko.id, "halo")


@pytest.mark.asyncio
async def test_copy_and_forward_a_user_location_into_a_group(bot: Bot, emu: Emulator) -> None:
    budi = emu.user("Budi")
    posko = emu.group("Posko", [budi])
    shared = await budi.send_location(-2.97, 104.74)
    copied = await bot.copy_message(posko.id, budi.id, shared["message_id"])
    forwarded = await bot.forward_message(posko.id, budi.id, shared["message_id"])
    assert forwarded.forward_origin is not None and forwarded.location is not None
    kinds = [(m.kind, m.method, m.base["location"]["latitude"]) for m in emu.sent_to(posko)]
    assert kinds == [("location", "copyMessage", -2.97), ("location", "forwardMessage", -2.97)]
    assert emu.sent_to(posko)[0].message_id == copied.message_id
    with pytest.raises(BadRequest, match="Message to copy not found"):
        await bot.copy_message(posko.id, budi.id, 999)


@pytest.mark.asyncio
async def test_basic_group_upgrade_answers_chat_migrated(bot: Bot, emu: Emulator) -> None:
    ketua = emu.user("Ketua")
    basic = emu.group("Posko lama", [ketua], supergroup=False)
    assert (await bot.send_message(basic.id, "sebelum")).chat.type == "group"
    upgraded = basic.migrate_to_supergroup()
    with pytest.raises(ChatMigrated) as err:
        await bot.send_message(basic.id, "sesudah")
    assert err.value.new_chat_id == upgraded.id
    updates = await bot.get_updates(timeout=0)
    assert [u.message.migrate_to_chat_id for u in updates if u.message] == [upgraded.id, None]
    assert (await bot.send_message(upgraded.id, "sesudah")).chat.type == "supergroup"
