"""`siaga invite`: one fresh single-use code per NRP, hashed at rest, printed as DESIGN.md says."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.registration import ALPHABET, hash_code, issue_codes
from models import AuditLog, Personnel, RegistrationCode, Unit

NOW = datetime(2024, 2, 10, 8, 0, tzinfo=UTC)


async def _person(session: AsyncSession, nrp: str = "87010123") -> Personnel:
    unit = Unit(code="POLSEK-A", name="Polsek A", kind="polsek", force="polri")
    session.add(unit)
    await session.flush()
    person = Personnel(nrp=nrp, name="Budi", force="polri", unit_id=unit.id)
    session.add(person)
    await session.flush()
    return person


async def test_codes_are_hashed_single_per_person_and_expire(session: AsyncSession) -> None:
    person = await _person(session)
    first = await issue_codes(session, nrps=[person.nrp, "99999999"], now=NOW, ttl=timedelta(hours=72))
    assert first[1].code is None and first[1].error == "not on the roster"
    code = first[0].code
    assert code and len(code) == 10 and set(code) <= set(ALPHABET)
    assert first[0].expires_at == NOW + timedelta(hours=72)

    stored = (await session.scalars(select(RegistrationCode))).all()
    assert [row.code_hash for row in stored] == [hash_code(code)]
    assert code not in stored[0].code_hash

    second = await issue_codes(session, nrps=[person.nrp], now=NOW + timedelta(hours=1), ttl=timedelta(hours=72))
    rows = {row.code_hash: row for row in await session.scalars(select(RegistrationCode))}
    assert rows[hash_code(code)].expires_at == NOW + timedelta(hours=1), "the old code stops working"
    assert rows[hash_code(second[0].code or "")].expires_at == NOW + timedelta(hours=73)
    audits = await session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "registration.invited")
    )
    assert audits == 2


def test_cli_prints_nrp_code_and_deep_link(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{db}"\n[telegram]\nbot_username = "SiagaTestBot"\n')
    units = tmp_path / "units.csv"
    units.write_text("code,name,kind,force,parent_code,region\nPOLSEK-A,Polsek A,polsek,polri,,\n")
    personnel = tmp_path / "personnel.csv"
    personnel.write_text(
        "nrp,name,rank,force,unit_code,role,phone,home_unit\n87010123,Budi,Bripda,polri,POLSEK-A,anggota,+6281200000001,\n"
    )

    def siaga(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert siaga("db", "upgrade").returncode == 0
    imported = siaga("import", str(units), str(personnel))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    result = siaga("invite", "87010123", "11111111")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    nrp, code, link = lines[0].split("\t")
    assert nrp == "87010123" and len(code) == 10
    assert link == f"https://t.me/SiagaTestBot?start={code}"
    assert "11111111: not on the roster" in result.stderr
    assert code not in result.stderr and "+6281200000001" not in result.stderr
