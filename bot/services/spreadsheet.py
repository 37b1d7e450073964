"""Reading import files: .xlsx workbooks and .csv files, one entity per sheet or file.

`parse_files` finds the entity sheets, checks their header rows, validates
every data row with its schema (models/schemas.py) and keeps the valid ones
keyed by code / NRP, noting every bad row with its spreadsheet row number
(header = 1), so an error points at the cell the operator has to fix. It
never holds a sheet's raw cells: a Sumsel workbook has half a million rows.
Checks that need other rows or the database are bot/services/roster.py's.

A workbook formula cell is imported as the value the workbook cached for it
(what Excel or LibreOffice showed the officer when the file was saved), the
way openpyxl's `data_only=True` reads it; nothing is ever evaluated here. A
formula with no cached value (a workbook written by a script and never
opened) and a cached error (`#N/A` from a failed lookup) are rejected
instead of being imported as empty cells or as the text "#N/A". Both need
to know that the cell holds a formula, which `data_only=True` hides, so the
sheet is parsed once by openpyxl's own parser with that one addition.

A CSV file has no cell types: a value that begins with `=` (after leading
spaces) is what a spreadsheet runs as a formula when the file is opened,
never an NRP, a code or a name, so it is rejected in every column. Values
that begin with `+`, `-` or `@` are kept: "+62 812...", "-2,98" and "-" (an
empty village in many Indonesian lists) are real data, and a formula only
comes to life where a value is written back into a spreadsheet, which every
export does as a text cell (bot/services/reports.py). A text cell of a
workbook that begins with `=` was typed as text on purpose (`'=...` in
Excel) and is kept too.
"""

from __future__ import annotations

import csv
import io
from collections import namedtuple
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._reader import FORMULA_TAG, VALUE_TAG, WorkSheetParser
from pydantic import ValidationError

from models.schemas import COLUMNS, ENTITIES, SCHEMAS, describe, with_value

Cells = tuple[Any, ...]
KEY_COLUMN = {
    "units": "code",
    "personnel": "nrp",
    "tps": "code",
    "shifts": "code",
    "places": "code",
    "escorts": "code",
}
TPS_BITS, SHIFT_BITS = 24, 20  # an assignment packed in one int: 16M TPS and 1M shifts per invocation


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad cell (or header, or file: row 0) in the operator's terms."""

    sheet: str
    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = self.sheet if self.row == 0 else f"{self.sheet} row {self.row}"
        return f"{where}, column {self.column}: {self.reason}" if self.column else f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A workbook cell that holds no value to import: a formula never calculated, or a cached error."""

    reason: str


NOT_CALCULATED = Unreadable(
    "formula without a value: the workbook stores no result for it "
    "(open and save it in Excel or LibreOffice, or type the value)"
)
CSV_FORMULA = "spreadsheet formula: a value must not begin with ="
Problems = Sequence[tuple[str, str]]  # (column, reason)


class FileProblem(Exception):
    """A file that cannot be read as an import file at all (named for the operator)."""


@dataclass(frozen=True)
class HeaderProblem:
    column: str
    reason: str


@dataclass
class Sheet:
    """One entity's rows from one file: `rows` yields (row number, cells) after the header."""

    entity: str
    label: str
    header: Cells
    rows: Iterator[tuple[int, Cells]]
    csv: bool = False


def sheet_label(path: Path, entity: str) -> str:
    """How errors name a sheet: `roster.xlsx [units]`, or `units.csv` for a CSV file."""
    return path.name if path.suffix.lower() == ".csv" else f"{path.name} [{entity}]"


def read_sheets(path: Path) -> Iterator[Sheet]:
    """Every entity sheet of a workbook, or the one entity of a CSV file."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx" or suffix == ".xlsm":
        yield from _workbook_sheets(path)
    elif suffix == ".csv":
        sheet = _csv_sheet(path)
        if sheet is not None:
            yield sheet
    else:
        raise FileProblem("not an .xlsx workbook or a .csv file")


class _CachedValues(WorkSheetParser):
    """openpyxl's sheet parser with `data_only=True` that tells a formula without a cached value from an empty cell.

    openpyxl offers no public way to see both the formula and its cached
    value, and opening the workbook twice would double the import's largest
    cost, so this leans on its internal parser (stable through 3.1; the
    dependency is pinned below 4). An empty `<v>` of a formula whose result
    is text (`t="str"`) is a cached empty string, not a missing value.
    """

    def parse_cell(self, element: Any) -> dict[str, Any]:
        cell: dict[str, Any] = super().parse_cell(element)
        if cell["value"] is None:
            if element.find(FORMULA_TAG) is not None and not (
                cell["data_type"] == "str" and element.find(VALUE_TAG) is not None
            ):
                cell["value"] = NOT_CALCULATED
        elif cell["data_type"] == "e":
            cell["value"] = Unreadable(f"spreadsheet error {cell['value']}: fix the formula or type the value")
        return cell


def _cached_rows(workbook: Any, worksheet: Any) -> Iterator[tuple[int, Cells]]:
    """Every row that has a cell, with its spreadsheet row number, its cells from column A."""
    with worksheet._get_source() as source:
        parser = _CachedValues(
            source,
            worksheet._shared_strings,
            data_only=True,
            epoch=workbook.epoch,
            date_formats=workbook._date_formats,
            timedelta_formats=workbook._timedelta_formats,
        )
        for number, found in parser.parse():
            if not found:
                continue
            cells: list[Any] = [None] * found[-1]["column"]
            for cell in found:
                cells[cell["column"] - 1] = cell["value"]
            yield number, tuple(cells)


def _workbook_sheets(path: Path) -> Iterator[Sheet]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises anything from zipfile to KeyError
        raise FileProblem(f"cannot read the workbook ({type(error).__name__}: {error})") from None
    try:
        found = False
        for worksheet in workbook.worksheets:
            entity = worksheet.title.strip().lower()
            if entity not in ENTITIES:
                continue
            found = True
            rows = _cached_rows(workbook, worksheet)
            first = next(rows, None)
            if first is None:
                continue  # an empty sheet: nothing to import
            if first[0] == 1:
                yield Sheet(entity, sheet_label(path, entity), first[1], _data_rows(rows))
            else:  # the header belongs in row 1: an empty one is reported as missing columns
                yield Sheet(entity, sheet_label(path, entity), (), _data_rows(chain([first], rows)))
        if not found:
            raise FileProblem("no sheet named " + ", ".join(ENTITIES))
    finally:
        workbook.close()


def _csv_sheet(path: Path) -> Sheet | None:
    entity = path.stem.strip().lower()
    if entity not in ENTITIES:
        raise FileProblem("a CSV file must be named after its entity: " + ", ".join(f"{e}.csv" for e in ENTITIES))
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            text = file.read()
    except UnicodeDecodeError:
        raise FileProblem("not UTF-8 text: save the CSV as UTF-8") from None
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    rows = enumerate(
        (
            tuple(cell if cell != "" else None for cell in record)
            for record in csv.reader(io.StringIO(text), delimiter=delimiter)
        ),
        start=1,
    )
    first = next(rows, None)
    if first is None:
        return None
    return Sheet(entity, sheet_label(path, entity), first[1], _data_rows(rows), csv=True)


def _data_rows(rows: Iterator[tuple[int, Cells]]) -> Iterator[tuple[int, Cells]]:
    """Skip rows without a value (a spreadsheet's trailing blank rows, spacer rows)."""
    for number, cells in rows:
        for cell in cells:
            if cell is not None and not (cell.__class__ is str and not cell.strip()):
                yield number, cells
                break


def check_header(entity: str, header: Cells) -> list[HeaderProblem]:
    """The columns of DESIGN.md, in order; each missing, misplaced or unknown column named."""
    expected = COLUMNS[entity]
    found = [str(cell).strip().lower() if cell is not None else "" for cell in header]
    while found and not found[-1]:
        found.pop()
    problems = []
    for index, name in enumerate(expected):
        here = found[index] if index < len(found) else ""
        letter = get_column_letter(index + 1)
        if here == name:
            continue
        if name in found:
            where = get_column_letter(found.index(name) + 1)
            reason = f"column {name} must be column {letter}, found in column {where}"
        elif here:
            reason = f"missing column {name}: column {letter} is named {here!r}"
        else:
            reason = f"missing column {name} (column {letter})"
        problems.append(HeaderProblem(name, reason))
    for index, name in enumerate(found[len(expected) :], start=len(expected)):
        if name and name not in expected:
            problems.append(HeaderProblem(name, f"unknown column {name!r} in column {get_column_letter(index + 1)}"))
    return problems


def row_values(columns: Sequence[str], cells: Cells, *, csv: bool = False) -> tuple[dict[str, Any], Problems]:
    """The non-empty cells of a row by column name, as the schemas take them, and the cells that are no value.

    A whole number stored as a float (an NRP typed into a number cell) loses
    its `.0`. A workbook cell without a usable cached value and, in a CSV
    file, a value that begins with `=` are left out of the values and come
    back as (column, reason).
    """
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] | None = None
    for name, cell in zip(columns, cells, strict=False):
        if cell is None:
            continue
        kind = cell.__class__
        if kind is str:
            if cell and not cell.isspace():
                if csv and cell.lstrip().startswith("="):
                    problems = problems or []
                    problems.append((name, with_value(CSV_FORMULA, name, cell)))
                else:
                    values[name] = cell
        elif kind is float and cell.is_integer():
            values[name] = int(cell)
        elif kind is Unreadable:
            problems = problems or []
            problems.append((name, cell.reason))
        else:
            values[name] = cell
    return values, problems or ()


# Validated rows are kept as named tuples: a pydantic model per row costs five times the memory.
# Any: each is a namedtuple class of its own, and `_make` is not on `type[tuple]`.
VALUES: dict[str, Any] = {
    entity: namedtuple(f"{entity.title().replace('_', '')}Values", columns) for entity, columns in COLUMNS.items()
}


class Codes:
    """Numbers the distinct codes of one column in order of appearance.

    An assignment is then one int, (person << TPS_BITS | TPS) << SHIFT_BITS | shift:
    a Sumsel import holds 400k of them, and tuples of strings would cost
    three times the memory.
    """

    def __init__(self, bits: int | None = None) -> None:
        self.number: dict[str, int] = {}
        self.codes: list[str] = []
        self.limit = None if bits is None else 1 << bits

    def __call__(self, code: str) -> int:
        number = self.number.get(code)
        if number is None:
            number = self.number[code] = len(self.codes)
            if self.limit is not None and number >= self.limit:
                raise FileProblem(f"more than {self.limit:,} distinct codes in one column of assignments")
            self.codes.append(code)
        return number


@dataclass
class Parsed:
    """The validated rows of one invocation. `where` values pack (sheet index, row number)."""

    labels: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, tuple[Any, int]]] = field(default_factory=lambda: {e: {} for e in KEY_COLUMN})
    assignments: dict[int, int] = field(default_factory=dict)  # packed (person, TPS, shift) -> where
    members: dict[tuple[str, str], tuple[Any, int]] = field(default_factory=dict)  # (escort, nrp) -> row, where
    nrps: Codes = field(default_factory=Codes)
    tps_codes: Codes = field(default_factory=lambda: Codes(TPS_BITS))
    shift_codes: Codes = field(default_factory=lambda: Codes(SHIFT_BITS))
    present: set[str] = field(default_factory=set)
    # Keys of rows rejected for another column: referring to them is not a second error.
    rejected: dict[str, set[str]] = field(default_factory=lambda: {e: set() for e in KEY_COLUMN})
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (where, column, reason)
    structural: bool = False  # a file or header problem: rows cannot be trusted to line up

    def add_error(self, where: int, column: str, reason: str) -> None:
        self.errors.append((where, column, reason))

    def assignment_keys(self) -> Iterator[tuple[str, str, str]]:
        """(nrp, TPS code, shift code) of every imported assignment."""
        nrps, tps, shifts = self.nrps.codes, self.tps_codes.codes, self.shift_codes.codes
        tps_mask, shift_mask = (1 << TPS_BITS) - 1, (1 << SHIFT_BITS) - 1
        for key in self.assignments:
            yield (nrps[key >> (TPS_BITS + SHIFT_BITS)], tps[key >> SHIFT_BITS & tps_mask], shifts[key & shift_mask])

    def report_errors(self) -> list[RowError]:
        ordered = sorted(self.errors, key=lambda error: error[0])  # stable: row order, then check order
        return [RowError(self.labels[w >> 32], w & 0xFFFFFFFF, column, reason) for w, column, reason in ordered]


def where(sheet: int, row: int) -> int:
    return sheet << 32 | row


def parse_files(paths: Sequence[Path]) -> Parsed:
    """Read and validate every entity sheet of every file, collecting every row error."""
    parsed = Parsed()
    for path in paths:
        parsed.labels.append(path.name)
        file_where = where(len(parsed.labels) - 1, 0)
        try:
            for sheet in read_sheets(path):
                parse_sheet(parsed, sheet)
        except FileProblem as problem:
            parsed.add_error(file_where, "", str(problem))
            parsed.structural = True
        except OSError as error:
            parsed.add_error(file_where, "", f"cannot read the file ({error.strerror or error})")
            parsed.structural = True
    return parsed


def parse_sheet(parsed: Parsed, sheet: Sheet) -> None:
    index = len(parsed.labels)
    parsed.labels.append(sheet.label)
    header_problems = check_header(sheet.entity, sheet.header)
    for header_problem in header_problems:
        parsed.add_error(where(index, 1), header_problem.column, header_problem.reason)
    if header_problems:
        parsed.structural = True
        return
    parsed.present.add(sheet.entity)
    columns, schema = COLUMNS[sheet.entity], SCHEMAS[sheet.entity]
    keyed = KEY_COLUMN.get(sheet.entity)
    store = parsed.rows.get(sheet.entity)
    values = attrgetter(*columns)
    make = VALUES[sheet.entity]._make
    nrp, tps, shift = parsed.nrps, parsed.tps_codes, parsed.shift_codes
    for number, cells in sheet.rows:
        at = where(index, number)
        raw, problems = row_values(columns, cells, csv=sheet.csv)
        try:
            row = schema.model_validate(raw)
        except ValidationError as error:
            problems = _with_schema_errors(columns, problems, error)
        if problems:
            for column, reason in problems:
                parsed.add_error(at, column, reason)
            if keyed is not None and all(column != keyed for column, _ in problems):
                parsed.rejected[sheet.entity].add(str(raw[keyed]).strip())
            continue
        if sheet.entity == "escort_members":
            member = make(values(row))
            seen = parsed.members.setdefault((member.escort_code, member.nrp), (member, at))
            if seen[1] != at:
                parsed.add_error(
                    at,
                    "nrp",
                    f"duplicate member: same person on escort {member.escort_code!r} as {_at(parsed, seen[1])}",
                )
            continue
        if keyed is None:  # an assignment
            person, place, when = values(row)
            key = (nrp(person) << TPS_BITS | tps(place)) << SHIFT_BITS | shift(when)
            first = parsed.assignments.setdefault(key, at)
            if first != at:
                parsed.add_error(at, "nrp", f"duplicate assignment: same person, TPS and shift as {_at(parsed, first)}")
            continue
        assert store is not None
        code = getattr(row, keyed)
        previous = store.setdefault(code, (make(values(row)), at))
        if previous[1] != at:
            shown = "" if keyed == "nrp" else f" {code!r}"
            parsed.add_error(at, keyed, f"duplicate {keyed}{shown}: also on {_at(parsed, previous[1])}")


def _with_schema_errors(columns: Sequence[str], problems: Problems, error: ValidationError) -> Problems:
    """A row's cell problems and schema errors in column order; a cell left out is not "value is required" too."""
    taken = {column for column, _ in problems}
    found = list(problems)
    for problem in error.errors():
        column = str(problem["loc"][0]) if problem["loc"] else ""
        if column not in taken:
            found.append((column, describe(problem, column)))
    return sorted(found, key=lambda item: columns.index(item[0]) if item[0] in columns else len(columns))


def _at(parsed: Parsed, packed: int) -> str:
    return f"{parsed.labels[packed >> 32]} row {packed & 0xFFFFFFFF}"
