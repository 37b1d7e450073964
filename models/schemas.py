"""Pydantic schemas for what comes in: one per import entity, one row at a time.

A schema checks what one row can show on its own: types, enums, ranges,
required cells, offsets on dates, lat/lon not 0,0, a shift that ends after it
starts. Whatever needs other rows or the database (unknown codes,
duplicates, cycles, the command check) is the importer's job
(`bot/services/roster.py`).

Cells are normalised the way an operator's spreadsheet varies: surrounding
whitespace is stripped, whole numbers typed into text columns become text
(an NRP typed as a number), enum values are matched case-insensitively with
spaces or hyphens for underscores ("Sangat Rawan"). An NRP is 1 to 20 ASCII
letters and digits: it is matched exactly wherever a person or an operator
types it back (registration, `siaga invite`), and a stray `#`, dot or
space would store one that nobody can type.

Formulas never reach a schema: the reader (bot/services/spreadsheet.py)
hands over a workbook formula's cached value and rejects a CSV cell that
begins with `=`. Text that begins with `+`, `-` or `@` is kept as typed;
whoever writes these values back into a spreadsheet (exports) must write
them as text cells (openpyxl `data_type = "s"`), or a formula comes to life.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from models.enums import Access, EscortKind, EscortRole, Force, Kerawanan, Phase, PlaceKind, Role, UnitKind

ENTITIES: tuple[str, ...] = (
    "units",
    "personnel",
    "tps",
    "shifts",
    "assignments",
    "places",
    "escorts",
    "escort_members",
)

# Never echoed back in an error message: a report may be pasted into a chat.
SENSITIVE_COLUMNS = frozenset({"nrp", "phone"})
NRP_LENGTH = 20
_NRP = re.compile(rf"[A-Za-z0-9]{{1,{NRP_LENGTH}}}")
_NOT_NRP = re.compile(r"[^A-Za-z0-9]")


def _enum_text(value: Any) -> Any:
    """ "Sangat Rawan" and "sangat-rawan" mean sangat_rawan."""
    if isinstance(value, str):
        return value.strip().lower().replace(" ", "_").replace("-", "_")
    return value


def _decimal(value: Any) -> Any:
    """Accept the Indonesian decimal comma ("-2,988") in text cells."""
    if isinstance(value, str) and "," in value and "." not in value:
        return value.replace(",", ".")
    return value


def _iso_text(value: Any) -> Any:
    """Only ISO 8601 text or a date cell: a bare number would be read as a Unix timestamp."""
    if isinstance(value, str | datetime):
        return value
    raise ValueError("write the date as ISO 8601 text with an offset, e.g. 2024-02-14T07:00:00+07:00")


def _code_list(value: Any) -> Any:
    """`A;B; C` -> ("A", "B", "C"); empty parts and repeats dropped, order kept."""
    if value is None:
        return ()
    if not isinstance(value, str):
        value = str(value)
    codes = tuple(dict.fromkeys(part.strip() for part in value.split(";") if part.strip()))
    for code in codes:
        if len(code) > 64:
            raise ValueError(f"code {code[:20]!r}... is longer than 64 characters")
    return codes


def _nrp(value: str) -> str:
    """Names the offending character (never the NRP itself: it is sensitive) so the officer finds it."""
    if _NRP.fullmatch(value):
        return value
    wrong = _NOT_NRP.search(value)
    if wrong is not None:
        raise ValueError(f"not an NRP (letters and digits only; found {wrong.group()!r})")
    raise ValueError(f"not an NRP (at most {NRP_LENGTH} letters and digits; found {len(value)})")


Code = Annotated[str, Field(min_length=1, max_length=64)]
Nrp = Annotated[str, AfterValidator(_nrp)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(max_length=200)]
Latitude = Annotated[float, BeforeValidator(_decimal), Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, BeforeValidator(_decimal), Field(ge=-180, le=180, allow_inf_nan=False)]
Moment = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
Cargo = Annotated[str, Field(min_length=1, max_length=200)]
Phone = Annotated[str, Field(max_length=32, pattern=r"^(\+?[0-9][0-9 ().-]*)?$")]


class Row(BaseModel):
    """A spreadsheet row: field names are the column names, in sheet order."""

    model_config = ConfigDict(
        str_strip_whitespace=True,
        coerce_numbers_to_str=True,
        use_enum_values=True,
        extra="forbid",
        frozen=True,
    )
    entity: ClassVar[str]


class UnitRow(Row):
    entity: ClassVar[str] = "units"

    code: Code
    name: Name
    kind: Annotated[UnitKind, BeforeValidator(_enum_text)]
    force: Annotated[Force, BeforeValidator(_enum_text)]
    parent_code: Code | None = None
    region: Text = ""


class PersonnelRow(Row):
    """`unit_code` commands the person for the operation; `home_unit` is where a BKO member comes from."""

    entity: ClassVar[str] = "personnel"

    nrp: Nrp
    name: Name
    rank: Annotated[str, Field(max_length=64)] = ""
    force: Annotated[Force, BeforeValidator(_enum_text)]
    unit_code: Code
    role: Annotated[Role, BeforeValidator(_enum_text)] = Field(default=Role.anggota, validate_default=True)
    phone: Phone = ""
    home_unit: Code | None = None


class TpsRow(Row):
    entity: ClassVar[str] = "tps"

    code: Code
    number: Annotated[str, Field(min_length=1, max_length=16)]
    village: Text = ""
    district: Text = ""
    regency: Text = ""
    lat: Latitude
    lon: Longitude
    vulnerability: Annotated[Kerawanan, BeforeValidator(_enum_text)]
    access: Annotated[Access, BeforeValidator(_enum_text)] = Field(default=Access.darat, validate_default=True)
    unit_code: Code
    secondary_unit_codes: Annotated[tuple[str, ...], BeforeValidator(_code_list)] = ()

    @field_validator("lon")
    @classmethod
    def _not_null_island(cls, lon: float, info: ValidationInfo) -> float:
        return not_null_island(lon, info)


def not_null_island(lon: float, info: ValidationInfo) -> float:
    """0,0 is where empty cells land, in the Gulf of Guinea: never a TPS or a place."""
    if lon == 0 and info.data.get("lat") == 0:
        raise ValueError("lat,lon 0,0 is not a place (empty or zeroed cells?)")
    return lon


class ShiftRow(Row):
    entity: ClassVar[str] = "shifts"

    code: Code
    name: Name
    phase: Annotated[Phase, BeforeValidator(_enum_text)]
    starts_at: Moment
    ends_at: Moment

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, ends_at: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if starts_at is not None and ends_at <= starts_at:
            raise ValueError("ends_at must be after starts_at")
        return ends_at


class AssignmentRow(Row):
    entity: ClassVar[str] = "assignments"

    nrp: Nrp
    tps_code: Code
    shift_code: Code


class PlaceRow(Row):
    """A warehouse, PPK, PPS, jetty or other stop of an escort; `unit_code` guards it (and receives there)."""

    entity: ClassVar[str] = "places"

    code: Code
    name: Name
    kind: Annotated[PlaceKind, BeforeValidator(_enum_text)]
    lat: Latitude
    lon: Longitude
    unit_code: Code

    @field_validator("lon")
    @classmethod
    def _not_null_island(cls, lon: float, info: ValidationInfo) -> float:
        return not_null_island(lon, info)


class EscortRow(Row):
    """`from_code`, `to_code` and `via_codes` (in travel order) each name a place or a TPS."""

    entity: ClassVar[str] = "escorts"

    code: Code
    kind: Annotated[EscortKind, BeforeValidator(_enum_text)]
    cargo: Cargo
    from_code: Code
    to_code: Code
    via_codes: Annotated[tuple[str, ...], BeforeValidator(_code_list)] = ()
    unit_code: Code
    depart_at: Moment
    arrive_by: Moment
    access: Annotated[Access, BeforeValidator(_enum_text)] = Field(default=Access.darat, validate_default=True)

    @field_validator("to_code")
    @classmethod
    def _goes_somewhere(cls, to_code: str, info: ValidationInfo) -> str:
        if to_code == info.data.get("from_code"):
            raise ValueError("to_code must differ from from_code")
        return to_code

    @field_validator("arrive_by")
    @classmethod
    def _after_departure(cls, arrive_by: datetime, info: ValidationInfo) -> datetime:
        depart_at = info.data.get("depart_at")
        if depart_at is not None and arrive_by <= depart_at:
            raise ValueError("arrive_by must be after depart_at")
        return arrive_by


class EscortMemberRow(Row):
    entity: ClassVar[str] = "escort_members"

    escort_code: Code
    nrp: Nrp
    role: Annotated[EscortRole, BeforeValidator(_enum_text)] = Field(default=EscortRole.anggota, validate_default=True)


SCHEMAS: dict[str, type[Row]] = {
    schema.entity: schema
    for schema in (UnitRow, PersonnelRow, TpsRow, ShiftRow, AssignmentRow, PlaceRow, EscortRow, EscortMemberRow)
}
COLUMNS: dict[str, tuple[str, ...]] = {entity: tuple(schema.model_fields) for entity, schema in SCHEMAS.items()}

_REASONS = {
    "missing": "value is required",
    "timezone_aware": "date without an offset: write ISO 8601 with one, e.g. 2024-02-14T07:00:00+07:00",
    "string_pattern_mismatch": "not a phone number (digits, an optional leading +)",
}


def describe(problem: Any, column: str) -> str:
    """One pydantic error in an operator's words; never echoes NRPs or phone numbers."""
    reason = _REASONS.get(problem["type"]) or problem["msg"].removeprefix("Value error, ")
    value = problem.get("input")
    if problem["type"] == "missing" or value is None:
        return reason
    return with_value(reason, column, value)


def with_value(reason: str, column: str, value: Any) -> str:
    """The reason and what the cell held, shortened; only the reason for an NRP or a phone number."""
    if column in SENSITIVE_COLUMNS:
        return reason
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"{reason} (got {shown})"
