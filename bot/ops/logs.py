"""Logging set-up: one line per event in key=value form, with no secret or personal data in any line.

Every line reads `ts=... level=... logger=... pid=... msg="..."`, plus
`exc="..."` when a traceback comes with it, newlines escaped, so a log
shipper (journald, Loki, Vector) keeps an event whole and can split it into
fields without a parser of our own. key=value rather than JSON: operators
read these lines in `journalctl` during the day.

What may never reach a line: the bot token (httpx and python-telegram-bot
log Bot API URLs, which contain it), the webhook secret, database
passwords, phone numbers, NRPs and registration codes (PTB logs whole
updates at DEBUG, `/start CODE` and `/daftar NRP CODE` included; SQLAlchemy
errors quote statement parameters; PostgreSQL quotes key values). The
formatter redacts the finished message and traceback, so a record from any
library, at any level, passes through `redact` before it is written.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from bot.config import Settings

TOKEN_PATTERN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}|bot\d+:[^/\s\"']+")

# Indonesian mobile numbers however they are written: +62 812-3456-7890, 6281234567890,
# 0812 3456 7890; and any other +62 number.
PHONE_PATTERN = re.compile(
    r"(?<![\w+])(?:\+62|62|0)[ .-]?8\d{2}(?:[ .-]?\d){6,9}(?!\d)"
    r"|\+62[ .-]?\d(?:[ .-]?\d){6,12}(?!\d)"
)
# What the person typed after /start, /daftar or /register: a code, or an NRP and a code.
COMMAND_ARGS_PATTERN = re.compile(
    r"(/start(?:@\w+)?)[ \t]+[^\s\"'\\]+|(/(?:daftar|register)(?:@\w+)?)(?:[ \t]+[^\s\"'\\]+){1,2}", re.IGNORECASE
)
DEEP_LINK_PATTERN = re.compile(r"([?&]start=)[^&\s\"'\\]+", re.IGNORECASE)
# An NRP named as one: "NRP 85010123", "nrp=LM0000001", "'nrp': '3100000001'".
NRP_PATTERN = re.compile(r"(\bNRP\b['\"]?\s*[:=#]?\s*['\"]?)[A-Z]{0,3}\d{5,}", re.IGNORECASE)
# Values under keys that name personal or secret data, in reprs, JSON and key=value text.
KEYED_PATTERN = re.compile(
    r"((?<![\w])['\"]?(?:phone_number|phone|secret_token|password|passwd|token|nrp|code)['\"]?\s*[:=]\s*)"
    r"(['\"]?)([^'\",;&\s)}\]]+)",
    re.IGNORECASE,
)
# A registration code standing alone: ten characters of its alphabet, letters and digits mixed.
CODE_PATTERN = re.compile(r"\b(?=[A-Z2-9]*[2-9])(?=[2-9]*[A-Z])[A-HJ-NP-Z2-9]{10}\b")
# SQLAlchemy quotes statement parameters, PostgreSQL the key of a violated constraint.
SQL_PARAMETERS_PATTERN = re.compile(r"\[parameters: .*?\](?=\s*(?:\(Background|\n|$))", re.DOTALL)
PG_KEY_PATTERN = re.compile(r"(Key \([^)]*\)=\().*?(\))")
URL_PASSWORD_PATTERN = re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)")

REDACTED = "<redacted>"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the token, secrets, phone numbers, NRPs or registration codes in it."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<secret>")
    text = TOKEN_PATTERN.sub("<token>", text)
    text = URL_PASSWORD_PATTERN.sub(r"\1<secret>\2", text)
    text = SQL_PARAMETERS_PATTERN.sub("[parameters: <redacted>]", text)
    text = PG_KEY_PATTERN.sub(rf"\1{REDACTED}\2", text)
    text = COMMAND_ARGS_PATTERN.sub(lambda match: f"{match.group(1) or match.group(2)} {REDACTED}", text)
    text = DEEP_LINK_PATTERN.sub(rf"\1{REDACTED}", text)
    text = KEYED_PATTERN.sub(rf"\1\2{REDACTED}", text)
    text = NRP_PATTERN.sub(rf"\1{REDACTED}", text)
    text = PHONE_PATTERN.sub("<phone>", text)
    return CODE_PATTERN.sub("<code>", text)


def secrets_of(settings: Settings) -> list[str]:
    """The configured secrets, redacted wherever they appear: token, webhook secret, database password."""
    found = [value.get_secret_value() for value in (settings.telegram.token, settings.telegram.webhook_secret) if value]
    password = URL_PASSWORD_PATTERN.search(settings.database.url)
    if password:
        found.append(settings.database.url[password.end(1) : password.start(2)])
    return [secret for secret in found if len(secret) >= 4]


def _quote(value: str) -> str:
    """A logfmt value: bare when it can be, else double-quoted with escapes, never over two lines."""
    if value and not any(ch in value for ch in ' ="\\\n\r\t'):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


class KeyValueFormatter(logging.Formatter):
    """`ts=... level=... logger=... pid=... msg="..." [exc="..."]`, redacted, on one line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields = [
            ("ts", f"{stamp}.{int(record.msecs):03d}Z"),
            ("level", record.levelname.lower()),
            ("logger", record.name),
            ("pid", str(record.process or os.getpid())),
            ("msg", redact(record.getMessage(), self.secrets)),
        ]
        trace = record.exc_text or (self.formatException(record.exc_info) if record.exc_info else "")
        if trace:
            fields.append(("exc", redact(trace, self.secrets)))
        if record.stack_info:
            fields.append(("stack", redact(record.stack_info, self.secrets)))
        return " ".join(f"{key}={_quote(value)}" for key, value in fields)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message in place, for handlers that format records their own way."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self.secrets = [secret for secret in (secrets or []) if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message, self.secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


QUIET = ("httpx", "httpcore", "apscheduler", "aiosqlite", "alembic", "tornado.access")


def configure(level: str = "INFO", secrets: list[str] | None = None, stream: TextIO | None = None) -> None:
    """One handler on the root logger, writing redacted key=value lines to stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter(secrets or []))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)


__all__ = ["KeyValueFormatter", "RedactSecrets", "configure", "redact", "secrets_of"]
