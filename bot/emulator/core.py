"""The :class:`Emulator`: a local Telegram Bot API server plus test handles.

A python-telegram-bot Application runs against it unmodified via
``ApplicationBuilder().token(emu.token).base_url(emu.base_url)
.base_file_url(emu.base_file_url)``; tests drive simulated users
(:meth:`Emulator.user`, :meth:`Emulator.group`) and assert on what the bot
delivered (:meth:`sent_to`, :meth:`wait_for`, :attr:`callback_answers`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from bot.emulator.control import add_control_routes
from bot.emulator.limits import Faults, Limits, RateLimiter
from bot.emulator.server import ApiServer, scope_key
from bot.emulator.simulate import ChatRef, SimGroup, SimUser, chat_id_of
from bot.emulator.state import CallbackAnswer, CallbackQuery, Chat, SentMessage, State, User
from bot.emulator.webhook import WebhookDispatcher


class EmulatorTimeout(TimeoutError):
    """A wait_for/next_message deadline passed; the message says what was there."""


class Emulator:
    """Local Bot API. Use ``async with Emulator() as emu:`` or start()/stop()."""

    def __init__(
        self,
        *,
        token: str = "123456:TEST-TOKEN",
        bot_username: str = "SiagaTestBot",
        bot_name: str = "Siaga",
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Limits | None = None,
        faults: Faults | None = None,
        privacy_mode: bool = True,
        strict_html: bool = False,
        record_calls: bool = True,
        webhook_timeout: float = 10.0,
    ):
        self.token = token
        self.bot_username = bot_username
        self.host, self.port = host, port
        self.limiter = RateLimiter(limits or Limits())
        self.faults = faults or Faults()
        self.privacy_mode = privacy_mode
        self.strict_html = strict_html
        self.record_calls = record_calls
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 123456
        self.state = State(User(bot_id, bot_name, username=bot_username, is_bot=True))
        self.server = ApiServer(self)
        add_control_routes(self.server.app, self)
        self.webhook = WebhookDispatcher(self.state.updates, timeout=webhook_timeout)
        self.closing = False
        self._runner: web.AppRunner | None = None
        self._user_ids = itertools.count(700_000_001)
        self._group_ids = itertools.count(1)

    @property
    def limits(self) -> Limits:
        """Flood limits in force; fields may be changed in place, or the whole object
        replaced (which also forgets the bucket state)."""
        return self.limiter.limits

    @limits.setter
    def limits(self, value: Limits) -> None:
        self.limiter.limits = value
        self.limiter.reset()

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> Emulator:
        """Bind 127.0.0.1 (random free port unless ``port`` given) and serve."""
        self.closing = False
        self._runner = web.AppRunner(self.server.app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])
        await self.webhook.start()
        return self

    async def stop(self) -> None:
        """Release long polls, stop webhook delivery and the HTTP server."""
        self.closing = True
        self.state.updates.signal.fire()
        await self.webhook.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run_forever(self) -> None:
        """Serve until cancelled (standalone use, see ``python -m bot.emulator``)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder.base_url``: PTB appends token + '/' + method."""
        return f"{self.root_url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.root_url}/file/bot"

    @property
    def api_url(self) -> str:
        """``base_url + token``: prefix for raw HTTP calls (``api_url + '/getMe'``)."""
        return self.base_url + self.token

    @property
    def bot(self) -> User:
        return self.state.bot

    # -- actors --------------------------------------------------------------------------
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
    ) -> SimUser:
        """A Telegram user with a private chat; ``started=False`` = never pressed Start
        (the bot then gets 403 "bot can't initiate conversation with a user")."""
        uid = user_id if user_id is not None else next(self._user_ids)
        user = User(
            uid, first_name, last_name, username, language_code, phone_number=phone_number or f"+62812{uid % 10**7:07d}"
        )
        self.state.users[uid] = user
        chat = self.state.chats.get(uid)
        if chat is None:  # a user re-created by id keeps their chat history
            chat = self.state.chats[uid] = Chat(uid, "private")
        chat.username, chat.first_name, chat.last_name = username, first_name, last_name
        chat.started = started
        return SimUser(self, user)

    def group(
        self,
        title: str = "Posko",
        members: Iterable[SimUser] = (),
        *,
        supergroup: bool = True,
        bot_admin: bool = False,
        admins: Iterable[SimUser] = (),
        username: str | None = None,
    ) -> SimGroup:
        """A group the bot is a member of (administrator if ``bot_admin``)."""
        n = next(self._group_ids)
        cid = -(1_002_000_000_000 + n) if supergroup else -(4_000_000_000 + n)
        chat = Chat(
            cid,
            "supergroup" if supergroup else "group",
            title=title,
            username=username,
            bot_status="administrator" if bot_admin else "member",
        )
        admin_ids = {a.id for a in admins}
        for i, member in enumerate(members):
            chat.members[member.id] = "creator" if i == 0 else ("administrator" if member.id in admin_ids else "member")
        for admin in admin_ids:
            chat.members.setdefault(admin, "administrator")
        self.state.chats[cid] = chat
        return SimGroup(self, chat)

    def migrate_to_supergroup(self, group: SimGroup) -> SimGroup:
        """Upgrade a basic group like Telegram: a new supergroup id, the old id answering
        400 with ``migrate_to_chat_id``, and the two service messages the bot receives."""
        old = group.chat
        if old.type != "group":
            raise ValueError("only a basic group can be upgraded to a supergroup")
        new = Chat(
            -(1_002_000_000_000 + next(self._group_ids)),
            "supergroup",
            title=old.title,
            members=dict(old.members),
            bot_status=old.bot_status,
        )
        self.state.chats[new.id] = new
        creator = next(iter(old.members), None)
        sender = self.state.users[creator].to_json() if creator else self.state.bot.to_json()
        date = int(self.state.now()[1])
        for chat, field, other in ((old, "migrate_to_chat_id", new.id), (new, "migrate_from_chat_id", old.id)):
            mid = self.state.next_message_id(chat)
            msg = {"message_id": mid, "from": sender, "chat": chat.to_json(), "date": date, field: other}
            self.state.user_messages[(chat.id, mid)] = msg
            self.enqueue({"message": msg})
        old.migrated_to = new.id
        return SimGroup(self, new)

    # -- updates -------------------------------------------------------------------------
    def enqueue(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue one update payload such as ``{"message": {...}}``; returns the Update."""
        return self.state.updates.push_many([payload])[0]

    def inject_many(self, payloads: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Queue many payloads at once (one wake-up); build them with ``user.compose``."""
        return self.state.updates.push_many(payloads)

    def duplicate_last_update(self, same_update_id: bool = False) -> dict[str, Any]:
        """Queue the last update again.

        Default: same content under a new update_id, so the bot surely sees it twice
        (polling and webhook). ``same_update_id=True`` redelivers the identical
        Update - what Telegram does after a webhook failure; under polling it is only
        returned if the offset has not yet confirmed past it.
        """
        last = self.state.updates.last
        if last is None:
            raise LookupError("no update has been queued yet")
        if same_update_id:
            self.state.updates.push_again(last)
            return last
        return self.enqueue({k: v for k, v in last.items() if k != "update_id"})

    @property
    def pending_updates(self) -> int:
        return len(self.state.updates)

    # -- queries -------------------------------------------------------------------------
    def sent_to(self, chat: ChatRef) -> list[SentMessage]:
        """Every message the bot delivered to ``chat`` (deleted ones flagged, not hidden)."""
        return list(self.state.sent.get(chat_id_of(chat), []))

    def count(self, chat: ChatRef) -> int:
        return len(self.state.sent.get(chat_id_of(chat), []))

    def last(self, chat: ChatRef) -> SentMessage | None:
        msgs = self.state.sent.get(chat_id_of(chat))
        return msgs[-1] if msgs else None

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        return list(self.state.callback_answers)

    @property
    def calls(self) -> list[Any]:
        return list(self.state.calls)

    def calls_to(self, method: str) -> list[Any]:
        return [c for c in self.state.calls if c.method.lower() == method.lower()]

    @property
    def rejections(self) -> list[Any]:
        return list(self.state.rejections)

    def commands(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, Any]] | None:
        """Menu stored by setMyCommands for exactly this scope+language (None if unset)."""
        return self.state.commands.get((scope_key(self, scope), language_code))

    def effective_commands(self, user: SimUser, chat: ChatRef | None = None) -> list[dict[str, Any]]:
        """The menu a Telegram client shows ``user`` in ``chat`` (default: private chat),
        resolved in the order the Bot API documents, language first then without."""
        cid = chat_id_of(chat) if chat is not None else user.id
        target = self.state.chats[cid]
        lang = (user.user.language_code or "")[:2]
        if target.private:
            scopes: list[tuple[Any, ...]] = [("chat", cid), ("all_private_chats",)]
        else:
            admin = target.members.get(user.id) in ("creator", "administrator")
            scopes = [("chat_member", cid, user.id)]
            scopes += [("chat_administrators", cid)] if admin else []
            scopes += [("chat", cid)]
            scopes += [("all_chat_administrators",)] if admin else []
            scopes += [("all_group_chats",)]
        for key in scopes + [("default",)]:
            for language in (lang, "") if lang else ("",):
                found = self.state.commands.get((key, language))
                if found:
                    return found
        return []

    async def wait_for(
        self, chat: ChatRef, predicate: Callable[[SentMessage], bool] | None = None, timeout: float = 5.0
    ) -> SentMessage:
        """First delivered message in ``chat`` matching ``predicate`` (on its current,
        possibly edited, content), waiting up to ``timeout`` seconds for one."""
        cid = chat_id_of(chat)
        found: SentMessage = await self.until(
            lambda: next((m for m in self.state.sent.get(cid, []) if predicate is None or predicate(m)), None),
            timeout,
            lambda: f"no matching message in chat {cid}; got {[m.content for m in self.state.sent.get(cid, [])][-5:]}",
        )
        return found

    async def until(
        self, probe: Callable[[], Any], timeout: float = 5.0, describe: Callable[[], str] | None = None
    ) -> Any:
        """Re-evaluate ``probe`` on every state change until it returns non-None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = probe()
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise EmulatorTimeout(describe() if describe else f"nothing after {timeout}s")
            await self.state.changed.wait(remaining)

    async def wait_callback_answer(self, query: CallbackQuery | str, timeout: float = 5.0) -> CallbackAnswer:
        qid = query if isinstance(query, str) else query.id
        answer: CallbackAnswer = await self.until(
            lambda: self.state.callbacks[qid].answer, timeout, lambda: f"callback query {qid} was not answered"
        )
        return answer

    # -- faults and webhooks -------------------------------------------------------------
    def block(self, user: SimUser | int) -> None:
        self.faults.blocked.add(chat_id_of(user))

    def deactivate(self, user: SimUser | int) -> None:
        self.faults.deactivated.add(chat_id_of(user))

    def forget_chat(self, chat: ChatRef) -> None:
        self.faults.unknown_chats.add(chat_id_of(chat))

    def set_webhook(self, url: str, secret_token: str | None = None, max_connections: int = 40) -> None:
        """Set the webhook from the test side (as if the bot called setWebhook)."""
        self.webhook.configure(url, secret_token, max_connections)

    def set_webhook_targets(self, urls: list[str]) -> None:
        """Deliver webhook updates round-robin to these URLs (a load balancer)."""
        self.webhook.set_targets(urls)
