"""Bot API methods that create, change or remove messages.

Order of checks per send, chosen to match what a bot observes on Telegram:
chat resolution (400 chat not found / 403 blocked, deactivated, kicked) ->
content validation (400 parse errors, length, keyboards) -> flood limits
(429) -> delivery. Only delivered messages are recorded in the state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.emulator.errors import ApiError, bad_request, forbidden, too_many_requests
from bot.emulator.hub import Hub
from bot.emulator.params import Params
from bot.emulator.state import CallbackAnswer, Chat, Rejection, SentMessage, StoredFile, Version
from bot.emulator.validate import check_reply_markup, format_text

Handler = Callable[[Hub, Params], Awaitable[Any]]


def lookup_chat(emu: Hub, p: Params, name: str = "chat_id") -> Chat:
    """The chat named by ``name`` or 400 "chat not found" (no permission checks)."""
    ref = p.chat_id(name)
    state = emu.state
    if isinstance(ref, str):
        chat = next((c for c in state.chats.values() if c.username and "@" + c.username.lower() == ref.lower()), None)
    else:
        chat = state.chats.get(ref)
    if chat is None or chat.id in emu.faults.unknown_chats:
        raise bad_request("chat not found")
    if chat.migrated_to is not None:
        raise ApiError(
            400, "Bad Request: group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": chat.migrated_to}
        )
    return chat


def resolve_chat(emu: Hub, p: Params, name: str = "chat_id") -> Chat:
    """The target chat of a send, or the 400/403 Telegram gives for it."""
    chat = lookup_chat(emu, p, name)
    faults = emu.faults
    if chat.private:
        if chat.id in faults.deactivated:
            raise forbidden("user is deactivated")
        if chat.id in faults.blocked:
            raise forbidden("bot was blocked by the user")
        if not chat.started:
            raise forbidden("bot can't initiate conversation with a user")
    else:
        kind = "supergroup chat" if chat.type == "supergroup" else "group chat"
        if chat.bot_status == "kicked":
            raise forbidden(f"bot was kicked from the {kind}")
        if chat.bot_status == "left":
            raise forbidden(f"bot is not a member of the {kind}")
    return chat


def flood_check(emu: Hub, method: str, chat: Chat) -> None:
    """Apply :class:`Limits` to a counted method; raise 429 when refused."""
    if not emu.limits.counts(method):
        return
    verdict = emu.limiter.check(chat.id, chat.private)
    if verdict is not None:
        mono, _ = emu.state.now()
        emu.state.rejections.append(Rejection(method, chat.id, 429, verdict.scope, verdict.retry_after, mono))
        raise too_many_requests(verdict.retry_after)


def _reply_to(emu: Hub, chat: Chat, p: Params) -> dict[str, Any] | None:
    params = p.json("reply_parameters") or {}
    mid = params.get("message_id") if isinstance(params, dict) else None
    if mid is None:
        mid = p.integer("reply_to_message_id")
    if mid is None:
        return None
    found = emu.state.message_json(chat.id, int(mid))
    if found is None:
        lenient = (isinstance(params, dict) and params.get("allow_sending_without_reply")) or p.flag(
            "allow_sending_without_reply"
        )
        if lenient:
            return None
        raise bad_request("message to be replied not found")
    return {k: v for k, v in found.items() if k != "reply_to_message"}


def _deliver(
    emu: Hub,
    chat: Chat,
    p: Params,
    method: str,
    kind: str,
    fields: dict[str, Any],
    text: str | None = None,
    caption: str | None = None,
    entities: list[dict[str, Any]] | None = None,
    markup: dict[str, Any] | None = None,
    file: StoredFile | None = None,
    reply: dict[str, Any] | None = None,
) -> SentMessage:
    """Create the message, record it with timestamps, update chat keyboards."""
    state = emu.state
    mono, wall = state.now()
    base: dict[str, Any] = {
        "message_id": state.next_message_id(chat),
        "from": state.bot.to_json(),
        "chat": chat.to_json(),
        "date": int(wall),
    }
    if reply is not None:
        base["reply_to_message"] = reply
    base.update(fields)
    raw = p.string("caption") if caption is not None else p.string("text")
    version = Version(text, caption, entities or [], raw, p.string("parse_mode"), markup, mono, wall, method)
    sent = SentMessage(chat.id, base["message_id"], kind, method, p.loggable(), int(wall), [version], base, file)
    if markup and "keyboard" in markup:
        chat.reply_keyboard = markup
    elif markup and markup.get("remove_keyboard"):
        chat.reply_keyboard = None
    state.record_sent(sent)
    return sent


def _take_file(emu: Hub, p: Params, name: str, kind: str) -> StoredFile:
    """An uploaded part, ``attach://`` reference, known file_id or URL."""
    state = emu.state
    upload = p.uploads.get(name)
    value = p.string(name)
    if upload is None and value and value.startswith("attach://"):
        upload = p.uploads.get(value[len("attach://") :])
    if upload is not None:
        return state.store_file(upload.data, kind, upload.filename, upload.content_type)
    if not value:
        raise bad_request(f"there is no {kind} in the request")
    if value in state.files:
        return state.files[value]
    if value.startswith(("http://", "https://")):
        return state.store_file(b"", kind, value.rsplit("/", 1)[-1] or None, source=value)
    raise bad_request("wrong file identifier/HTTP URL specified")


def _image_size(data: bytes) -> tuple[int, int]:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return 1280, 960


def file_json(stored: StoredFile) -> dict[str, Any]:
    out: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": stored.size}
    if stored.kind == "photo":
        out["width"], out["height"] = _image_size(stored.data)
    else:
        if stored.filename:
            out["file_name"] = stored.filename
        if stored.mime_type:
            out["mime_type"] = stored.mime_type
    return out


def _markup(p: Params) -> dict[str, Any] | None:
    return check_reply_markup(p.json("reply_markup"))


async def send_message(emu: Hub, p: Params) -> Any:
    chat = resolve_chat(emu, p)
    text, ents = format_text(p.string("text"), p.string("parse_mode"), p.json("entities"), strict_html=emu.strict_html)
    markup, reply = _markup(p), _reply_to(emu, chat, p)
    flood_check(emu, "sendMessage", chat)
    return _deliver(
        emu, chat, p, "sendMessage", "text", {}, text=text, entities=ents, markup=markup, reply=reply
    ).to_json()


async def _send_media(emu: Hub, p: Params, method: str, kind: str) -> Any:
    chat = resolve_chat(emu, p)
    caption, ents = format_text(
        p.string("caption"),
        p.string("parse_mode"),
        p.json("caption_entities"),
        caption=True,
        strict_html=emu.strict_html,
    )
    markup, reply = _markup(p), _reply_to(emu, chat, p)
    stored = _take_file(emu, p, kind, kind)
    flood_check(emu, method, chat)
    fields = {kind: [file_json(stored)] if kind == "photo" else file_json(stored)}
    return _deliver(
        emu, chat, p, method, kind, fields, caption=caption, entities=ents, markup=markup, file=stored, reply=reply
    ).to_json()


async def send_photo(emu: Hub, p: Params) -> Any:
    return await _send_media(emu, p, "sendPhoto", "photo")


async def send_document(emu: Hub, p: Params) -> Any:
    return await _send_media(emu, p, "sendDocument", "document")


def _location(p: Params) -> dict[str, Any]:
    lat, lon = p.number("latitude"), p.number("longitude")
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise bad_request(
            "wrong latitude/longitude specified"
            if lat is not None and lon is not None
            else "latitude and longitude must be specified"
        )
    loc: dict[str, Any] = {"latitude": lat, "longitude": lon}
    for key in ("live_period", "heading", "proximity_alert_radius"):
        if p.integer(key) is not None:
            loc[key] = p.integer(key)
    if p.number("horizontal_accuracy") is not None:
        loc["horizontal_accuracy"] = p.number("horizontal_accuracy")
    return loc


async def send_location(emu: Hub, p: Params) -> Any:
    chat = resolve_chat(emu, p)
    loc, markup, reply = _location(p), _markup(p), _reply_to(emu, chat, p)
    flood_check(emu, "sendLocation", chat)
    return _deliver(emu, chat, p, "sendLocation", "location", {"location": loc}, markup=markup, reply=reply).to_json()


async def send_venue(emu: Hub, p: Params) -> Any:
    chat = resolve_chat(emu, p)
    loc, markup, reply = _location(p), _markup(p), _reply_to(emu, chat, p)
    venue = {"location": loc, "title": p.string("title", ""), "address": p.string("address", "")}
    flood_check(emu, "sendVenue", chat)
    return _deliver(
        emu, chat, p, "sendVenue", "venue", {"location": loc, "venue": venue}, markup=markup, reply=reply
    ).to_json()


async def send_contact(emu: Hub, p: Params) -> Any:
    chat = resolve_chat(emu, p)
    contact = {"phone_number": p.string("phone_number") or "", "first_name": p.string("first_name") or ""}
    markup, reply = _markup(p), _reply_to(emu, chat, p)
    flood_check(emu, "sendContact", chat)
    return _deliver(emu, chat, p, "sendContact", "contact", {"contact": contact}, markup=markup, reply=reply).to_json()


_CONTENT_KEYS = ("photo", "document", "location", "venue", "contact", "sticker", "video", "audio", "voice", "animation")


async def _copy(emu: Hub, p: Params, method: str) -> tuple[SentMessage, dict[str, Any]]:
    chat = resolve_chat(emu, p)
    source_chat = lookup_chat(emu, p, "from_chat_id")
    mid = p.integer("message_id")
    source = emu.state.message_json(source_chat.id, mid) if mid is not None else None
    if source is None:
        raise bad_request(f"message to {'copy' if method == 'copyMessage' else 'forward'} not found")
    fields = {k: source[k] for k in _CONTENT_KEYS if k in source}
    kind = next((k for k in _CONTENT_KEYS if k in source), "text")
    text, caption = source.get("text"), source.get("caption")
    ents = source.get("entities") or source.get("caption_entities") or []
    if method == "copyMessage" and "caption" in p:
        caption, ents = format_text(p.string("caption"), p.string("parse_mode"), None, caption=True)
    markup = _markup(p) if method == "copyMessage" else None
    if method == "forwardMessage":
        origin_user = source.get("from") or emu.state.bot.to_json()
        fields["forward_origin"] = {"type": "user", "sender_user": origin_user, "date": source.get("date", 0)}
    flood_check(emu, method, chat)
    sent = _deliver(emu, chat, p, method, kind, fields, text=text, caption=caption, entities=ents, markup=markup)
    return sent, source


async def copy_message(emu: Hub, p: Params) -> Any:
    sent, _ = await _copy(emu, p, "copyMessage")
    return {"message_id": sent.message_id}


async def forward_message(emu: Hub, p: Params) -> Any:
    sent, _ = await _copy(emu, p, "forwardMessage")
    return sent.to_json()


def _editable(emu: Hub, p: Params) -> tuple[Chat, SentMessage]:
    if "chat_id" not in p and "inline_message_id" in p:
        raise bad_request("MESSAGE_ID_INVALID")
    chat = resolve_chat(emu, p)
    mid = p.integer("message_id")
    if mid is None:
        raise bad_request("message identifier is not specified")
    key = (chat.id, mid)
    sent = emu.state.sent_index.get(key)
    if sent is None or sent.deleted:
        if key in emu.state.user_messages and key not in emu.state.deleted:
            raise bad_request("message can't be edited")
        raise bad_request("message to edit not found")
    return chat, sent


def _inline(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    return markup if markup and "inline_keyboard" in markup else None


_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


def _edit(
    emu: Hub,
    p: Params,
    method: str,
    sent: SentMessage,
    chat: Chat,
    *,
    text: str | None,
    caption: str | None,
    entities: list[dict[str, Any]],
    markup: dict[str, Any] | None,
) -> Any:
    cur = sent.current
    if (text, caption, entities, markup) == (cur.text, cur.caption, cur.entities, _inline(cur.reply_markup)):
        raise bad_request(_NOT_MODIFIED)
    flood_check(emu, method, chat)
    mono, wall = emu.state.now()
    raw = (
        p.string("text")
        if method == "editMessageText"
        else (p.string("caption") if method == "editMessageCaption" else cur.raw)
    )
    parse_mode = p.string("parse_mode") if method != "editMessageReplyMarkup" else cur.parse_mode
    sent.versions.append(Version(text, caption, entities, raw, parse_mode, markup, mono, wall, method))
    emu.state.changed.fire()
    return sent.to_json()


async def edit_message_text(emu: Hub, p: Params) -> Any:
    chat, sent = _editable(emu, p)
    if sent.current.text is None:
        raise bad_request("there is no text in the message to edit")
    text, ents = format_text(p.string("text"), p.string("parse_mode"), p.json("entities"), strict_html=emu.strict_html)
    markup = check_reply_markup(p.json("reply_markup"), inline_only=True)
    return _edit(emu, p, "editMessageText", sent, chat, text=text, caption=None, entities=ents, markup=markup)


async def edit_message_caption(emu: Hub, p: Params) -> Any:
    chat, sent = _editable(emu, p)
    if sent.kind not in ("photo", "document", "video", "audio", "animation", "voice"):
        raise bad_request("there is no caption in the message to edit")
    caption, ents = format_text(
        p.string("caption"),
        p.string("parse_mode"),
        p.json("caption_entities"),
        caption=True,
        strict_html=emu.strict_html,
    )
    markup = check_reply_markup(p.json("reply_markup"), inline_only=True)
    return _edit(emu, p, "editMessageCaption", sent, chat, text=None, caption=caption, entities=ents, markup=markup)


async def edit_message_reply_markup(emu: Hub, p: Params) -> Any:
    chat, sent = _editable(emu, p)
    cur = sent.current
    markup = check_reply_markup(p.json("reply_markup"), inline_only=True)
    return _edit(
        emu,
        p,
        "editMessageReplyMarkup",
        sent,
        chat,
        text=cur.text,
        caption=cur.caption,
        entities=cur.entities,
        markup=markup,
    )


async def delete_message(emu: Hub, p: Params) -> Any:
    chat = resolve_chat(emu, p)
    mid = p.integer("message_id")
    key = (chat.id, mid or 0)
    state = emu.state
    if key in state.deleted or (key not in state.sent_index and key not in state.user_messages):
        raise bad_request("message to delete not found")
    state.deleted.add(key)
    if key in state.sent_index:
        state.sent_index[key].deleted = True
    state.changed.fire()
    return True


async def answer_callback_query(emu: Hub, p: Params) -> Any:
    state = emu.state
    query = state.callbacks.get(p.string("callback_query_id") or "")
    if query is None or query.answer is not None:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    mono, wall = state.now()
    query.answer = CallbackAnswer(
        query.id, p.string("text"), p.flag("show_alert"), p.string("url"), p.integer("cache_time", 0) or 0, mono, wall
    )
    state.callback_answers.append(query.answer)
    state.changed.fire()
    return True


def _live(emu: Hub, p: Params) -> tuple[Chat, SentMessage, dict[str, Any]]:
    """A live location the bot sent that may still move: not stopped, its `live_period` not over."""
    chat, sent = _editable(emu, p)
    location = sent.location
    if sent.kind != "location" or location is None or "live_period" not in location or sent.live_stopped:
        raise bad_request("message can't be edited")
    _, wall = emu.state.now()
    if wall > sent.wall + location["live_period"]:
        raise bad_request("message can't be edited")
    return chat, sent, location


def _record_live(emu: Hub, sent: SentMessage, method: str, location: dict[str, Any]) -> Any:
    cur = sent.current
    mono, wall = emu.state.now()
    sent.base["location"] = location
    sent.versions.append(
        Version(
            cur.text, cur.caption, cur.entities, cur.raw, cur.parse_mode, cur.reply_markup, mono, wall, method, location
        )
    )
    emu.state.changed.fire()
    return sent.to_json()


async def edit_message_live_location(emu: Hub, p: Params) -> Any:
    """Move a live location; the same place again is "not modified", as Telegram answers."""
    chat, sent, location = _live(emu, p)
    moved = {**location, **_location(p), "live_period": location["live_period"]}
    if (moved["latitude"], moved["longitude"]) == (location["latitude"], location["longitude"]):
        raise bad_request(_NOT_MODIFIED)
    flood_check(emu, "editMessageLiveLocation", chat)
    return _record_live(emu, sent, "editMessageLiveLocation", moved)


async def stop_message_live_location(emu: Hub, p: Params) -> Any:
    """Stop a live location where it is: it can no longer be moved."""
    chat, sent, location = _live(emu, p)
    flood_check(emu, "stopMessageLiveLocation", chat)
    sent.live_stopped = True
    return _record_live(emu, sent, "stopMessageLiveLocation", location)


async def send_chat_action(emu: Hub, p: Params) -> Any:
    resolve_chat(emu, p)
    return True


async def get_file(emu: Hub, p: Params) -> Any:
    stored = emu.state.files.get(p.string("file_id") or "")
    if stored is None:
        raise bad_request("invalid file_id")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.size,
        "file_path": stored.file_path,
    }


MESSAGE_HANDLERS: dict[str, Handler] = {
    "sendmessage": send_message,
    "sendphoto": send_photo,
    "senddocument": send_document,
    "sendlocation": send_location,
    "sendvenue": send_venue,
    "sendcontact": send_contact,
    "copymessage": copy_message,
    "forwardmessage": forward_message,
    "editmessagetext": edit_message_text,
    "editmessagecaption": edit_message_caption,
    "editmessagereplymarkup": edit_message_reply_markup,
    "editmessagelivelocation": edit_message_live_location,
    "stopmessagelivelocation": stop_message_live_location,
    "deletemessage": delete_message,
    "answercallbackquery": answer_callback_query,
    "sendchataction": send_chat_action,
    "getfile": get_file,
}
