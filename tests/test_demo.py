"""`siaga demo` plays its morning to the end as a conversation: who sends what, then what the bot answers."""

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
    """At the speed `make demo` plays. Much faster (300x) the emulator's real Telegram limits leave
    the bot minutes behind the virtual clock, and the morning ends before the alert reaches the Polda."""
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--tps", "60", "--out", str(out)],
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
    assert "Final /status of the Polda commander" in transcript and "📊 Status POLDA-SUMSEL" in transcript
    with sqlite3.connect(out / "siaga-demo.db") as db:
        steps = [kind for (kind,) in db.execute("select kind from contingency_steps order by version")]
        checkins = db.execute("select count(*) from checkins").fetchone()[0]
    assert steps[:1] == ["raised"] and "acknowledged" in steps and steps.count("escalated") >= 2, steps
    assert checkins > 0
