"""Which counting-night leg `siaga demo` plays, chosen (and if need be shaped) in the generated roster before import.

The demo follows one escort of ballot boxes, PPS -> PPK, by road to a
dermaga and then by boat, in Ogan Komering Ilir as the operation's report
describes (the default 100-TPS province has such a leg). A generated
province may give its legs another access (the villages happen to be
reached by road only, or by water only): the demo then sends the chosen
leg by road to a dermaga two fifths of the way, as `siaga demo-data` places
one. The other legs are left out of the roster, as
the other shifts are: nobody departs them, and their lateness alerts would
only crowd the story.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.demo import demodata
from bot.demo.demodata.escorts import DERMAGA_SHARE
from bot.demo.demodata.figures import KM_PER_DEGREE

OKI = "Ogan Komering Ilir"
ROAD_THEN_WATER = "darat_air"
MIN_KM = 3.0
"""A leg shorter than this has no road to a dermaga worth the name: a district of one village has its PPS
on its PPK (a generated OKI of a 60-TPS province has only that), and another leg is played instead."""
ROOM = timedelta(hours=2)
"""At least this long between departure and `arrive_by`: the scene's stop must not also make the leg late."""


@dataclass(frozen=True)
class Leg:
    """The featured leg as imported: the escort, its three places, and its crew (lead first)."""

    escort: demodata.Escort
    origin: demodata.Place
    dermaga: demodata.Place
    destination: demodata.Place
    crew: tuple[str, ...]
    regency: str

    @property
    def depart_at(self) -> datetime:
        return datetime.fromisoformat(self.escort.depart_at)


def voting_only(province: demodata.Province) -> demodata.Province:
    """The morning starts with the voting shift and the night is one escort: the other shifts would only add noise.

    A later shift kept in the roster would be reminded and found missing
    by the hundreds when the demo's clock moves on to the night.
    """
    kept = {shift.code for shift in province.shifts if shift.phase == "pemungutan"}
    province.shifts = [shift for shift in province.shifts if shift.code in kept]
    province.assignments = [a for a in province.assignments if a.shift_code in kept]
    return province


def regions_with_oki(tps: int) -> int:
    """The default number of regions for `tps`, at least enough to reach OKI (the fourth nearest Palembang)."""
    return max(4, demodata.default_region_count(tps, len(demodata.load_regions())))


def stage_leg(province: demodata.Province) -> Leg:
    """Keep one leg long enough to travel, preferably OKI's by road then water, and return it as imported."""
    if not province.escorts:
        raise SystemExit("the generated province has no escorts to play")
    regency = _regencies(province)
    places = {place.code: place for place in province.places}

    def length(escort: demodata.Escort) -> float:
        origin, destination = places[escort.from_code], places[escort.to_code]
        return km((origin.lat, origin.lon), (destination.lat, destination.lon))

    def fit(escort: demodata.Escort) -> tuple[bool, bool, bool, bool, float, str]:
        where = regency[escort.unit_code]
        return (
            length(escort) < MIN_KM,
            where != OKI,
            escort.access != ROAD_THEN_WATER,
            where not in demodata.WATER_REGIONS,
            -length(escort),
            escort.code,
        )

    escort = min(province.escorts, key=fit)
    if escort.access != ROAD_THEN_WATER or not escort.via_codes:
        escort = _by_road_then_water(province, escort, places)
    depart = datetime.fromisoformat(escort.depart_at)
    if datetime.fromisoformat(escort.arrive_by) < depart + ROOM:
        escort = escort._replace(arrive_by=(depart + ROOM).isoformat())
    province.escorts = [escort]
    crew = [m for m in province.escort_members if m.escort_code == escort.code]
    province.escort_members = crew
    return Leg(
        escort,
        places[escort.from_code],
        places[escort.via_codes.split(";")[-1]],
        places[escort.to_code],
        tuple(m.nrp for m in sorted(crew, key=lambda m: m.role != "ketua")),
        regency[escort.unit_code],
    )


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular, as the generator measures: plenty for a few km."""
    x = (b[1] - a[1]) * math.cos(math.radians((a[0] + b[0]) / 2))
    return KM_PER_DEGREE * math.hypot(x, b[0] - a[0])


def _regencies(province: demodata.Province) -> dict[str, str]:
    return {tps.unit_code: tps.regency for tps in province.tps}


def _by_road_then_water(
    province: demodata.Province, escort: demodata.Escort, places: dict[str, demodata.Place]
) -> demodata.Escort:
    origin, destination = places[escort.from_code], places[escort.to_code]
    code = escort.from_code.replace("PPS-", "DERMAGA-", 1)
    jetty = demodata.Place(
        code,
        origin.name.replace("PPS ", "Dermaga ", 1),
        "dermaga",
        round(origin.lat + DERMAGA_SHARE * (destination.lat - origin.lat), 6),
        round(origin.lon + DERMAGA_SHARE * (destination.lon - origin.lon), 6),
        escort.unit_code,
    )
    if code not in places:
        province.places.append(jetty)
        places[code] = jetty
    return escort._replace(access=ROAD_THEN_WATER, via_codes=code)
