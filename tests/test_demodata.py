"""Tests of the synthetic province generator (bot/demo/demodata/).

The generated province feeds the importer, the demo and the benchmarks, so
these tests pin what those rely on: the exact import format, referential
integrity (the importer rejects a whole file on one bad row), the features
a demo must show, the Sumsel-scale headcounts and determinism.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.demo import demodata
from bot.demo.demodata import Province, generate

EXPECTED_HEADERS = {
    "units": ["code", "name", "kind", "force", "parent_code", "region"],
    "personnel": ["nrp", "name", "rank", "force", "unit_code", "role", "phone", "home_unit"],
    "tps": [
        "code",
        "number",
        "village",
        "district",
        "regency",
        "lat",
        "lon",
        "vulnerability",
        "access",
        "unit_code",
        "secondary_unit_codes",
    ],
    "shifts": ["code", "name", "phase", "starts_at", "ends_at"],
    "assignments": ["nrp", "tps_code", "shift_code"],
    "places": ["code", "name", "kind", "lat", "lon", "unit_code"],
    "escorts": [
        "code",
        "kind",
        "cargo",
        "from_code",
        "to_code",
        "via_codes",
        "unit_code",
        "depart_at",
        "arrive_by",
        "access",
    ],
    "escort_members": ["escort_code", "nrp", "role"],
}
SUMSEL_TPS = 25_985


@pytest.fixture(scope="module")
def small() -> Province:
    return generate(tps=100, seed=1)


@pytest.fixture(scope="module")
def sumsel() -> Province:
    return generate(tps=SUMSEL_TPS, seed=1)


def secondary_codes(tps: demodata.Tps) -> list[str]:
    return [c for c in tps.secondary_unit_codes.split(";") if c]


def assert_referential_integrity(p: Province) -> None:
    units = {u.code for u in p.units}
    people = {x.nrp for x in p.personnel}
    tps = {t.code for t in p.tps}
    shifts = {s.code for s in p.shifts}
    # Keys are unique, as the importer upserts by them.
    assert len(units) == len(p.units)
    assert len(people) == len(p.personnel)
    assert len(tps) == len(p.tps)
    assert len(shifts) == len(p.shifts)
    assert len(set(p.assignments)) == len(p.assignments)
    for u in p.units:
        assert u.parent_code == "" or u.parent_code in units, u
    for x in p.personnel:
        assert x.unit_code in units, x
        assert x.home_unit == "" or x.home_unit in units, x
    for t in p.tps:
        assert t.unit_code in units, t
        for code in secondary_codes(t):
            assert code in units and code != t.unit_code, t
    for a in p.assignments:
        assert a.nrp in people and a.tps_code in tps and a.shift_code in shifts, a
    places = {place.code for place in p.places}
    assert len(places) == len(p.places) and not places & tps
    assert len({e.code for e in p.escorts}) == len(p.escorts)
    for place in p.places:
        assert place.unit_code in units, place
    for e in p.escorts:
        assert e.unit_code in units and {e.from_code, e.to_code} <= places | tps, e
        assert all(code in places for code in e.via_codes.split(";") if code), e
        assert datetime.fromisoformat(e.arrive_by) > datetime.fromisoformat(e.depart_at), e
    escorts = {e.code for e in p.escorts}
    for m in p.escort_members:
        assert m.escort_code in escorts and m.nrp in people, m
    assert len({(m.escort_code, m.nrp) for m in p.escort_members}) == len(p.escort_members)


def test_headers_match_the_import_format() -> None:
    assert {k: list(v) for k, v in demodata.HEADERS.items()} == EXPECTED_HEADERS
    assert list(generate(tps=10).sheets()) == list(EXPECTED_HEADERS)


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a, b = generate(tps=300, seed=42), generate(tps=300, seed=42)
    assert a == b
    c = generate(tps=300, seed=43)
    assert c.counts()["tps"] == 300
    assert a.tps != c.tps and a.personnel != c.personnel


@pytest.mark.parametrize("tps", [1, 3, 37, 100, 2_000])
def test_referential_integrity(tps: int) -> None:
    p = generate(tps=tps, seed=5)
    assert len(p.tps) == tps
    assert_referential_integrity(p)


def test_referential_integrity_at_sumsel_scale(sumsel: Province) -> None:
    assert_referential_integrity(sumsel)


def test_unit_trees_are_acyclic_with_the_expected_shape(sumsel: Province) -> None:
    by_code = {u.code: u for u in sumsel.units}
    parent_kind = {
        "polda": None,
        "polres": "polda",
        "polsek": "polres",
        "korem": None,
        "kodim": "korem",
        "koramil": "kodim",
    }
    force_of = {
        "polda": "polri",
        "polres": "polri",
        "polsek": "polri",
        "korem": "tni",
        "kodim": "tni",
        "koramil": "tni",
    }
    for u in sumsel.units:
        assert u.kind in parent_kind and u.force == force_of[u.kind], u
        expected = parent_kind[u.kind]
        assert (by_code[u.parent_code].kind if u.parent_code else None) == expected, u
        seen, code = set(), u.code
        while code:  # walk to the root; a revisit would be a cycle
            assert code not in seen, f"cycle through {code}"
            seen.add(code)
            code = by_code[code].parent_code
    kinds = Counter(u.kind for u in sumsel.units)
    assert kinds["polda"] == kinds["korem"] == 1 and kinds["polres"] == kinds["kodim"] == 17
    assert kinds["koramil"] == kinds["polsek"]
    per_polres = Counter(u.parent_code for u in sumsel.units if u.kind == "polsek")
    assert all(1 <= n <= 15 for n in per_polres.values())
    assert 8 * 17 <= kinds["polsek"] <= 15 * 17


def test_small_province_has_every_feature(small: Province) -> None:
    assert len({t.regency for t in small.tps}) in (2, 3)
    assert {t.vulnerability for t in small.tps} == {"kurang_rawan", "rawan", "sangat_rawan"}
    assert any(t.access in ("air", "darat_air") for t in small.tps)
    border = [t for t in small.tps if t.secondary_unit_codes]
    assert border
    polres_of = {u.code: u.parent_code for u in small.units if u.kind == "polsek"}
    assert all(polres_of[c] != polres_of[t.unit_code] for t in border for c in secondary_codes(t))
    units = {u.code: u for u in small.units}
    komandan_kinds = {units[x.unit_code].kind for x in small.personnel if x.role == "komandan"}
    assert komandan_kinds == {"polda", "polres", "polsek"}
    assert any(x.role == "admin" and units[x.unit_code].kind == "polda" for x in small.personnel)
    tni = [x for x in small.personnel if x.force == "tni"]
    assert tni
    assert all(units[x.home_unit].kind == "koramil" and units[x.unit_code].kind == "polsek" for x in tni)
    assert Counter(x.force for x in small.personnel)["linmas"] == 200


def test_every_commanding_unit_has_one_komandan(sumsel: Province) -> None:
    komandan = Counter(x.unit_code for x in sumsel.personnel if x.role == "komandan")
    polri_units = [u.code for u in sumsel.units if u.force == "polri"]
    assert sorted(komandan) == sorted(polri_units) and set(komandan.values()) == {1}
    assert 1 <= sum(x.role == "admin" for x in sumsel.personnel) <= 2


def test_sumsel_scale_headcounts(sumsel: Province) -> None:
    forces = Counter(x.force for x in sumsel.personnel)
    assert len(sumsel.tps) == SUMSEL_TPS
    assert 3_000 <= forces["polri"] + forces["tni"] <= 3_600
    assert 490 <= forces["tni"] <= 530
    assert forces["linmas"] == 2 * SUMSEL_TPS
    linmas_per_tps = Counter(
        a.tps_code for a in sumsel.assignments if a.nrp.startswith("LM") and a.shift_code == "H1-PEMUNGUTAN"
    )
    assert set(linmas_per_tps.values()) == {2} and len(linmas_per_tps) == SUMSEL_TPS


def test_sumsel_scale_mix(sumsel: Province) -> None:
    n = len(sumsel.tps)
    levels = Counter(t.vulnerability for t in sumsel.tps)
    assert abs(levels["kurang_rawan"] / n - 0.70) < 0.01
    assert abs(levels["rawan"] / n - 0.22) < 0.01
    assert abs(levels["sangat_rawan"] / n - 0.08) < 0.01
    water = [t for t in sumsel.tps if t.access != "darat"]
    assert 0.01 < len(water) / n < 0.06
    assert {t.access for t in water} == {"air", "darat_air"}
    assert {t.regency for t in water} <= demodata.WATER_REGIONS
    border = sum(1 for t in sumsel.tps if t.secondary_unit_codes)
    assert 0.003 < border / n < 0.008


def test_guards_only_at_tps_of_their_own_polsek(sumsel: Province) -> None:
    person = {x.nrp: x for x in sumsel.personnel}
    polsek_of_tps = {t.code: t.unit_code for t in sumsel.tps}
    for a in sumsel.assignments:
        assert person[a.nrp].unit_code == polsek_of_tps[a.tps_code], a
        assert person[a.nrp].role == "anggota", a


def test_every_tps_is_guarded_in_every_shift(sumsel: Province) -> None:
    force = {x.nrp: x.force for x in sumsel.personnel}
    phase = {s.code: s.phase for s in sumsel.shifts}
    guards: dict[tuple[str, str], int] = Counter()
    linmas: dict[tuple[str, str], int] = Counter()
    for a in sumsel.assignments:
        if force[a.nrp] == "linmas":
            assert phase[a.shift_code] in ("pemungutan", "penghitungan")
            linmas[a.tps_code, a.shift_code] += 1
        else:
            guards[a.tps_code, a.shift_code] += 1
    for t in sumsel.tps:
        for s in sumsel.shifts:
            assert guards[t.code, s.code] == 2
            assert linmas[t.code, s.code] == (2 if s.phase in ("pemungutan", "penghitungan") else 0)
    tps_per_guard = Counter(
        a.nrp for a in sumsel.assignments if a.shift_code == "H1-PEMUNGUTAN" and force[a.nrp] != "linmas"
    )
    assert max(tps_per_guard.values()) < 40  # a pair covers a few pattern groups, not a district


def test_full_pattern_gives_each_group_its_own_team() -> None:
    p = generate(tps=200, seed=3, full_pattern=True)
    assert_referential_integrity(p)
    force = {x.nrp: x.force for x in p.personnel}
    level = {t.code: t.vulnerability for t in p.tps}
    tps_of = defaultdict(set)
    for a in p.assignments:
        if force[a.nrp] != "linmas" and a.shift_code == "H1-PEMUNGUTAN":
            tps_of[a.nrp].add(a.tps_code)
    group_size = {"sangat_rawan": 1, "rawan": 2, "kurang_rawan": 5}
    for codes in tps_of.values():
        levels = {level[c] for c in codes}
        assert len(levels) == 1 and len(codes) <= group_size[levels.pop()]
    levels = Counter(level.values())
    groups = sum(-(-levels[k] // group_size[k]) for k in levels)  # at least, per Polsek rounding adds some
    guards = sum(1 for x in p.personnel if x.force != "linmas" and x.role == "anggota")
    assert guards >= 2 * groups


def test_identifier_formats(sumsel: Province) -> None:
    enums = {"force": {"polri", "tni", "linmas"}, "role": {"anggota", "komandan", "admin"}}
    phones = set()
    for x in sumsel.personnel:
        assert x.force in enums["force"] and x.role in enums["role"]
        pattern = {"polri": r"\d{8}", "tni": r"3\d{9}", "linmas": r"LM\d+"}[x.force]
        assert re.fullmatch(pattern, x.nrp), x
        assert re.fullmatch(r"\+628\d{9,11}", x.phone), x
        assert x.rank and x.name
        if x.force == "linmas":
            assert x.home_unit == ""
        if x.force == "tni":
            assert x.home_unit.startswith("KORAMIL-")
        phones.add(x.phone)
    assert len(phones) == len(sumsel.personnel)
    for t in sumsel.tps:
        assert re.fullmatch(r"TPS-[A-Z]+-\d{2}-\d{4}", t.code), t
        assert t.vulnerability in ("kurang_rawan", "rawan", "sangat_rawan")
        assert t.access in ("darat", "air", "darat_air")
        assert -6 < t.lat < -1 and 101 < t.lon < 107, t


def test_tps_numbers_run_one_to_k_in_each_village(small: Province) -> None:
    numbers = defaultdict(list)
    for t in small.tps:
        numbers[t.regency, t.district, t.village].append(t.number)
    for found in numbers.values():
        assert sorted(found) == list(range(1, len(found) + 1))


def test_shifts_have_offsets_and_follow_each_other() -> None:
    shifts = generate(tps=10).shifts
    assert [s.code for s in shifts] == ["H0-LOGISTIK", "H1-PEMUNGUTAN", "H1-PENGHITUNGAN", "H2-MALAM", "H2-PENGAWALAN"]
    assert shifts[1].starts_at == "2024-02-14T06:00:00+07:00"
    assert shifts[1].ends_at == "2024-02-14T13:00:00+07:00"
    assert shifts[2].ends_at == "2024-02-15T00:00:00+07:00"
    times = [(datetime.fromisoformat(s.starts_at), datetime.fromisoformat(s.ends_at)) for s in shifts]
    for start, end in times:
        assert start.utcoffset() == end.utcoffset() == timedelta(hours=7)
        assert start < end
    assert all(times[i][1] == times[i + 1][0] for i in range(len(times) - 1))
    assert {s.phase for s in shifts} == {"logistik", "pemungutan", "penghitungan", "pengawalan"}


def test_base_date_and_offset_are_configurable() -> None:
    wita = timezone(timedelta(hours=8))
    shifts = generate(tps=10, base_date=date(2029, 4, 17), tz=wita).shifts
    assert shifts[1].starts_at == "2029-04-17T06:00:00+08:00"


def test_linmas_per_tps_and_region_count_options() -> None:
    p = generate(tps=60, linmas_per_tps=3, regions=1)
    assert Counter(x.force for x in p.personnel)["linmas"] == 180
    assert len({t.regency for t in p.tps}) == 1
    assert any(t.secondary_unit_codes for t in p.tps)  # falls back to a neighbouring Polsek
    assert_referential_integrity(p)


def test_xlsx_round_trip(small: Province, tmp_path: Path) -> None:
    path = tmp_path / "province.xlsx"
    demodata.write_xlsx(small, path)
    wb = load_workbook(path, read_only=True)
    assert wb.sheetnames == list(EXPECTED_HEADERS)
    for name, rows in small.sheets().items():
        read = list(wb[name].iter_rows(values_only=True))
        assert list(read[0]) == EXPECTED_HEADERS[name]
        assert len(read) - 1 == len(rows)
        assert [tuple("" if v is None else v for v in r) for r in read[1:]] == [tuple(r) for r in rows]
    wb.close()


def test_csv_round_trip(small: Province, tmp_path: Path) -> None:
    demodata.write_csv(small, tmp_path)
    for name, rows in small.sheets().items():
        with open(tmp_path / f"{name}.csv", newline="", encoding="utf-8") as f:
            read = list(csv.reader(f))
        assert read[0] == EXPECTED_HEADERS[name]
        assert read[1:] == [[str(v) for v in r] for r in rows]


@pytest.mark.parametrize("out", ["demo.xlsx", "demo-csv"])
def test_cli(out: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demodata.main(["--tps", "40", "--seed", "2", str(tmp_path / out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^tps\t40$", printed, re.M)
    assert (tmp_path / out).exists()
    if out.endswith("csv"):
        written = sorted(f.name for f in (tmp_path / out).iterdir())
        assert written == sorted(f"{n}.csv" for n in EXPECTED_HEADERS)


def test_one_escort_per_pps_to_ppk_leg_on_the_counting_night(small: Province) -> None:
    kinds = Counter(place.kind for place in small.places)
    villages = {(t.unit_code, t.village) for t in small.tps}
    assert kinds["pps"] == len(villages) == len(small.escorts)
    assert kinds["ppk"] == len({t.unit_code for t in small.tps})
    assert kinds["gudang"] == len({u.code for u in small.units if u.kind == "polres"})
    assert kinds["dermaga"] == sum(1 for e in small.escorts if e.access == "darat_air") > 0
    places = {place.code: place for place in small.places}
    for e in small.escorts:
        assert (places[e.from_code].kind, places[e.to_code].kind) == ("pps", "ppk")
        assert e.kind == "kotak_suara" and re.fullmatch(r"\d+ kotak suara", e.cargo)
        depart = datetime.fromisoformat(e.depart_at)
        assert (depart.date(), depart.hour) in {(date(2024, 2, 14), h) for h in (22, 23)} | {
            (date(2024, 2, 15), h) for h in (0, 1)
        }
    crews: dict[str, list[str]] = defaultdict(list)
    for m in small.escort_members:
        crews[m.escort_code].append(m.role)
    unit_of = {x.nrp: x.unit_code for x in small.personnel}
    escort_unit = {e.code: e.unit_code for e in small.escorts}
    assert all(unit_of[m.nrp] == escort_unit[m.escort_code] for m in small.escort_members)  # the Polsek's own guards
    assert all(roles[0] == "ketua" and roles.count("ketua") == 1 and 2 <= len(roles) <= 3 for roles in crews.values())
    assert set(crews) == {e.code for e in small.escorts}
