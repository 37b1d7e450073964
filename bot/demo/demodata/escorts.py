"""The counting night's escorts of a generated province: places, one escort per PPS -> PPK leg, their crews.

Derived from the generated TPS and personnel alone (not from the shared
random stream), so adding escorts changes none of the other rows:
- a KPU gudang per regency (at the Polres's first district), a PPK per
  district (at the centre of its TPS), a PPS per village (at the centre of
  the village's TPS), and a dermaga for each village reached over water,
  two fifths of the way from the PPS to the PPK;
- one escort per village, PPS -> PPK, after counting on the night of the
  voting day: ballot boxes (five per TPS), by road, by water, or by road
  to the dermaga and then by boat; due after the travel time at 20 km/h
  by road and 10 km/h on water, plus an hour;
- two or three members of the Polsek's guards, the first the ketua,
  taken in turn so the work is spread.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo

from bot.demo.demodata.figures import KM_PER_DEGREE
from bot.demo.province import Escort, EscortMember, Person, Place, Province, Tps

BOXES_PER_TPS = 5  # presiden, DPR, DPD, DPRD provinsi, DPRD kabupaten/kota
ROAD_KMH, WATER_KMH = 20.0, 10.0
DERMAGA_SHARE = 0.4  # how far along the way from the PPS the boat waits
COUNTING_ENDS_HOUR = 22  # local time on the voting day; escorts leave over the next three hours


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    x = (b[1] - a[1]) * math.cos(math.radians((a[0] + b[0]) / 2))
    return KM_PER_DEGREE * math.hypot(x, b[0] - a[0])


def _centre(rows: Sequence[Tps]) -> tuple[float, float]:
    return (round(sum(t.lat for t in rows) / len(rows), 6), round(sum(t.lon for t in rows) / len(rows), 6))


def add_escorts(province: Province, base_date: date, tz: tzinfo, seed: int) -> None:
    """Fill `province.places`, `.escorts` and `.escort_members` from its TPS and personnel."""
    rng = random.Random(f"escorts-{seed}")
    by_polsek: dict[str, list[Tps]] = defaultdict(list)
    for tps in province.tps:
        by_polsek[tps.unit_code].append(tps)
    parents = {unit.code: unit.parent_code for unit in province.units}
    guards: dict[str, list[Person]] = defaultdict(list)
    for person in province.personnel:
        if person.force != "linmas" and person.role == "anggota":
            guards[person.unit_code].append(person)
    evening = datetime(base_date.year, base_date.month, base_date.day, COUNTING_ENDS_HOUR, tzinfo=tz)
    gudang_of: dict[str, str] = {}
    for polsek, rows in by_polsek.items():
        polres = parents[polsek]
        if polres not in gudang_of:
            gudang_of[polres] = code = f"GUDANG-{polres.removeprefix('POLRES-')}"
            lat, lon = _centre(rows)
            province.places.append(Place(code, f"Gudang KPU {rows[0].regency}", "gudang", lat, lon, polres))
        _district(province, polsek, rows, guards[polsek], evening, rng)


def _district(
    province: Province,
    polsek: str,
    rows: Sequence[Tps],
    guards: Sequence[Person],
    evening: datetime,
    rng: random.Random,
) -> None:
    suffix = polsek.removeprefix("POLSEK-")
    ppk_code, ppk = f"PPK-{suffix}", _centre(rows)
    province.places.append(Place(ppk_code, f"PPK {rows[0].district}", "ppk", *ppk, polsek))
    villages: dict[str, list[Tps]] = defaultdict(list)
    for tps in rows:
        villages[tps.village].append(tps)
    turn = 0
    for number, (village, members) in enumerate(villages.items(), start=1):
        pps_code, pps = f"PPS-{suffix}-{number:03d}", _centre(members)
        province.places.append(Place(pps_code, f"PPS {village}", "pps", *pps, polsek))
        access = members[0].access
        vias, water_km, road_km = "", 0.0, _km(pps, ppk)
        if access == "darat_air":
            jetty = (
                round(pps[0] + DERMAGA_SHARE * (ppk[0] - pps[0]), 6),
                round(pps[1] + DERMAGA_SHARE * (ppk[1] - pps[1]), 6),
            )
            vias = f"DERMAGA-{suffix}-{number:03d}"
            province.places.append(Place(vias, f"Dermaga {village}", "dermaga", jetty[0], jetty[1], polsek))
            road_km, water_km = _km(pps, jetty), _km(jetty, ppk)
        elif access == "air":
            road_km, water_km = 0.0, road_km
        hours = road_km / ROAD_KMH + water_km / WATER_KMH + 1
        depart = evening + timedelta(minutes=30 * rng.randint(0, 6))
        arrive = depart + timedelta(minutes=30 * math.ceil(hours * 2))
        code = f"KWL-{suffix}-{number:03d}"
        cargo = f"{BOXES_PER_TPS * len(members)} kotak suara"
        province.escorts.append(
            Escort(
                code,
                "kotak_suara",
                cargo,
                pps_code,
                ppk_code,
                vias,
                polsek,
                depart.isoformat(),
                arrive.isoformat(),
                access,
            )
        )
        crew = min(len(guards), rng.choice((2, 3)))
        for seat in range(crew):
            person = guards[(turn + seat) % len(guards)]
            province.escort_members.append(EscortMember(code, person.nrp, "ketua" if seat == 0 else "anggota"))
        turn += crew
