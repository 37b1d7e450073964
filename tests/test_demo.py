"""`siaga demo` plays its morning and a counting-night escort to the end as a conversation: who sends what, then
what the bot answers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path


def in_order(transcript: str, *lines: str) -> None:
    """Each of `lines` appears, and after the one before it: the transcript is in the order things happened."""
    at = 0
    for line in lines:
        found = transcript.find(line, at)
        assert found >= 0, f"{line!r} is missing after position {at}:\n{transcript[at : at + 3000]}"
        at = found + len(line)


def test_demo_runs_to_the_final_board(tmp_path: Path) -> None:
    """What `make demo` plays: its 100 TPS are the smallest province whose OKI has a leg by road then boat.
    Much faster (300x) the emulator's real Telegram limits leave the bot minutes behind the virtual clock,
    and the morning ends before the alert reaches the Polda."""
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--out", str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    transcript = result.stdout
    assert "Traceback" not in transcript + result.stderr
    assert "maximum number of running instances" not in transcript + result.stderr, "a scheduler warning in the story"
    assert "🦺 a person (Polri, TNI, Linmas) writes to the bot" in transcript, "the legend comes first"
    in_order(
        transcript,
        "→ [Posko Polda Sumsel]: /daftargrup POLDA-SUMSEL",
        "🤖 → [Posko Polda Sumsel]: ✅ Grup ini",
        ": /hadir",
        "🤖 → ",
        "📍 (lokasi dibagikan)",
        "✅ Hadir tercatat",
    )
    in_order(
        transcript,
        "raises a contingency",
        ": /darurat Perahu logistik",
        ": 👆 [🔴 Tinggi]",
        "🤖 → [Posko Polsek",
        "🚨 KONTINJENSI #1",
        "🤖 → [Posko Polda Sumsel]: 🚨 KONTINJENSI #1",
        "acknowledges in the Polda group",
        "→ [Posko Polda Sumsel]: 👆 [✔️ Terima]",
        "🤖 ✎ [Posko Polda Sumsel]: 🚨 KONTINJENSI #1",
        "Status: DITERIMA",
    )
    in_order(
        transcript,
        "── The counting night in Ogan Komering Ilir: KWL-OKI-",
        "⏰ Pengingat pengawalan KWL-OKI-",
        ": /kawal",
        ": 👆 [🚚 Berangkat KWL-OKI-",
        "Status: berangkat sejak",
        ": 📡 (lokasi langsung dibagikan, 8 jam)",
        "📡 Lokasi langsung diterima untuk KWL-OKI-",
        "🤖 → [Posko Polsek",
        "📍 [live location on the map]",
        "✅ Melewati Dermaga",
        "the boxes go onto a speedboat",
        "🤖 → [Posko Polsek",
        "⚠️ BERHENTI — tidak bergerak dari tempatnya",
        "acknowledges the alert",
        "→ [Posko Polsek",
        ": 👆 [✔️ Terima]",
        "Status: DITERIMA oleh",
        "The engine starts again",
        "✅ Berakhir sendiri",
        ": pengawalan bergerak lagi",
        " tiba di PPK ",
        ": /terima KWL-OKI-",
        "✅ Serah terima KWL-OKI-",
        "diterima oleh Anda dari",
        "Pengawalan selesai.",
        "Final /status of the Polda commander",
        "📊 Status POLDA-SUMSEL",
        "🚚 Pengawalan 1: berangkat 0 · terjadwal 0 · tiba 0 · diterima 1",
        "Final /kawal of",
        "· diterima · ",
    )
    with sqlite3.connect(out / "siaga-demo.db") as db:
        steps = [
            [
                kind
                for (kind,) in db.execute(
                    "select kind from contingency_steps where contingency_id = ? order by version", (id_,)
                )
            ]
            for (id_,) in db.execute("select id from contingencies order by id")
        ]
        checkins = db.execute("select count(*) from checkins").fetchone()[0]
        escorts = db.execute("select state, received_by_id is not null from escorts").fetchall()
        custody = [
            action for (action,) in db.execute("select action from audit_log where entity = 'escort' order by id")
        ]
    morning, night = steps
    assert morning[:1] == ["raised"] and "acknowledged" in morning and morning.count("escalated") >= 2, morning
    assert night == ["raised", "acknowledged", "resolved"], night
    assert checkins > 0
    assert escorts == [("diterima", 1)]
    assert custody == ["escort.departed", "escort.arrived", "escort.received"], custody
