"""A real python-telegram-bot Application against the emulator, and webhook delivery."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.emulator import ButtonNotFound, Emulator, running


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        "Selamat datang di <b>Siaga</b>",
        parse_mode="HTML",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Siap", callback_data="siap")]]),
    )


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer(f"Tercatat: {query.data}", show_alert=True)
    await query.edit_message_text("Status: siap")


async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text("Posko aman")


async def echo_location(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.location is not None
    origin = "terusan" if message.forward_origin else "langsung"
    await message.reply_text(f"Lokasi {origin} {message.location.latitude:.2f}")


@pytest_asyncio.fixture
async def app(emu: Emulator) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    application = ApplicationBuilder().token(emu.token).base_url(emu.base_url).base_file_url(emu.base_file_url).build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("status", status))
    application.add_handler(CallbackQueryHandler(pressed))
    application.add_handler(MessageHandler(filters.LOCATION, echo_location))
    async with running(application, timeout=2):
        yield application


@pytest.mark.asyncio
async def test_start_reply_button_press_and_callback_answer(emu: Emulator, app: Any) -> None:
    budi = emu.user("Budi")
    await budi.send("/start")
    welcome = await budi.next_message(timeout=5)
    assert welcome.text == "Selamat datang di Siaga" and welcome.button_texts == ["Siap"]
    with pytest.raises(ButtonNotFound):
        await budi.press(welcome, "Tidak ada")
    press = await budi.press(welcome, "Siap")
    answer = await press.answer(timeout=5)
    assert (answer.text, answer.show_alert) == ("Tercatat: siap", True)
    assert emu.callback_answers == [answer]
    edited = await emu.wait_for(budi, lambda m: m.text == "Status: siap", timeout=5)
    assert edited is welcome and edited.reply_markup is None  # edit without markup drops it
    with pytest.raises(ButtonNotFound):  # the keyboard is gone after the edit
        await budi.press(welcome, "Siap")


@pytest.mark.asyncio
async def test_group_commands_respect_bot_name_and_privacy_mode(emu: Emulator, app: Any) -> None:
    ani, budi = emu.user("Ani"), emu.user("Budi")
    posko = emu.group("Posko Plaju", [ani, budi])
    await ani.send_in(posko, "/status@OtherBot")
    await ani.send_in(posko, "obrolan biasa")
    await budi.send_in(posko, "/status", mention_bot=True)
    reply = await posko.next_message(timeout=5)
    assert reply.text == "Posko aman" and reply.base["reply_to_message"]["from"]["id"] == budi.id
    await asyncio.sleep(0.2)
    assert emu.count(posko) == 1  # the other bot's command and chatter never reached the bot


@pytest.mark.asyncio
async def test_forwarded_and_duplicated_locations_reach_handlers(emu: Emulator, app: Any) -> None:
    budi = emu.user("Budi")
    await budi.send_location(-2.98, 104.76, forwarded=True)
    assert (await budi.next_message()).text == "Lokasi terusan -2.98"
    await budi.send_location(-3.01, 104.70)
    assert (await budi.next_message()).text == "Lokasi langsung -3.01"
    emu.duplicate_last_update()
    assert (await budi.next_message()).text == "Lokasi langsung -3.01"


@pytest.mark.asyncio
async def test_inject_many_is_drained_by_the_application(emu: Emulator, app: Any) -> None:
    users = [emu.user(f"Relawan {i}") for i in range(150)]
    emu.inject_many(u.compose("/status") for u in users)
    await emu.until(lambda: all(emu.count(u) == 1 for u in users) or None, timeout=15)
    assert emu.pending_updates == 0 and len(emu.calls_to("sendMessage")) == 150


@pytest.mark.asyncio
async def test_webhook_round_robin_with_secret_header_and_retry(emu: Emulator) -> None:
    received: list[tuple[str, str | None, int]] = []
    fail_first = {"done": False}

    def target(name: str) -> web.Application:
        async def hook(request: web.Request) -> web.Response:
            update = json.loads(await request.text())
            received.append((name, request.headers.get("X-Telegram-Bot-Api-Secret-Token"), update["update_id"]))
            if name == "a" and not fail_first["done"]:
                fail_first["done"] = True
                return web.Response(status=500)
            return web.Response(text="ok")

        application = web.Application()
        application.router.add_post("/hook", hook)
        return application

    runners, urls = [], []
    for name in ("a", "b"):
        runner = web.AppRunner(target(name))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}/hook")
    try:
        emu.set_webhook_targets(urls)
        emu.set_webhook("https://siaga.example/hook", secret_token="rahasia", max_connections=1)
        budi = emu.user("Budi")
        for i in range(4):
            await budi.send(f"pesan {i}")
        await emu.until(lambda: emu.pending_updates == 0 or None, timeout=5)
        assert {secret for _, secret, _ in received} == {"rahasia"}
        assert [name for name, _, _ in received] == ["a", "b", "a", "b", "a"]
        ids = [uid for _, _, uid in received]
        assert ids[0] == ids[1] and sorted(set(ids)) == [1, 2, 3, 4]  # failed one redelivered
        assert emu.webhook.info()["last_error_message"].endswith("500")
    finally:
        for runner in runners:
            await runner.cleanup()


@pytest.mark.asyncio
async def test_standalone_cli_and_control_api() -> None:
    root_dir = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root_dir), os.environ.get("PYTHONPATH")]))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.emulator", "--port", "0", stdout=asyncio.subprocess.PIPE, cwd=root_dir, env=env
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
        assert line.startswith("base_url=http://127.0.0.1:") and line.endswith("/bot")
        base_url = line.split("=", 1)[1]
        root = base_url[: -len("/bot")]
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{root}/_emulator/send", json={"user_id": 555, "first_name": "Sari", "text": "/start"}
            ) as r:
                assert (await r.json())["text"] == "/start"
            async with Bot("123456:TEST-TOKEN", base_url=base_url) as bot:
                [update] = await bot.get_updates(timeout=0)
                assert update.message is not None and update.message.from_user is not None
                assert update.message.from_user.first_name == "Sari"
                await bot.send_message(555, "Halo Sari")
            async with http.get(f"{root}/_emulator/sent/555") as r:
                assert [m["text"] for m in await r.json()] == ["Halo Sari"]
    finally:
        proc.terminate()
        await proc.wait()
