"""How a synthetic province is generated: the command trees, the TPS, the people, the shifts and who guards what.

Everything is derived from one seeded ``random.Random``, so the same
arguments always give the same rows; the figures it draws from are in
`bot.demo.demodata.figures`, the rows it fills (and their writers) in
`bot.demo.province`.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from itertools import accumulate
from pathlib import Path

from bot.demo.demodata.escorts import add_escorts
from bot.demo.demodata.figures import (
    ADMINS,
    BASE_DATE,
    BORDER_SHARE,
    CITY_RADIUS_KM,
    CITY_WEIGHT,
    FIRST_NAMES,
    KM_PER_DEGREE,
    LAST_NAMES,
    LINMAS_PHASES,
    MAX_POLSEK,
    PATTERN,
    PHONE_PREFIXES,
    PLACE_PREFIXES,
    PLACE_ROOTS,
    PLACE_SUFFIXES,
    POLDA_BKO_SHARE,
    POLICE_RANKS,
    PROVINCE_CODE,
    PROVINCE_NAME,
    PROVINCIAL_CAPITAL_WEIGHT,
    REGENCY_RADIUS_KM,
    REGIONS_CSV,
    SHIFT_PLAN,
    SUMSEL_POLICE,
    SUMSEL_TNI,
    SUMSEL_TPS,
    TEAM_SIZE,
    TNI_RANKS,
    TPS_PER_POLSEK,
    TPS_PER_VILLAGE,
    VULNERABILITY_SHARE,
    WATER_ONLY_SHARE,
    WATER_REGIONS,
    WATER_SHARE,
    WIB,
    Region,
    Staffing,
    load_regions,
)
from bot.demo.province import Assignment, Person, Province, Shift, Tps, Unit


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: plenty for tens of km and much cheaper than haversine."""
    x = (lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return KM_PER_DEGREE * math.hypot(x, lat2 - lat1)


def _select_regions(regions: Sequence[Region], count: int) -> list[Region]:
    """The first region (the provincial capital) and its nearest neighbours.

    A small demo province is then one contiguous area, so border TPS and
    escalations between neighbouring commands still make sense on a map.
    """
    if count >= len(regions):
        return list(regions)
    first = regions[0]
    nearest = sorted(regions, key=lambda r: _km(first.lat, first.lon, r.lat, r.lon))[:count]
    return [r for r in regions if r in nearest]  # keep the file's order


def _split(total: int, weights: Sequence[float], minimum: int = 0) -> list[int]:
    """Split ``total`` proportionally to ``weights`` (largest remainder).

    Every share gets at least ``minimum`` when the total allows it, so no
    region or Polsek ends up empty in a small province.
    """
    n = len(weights)
    floor = minimum if total >= minimum * n else 0
    rest = total - floor * n
    s = sum(weights)
    exact = [rest * w / s for w in weights]
    shares = [int(e) for e in exact]
    by_remainder = sorted(range(n), key=lambda i: (shares[i] - exact[i], i))
    for i in by_remainder[: rest - sum(shares)]:
        shares[i] += 1
    return [floor + x for x in shares]


# --------------------------------------------------------------------------
# Generation


@dataclass(slots=True)
class _Polsek:
    """A Polsek under construction: its area, its TPS and its guard teams."""

    code: str
    koramil: str
    region: Region
    district: str
    lat: float
    lon: float
    radius_km: float
    tps: list[list] = field(default_factory=list)  # mutable Tps drafts
    teams: list[list[Person]] = field(default_factory=list)
    team_tps: list[list[str]] = field(default_factory=list)
    linmas: dict[str, list[str]] = field(default_factory=dict)  # TPS code -> NRPs


class _Names:
    """Unique Indonesian-sounding names for places, and names for people."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def place(self, taken: set[str]) -> str:
        """A place name not in ``taken`` (which it then joins)."""
        rng = self.rng
        for attempt in range(100):
            name = f"{rng.choice(PLACE_PREFIXES)} {rng.choice(PLACE_ROOTS)}"
            if attempt > 5 or rng.random() < 0.3:
                name += f" {rng.choice(PLACE_SUFFIXES)}"
            if name not in taken:
                break
        else:  # a huge district: number the duplicates like real "Desa ... II"
            base, n = name, 2
            while (name := f"{base} {n}") in taken:
                n += 1
        taken.add(name)
        return name

    def person(self) -> str:
        rng = self.rng
        if rng.random() < 0.3:
            return f"{rng.choice(FIRST_NAMES)} {rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


class _Ids:
    """Unique NRPs and phone numbers in the formats each force uses."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.nrps: set[str] = set()
        self.phones: set[str] = set()
        self.linmas_count = 0

    def _unique(self, taken: set[str], make: Callable[[], str]) -> str:
        while (value := make()) in taken:
            pass
        taken.add(value)
        return value

    def police(self) -> str:
        """8 digits, YYMM of birth then a serial number, like real Polri NRPs."""
        r = self.rng
        return self._unique(self.nrps, lambda: f"{r.randint(65, 99):02d}{r.randint(1, 12):02d}{r.randint(0, 9999):04d}")

    def tni(self) -> str:
        """10 digits starting with 3: never collides with an 8-digit police NRP."""
        r = self.rng
        return self._unique(self.nrps, lambda: f"3{r.randint(0, 999_999_999):09d}")

    def linmas(self) -> str:
        """Linmas have no NRP; the roster gives them a local ID."""
        self.linmas_count += 1
        return f"LM{self.linmas_count:08d}"

    def phone(self) -> str:
        r = self.rng
        return self._unique(self.phones, lambda: f"+62{r.choice(PHONE_PREFIXES)}{r.randint(0, 99_999_999):08d}")


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def default_region_count(tps: int, available: int) -> int:
    """Regions for a province of ``tps`` TPS: Sumsel density, at least 3.

    A 100-TPS demo thus spans three neighbouring regions (enough for border
    TPS and a river regency), a full-size one all of them.
    """
    per_region = SUMSEL_TPS / available
    return max(1, min(available, tps, max(3, round(tps / per_region))))


def generate(
    tps: int = 100,
    seed: int = 1,
    regions: int | None = None,
    base_date: date = BASE_DATE,
    tz: tzinfo = WIB,
    linmas_per_tps: int = 2,
    *,
    tni: int | None = None,
    police: int | None = None,
    full_pattern: bool = False,
    pattern: Mapping[str, Staffing] = PATTERN,
    water_regions: Collection[str] = WATER_REGIONS,
    regions_csv: Path = REGIONS_CSV,
    province_code: str = PROVINCE_CODE,
    province_name: str = PROVINCE_NAME,
) -> Province:
    """Generate a province of ``tps`` polling stations.

    ``regions``: how many region rows to use (default: Sumsel density, at
    least 3). ``police`` / ``tni``: headcounts, ``police`` including
    commanders and admins (default: scaled from Sumsel's 3,000 police and
    510 TNI; never fewer than one pair of guards per Polsek).

    The headcount, not the staffing pattern, is the default because the
    pattern at Sumsel scale asks for ~17,500 guards, five times what the
    province had: the pattern therefore defines the TPS groups, and each
    pair of guards covers several groups of its Polsek (every TPS still has
    two guards in every shift). ``full_pattern=True`` instead gives every group its own team, sized by
    the pattern (``police`` is then ignored).
    """
    if tps < 1:
        raise ValueError("tps must be at least 1")
    rng = random.Random(seed)
    names, ids = _Names(rng), _Ids(rng)
    all_regions = load_regions(regions_csv)
    if regions is None:
        count = default_region_count(tps, len(all_regions))
    else:
        count = max(1, min(regions, len(all_regions), tps))
    chosen = _select_regions(all_regions, count)

    province = Province()
    polda = f"POLDA-{province_code}"
    province.units.append(Unit(polda, f"Polda {province_code.title()}", "polda", "polri", "", province_name))
    korem = f"KOREM-{province_code}"
    province.units.append(Unit(korem, f"Korem {province_code.title()}", "korem", "tni", "", province_name))
    polseks = _build_units(province, chosen, tps, polda, korem, rng, names)
    _build_tps(polseks, rng, names)
    all_tps = [t for p in polseks for t in p.tps]
    _assign_vulnerability(all_tps, rng)
    _assign_water(polseks, water_regions, tps, rng)
    _assign_border(polseks, chosen, tps)
    for p in polseks:
        province.tps.extend(Tps(*t) for t in p.tps)

    _build_personnel(
        province,
        polseks,
        chosen,
        polda,
        tps,
        rng,
        names,
        ids,
        linmas_per_tps=linmas_per_tps,
        tni=tni,
        police=police,
        full_pattern=full_pattern,
        pattern=pattern,
    )
    province.shifts = make_shifts(base_date, tz)
    _build_assignments(province, polseks)
    add_escorts(province, base_date, tz, seed)
    return province


def _build_units(
    province: Province, chosen: Sequence[Region], tps: int, polda: str, korem: str, rng: random.Random, names: _Names
) -> list[_Polsek]:
    """Polres and Polsek under the Polda; Kodim and Koramil under the Korem.

    The TNI units form their own tree (a Kodim per region, a Koramil per
    Polsek area, rooted at a Korem with no parent): they are only the home
    units of TNI personnel, who are commanded during the operation by the
    Polri unit they are attached to (BKO), so no TNI unit sits in the Polri
    tree and no TNI commander is needed.
    """
    weights = [
        PROVINCIAL_CAPITAL_WEIGHT if i == 0 and r.is_city else CITY_WEIGHT if r.is_city else 1.0
        for i, r in enumerate(chosen)
    ]
    per_region = _split(tps, weights, minimum=1)
    polseks: list[_Polsek] = []
    for region, n_tps in zip(chosen, per_region, strict=True):
        polres, kodim = f"POLRES-{region.short}", f"KODIM-{region.short}"
        province.units.append(Unit(polres, region.police_unit, "polres", "polri", polda, region.name))
        area = " ".join(region.police_unit.split()[1:]) or region.name
        province.units.append(Unit(kodim, f"Kodim {area}", "kodim", "tni", korem, region.name))
        wanted = max(math.ceil(n_tps / TPS_PER_POLSEK), 2 if n_tps >= 20 else 1)  # a demo drills down
        n_polsek = max(1, min(MAX_POLSEK, n_tps, wanted))
        radius = CITY_RADIUS_KM if region.is_city else REGENCY_RADIUS_KM
        districts: set[str] = set()
        shares = _split(n_tps, [rng.uniform(0.6, 1.4) for _ in range(n_polsek)], minimum=1)
        for k in range(n_polsek):
            # The first district is the capital town; the others ring it.
            district = region.capital if k == 0 else names.place(districts)
            districts.add(district)
            if k == 0:
                lat, lon = region.lat, region.lon
            else:
                angle = 2 * math.pi * (k / (n_polsek - 1)) + rng.uniform(-0.3, 0.3)
                dist = radius * rng.uniform(0.35, 0.9) / KM_PER_DEGREE
                lat, lon = region.lat + dist * math.sin(angle), region.lon + dist * math.cos(angle)
            code = f"POLSEK-{region.short}-{k + 1:02d}"
            koramil = f"KORAMIL-{region.short}-{k + 1:02d}"
            province.units.append(Unit(code, f"Polsek {district}", "polsek", "polri", polres, region.name))
            province.units.append(Unit(koramil, f"Koramil {district}", "koramil", "tni", kodim, region.name))
            p = _Polsek(code, koramil, region, district, lat, lon, radius / math.sqrt(n_polsek))
            p.tps = [[] for _ in range(shares[k])]
            polseks.append(p)
    return polseks


def _build_tps(polseks: Sequence[_Polsek], rng: random.Random, names: _Names) -> None:
    """Villages around each Polsek's centre, TPS numbered 1..k in each village.

    Drafts are lists in ``Tps`` column order; vulnerability, access and
    secondary units are filled in afterwards from province-wide quotas.
    """
    gauss = rng.gauss
    for p in polseks:
        n = len(p.tps)
        n_villages = max(1, round(n / TPS_PER_VILLAGE))
        sizes = _split(n, [rng.uniform(0.5, 1.5) for _ in range(n_villages)], minimum=1)
        villages: set[str] = set()
        i = 0
        sigma = p.radius_km / 2 / KM_PER_DEGREE
        for size in sizes:
            village = names.place(villages)
            vlat, vlon = p.lat + gauss(0, sigma), p.lon + gauss(0, sigma)
            for number in range(1, size + 1):
                lat = round(vlat + gauss(0, 0.004), 6)  # a village spans ~1 km
                lon = round(vlon + gauss(0, 0.004), 6)
                code = f"TPS-{p.code[7:]}-{i + 1:04d}"
                p.tps[i] = [
                    code,
                    number,
                    village,
                    p.district,
                    p.region.name,
                    lat,
                    lon,
                    "kurang_rawan",
                    "darat",
                    p.code,
                    "",
                ]
                i += 1


def _assign_vulnerability(all_tps: list[list], rng: random.Random) -> None:
    """Exact province-wide shares (8 % / 22 % / 70 %), each level at least once."""
    n = len(all_tps)
    counts = {level: min(n, max(1, round(share * n))) for level, share in VULNERABILITY_SHARE.items()}
    labels = [level for level, c in counts.items() for _ in range(c)][:n]
    labels += ["kurang_rawan"] * (n - len(labels))
    if n >= 3 and "kurang_rawan" not in labels:
        labels[-1] = "kurang_rawan"
    rng.shuffle(labels)
    for draft, level in zip(all_tps, labels, strict=True):
        draft[7] = level


def _assign_water(polseks: Sequence[_Polsek], water_regions: Collection[str], tps: int, rng: random.Random) -> None:
    """Whole river villages in the swamp regencies are reached by boat.

    Whole villages are marked, so the share overshoots the quota by at most
    one village. Falls back to any village when none of the chosen regions is
    a water region, so even a tiny demo has a water-access TPS.
    """
    quota = max(1, round(WATER_SHARE * tps))
    villages: dict[tuple[str, str], list[list]] = {}
    for p in polseks:
        if p.region.name in water_regions:
            for t in p.tps:
                villages.setdefault((p.code, t[2]), []).append(t)
    if not villages:
        for p in polseks:
            for t in p.tps:
                villages.setdefault((p.code, t[2]), []).append(t)
    keys = sorted(villages)
    rng.shuffle(keys)
    for key in keys:
        if quota <= 0:
            break
        access = "air" if rng.random() < WATER_ONLY_SHARE else "darat_air"
        for t in villages[key]:  # the whole village: the river does not stop halfway
            t[8] = access
        quota -= len(villages[key])


def _assign_border(polseks: Sequence[_Polsek], chosen: Sequence[Region], tps: int) -> None:
    """Give the TPS nearest to a neighbouring command a secondary unit there.

    The score is the distance to the own region's capital divided by the
    distance to the nearest other capital: the highest scores sit where two
    jurisdictions meet (like Jakabaring/Plaju between Palembang and
    Banyuasin). The secondary unit is that neighbour's nearest Polsek. In a
    one-region province the neighbour is another Polsek of the same Polres.
    """
    quota = max(1, round(BORDER_SHARE * tps))
    if len(chosen) >= 2:
        centres = [(r.name, r.lat, r.lon) for r in chosen]
        by_area = {r.name: [p for p in polseks if p.region.name == r.name] for r in chosen}
        area_of = lambda p: p.region.name  # noqa: E731
    else:
        centres = [(p.code, p.lat, p.lon) for p in polseks]
        by_area = {p.code: [p] for p in polseks}
        area_of = lambda p: p.code  # noqa: E731
    if len(centres) < 2:
        return
    own_centre = {key: (lat, lon) for key, lat, lon in centres}
    scored = []
    for p in polseks:
        own = area_of(p)
        olat, olon = own_centre[own]
        for t in p.tps:
            lat, lon = t[5], t[6]
            other, d_other = min(((k, _km(lat, lon, a, b)) for k, a, b in centres if k != own), key=lambda x: x[1])
            scored.append((_km(lat, lon, olat, olon) / max(d_other, 0.001), t[0], t, other))
    for _, _, t, other in heapq.nlargest(quota, scored, key=lambda s: (s[0], s[1])):
        neighbour = min(by_area[other], key=lambda q: _km(t[5], t[6], q.lat, q.lon))
        t[10] = neighbour.code


def _build_personnel(
    province: Province,
    polseks: Sequence[_Polsek],
    chosen: Sequence[Region],
    polda: str,
    tps: int,
    rng: random.Random,
    names: _Names,
    ids: _Ids,
    *,
    linmas_per_tps: int,
    tni: int | None,
    police: int | None,
    full_pattern: bool,
    pattern: Mapping[str, Staffing],
) -> None:
    """Commanders at every Polri level, admins, guard teams and Linmas.

    Guards are grouped per Polsek following the staffing pattern (a group is
    1, 2 or 5 TPS of one level); a team guards consecutive groups, so it
    stays in one area and never leaves its own Polsek. TNI on BKO take the
    second seat of randomly chosen teams: ``unit_code`` is the Polsek that
    commands them, ``home_unit`` their Koramil.
    """
    staff = province.personnel

    def officer(rank: str, unit: str, role: str) -> Person:
        return Person(ids.police(), names.person(), rank, "polri", unit, role, ids.phone(), "")

    staff.append(officer("Irjen", polda, "komandan"))
    staff.extend(officer(rank, polda, "admin") for rank in ("Kompol", "AKP", "Ipda")[:ADMINS])
    for region in chosen:
        big = region.police_unit.startswith("Polrestabes")
        staff.append(officer("Kombes" if big else "AKBP", f"POLRES-{region.short}", "komandan"))
        for p in polseks:
            if p.region is region:
                rank = "Kompol" if big else rng.choice(("AKP", "AKP", "Iptu"))
                staff.append(officer(rank, p.code, "komandan"))
    commanders = len(staff)

    # Pattern groups per Polsek, in TPS order so neighbouring TPS go together.
    groups: dict[str, list[tuple[str, list[str]]]] = {}
    for p in polseks:
        open_group: dict[str, list[str]] = {}
        g: list[tuple[str, list[str]]] = []
        for t in p.tps:
            level = t[7]
            members = open_group.get(level)
            if members is None or len(members) >= pattern[level].tps:
                members = open_group[level] = []
                g.append((level, members))
            members.append(t[0])
        groups[p.code] = g

    n_tni = round(tps * SUMSEL_TNI / SUMSEL_TPS) if tni is None else tni
    if tni is None and tps >= 10:
        n_tni = max(1, n_tni)  # a small demo still shows BKO
    if full_pattern:
        sizes = {p.code: [pattern[level].police for level, _ in groups[p.code]] for p in polseks}
        spans = {p.code: [[g] for g in groups[p.code]] for p in polseks}
    else:
        n_police = (round(tps * SUMSEL_POLICE / SUMSEL_TPS) if police is None else police) - commanders
        n_teams = max(len(polseks), round((n_police + n_tni) / TEAM_SIZE))
        per_polsek = _split(n_teams, [len(groups[p.code]) for p in polseks], minimum=1)
        spans, sizes = {}, {}
        for p, k in zip(polseks, per_polsek, strict=True):
            g = groups[p.code]
            k = min(k, len(g))
            cuts = [0, *accumulate(_split(len(g), [1.0] * k, minimum=1))]
            spans[p.code] = [g[cuts[i] : cuts[i + 1]] for i in range(k)]
            sizes[p.code] = [TEAM_SIZE] * k

    seats = [(p, i) for p in polseks for i, size in enumerate(sizes[p.code]) if size >= 2]
    tni_teams = set((p.code, i) for p, i in rng.sample(seats, min(n_tni, len(seats))))

    for p in polseks:
        for i, (size, span) in enumerate(zip(sizes[p.code], spans[p.code], strict=True)):
            team = []
            for seat in range(size):
                if seat == 1 and (p.code, i) in tni_teams:
                    team.append(
                        Person(
                            ids.tni(),
                            names.person(),
                            _weighted(rng, TNI_RANKS),
                            "tni",
                            p.code,
                            "anggota",
                            ids.phone(),
                            p.koramil,
                        )
                    )
                else:
                    home = polda if rng.random() < POLDA_BKO_SHARE else ""
                    team.append(
                        Person(
                            ids.police(),
                            names.person(),
                            _weighted(rng, POLICE_RANKS),
                            "polri",
                            p.code,
                            "anggota",
                            ids.phone(),
                            home,
                        )
                    )
            p.teams.append(team)
            p.team_tps.append([code for _, members in span for code in members])
            staff.extend(team)

    for p in polseks:
        for t in p.tps:
            for _ in range(linmas_per_tps):
                person = Person(ids.linmas(), names.person(), "Linmas", "linmas", p.code, "anggota", ids.phone(), "")
                staff.append(person)
                p.linmas.setdefault(t[0], []).append(person.nrp)


def make_shifts(base_date: date = BASE_DATE, tz: tzinfo = WIB) -> list[Shift]:
    """The operation's shifts around voting day ``base_date``, with offsets."""
    midnight = datetime(base_date.year, base_date.month, base_date.day, tzinfo=tz)
    rows = []
    for s in SHIFT_PLAN:
        start = midnight + timedelta(days=s.day, hours=s.hour)
        end = start + timedelta(hours=s.hours)
        rows.append(Shift(s.code, s.name, s.phase, start.isoformat(), end.isoformat()))
    return rows


def _build_assignments(province: Province, polseks: Sequence[_Polsek]) -> None:
    """Guards to every TPS of their team in every shift; Linmas to their own TPS
    in the voting and counting shifts (the ones held at the TPS)."""
    rows = province.assignments
    all_shifts = [s.code for s in province.shifts]
    linmas_shifts = [s.code for s in province.shifts if s.phase in LINMAS_PHASES]
    for p in polseks:
        for team, codes in zip(p.teams, p.team_tps, strict=True):
            for person in team:
                rows.extend(Assignment(person.nrp, code, shift) for shift in all_shifts for code in codes)
        for code, nrps in p.linmas.items():
            for nrp in nrps:
                rows.extend(Assignment(nrp, code, shift) for shift in linmas_shifts)
