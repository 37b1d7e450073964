"""Logs: one key=value line per event, and never a token, secret, phone number, NRP or code in one.

The cases are the lines libraries really write: httpx's request line with
the Bot API URL, python-telegram-bot's DEBUG dump of an update (as JSON from
the webhook and as the Update's repr), SQLAlchemy's parameters and
PostgreSQL's key detail in a traceback.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from telegram import Update

from bot.config import load_settings
from bot.ops import logs
from bot.ops.logs import redact, secrets_of
from bot.services.registration import deep_link, new_code

TOKEN = "7123456789:AAFakeTokenForTestsOnly_abcdefghijk"
CODE = "K7PQ2MZX9A"
SQL_ERROR = (
    "[SQL: INSERT INTO personnel (nrp, phone) VALUES ($1, $2)]\n[parameters: ('85010123', 'x')]\n"
    "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
)


@pytest.mark.parametrize(
    "line",
    [
        f'HTTP Request: POST https://api.telegram.org/bot{TOKEN}/sendMessage "HTTP/1.1 200 OK"',
        "http://127.0.0.1:4444/bot123456:TEST-TOKEN/getMe",
        f"token {TOKEN} in a sentence",
    ],
)
def test_the_bot_token_is_cut_from_urls_and_text(line: str) -> None:
    out = redact(line)
    assert "<token>" in out
    assert "TEST-TOKEN" not in out and "AAFakeToken" not in out


PHONES = [
    "+6281234567890",
    "081234567890",
    "0812-3456-7890",
    "+62 812 3456 7890",
    "6281234567890",
    "0812.3456.789",
    "+62711123456",
]


@pytest.mark.parametrize("phone", PHONES)
def test_phone_numbers_are_cut_however_written(phone: str) -> None:
    out = redact(f"hubungi {phone} segera")
    assert out == "hubungi <phone> segera"


def test_ids_times_and_codes_of_things_are_left_alone() -> None:
    line = (
        "update_id=123456789 chat_id=-1002000000001 user 700000001 at 08:00 on 2024-02-14 "
        "TPS-A1-001 312 m 0.25 s outbox row 4711 HTTP/1.1 POLSEK-A1 KONTINJENSI"
    )
    assert redact(line) == line


@pytest.mark.parametrize(
    ("line", "gone"),
    [
        (f"text='/start {CODE}'", CODE),
        (f"/daftar 85010123 {CODE.lower()}", "85010123"),
        (f"/daftar 85010123 {CODE.lower()}", CODE.lower()),
        ("/register@SiagaBot LM0000001 abcde-23456", "LM0000001"),
        ("/register@SiagaBot LM0000001 abcde-23456", "abcde-23456"),
        (deep_link("SiagaBot", CODE), CODE),
        (f"code {CODE} alone", CODE),
        ("NRP 85010123 tidak ada", "85010123"),
        ("nrp=LM0000001;", "LM0000001"),
        ("{'nrp': '3100000001'}", "3100000001"),
        ('"phone_number": "+628120000006"', "+628120000006"),
        ('"secret_token": "abc-SECRET_1"', "abc-SECRET_1"),
        ("DETAIL:  Key (nrp)=(85010123) already exists.", "85010123"),
        (SQL_ERROR, "85010123"),
        ("postgresql+asyncpg://siaga:s3cretpw@db.example.org/siaga", "s3cretpw"),
    ],
)
def test_registration_codes_and_nrps_are_cut_where_they_are_named(line: str, gone: str) -> None:
    assert gone not in redact(line)


def test_a_code_standing_alone_is_cut_too() -> None:
    assert redact(f"issued {new_code()} and {new_code()}") == "issued <code> and <code>"


def test_the_sql_and_the_command_stay_readable() -> None:
    assert redact("/daftar 85010123 K7PQ2MZX9A") == "/daftar <redacted>"
    assert redact("DETAIL:  Key (nrp)=(85010123) already exists.") == "DETAIL:  Key (nrp)=(<redacted>) already exists."
    assert redact("/daftargrup POLSEK-A1") == "/daftargrup POLSEK-A1"
    assert redact("/status POLRES-A") == "/status POLRES-A"


def test_configured_secrets_are_collected_and_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIAGA_TELEGRAM__TOKEN", "short:tok")
    monkeypatch.setenv("SIAGA_TELEGRAM__WEBHOOK_SECRET", "hook-secret_42")
    monkeypatch.setenv("SIAGA_DATABASE__URL", "postgresql+asyncpg://siaga:pw-9x@db/siaga")
    secrets = secrets_of(load_settings(None))
    assert set(secrets) == {"short:tok", "hook-secret_42", "pw-9x"}
    assert (
        redact("setWebhook secret hook-secret_42 with short:tok", secrets) == "setWebhook secret <secret> with <secret>"
    )


# -- the whole pipeline: records from libraries, through configure(), to lines ------------------


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {name: logging.getLogger(name).level for name in logs.QUIET}
    stream = io.StringIO()
    logs.configure("DEBUG", secrets=["hook-secret_42"], stream=stream)
    logging.getLogger("httpx").setLevel(logging.INFO)  # configure() quiets it; show its line to prove the point
    try:
        yield stream
    finally:
        root.handlers[:], level, levels = saved
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)


def _update_json() -> dict[str, object]:
    user = {"id": 700000001, "is_bot": False, "first_name": "Budi", "language_code": "id"}
    chat = {"id": 700000001, "type": "private", "first_name": "Budi"}
    return {
        "update_id": 42,
        "message": {
            "message_id": 7,
            "date": 1707872400,
            "chat": chat,
            "from": user,
            "text": f"/start {CODE}",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            "contact": {"phone_number": "+628120000006", "first_name": "Budi", "user_id": 700000001},
        },
    }


def _parse(line: str) -> dict[str, str]:
    pairs = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line)
    return {key: value[1:-1] if value.startswith('"') else value for key, value in pairs}


def test_library_lines_come_out_as_one_clean_line_each(captured: io.StringIO) -> None:
    update = Update.de_json(_update_json(), None)
    logging.getLogger("httpx").info(
        'HTTP Request: POST %s "HTTP/1.1 200 OK"', f"https://api.telegram.org/bot{TOKEN}/getMe"
    )
    logging.getLogger("telegram.ext._utils.webhookhandler").debug(
        "Webhook received data: %s", json.dumps(_update_json())
    )
    logging.getLogger("telegram.ext.Application").debug("Processing update %s", update)
    logging.getLogger("telegram.ext.ExtBot").debug(
        "Calling Bot API endpoint `setWebhook` with parameters `%s`",
        {"url": "https://x/telegram", "secret_token": "hook-secret_42"},
    )
    try:
        raise ValueError("Key (nrp)=(85010123) already exists; call 0812-3456-7890\nsecond line")
    except ValueError:
        logging.getLogger("siaga.handlers").exception("update %s failed", 42)

    lines = captured.getvalue().splitlines()
    assert len(lines) == 5
    text = captured.getvalue()
    for secret in (TOKEN, CODE, "+628120000006", "85010123", "0812-3456-7890", "hook-secret_42"):
        assert secret not in text, secret
    fields = [_parse(line) for line in lines]
    assert [f["logger"] for f in fields] == [
        "httpx",
        "telegram.ext._utils.webhookhandler",
        "telegram.ext.Application",
        "telegram.ext.ExtBot",
        "siaga.handlers",
    ]
    assert all({"ts", "level", "logger", "pid", "msg"} <= f.keys() for f in fields)
    assert fields[0]["msg"].startswith("HTTP Request: POST https://api.telegram.org/<token>/getMe")
    assert "/start <redacted>" in fields[1]["msg"] and "/start <redacted>" in fields[2]["msg"]
    assert fields[4]["level"] == "error" and "Traceback" in fields[4]["exc"] and "\\n" in fields[4]["exc"]
    assert "Key (nrp)=(<redacted>)" in fields[4]["exc"] and "<phone>" in fields[4]["exc"]


def test_other_handlers_see_the_redacted_message_too(captured: io.StringIO) -> None:
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    collector = Collect()
    root = logging.getLogger()
    root.handlers.insert(1, collector)
    try:
        logging.getLogger("siaga.test").warning("registered with /start %s from %s", CODE, "+628120000006")
    finally:
        root.removeHandler(collector)
    assert seen == ["registered with /start <redacted> from <phone>"]
