"""Request parameter decoding for the three encodings the Bot API accepts.

python-telegram-bot 22 never sends a JSON body: it posts
``application/x-www-form-urlencoded`` (no files) or ``multipart/form-data``
(files), and every value is a *string* - numbers as ``"123"``, booleans as
``"true"``, nested objects (reply_markup, reply_parameters, scope, commands,
entities) as JSON text. Other clients post a JSON body with native types, or
use the query string. :class:`Params` hides the difference: each getter
accepts both the native and the string form, as Telegram does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web
from multidict import MultiDictProxy

from bot.emulator.errors import ApiError, bad_request


@dataclass
class Upload:
    """One file part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


class Params:
    """Typed access to request parameters; wrong types answer 400 like Telegram."""

    def __init__(self, values: dict[str, Any], uploads: dict[str, Upload] | None = None):
        self.values = values
        self.uploads = uploads or {}

    def __contains__(self, name: str) -> bool:
        return name in self.values or name in self.uploads

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        if value is None:
            return default
        return value if isinstance(value, str) else json.dumps(value)

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        try:
            return int(value)
        except (TypeError, ValueError):
            pass
        try:
            return int(float(value))
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be of type Integer') from None

    def number(self, name: str, default: float | None = None) -> float | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be of type Number') from None

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("true", "1", "yes")

    def json(self, name: str) -> Any:
        """A nested object: native in JSON bodies, JSON text in form posts."""
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            if name == "reply_markup":
                raise bad_request("can't parse reply keyboard markup JSON object") from None
            raise bad_request(f"can't parse {name} JSON object") from None

    def chat_id(self, name: str = "chat_id") -> int | str:
        """Chat id as int, or an ``@username`` string; missing -> 400 like Telegram."""
        value = self.values.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        try:
            return int(text)
        except ValueError:
            if text.startswith("@"):
                return text
            raise bad_request("chat not found") from None

    def loggable(self) -> dict[str, Any]:
        """Values plus a summary of uploads (bytes left out) for call records."""
        out = dict(self.values)
        for key, up in self.uploads.items():
            out[key] = {"upload": up.filename, "size": len(up.data)}
        return out


async def read_params(request: web.Request) -> Params:
    """Merge query string and body (JSON, urlencoded or multipart)."""
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    ctype = request.content_type
    if request.can_read_body:
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON object") from None
            if isinstance(body, dict):
                values.update(body)
        elif ctype == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                name = part.name or ""
                data = await part.read(decode=False)
                if part.filename is not None:
                    uploads[name] = Upload(name, part.filename, part.headers.get("Content-Type"), bytes(data))
                else:
                    values[name] = bytes(data).decode("utf-8")
        else:
            form: MultiDictProxy[Any] = await request.post()
            values.update({k: v for k, v in form.items() if isinstance(v, str)})
    return Params(values, uploads)
