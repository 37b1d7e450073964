"""`siaga demo` plays its morning to the end: the contingency climbs to the Polda and /status is printed."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path


def test_demo_runs_to_the_final_board(tmp_path: Path) -> None:
    """At the speed `make demo` plays. Much faster (300x) the emulator's real Telegram limits leave
    the bot minutes behind the virtual clock, and the morning ends before the alert reaches the Polda."""
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--tps", "60", "--out", str(out)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    transcript = result.stdout
    assert "Traceback" not in transcript + result.stderr
    assert "raises a contingency" in transcript
    assert "[Posko Polda Sumsel] ← 🚨 KONTINJENSI #1" in transcript, "the alert climbed to the Polda group"
    assert "acknowledges in the Polda group" in transcript
    assert "Final /status of the Polda commander" in transcript and "📊 Status POLDA-SUMSEL" in transcript
    with sqlite3.connect(out / "siaga-demo.db") as db:
        steps = [kind for (kind,) in db.execute("select kind from contingency_steps order by version")]
        checkins = db.execute("select count(*) from checkins").fetchone()[0]
    assert steps[:1] == ["raised"] and "acknowledged" in steps and steps.count("escalated") >= 2, steps
    assert checkins > 0
