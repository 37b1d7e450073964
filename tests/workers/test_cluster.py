"""Two `siaga run --webhook` workers on one PostgreSQL database behave as one bot.

The emulator is Telegram and the load balancer: it spreads updates over the
two workers (round robin), and a test pins the next update to one worker when
it matters which one answers: a conversation begun on A is continued on B, an
alert raised through B is acknowledged on A. Each chat is then checked for
what it received and how many times.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select

from bot.emulator import SentMessage, SimGroup, SimUser
from models import Checkin, Contingency, ContingencyStep, InboxUpdate, Outbox
from tests.factories import TPS_PLACES
from tests.workers.conftest import MakeCluster
from tests.workers.harness import SECRET, TOKEN, Cluster, eventually, needs_postgresql

pytestmark = needs_postgresql

COMMANDERS = {"POLSEK-A1": "kapolsek_a1", "POLSEK-A2": "kapolsek_a2", "POLRES-A": "kapolres", "POLDA-X": "kapolda"}


@dataclass
class Flow:
    """What a full run left behind, for the tests to check."""

    eko: SimUser
    commanders: dict[str, SimUser]
    groups: dict[str, SimGroup]
    codes: dict[str, str]
    update_ids: dict[str, int]


def _texts(messages: list[SentMessage]) -> list[str]:
    return [message.versions[0].text or message.versions[0].caption or "" for message in messages]


async def _update_id_of(cluster: Cluster, before: int) -> int:
    """The id of the update the last action queued (the emulator numbers them in order)."""
    last = cluster.emu.state.updates.last
    assert last is not None and last["update_id"] > before
    return int(last["update_id"])


async def full_flow(cluster: Cluster) -> Flow:
    """Register with an invite code, check in, raise a contingency, let it climb, acknowledge it elsewhere."""
    emu = cluster.emu
    a, b = cluster.workers
    commanders = {unit: await cluster.registered(key) for unit, key in COMMANDERS.items()}
    groups = {unit: await cluster.command_group(unit, [user]) for unit, user in commanders.items()}
    codes = await cluster.invite("10000008")
    eko = cluster.user("eko")
    ids: dict[str, int] = {}

    await eko.send(f"/start {codes['10000008']}")
    assert "Terdaftar sebagai" in ((await eko.next_message(10)).text or "")

    cluster.route(a)  # a check-in begun on A ...
    await eko.send("/hadir")
    ids["hadir"] = await _update_id_of(cluster, 0)
    assert "lokasi" in ((await eko.next_message(10)).text or "")
    cluster.route(b)  # ... is finished on B
    await eko.send_location(*TPS_PLACES["TPS-A2-001"])
    ids["location"] = await _update_id_of(cluster, ids["hadir"])
    assert "Hadir tercatat" in ((await eko.next_message(10)).text or "")

    cluster.route(a)  # a contingency drafted on A ...
    await eko.send("/darurat Massa ricuh di TPS")
    ids["darurat"] = await _update_id_of(cluster, ids["location"])
    choose = await eko.next_message(10)
    cluster.route(b)  # ... gets its severity on B
    press = await eko.press(choose, "🔴 Tinggi")
    ids["severity"] = await _update_id_of(cluster, ids["darurat"])
    assert (await press.answer(10)).show_alert is False
    assert "kirim lokasi" in ((await eko.next_message(10)).text or "").lower()

    cluster.route(a, b)
    for unit in ("POLSEK-A2", "POLSEK-A1"):  # the border TPS reaches both Polsek groups at once
        await emu.wait_for(groups[unit], timeout=15)
    climbed = await emu.wait_for(groups["POLRES-A"], timeout=30)  # tinggi: 0.05 minutes, then one unit up

    cluster.route(a)  # acknowledged on A, though B raised it
    ack = await commanders["POLRES-A"].press(climbed, "✔️ Terima")
    ids["ack"] = await _update_id_of(cluster, ids["severity"])
    answer = await ack.answer(10)
    assert answer.show_alert is False and "Diterima" in (answer.text or "")
    cluster.route(a, b)
    await eventually(
        lambda: all("DITERIMA oleh AKBP Kapolres" in (m.text or "") for g in groups.values() for m in emu.sent_to(g)),
        timeout=20,
        what="every alert copy edited to DITERIMA",
    )
    await emu.wait_for(eko, lambda m: "diterima oleh AKBP Kapolres" in (m.text or ""), timeout=15)
    return Flow(eko, commanders, groups, codes, ids)


async def test_two_webhook_workers_behave_as_one_bot(make_cluster: MakeCluster) -> None:
    cluster = await make_cluster()
    emu = cluster.emu
    flow = await full_flow(cluster)
    await asyncio.sleep(1.0)  # anything extra (a duplicate, a second climb) would arrive now

    assert cluster.answered_by(flow.update_ids["hadir"]) == ["A"]
    assert cluster.answered_by(flow.update_ids["location"]) == ["B"]
    assert cluster.answered_by(flow.update_ids["darurat"]) == ["A"]
    assert cluster.answered_by(flow.update_ids["severity"]) == ["B"]
    assert cluster.answered_by(flow.update_ids["ack"]) == ["A"]
    assert {worker for d in emu.webhook.deliveries for worker in cluster.answered_by(d.update_id)} == {"A", "B"}

    counts = {unit: emu.count(group) for unit, group in flow.groups.items()}
    assert counts["POLSEK-A1"] == counts["POLSEK-A2"] == counts["POLRES-A"] == 1
    assert counts["POLDA-X"] <= 1  # the acknowledgement may or may not beat the next 3-second climb
    for chat in [flow.eko, *flow.groups.values(), *flow.commanders.values()]:
        texts = _texts(emu.sent_to(chat))
        assert not [t for t, n in Counter(texts).items() if n > 1], f"sent twice to {chat}: {texts}"
    eko_texts = _texts(emu.sent_to(flow.eko))
    assert sum("diterima oleh AKBP Kapolres" in t for t in eko_texts) == 1

    async with cluster.sessions() as session:
        checkins = await session.scalar(select(func.count()).select_from(Checkin))
        contingency = (await session.scalars(select(Contingency))).one()
        steps = list(await session.scalars(select(ContingencyStep).order_by(ContingencyStep.version)))
        processed = await session.scalar(
            select(func.count()).select_from(InboxUpdate).where(InboxUpdate.done_at.is_not(None))
        )
        outbox_states = dict((await session.execute(select(Outbox.state, func.count()).group_by(Outbox.state))).all())
    assert checkins == 1 and contingency.state == "acknowledged"
    assert [s.version for s in steps] == list(range(1, len(steps) + 1))  # one step per transition, none twice
    assert Counter(s.kind for s in steps)["acknowledged"] == 1
    delivered = {d.update_id for d in emu.webhook.deliveries if d.status == 200}
    assert processed == len(delivered)
    assert outbox_states.get("pending", 0) == outbox_states.get("sending", 0) == outbox_states.get("failed", 0) == 0

    metrics = {w.name: await w.metrics() for w in cluster.workers}
    updates = sum(v for m in metrics.values() for k, v in m.items() if k.startswith("siaga_updates_total"))
    assert updates == len(delivered), "updates not counted: bot/app.py must build through metrics.instrument"
    assert sum(m["siaga_outbox_sent_total"] for m in metrics.values()) == outbox_states["sent"]
    assert all(m["siaga_database_up"] == 1 and m["siaga_update_duration_seconds_count"] > 0 for m in metrics.values())

    a = cluster.workers[0]
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "not-" + SECRET}):
        status = await _post_update(a.target, headers)
        assert status == 403, headers
    assert await cluster.stop() == {"A": 0, "B": 0}


async def _post_update(url: str, headers: dict[str, str]) -> int:
    import aiohttp

    update = {
        "update_id": 10**6,
        "message": {"message_id": 1, "date": 0, "text": "/start", "chat": {"id": 1, "type": "private"}},
    }
    async with aiohttp.ClientSession() as http, http.post(url, json=update, headers=headers) as response:
        return response.status


# -- the logs of a full run ---------------------------------------------------------------------


async def test_the_logs_of_a_full_run_hold_no_token_phone_number_nrp_or_code(make_cluster: MakeCluster) -> None:
    """Workers at DEBUG, so python-telegram-bot writes every update and every call it makes."""
    cluster = await make_cluster()
    flow = await full_flow(cluster)
    budi = cluster.user("budi")
    wrong = "QWERTY2345"
    await budi.send(f"/daftar 10000006 {wrong}")  # a wrong code, typed with an NRP
    await budi.next_message(10)
    codes = await cluster.invite("10000006")
    await budi.send(f"/daftar 10000006 {codes['10000006'].lower()}")
    assert "Terdaftar" in ((await budi.next_message(10)).text or "")
    await budi.send_contact()  # a shared contact carries the phone number
    await budi.send("/lapor Warga mengaku petugas, NRP 85010123, telp 0812-3456-7890")
    category = await budi.next_message(10)
    await (await budi.press(category, "⚠️ Gangguan")).answer(10)
    await eventually(lambda: "tercatat" in (category.text or ""), timeout=10, what="the report filed")
    assert await cluster.stop() == {"A": 0, "B": 0}

    logs = {worker.name: worker.log_text() for worker in cluster.workers}
    assert all("Processing update" in text for text in logs.values()), "DEBUG lines missing: nothing was tested"
    secret_part = TOKEN.split(":")[1]
    forbidden = {
        TOKEN,
        secret_part,
        SECRET,
        wrong,
        "0812-3456-7890",
        "85010123",
        *flow.codes.values(),
        *codes.values(),
        *(c.lower() for c in codes.values()),
    }
    people = cluster.roster.people.values()
    nrps = {person.nrp for person in people}
    phones = {person.phone for person in people} | {u.phone_number or "" for u in cluster.emu.state.users.values()}
    for name, text in logs.items():
        for value in forbidden:
            assert value not in text, f"worker {name} logged {value!r}"
        for nrp in nrps:
            assert not re.search(rf"(?<![\w]){re.escape(nrp)}(?![\w])", text), f"worker {name} logged NRP {nrp}"
        for phone in phones - {""}:
            assert phone not in text and phone[3:] not in text, f"worker {name} logged phone {phone}"
        lines = [line for line in text.splitlines() if line.strip()]
        assert all(line.startswith("ts=") for line in lines), "one key=value line per event"
