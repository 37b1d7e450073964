"""The figures a synthetic province is drawn from: Sumsel's operation, its staffing pattern, its shifts, its names.

Ratios are relative to the Sumsel operation so that a smaller province keeps
the same proportions; the regions come from ``bot/demo/demodata/sumsel-regions.csv``
(another province only needs another CSV). Nothing here draws a random
number: `bot.demo.demodata.model` does, from these.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

REGIONS_CSV = Path(__file__).with_name("sumsel-regions.csv")
PROVINCE_CODE = "SUMSEL"
PROVINCE_NAME = "Sumatera Selatan"
BASE_DATE = date(2024, 2, 14)
WIB = timezone(timedelta(hours=7))

SUMSEL_TPS = 25_985
SUMSEL_POLICE = 3_000  # all Polri, commanders and staff included
SUMSEL_TNI = 510  # on BKO to Polri units
POLDA_BKO_SHARE = 1_013 / 3_000  # police reinforcements sent down from the Polda
ADMINS = 2

VULNERABILITY_SHARE = {"sangat_rawan": 0.08, "rawan": 0.22}  # rest: kurang_rawan
WATER_SHARE = 0.03  # TPS reached by boat, province-wide
WATER_ONLY_SHARE = 0.4  # of water villages: "air"; the rest "darat_air"
BORDER_SHARE = 0.005  # TPS with a secondary unit across a Polres border
WATER_REGIONS = frozenset({"Ogan Komering Ilir", "Banyuasin", "Musi Banyuasin"})

TPS_PER_POLSEK = 150  # Sumsel: ~8-15 Polsek per Polres
MAX_POLSEK = 15
TPS_PER_VILLAGE = 8  # Sumsel: ~3,200 villages for 25,985 TPS
PROVINCIAL_CAPITAL_WEIGHT = 3.0  # the first region row holds far more voters
CITY_WEIGHT = 0.4  # other "Kota ..." regions are small
CITY_RADIUS_KM = 8.0
REGENCY_RADIUS_KM = 35.0
KM_PER_DEGREE = 111.0
TEAM_SIZE = 2  # police / TNI guard in pairs


class Staffing(NamedTuple):
    """A staffing-pattern entry: ``police`` personnel for every ``tps`` TPS."""

    tps: int
    police: int


PATTERN: dict[str, Staffing] = {
    "sangat_rawan": Staffing(tps=1, police=2),
    "rawan": Staffing(tps=2, police=2),
    "kurang_rawan": Staffing(tps=5, police=2),
}


class ShiftPlan(NamedTuple):
    """A shift relative to the voting day: day offset, start hour, length."""

    code: str
    name: str
    phase: str
    day: int
    hour: int
    hours: int


SHIFT_PLAN: tuple[ShiftPlan, ...] = (
    ShiftPlan("H0-LOGISTIK", "Pengamanan logistik di TPS (H-1)", "logistik", -1, 12, 18),
    ShiftPlan("H1-PEMUNGUTAN", "Pemungutan suara", "pemungutan", 0, 6, 7),
    ShiftPlan("H1-PENGHITUNGAN", "Penghitungan suara", "penghitungan", 0, 13, 11),
    ShiftPlan("H2-MALAM", "Penghitungan suara (malam)", "penghitungan", 1, 0, 6),
    ShiftPlan("H2-PENGAWALAN", "Pengawalan kotak suara ke PPK", "pengawalan", 1, 6, 12),
)
LINMAS_PHASES = frozenset({"pemungutan", "penghitungan"})  # Linmas stay at their TPS

POLICE_RANKS = (("Bripda", 30), ("Briptu", 25), ("Brigpol", 20), ("Bripka", 15), ("Aipda", 10))
TNI_RANKS = (
    ("Prada", 20),
    ("Pratu", 25),
    ("Praka", 20),
    ("Kopda", 12),
    ("Serda", 12),
    ("Sertu", 8),
    ("Letda", 3),
)

FIRST_NAMES = (
    "Ahmad",
    "Agus",
    "Andi",
    "Ari",
    "Bambang",
    "Budi",
    "Dedi",
    "Deni",
    "Dian",
    "Dimas",
    "Eko",
    "Fajar",
    "Fauzi",
    "Hadi",
    "Hendra",
    "Heru",
    "Ilham",
    "Imam",
    "Indra",
    "Irfan",
    "Joko",
    "Kurniawan",
    "Lukman",
    "M.",
    "Muhammad",
    "Nanda",
    "Putra",
    "Rahmat",
    "Randi",
    "Rizki",
    "Rudi",
    "Sandi",
    "Slamet",
    "Sri",
    "Taufik",
    "Teguh",
    "Wahyu",
    "Yoga",
    "Yudi",
    "Zulkifli",
    "Ayu",
    "Dewi",
    "Fitri",
    "Indah",
    "Lestari",
    "Nurul",
    "Putri",
    "Ratna",
    "Siti",
    "Wulan",
)
LAST_NAMES = (
    "Saputra",
    "Pratama",
    "Hidayat",
    "Kurniawan",
    "Santoso",
    "Wijaya",
    "Setiawan",
    "Nugroho",
    "Firmansyah",
    "Syahputra",
    "Gunawan",
    "Hakim",
    "Susanto",
    "Ramadhan",
    "Fadillah",
    "Harahap",
    "Lubis",
    "Siregar",
    "Nasution",
    "Effendi",
    "Hasibuan",
    "Rachman",
    "Wibowo",
    "Sudirman",
    "Sanjaya",
    "Irawan",
    "Hermawan",
    "Purnomo",
    "Yusuf",
    "Anwar",
    "Sari",
    "Rahayu",
    "Utami",
    "Maulana",
    "Iskandar",
    "Marzuki",
    "Darmawan",
    "Prasetyo",
    "Alamsyah",
    "Zainal",
)
PLACE_PREFIXES = (
    "Sungai",
    "Talang",
    "Tanjung",
    "Muara",
    "Air",
    "Lubuk",
    "Pulau",
    "Karang",
    "Suka",
    "Tebing",
    "Bukit",
    "Teluk",
    "Pagar",
    "Sri",
    "Mekar",
    "Batu",
    "Padang",
    "Rantau",
    "Gunung",
    "Tanah",
)
PLACE_ROOTS = (
    "Rejo",
    "Lestari",
    "Kemang",
    "Gelam",
    "Pinang",
    "Durian",
    "Rambutan",
    "Nibung",
    "Rengas",
    "Kelapa",
    "Bungur",
    "Kemiri",
    "Petai",
    "Beringin",
    "Meranti",
    "Tembesu",
    "Medang",
    "Seribu",
    "Enim",
    "Lematang",
    "Komering",
    "Ogan",
    "Lais",
    "Keramat",
    "Dalam",
    "Harapan",
    "Merah",
    "Putih",
    "Panjang",
    "Besar",
    "Kecil",
    "Gading",
    "Rotan",
    "Sembilan",
    "Tinggi",
    "Damai",
)
PLACE_SUFFIXES = (
    "Jaya",
    "Makmur",
    "Baru",
    "Raya",
    "Indah",
    "Mulya",
    "Sari",
    "Agung",
    "Lama",
    "Ilir",
    "Ulu",
    "Tengah",
)
PHONE_PREFIXES = (
    "811",
    "812",
    "813",
    "821",
    "822",
    "823",
    "852",
    "853",
    "814",
    "815",
    "816",
    "855",
    "856",
    "857",
    "858",
    "817",
    "818",
    "819",
    "859",
    "877",
    "878",
    "895",
    "896",
    "897",
)


# --------------------------------------------------------------------------
# Regions


class Region(NamedTuple):
    """A row of the regions CSV plus the short code derived from it."""

    name: str
    police_unit: str
    capital: str
    lat: float
    lon: float
    short: str

    @property
    def is_city(self) -> bool:
        """Cities are small and dense; regencies large and spread out."""
        return self.name.startswith("Kota ")


def short_code(police_unit: str) -> str:
    """A short, stable, readable code from a police unit's name.

    "Polres OKU Selatan" -> "OKUS", "Polres OKI" -> "OKI",
    "Polrestabes Palembang" -> "PALEMBANG", "Polres Musi Rawas" -> "MUSIRAWAS":
    acronyms stay acronyms, other names stay spelled out so codes read well.
    """
    words = police_unit.split()[1:] or police_unit.split()
    if words[0].isupper():
        return words[0] + "".join(w[0].upper() for w in words[1:])
    return "".join(w.upper() for w in words if w.isalnum())


def load_regions(path: Path = REGIONS_CSV) -> list[Region]:
    """Read ``region,police_unit,capital,lat,lon`` rows; short codes must be unique."""
    with open(path, newline="", encoding="utf-8") as f:
        regions = [
            Region(
                r["region"],
                r["police_unit"],
                r["capital"],
                float(r["lat"]),
                float(r["lon"]),
                short_code(r["police_unit"]),
            )
            for r in csv.DictReader(f)
        ]
    shorts = [r.short for r in regions]
    if len(set(shorts)) != len(shorts):
        raise ValueError(f"region short codes collide in {path}: {shorts}")
    return regions
