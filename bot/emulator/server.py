"""aiohttp application answering the Bot API at ``/bot<token>/<method>``.

Request lifecycle: token check (401 "Unauthorized") -> method lookup,
case-insensitive like Telegram (404 "Not Found") -> parameter decoding ->
fault injection -> handler -> ``{"ok": true, "result": ...}``. Every call is
recorded so tests and benchmarks can count what the bot really sent.

This module also holds the non-message methods: getMe, getUpdates with long
polling, webhooks, command menus and chat/member getters.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from aiohttp import web

from bot.emulator.errors import ApiError, bad_request, conflict, too_many_requests
from bot.emulator.hub import Hub
from bot.emulator.methods import MESSAGE_HANDLERS, Handler, lookup_chat
from bot.emulator.params import Params, read_params
from bot.emulator.state import CallRecord, Chat, Rejection
from bot.emulator.updates import DEFAULT_ALLOWED

log = logging.getLogger(__name__)


class Described:
    """A result that Telegram sends with a ``description`` next to it."""

    def __init__(self, result: Any, description: str):
        self.result, self.description = result, description


def _reply(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


class ApiServer:
    """Routes HTTP requests to method handlers; owns the getUpdates poller slot."""

    def __init__(self, emu: Hub):
        self.emu = emu
        self.handlers: dict[str, Handler] = {**META_HANDLERS, **MESSAGE_HANDLERS}
        self.poller: object | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self.handle)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self.download)

    async def handle(self, request: web.Request) -> web.Response:
        emu = self.emu
        method = request.match_info["method"]
        if request.match_info["token"] != emu.token:
            return _reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        handler = self.handlers.get(method.lower())
        if handler is None:
            return _reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        params = Params({})
        try:
            params = await read_params(request)
            status, body = await self._call(method, handler, params)
        except ApiError as err:
            status, body = err.code, err.body()
        except Exception:  # a bug in the emulator must not look like a Telegram answer
            log.exception("emulator failed on %s", method)
            status, body = 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        if emu.record_calls:
            mono, _ = emu.state.now()
            emu.state.calls.append(CallRecord(method, params.loggable(), status, mono))
        return _reply(status, body)

    async def _call(self, method: str, handler: Handler, params: Params) -> tuple[int, dict[str, Any]]:
        emu = self.emu
        fault = emu.faults.roll(method)
        chat_ref = params.values.get("chat_id")
        chat_id = int(chat_ref) if isinstance(chat_ref, (int, str)) and str(chat_ref).lstrip("-").isdigit() else None
        mono, _ = emu.state.now()
        if fault == "429":
            emu.state.rejections.append(Rejection(method, chat_id, 429, "fault", emu.faults.retry_after, mono))
            raise too_many_requests(emu.faults.retry_after)
        code = emu.faults.status_5xx
        failure = {
            "ok": False,
            "error_code": code,
            "description": "Bad Gateway" if code == 502 else "Internal Server Error",
        }
        if fault == "5xx" and not emu.faults.deliver_on_5xx:
            emu.state.rejections.append(Rejection(method, chat_id, code, "fault", None, mono))
            return code, failure
        result = await handler(emu, params)
        if fault == "5xx":
            emu.state.rejections.append(Rejection(method, chat_id, code, "fault-delivered", None, mono))
            return code, failure
        if isinstance(result, Described):
            return 200, {"ok": True, "result": result.result, "description": result.description}
        return 200, {"ok": True, "result": result}

    async def download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.emu.token:
            return _reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        path = request.match_info["path"]
        stored = next((f for f in self.emu.state.files.values() if f.file_path == path), None)
        if stored is None:
            return _reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")


async def get_me(emu: Hub, p: Params) -> Any:
    return {
        **emu.state.bot.to_json(),
        "can_join_groups": True,
        "can_read_all_group_messages": not emu.privacy_mode,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


async def get_updates(emu: Hub, p: Params) -> Any:
    """Long polling: answer as soon as an update is queued or ``timeout`` ends.

    Like Telegram, a newer getUpdates call terminates an older one with 409, and
    updates stay queued until confirmed by a later ``offset``.
    """
    server, queue, webhook = emu.server, emu.state.updates, emu.webhook
    busy = conflict(
        "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
    )
    if webhook.active:
        raise busy
    me = object()
    server.poller = me
    queue.signal.fire()
    allowed = p.json("allowed_updates")
    if isinstance(allowed, list):
        queue.allowed = frozenset(allowed) or DEFAULT_ALLOWED
    offset = p.integer("offset")
    if offset:
        queue.confirm(offset)
    limit = min(100, max(1, p.integer("limit", 100) or 100))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, p.number("timeout", 0.0) or 0.0)
    try:
        while True:
            if server.poller is not me:
                raise conflict(
                    "terminated by other getUpdates request; make sure that only one bot instance is running"
                )
            if webhook.active:
                raise busy
            entries = queue.entries(limit)
            remaining = deadline - loop.time()
            if entries or remaining <= 0 or emu.closing:
                return [update for _, update in entries]
            await queue.signal.wait(remaining)
    finally:
        if server.poller is me:
            server.poller = None


async def set_webhook(emu: Hub, p: Params) -> Any:
    url = p.string("url") or ""
    if not url:
        return await delete_webhook(emu, p)
    secret = p.string("secret_token")
    if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
        raise bad_request("secret token contains unallowed characters")
    allowed = p.json("allowed_updates")
    if isinstance(allowed, list):
        emu.state.updates.allowed = frozenset(allowed) or DEFAULT_ALLOWED
    if p.flag("drop_pending_updates"):
        emu.state.updates.clear()
    emu.webhook.configure(
        url, secret, p.integer("max_connections", 40) or 40, allowed if isinstance(allowed, list) else None
    )
    return Described(True, "Webhook was set")


async def delete_webhook(emu: Hub, p: Params) -> Any:
    was_set = emu.webhook.active
    if p.flag("drop_pending_updates"):
        emu.state.updates.clear()
    emu.webhook.remove()
    return Described(True, "Webhook was deleted" if was_set else "Webhook is already deleted")


async def get_webhook_info(emu: Hub, p: Params) -> Any:
    return emu.webhook.info()


def scope_key(emu: Hub, scope: Any) -> tuple[Any, ...]:
    """Canonical key of a BotCommandScope (chat references resolved to ids)."""
    if not scope:
        return ("default",)
    if not isinstance(scope, dict) or "type" not in scope:
        raise bad_request("can't parse BotCommandScope JSON object")
    kind = scope["type"]
    if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
        return (kind,)
    if kind in ("chat", "chat_administrators", "chat_member"):
        chat = lookup_chat(emu, Params({"chat_id": scope.get("chat_id")}))
        if kind == "chat_member":
            return (kind, chat.id, int(scope.get("user_id") or 0))
        return (kind, chat.id)
    raise bad_request("unsupported bot command scope type")


async def set_my_commands(emu: Hub, p: Params) -> Any:
    commands = p.json("commands")
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    for cmd in commands:
        if not isinstance(cmd, dict) or not re.fullmatch(r"[a-z0-9_]{1,32}", str(cmd.get("command"))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(cmd.get("description") or "")) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    key = (scope_key(emu, p.json("scope")), p.string("language_code") or "")
    clean = [{"command": c["command"], "description": c["description"]} for c in commands]
    if clean:
        emu.state.commands[key] = clean
    else:
        emu.state.commands.pop(key, None)
    return True


async def get_my_commands(emu: Hub, p: Params) -> Any:
    key = (scope_key(emu, p.json("scope")), p.string("language_code") or "")
    return emu.state.commands.get(key, [])


async def delete_my_commands(emu: Hub, p: Params) -> Any:
    emu.state.commands.pop((scope_key(emu, p.json("scope")), p.string("language_code") or ""), None)
    return True


_ADMIN_RIGHTS = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_pin_messages": True,
}


def member_json(emu: Hub, chat: Chat, user_id: int) -> dict[str, Any]:
    state = emu.state
    user = state.bot if user_id == state.bot.id else state.users.get(user_id)
    if user is None:
        raise bad_request("user not found")
    if user is state.bot:
        status = chat.bot_status
    else:
        status = "member" if chat.private else chat.members.get(user_id, "left")
    out: dict[str, Any] = {"status": status, "user": user.to_json()}
    if status == "creator":
        out["is_anonymous"] = False
    elif status == "administrator":
        out.update(_ADMIN_RIGHTS)
    elif status == "kicked":
        out["until_date"] = 0
    return out


async def get_chat(emu: Hub, p: Params) -> Any:
    return lookup_chat(emu, p).full_json()


async def get_chat_member(emu: Hub, p: Params) -> Any:
    return member_json(emu, lookup_chat(emu, p), p.integer("user_id") or 0)


async def get_chat_administrators(emu: Hub, p: Params) -> Any:
    chat = lookup_chat(emu, p)
    ids = [uid for uid, status in chat.members.items() if status in ("creator", "administrator")]
    if chat.bot_status == "administrator":
        ids.append(emu.state.bot.id)
    return [member_json(emu, chat, uid) for uid in ids]


async def get_chat_member_count(emu: Hub, p: Params) -> Any:
    chat = lookup_chat(emu, p)
    return 2 if chat.private else len(chat.members) + 1


async def leave_chat(emu: Hub, p: Params) -> Any:
    lookup_chat(emu, p).bot_status = "left"
    return True


async def accept(emu: Hub, p: Params) -> Any:
    """Methods a bot may call at start-up whose effect no test observes."""
    return True


async def get_chat_menu_button(emu: Hub, p: Params) -> Any:
    return {"type": "commands"}


META_HANDLERS: dict[str, Handler] = {
    "getme": get_me,
    "getupdates": get_updates,
    "setwebhook": set_webhook,
    "deletewebhook": delete_webhook,
    "getwebhookinfo": get_webhook_info,
    "setmycommands": set_my_commands,
    "getmycommands": get_my_commands,
    "deletemycommands": delete_my_commands,
    "getchat": get_chat,
    "getchatmember": get_chat_member,
    "getchatadministrators": get_chat_administrators,
    "getchatmembercount": get_chat_member_count,
    "leavechat": leave_chat,
    "getchatmenubutton": get_chat_menu_button,
    **{
        name: accept
        for name in (
            "setmydescription",
            "setmyshortdescription",
            "setmyname",
            "setchatmenubutton",
            "setmydefaultadministratorrights",
            "pinchatmessage",
            "unpinchatmessage",
            "unpinallchatmessages",
            "logout",
            "close",
            "setmessagereaction",
        )
    },
}
