"""HTTP control API for a standalone emulator (``python -m bot.emulator``).

When the bot runs in another process (``siaga demo``, benchmarks of worker
processes) the test driver cannot call :class:`SimUser` methods directly, so
the same actions are offered as small JSON endpoints under ``/_emulator/``
on the emulator's own port:

* ``POST /_emulator/users``    ``{"first_name", "user_id"?, "language_code"?, "username"?}``
* ``POST /_emulator/groups``   ``{"title", "member_ids": [...], "bot_admin"?}``
* ``POST /_emulator/send``     ``{"user_id", "text", "chat_id"?}`` (unknown users are created)
* ``POST /_emulator/location`` ``{"user_id", "latitude", "longitude", "chat_id"?}``
* ``POST /_emulator/press``    ``{"user_id", "chat_id", "message_id", "button"}``
* ``GET  /_emulator/sent/{chat_id}`` and ``GET /_emulator/stats``
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

from aiohttp import web

from bot.emulator.hub import Hub
from bot.emulator.simulate import ButtonNotFound, SimGroup, SimUser
from bot.emulator.state import SentMessage


class Directory(Hub, Protocol):
    """The emulator as the control API uses it: it also makes users and groups."""

    def user(
        self,
        first_name: str = "Budi",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "id",
        user_id: int | None = None,
        started: bool = True,
        phone_number: str | None = None,
    ) -> SimUser: ...

    def group(
        self,
        title: str = "Posko",
        members: Iterable[SimUser] = (),
        *,
        supergroup: bool = True,
        bot_admin: bool = False,
        admins: Iterable[SimUser] = (),
        username: str | None = None,
    ) -> SimGroup: ...


def sent_json(msg: SentMessage) -> dict[str, Any]:
    """A delivered message as plain JSON for out-of-process drivers."""
    return {
        "message_id": msg.message_id,
        "kind": msg.kind,
        "text": msg.text,
        "caption": msg.caption,
        "parse_mode": msg.parse_mode,
        "reply_markup": msg.reply_markup,
        "time": msg.time,
        "wall": msg.wall,
        "edits": [
            {"text": v.text, "caption": v.caption, "reply_markup": v.reply_markup, "time": v.mono} for v in msg.edits
        ],
        "deleted": msg.deleted,
    }


def add_control_routes(app: web.Application, emu: Directory) -> None:
    users: dict[int, SimUser] = {}

    def user_for(body: dict[str, Any]) -> SimUser:
        uid = int(body["user_id"])
        if uid not in users:
            users[uid] = emu.user(
                body.get("first_name") or f"User {uid}",
                user_id=uid,
                language_code=body.get("language_code", "id"),
                username=body.get("username"),
            )
        return users[uid]

    async def body_of(request: web.Request) -> dict[str, Any]:
        data = await request.json() if request.can_read_body else {}
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="JSON object expected")
        return data

    def reply(data: Any, status: int = 200) -> web.Response:
        return web.Response(status=status, text=json.dumps(data), content_type="application/json")

    async def create_user(request: web.Request) -> web.Response:
        body = await body_of(request)
        if "user_id" not in body:
            made = emu.user(
                body.get("first_name") or "User",
                language_code=body.get("language_code", "id"),
                username=body.get("username"),
            )
            users[made.id] = made
            return reply({"user_id": made.id})
        return reply({"user_id": user_for(body).id})

    async def create_group(request: web.Request) -> web.Response:
        body = await body_of(request)
        members = [user_for({"user_id": uid}) for uid in body.get("member_ids", [])]
        group = emu.group(body.get("title") or "Group", members, bot_admin=bool(body.get("bot_admin")))
        return reply({"chat_id": group.id})

    async def send(request: web.Request) -> web.Response:
        body = await body_of(request)
        return reply(await user_for(body).send(str(body["text"]), chat=body.get("chat_id")))

    async def location(request: web.Request) -> web.Response:
        body = await body_of(request)
        return reply(
            await user_for(body).send_location(
                float(body["latitude"]), float(body["longitude"]), chat=body.get("chat_id")
            )
        )

    async def press(request: web.Request) -> web.Response:
        body = await body_of(request)
        try:
            pressed = await user_for(body).press(int(body["message_id"]), str(body["button"]), chat=body.get("chat_id"))
        except ButtonNotFound as err:
            return reply({"error": str(err)}, 400)
        return reply({"callback_query_id": pressed.id})

    async def sent(request: web.Request) -> web.Response:
        return reply([sent_json(m) for m in emu.sent_to(int(request.match_info["chat_id"]))])

    async def stats(request: web.Request) -> web.Response:
        state = emu.state
        return reply(
            {
                "calls": len(state.calls),
                "delivered": sum(map(len, state.sent.values())),
                "rejections": Counter(r.reason for r in state.rejections),
                "pending_updates": len(state.updates),
                "callback_answers": len(state.callback_answers),
            }
        )

    app.router.add_post("/_emulator/users", create_user)
    app.router.add_post("/_emulator/groups", create_group)
    app.router.add_post("/_emulator/send", send)
    app.router.add_post("/_emulator/location", location)
    app.router.add_post("/_emulator/press", press)
    app.router.add_get("/_emulator/sent/{chat_id}", sent)
    app.router.add_get("/_emulator/stats", stats)
