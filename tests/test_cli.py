"""The operators' day before, through the real command line: generate, import, check, invite, outbox, export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_operators_commands_end_to_end(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "ops.db"}"\n')

    def siaga(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )

    assert siaga("db", "upgrade").returncode == 0
    assert siaga("demo-data", "--tps", "30", str(tmp_path / "roster.xlsx")).returncode == 0
    imported = siaga("import", str(tmp_path / "roster.xlsx"))
    assert imported.returncode == 0 and "Import done." in imported.stdout, imported.stdout + imported.stderr
    again = siaga("import", str(tmp_path / "roster.xlsx"))
    assert "0 created, 0 updated" in again.stdout
    check = siaga("check")
    assert check.returncode == 0 and check.stdout.strip()
    box = siaga("outbox")
    assert box.returncode == 0 and "0 escalation" in box.stdout and "failures: 0" in box.stdout
    export = siaga("export", str(tmp_path / "recap.xlsx"))
    assert export.returncode == 0, export.stderr
    assert (tmp_path / "recap.xlsx").stat().st_size > 0 and (tmp_path / "recap.geojson").stat().st_size > 0
    missing = siaga("import", str(tmp_path / "nope.xlsx"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
