"""`siaga import`: the roster from the operations officer's spreadsheets, all or nothing.

One invocation (any number of .xlsx / .csv files) is one transaction. Every
row is validated (models/schemas.py), then every reference is resolved
against the same invocation (any file, any order) and the database; one bad
row anywhere rejects everything, and the report lists every bad row with
its sheet, spreadsheet row number (header = 1) and column, so the officer
fixes the file once instead of once per error.

Upsert rules (bot/services/roster_write.py writes them; places, escorts and
escort_members: bot/services/escorts/imports.py):
- units, personnel, TPS and shifts are keyed by code / NRP. A row equal to
  what is stored is not written at all, so a re-import writes nothing and
  audits nothing. A changed row is updated in place and audited with its
  changed fields (old -> new). Records missing from the files are kept:
  an import never deletes a unit, a person, a TPS or a shift.
- A TPS whose lat/lon changed was relocated: its old place goes to
  `tps_locations`, `relocated_at` is set, the audit action is `tps.relocated`.
- Assignments are replaced per shift: for every shift named in the
  invocation's assignment rows, the shift's assignments become exactly
  those rows (missing ones are deleted); shifts not named are untouched.
  Several files that each hold part of one shift (one per Polres) must
  therefore be imported together, in one invocation.
- Command rule: a person may be assigned to a TPS only if the TPS's primary
  unit or one of its secondary units is the person's commanding unit
  (`unit_code`) or lies below it. A Polsek member guards the Polsek's TPS,
  a Polres member any TPS of the Polres, a TNI member on BKO the TPS of the
  Polri unit commanding him (not those of his home unit). The rule also
  holds for assignments the import keeps (shifts it does not name): moving
  a person, a TPS or a unit so that a kept assignment breaks it is an error
  on the moved row, until that shift's assignments are imported as well.

No NRP or phone number reaches the log: log lines carry counts only, and
errors name the row instead of echoing those cells.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import StaffingSettings
from bot.services import roster_write, tally
from bot.services.escorts import imports as escort_imports
from bot.services.roster_write import Counts, Stored
from bot.services.spreadsheet import Parsed, RowError, parse_files
from bot.services.units import closure_of, find_cycles
from models import Assignment, Personnel, Shift, Tps

log = logging.getLogger(__name__)

Scope = tuple[frozenset[str], tuple[str, ...]]  # units whose members may guard a TPS; the TPS's own units
ID_FILTER_LIMIT = 5_000
IMPORT_LOCK = 0x5369_6167  # advisory lock key of `siaga import` ("Siag")


@dataclass
class ImportReport:
    ok: bool
    errors: list[RowError] = field(default_factory=list)
    counts: dict[str, Counts] = field(default_factory=dict)

    def format(self, *, limit: int = 200) -> str:
        """Plain text for the CLI: the counts, or the first `limit` errors and how many in all."""
        if self.ok:
            lines = ["Import done."]
            for entity, counts in self.counts.items():
                deleted = f", {counts.deleted} deleted" if entity in ("assignments", "escort_members") else ""
                lines.append(
                    f"  {entity}: {counts.created} created, {counts.updated} updated, "
                    f"{counts.unchanged} unchanged{deleted}"
                )
            return "\n".join(lines)
        total = len(self.errors)
        lines = [f"Import rejected: {total} error{'s' if total != 1 else ''}; nothing was written."]
        lines.extend(f"  {error}" for error in self.errors[:limit])
        if total > limit:
            lines.append(f"  ... and {total - limit} more ({total} errors in all)")
        return "\n".join(lines)


async def import_files(
    session: AsyncSession,
    *,
    paths: Sequence[Path],
    actor: str = "cli",
    commit: bool = True,
    staffing: StaffingSettings | None = None,
) -> ImportReport:
    """Validate every row of every file, then write all of it or nothing.

    Commits on success (it is a unit of work of its own; `commit=False`
    leaves that to a caller composing it with more) and rolls back when
    anything is rejected.
    """
    started = time.perf_counter()
    parsed = await asyncio.to_thread(parse_files, paths)  # seconds of CPU: keep the event loop turning
    parsed_at = time.perf_counter()
    stored = Stored()
    if not parsed.structural:
        await serialize_imports(session)
        # A moved unit can break kept assignments anywhere: then the whole roster is needed.
        needed = parsed.present | ({"assignments"} if "units" in parsed.present else set())
        stored = await roster_write.load(session, needed)
        await escort_imports.load(session, stored, needed)
        checker = Checker(parsed, stored)
        checker.references()
        await escort_imports.check(session, parsed, stored, units=checker.parent_of.keys())
        if not parsed.errors:
            await checker.kept_assignments(session)
    if parsed.errors:
        await session.rollback()
        log.info("roster import rejected: %d errors", len(parsed.errors))
        return ImportReport(ok=False, errors=parsed.report_errors())
    checked_at = time.perf_counter()
    counts = await roster_write.write(
        session, parsed, stored, actor=actor, files=[p.name for p in paths], more=escort_imports.WRITERS
    )
    shift_ids = await tallied_shifts(session, parsed, counts)
    if shift_ids is None or shift_ids:
        await tally.rebuild(session, shift_ids=shift_ids, staffing=staffing)
    if commit:
        await session.commit()
    log.info(
        "roster import: %s; read %.1fs, checked %.1fs, written %.1fs",
        ", ".join(f"{e} {c.created}+ {c.updated}~ {c.unchanged}= {c.deleted}-" for e, c in counts.items()),
        parsed_at - started,
        checked_at - parsed_at,
        time.perf_counter() - checked_at,
    )
    return ImportReport(ok=True, counts=counts)


async def serialize_imports(session: AsyncSession) -> None:
    """One import at a time on PostgreSQL: the checks must see what the writes will change.

    A transaction-scoped advisory lock, released by the commit or rollback.
    SQLite has a single writer anyway (a racing import fails on a unique code).
    """
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(IMPORT_LOCK)))


class Checker:
    """Everything one row cannot show alone: unknown codes, cycles, the command rule.

    Works on codes over the tree as it will be (stored units overlaid by
    imported ones), before anything is written.
    """

    def __init__(self, parsed: Parsed, stored: Stored) -> None:
        self.parsed, self.stored = parsed, stored
        self.parent_of: dict[str, str | None] = {
            code: stored.unit_code.get(row.parent_id) for code, row in stored.units.items()
        }
        self.above: dict[str, frozenset[str]] = {}  # unit -> itself and its ancestors; empty if the tree loops
        self.person_unit: dict[str, str | None] = {}
        self.tps_scope: dict[str, Scope | None] = {}
        self.scopes: dict[tuple[str, ...], frozenset[str]] = {}

    def references(self) -> None:
        parsed = self.parsed
        units = parsed.rows["units"]
        tree_ok = not parsed.rejected["units"]  # the command rule needs every link of the tree
        for code, (row, at) in units.items():
            parent = row.parent_code
            if (
                parent is not None
                and parent not in units
                and parent not in self.parent_of
                and parent not in parsed.rejected["units"]
            ):
                parsed.add_error(at, "parent_code", self.unknown_unit(row.parent_code))
                tree_ok = False
            self.parent_of[code] = row.parent_code
        cycles = find_cycles(self.parent_of)
        for cycle in cycles:
            text = " -> ".join([*cycle, cycle[0]])
            for code in cycle:
                if code in units:
                    parsed.add_error(units[code][1], "parent_code", f"cycle in the unit tree: {text}")
        if tree_ok and not cycles:
            chains: dict[str, list[str]] = {}
            for ancestor, unit in closure_of(self.parent_of):
                chains.setdefault(unit, []).append(ancestor)
            self.above = {unit: frozenset(chain) for unit, chain in chains.items()}
        rejected_units = parsed.rejected["units"]

        def known(code: str) -> bool:
            return code in self.parent_of or code in rejected_units

        for row, at in parsed.rows["personnel"].values():
            for column in ("unit_code", "home_unit"):
                code = getattr(row, column)
                if code is not None and not known(code):
                    parsed.add_error(at, column, self.unknown_unit(code))
        for row, at in parsed.rows["tps"].values():
            if not known(row.unit_code):
                parsed.add_error(at, "unit_code", self.unknown_unit(row.unit_code))
            unknown = [code for code in row.secondary_unit_codes if not known(code)]
            if unknown:
                parsed.add_error(at, "secondary_unit_codes", "unknown unit " + ", ".join(map(repr, unknown)))
        self.assignments()

    @staticmethod
    def unknown_unit(code: str) -> str:
        return f"unknown unit {code!r}: not in the units sheet or the database"

    def assignments(self) -> None:
        """Known person, TPS and shift, and the TPS within the person's command."""
        parsed, shifts, rejected = self.parsed, self.parsed.rows["shifts"], self.parsed.rejected
        for (nrp, tps_code, shift_code), at in zip(parsed.assignment_keys(), parsed.assignments.values(), strict=True):
            unit, scope = self.unit_of(nrp), self.scope_of(tps_code)
            if unit is None and nrp not in rejected["personnel"]:
                parsed.add_error(at, "nrp", "unknown nrp: not in the personnel sheet or the database")
            if scope is None and tps_code not in rejected["tps"]:
                parsed.add_error(at, "tps_code", f"unknown TPS {tps_code!r}: not in the tps sheet or the database")
            if (
                shift_code not in shifts
                and shift_code not in self.stored.shifts
                and shift_code not in rejected["shifts"]
            ):
                parsed.add_error(
                    at, "shift_code", f"unknown shift {shift_code!r}: not in the shifts sheet or the database"
                )
            if unit is not None and scope is not None and self.above and unit not in scope[0]:
                parsed.add_error(
                    at,
                    "tps_code",
                    f"TPS {tps_code!r} (unit {' / '.join(scope[1])}) is outside "
                    f"the command of this person's unit {unit!r}",
                )

    def unit_of(self, nrp: str) -> str | None:
        """The person's commanding unit as it will be."""
        if nrp not in self.person_unit:
            row = self.parsed.rows["personnel"].get(nrp)
            stored = self.stored.personnel.get(nrp)
            unit = row[0].unit_code if row else None if stored is None else self.stored.unit_code[stored.unit_id]
            self.person_unit[nrp] = unit
        return self.person_unit[nrp]

    def scope_of(self, code: str) -> Scope | None:
        """Every unit whose members may guard the TPS as it will be: its units and all above them."""
        if code not in self.tps_scope:
            row = self.parsed.rows["tps"].get(code)
            stored = self.stored.tps.get(code)
            if row is not None:
                units = (row[0].unit_code, *row[0].secondary_unit_codes)
            elif stored is not None:
                units = self.stored_units_of(stored)
            else:
                self.tps_scope[code] = None
                return None
            scope = self.scopes.get(units)
            if scope is None:  # TPS of one Polsek share one scope
                scope = self.scopes[units] = frozenset().union(
                    *(self.above.get(unit, frozenset((unit,))) for unit in units)
                )
            self.tps_scope[code] = (scope, units)
        return self.tps_scope[code]

    def stored_units_of(self, tps: Any) -> tuple[str, ...]:
        code_of = self.stored.unit_code
        return (code_of[tps.unit_id], *(code_of[u] for u in self.stored.secondaries.get(tps.id, ())))

    async def kept_assignments(self, session: AsyncSession) -> None:
        """Stored assignments of shifts the import does not name must still obey the command rule."""
        parsed, stored = self.parsed, self.stored
        moved_people = [
            stored.personnel[nrp].id
            for nrp, (row, _) in parsed.rows["personnel"].items()
            if nrp in stored.personnel and self.stored_person_unit(nrp) != row.unit_code
        ]
        moved_tps = [
            stored.tps[code].id
            for code, (row, _) in parsed.rows["tps"].items()
            if code in stored.tps
            and set(self.stored_units_of(stored.tps[code])) != {row.unit_code, *row.secondary_unit_codes}
        ]
        moved_units = [
            code
            for code, (row, _) in parsed.rows["units"].items()
            if code in stored.units and stored.unit_code.get(stored.units[code].parent_id) != row.parent_code
        ]
        if not (moved_people or moved_tps or moved_units):
            return
        named = [stored.shifts[code].id for code in parsed.shift_codes.codes if code in stored.shifts]
        query = (
            select(Personnel.nrp, Tps.code, Shift.code)
            .select_from(Assignment)
            .join(Personnel, Personnel.id == Assignment.personnel_id)
            .join(Tps, Tps.id == Assignment.tps_id)
            .join(Shift, Shift.id == Assignment.shift_id)
            .where(Assignment.shift_id.not_in(named))
        )
        if not moved_units and len(moved_people) + len(moved_tps) <= ID_FILTER_LIMIT:
            query = query.where(or_(Assignment.personnel_id.in_(moved_people), Assignment.tps_id.in_(moved_tps)))
        for nrp, tps_code, shift_code in await session.execute(query):
            unit, scope = self.unit_of(nrp), self.scope_of(tps_code)
            if unit is None or scope is None or unit in scope[0]:
                continue
            at, column = self.blame(nrp, tps_code, unit, scope, moved_units)
            parsed.add_error(
                at,
                column,
                f"a kept assignment (shift {shift_code!r}, not in this import) would put "
                f"a person of unit {unit!r} at TPS {tps_code!r} outside their command: "
                "import that shift's assignments too",
            )

    def stored_person_unit(self, nrp: str) -> str:
        return self.stored.unit_code[self.stored.personnel[nrp].unit_id]

    def blame(self, nrp: str, tps_code: str, unit: str, scope: Scope, moved_units: list[str]) -> tuple[int, str]:
        """The imported row that broke a kept assignment: the person's, the TPS's, or a moved unit's."""
        person = self.parsed.rows["personnel"].get(nrp)
        if person is not None and nrp in self.stored.personnel and self.stored_person_unit(nrp) != unit:
            return person[1], "unit_code"
        tps = self.parsed.rows["tps"].get(tps_code)
        if tps is not None:
            return tps[1], "unit_code"
        # A moved unit above the TPS first (the TPS left the person's command), then above the person.
        candidates = [c for c in moved_units if c in scope[0]] + [
            c for c in moved_units if c in self.above.get(unit, frozenset())
        ]
        return self.parsed.rows["units"][(candidates or moved_units)[0]][1], "parent_code"


__all__ = ["Counts", "ImportReport", "RowError", "import_files"]


async def tallied_shifts(session: AsyncSession, parsed: Parsed, counts: dict[str, Counts]) -> list[int] | None:
    """Shifts whose `/status` tallies this import changed.

    Every shift (None) when people, TPS or shifts changed, else those whose
    assignments changed. A moved unit changes none: tallies are summed
    through the closure when read.
    """
    changed = {entity for entity, c in counts.items() if c.created or c.updated or c.deleted}
    if changed & {"personnel", "tps", "shifts"}:
        return None
    if "assignments" not in changed:
        return []
    return list(await session.scalars(select(Shift.id).where(Shift.code.in_(parsed.shift_codes.codes))))
