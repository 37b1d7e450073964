"""Writing an accepted roster import: only the differences, in bulk.

The stored roster is read once per table into plain rows and compared with
the import in Python; only what differs is written. New rows of the big
tables go in without ORM objects (PostgreSQL: COPY; SQLite: one
`executemany` per chunk), changed rows in one UPDATE executemany per table,
vanished assignments in chunked DELETEs. The rules themselves (what is kept,
what is replaced) are documented in bot/services/roster.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.services.spreadsheet import SHIFT_BITS, TPS_BITS, Parsed
from bot.services.units import rebuild_closure
from models import Assignment, AuditLog, Personnel, Shift, Tps, TpsLocation, TpsSecondaryUnit, Unit
from models.base import utcnow
from models.schemas import ENTITIES

log = logging.getLogger(__name__)

CHUNK = 10_000
TOLERANCE = 1e-9  # degrees: 0.1 mm, far below any real move

# Declarative `__table__` is typed as any FromClause; these are Tables.
UNITS, PERSONNEL, TPS, SHIFTS = (cast(Table, model.__table__) for model in (Unit, Personnel, Tps, Shift))
ASSIGNMENTS, SECONDARY, LOCATIONS, AUDIT = (
    cast(Table, model.__table__) for model in (Assignment, TpsSecondaryUnit, TpsLocation, AuditLog)
)
AUDIT_ENTITY = {
    "units": "unit",
    "personnel": "personnel",
    "tps": "tps",
    "shifts": "shift",
    "places": "place",
    "escorts": "escort",
}


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0


@dataclass
class Stored:
    """The roster as stored before the import, keyed like the import (codes, NRPs)."""

    units: dict[str, Any] = field(default_factory=dict)
    unit_code: dict[int, str] = field(default_factory=dict)
    personnel: dict[str, Any] = field(default_factory=dict)
    tps: dict[str, Any] = field(default_factory=dict)
    secondaries: dict[int, tuple[int, ...]] = field(default_factory=dict)
    shifts: dict[str, Any] = field(default_factory=dict)
    places: dict[str, Any] = field(default_factory=dict)
    escorts: dict[str, Any] = field(default_factory=dict)  # endpoints as codes: from_code, to_code
    vias: dict[int, tuple[str, ...]] = field(default_factory=dict)  # escort id -> via codes in order


async def load(session: AsyncSession, present: set[str]) -> Stored:
    """One query per table the invocation touches or refers to."""
    stored = Stored()
    for row in await session.execute(select(UNITS)):
        stored.units[row.code] = row
        stored.unit_code[row.id] = row.code
    if present & {"personnel", "assignments", "escort_members"}:
        query = select(
            *(
                PERSONNEL.c[name]
                for name in ("id", "nrp", "name", "rank", "force", "unit_id", "home_unit_id", "role", "phone")
            )
        )
        stored.personnel = {row.nrp: row for row in await session.execute(query)}
    if present & {"tps", "assignments"}:
        stored.tps = {row.code: row for row in await session.execute(select(TPS))}
        pairs: dict[int, list[int]] = {}
        for tps_id, unit_id in await session.execute(select(SECONDARY.c.tps_id, SECONDARY.c.unit_id)):
            pairs.setdefault(tps_id, []).append(unit_id)
        stored.secondaries = {tps_id: tuple(units) for tps_id, units in pairs.items()}
    if present & {"shifts", "assignments"}:
        stored.shifts = {row.code: row for row in await session.execute(select(SHIFTS))}
    return stored


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """Changed fields as {column: [old, new]}, JSON-ready for the audit log."""
    changes = {}
    for column, value in new.items():
        before = old[column]
        if before == value or (
            isinstance(value, float) and isinstance(before, float) and abs(before - value) <= TOLERANCE
        ):
            continue
        changes[column] = [_plain(before), _plain(value)]
    return changes


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


Item = tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], str]  # code, old, new, values, action


class Writer:
    """One accepted import's writes, in dependency order, with their audit rows."""

    def __init__(
        self, session: AsyncSession, connection: AsyncConnection, parsed: Parsed, stored: Stored, actor: str
    ) -> None:
        self.session, self.connection, self.parsed, self.stored, self.actor = (
            session,
            connection,
            parsed,
            stored,
            actor,
        )
        self.now = utcnow()
        self.audit: list[dict[str, Any]] = []
        self.unit_id = {code: row.id for code, row in stored.units.items()}
        self.unit_code = dict(stored.unit_code)

    def audited(self, action: str, entity: str, entity_id: object, detail: dict[str, Any]) -> None:
        self.audit.append(
            {
                "at": self.now,
                "actor": self.actor,
                "action": action,
                "entity": entity,
                "entity_id": None if entity_id is None else str(entity_id),
                "detail": detail,
            }
        )

    async def ids(self, table: Table, key: str) -> dict[str, int]:
        return {code: id_ for code, id_ in await self.connection.execute(select(table.c[key], table.c.id))}

    async def update_changed(self, entity: str, table: Table, columns: Sequence[str], items: Iterable[Item]) -> Counts:
        """Update and audit the stored rows whose view changed; count the rest unchanged."""
        counts, changed = Counts(), []
        key = "nrp" if entity == "personnel" else "code"
        for code, old, new, values, action in items:
            changes = diff(old, new)
            if not changes:
                counts.unchanged += 1
                continue
            counts.updated += 1
            row_id = getattr(self.stored, entity)[code].id
            changed.append({"_id": row_id, **{f"_{c}": values[c] for c in columns}})
            self.audited(action, AUDIT_ENTITY[entity], row_id, {key: code, "changes": changes})
        await self.update(table, columns, changed)
        return counts

    async def update(self, table: Table, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
        statement = update(table).where(table.c.id == bindparam("_id")).values({c: bindparam(f"_{c}") for c in columns})
        for chunk in chunks(rows, CHUNK):
            await self.connection.execute(statement, list(chunk))

    async def units(self) -> Counts:
        """New units first without a parent (it may be new too), then every parent link."""
        rows = self.parsed.rows["units"]
        fresh = [code for code in rows if code not in self.stored.units]
        columns = ("name", "kind", "force", "region")
        await bulk_insert(
            self.connection,
            UNITS,
            ("code", *columns, "depth"),
            [(code, *(getattr(rows[code][0], c) for c in columns), 0) for code in fresh],
        )
        if fresh:
            self.unit_id = await self.ids(UNITS, "code")
            self.unit_code = {id_: code for code, id_ in self.unit_id.items()}
        parents = [
            {"_id": self.unit_id[code], "_parent_id": self.unit_id[parent]}
            for code in fresh
            if (parent := rows[code][0].parent_code)
        ]
        await self.update(UNITS, ("parent_id",), parents)
        items: list[Item] = []
        for code, (row, _) in rows.items():
            old_row = self.stored.units.get(code)
            if old_row is None:
                continue
            new = {c: getattr(row, c) for c in (*columns, "parent_code")}
            old = {c: getattr(old_row, c) for c in columns}
            old["parent_code"] = self.unit_code.get(old_row.parent_id)
            values = {**new, "parent_id": self.unit_id.get(new["parent_code"])}
            items.append((code, old, new, values, "unit.updated"))
        counts = await self.update_changed("units", UNITS, (*columns, "parent_id"), items)
        counts.created = len(fresh)
        if fresh or counts.updated:
            await rebuild_closure(self.session)
        return counts

    async def personnel(self) -> Counts:
        rows, unit_id, code_of = self.parsed.rows["personnel"], self.unit_id, self.unit_code
        plain = ("name", "rank", "force", "role", "phone")
        fresh, items = [], []
        for nrp, (row, _) in rows.items():
            new: dict[str, Any] = {c: getattr(row, c) for c in (*plain, "unit_code", "home_unit")}
            values = {**new, "unit_id": unit_id[new["unit_code"]], "home_unit_id": unit_id.get(new["home_unit"])}
            old_row = self.stored.personnel.get(nrp)
            if old_row is None:
                fresh.append((nrp, *(values[c] for c in (*plain, "unit_id", "home_unit_id")), "id", True))
                continue
            old = {c: getattr(old_row, c) for c in plain}
            old["unit_code"], old["home_unit"] = code_of.get(old_row.unit_id), code_of.get(old_row.home_unit_id)
            items.append((nrp, old, new, values, "personnel.updated"))
        await bulk_insert(
            self.connection, PERSONNEL, ("nrp", *plain, "unit_id", "home_unit_id", "language", "reachable"), fresh
        )
        counts = await self.update_changed("personnel", PERSONNEL, (*plain, "unit_id", "home_unit_id"), items)
        counts.created = len(fresh)
        return counts

    async def tps(self) -> Counts:
        """Relocations keep the old place in `tps_locations`; secondary units are replaced as a set."""
        rows, unit_id, code_of = self.parsed.rows["tps"], self.unit_id, self.unit_code
        plain = ("number", "village", "district", "regency", "lat", "lon", "access")
        fresh, items, moved, regrouped = [], [], [], []
        for code, (row, _) in rows.items():
            secondary = ";".join(sorted(row.secondary_unit_codes))
            new = {
                **{c: getattr(row, c) for c in plain},
                "vulnerability": row.vulnerability,
                "unit_code": row.unit_code,
                "secondary_unit_codes": secondary,
            }
            values = {**new, "kerawanan": new["vulnerability"], "unit_id": unit_id[new["unit_code"]]}
            old_row = self.stored.tps.get(code)
            if old_row is None:
                fresh.append((code, *(values[c] for c in (*plain, "kerawanan", "unit_id"))))
                continue
            old = {
                **{c: getattr(old_row, c) for c in plain},
                "vulnerability": old_row.kerawanan,
                "unit_code": code_of.get(old_row.unit_id),
                "secondary_unit_codes": ";".join(
                    sorted(code_of[u] for u in self.stored.secondaries.get(old_row.id, ()))
                ),
            }
            relocated = bool(diff({"lat": old["lat"], "lon": old["lon"]}, {"lat": new["lat"], "lon": new["lon"]}))
            values["relocated_at"] = self.now if relocated else old_row.relocated_at
            if relocated:
                moved.append(
                    {
                        "tps_id": old_row.id,
                        "lat": old_row.lat,
                        "lon": old_row.lon,
                        "village": old_row.village,
                        "valid_until": self.now,
                    }
                )
            if old["secondary_unit_codes"] != secondary:
                regrouped.append(code)
            items.append((code, old, new, values, "tps.relocated" if relocated else "tps.updated"))
        await bulk_insert(self.connection, TPS, ("code", *plain, "kerawanan", "unit_id"), fresh)
        counts = await self.update_changed("tps", TPS, (*plain, "kerawanan", "unit_id", "relocated_at"), items)
        counts.created = len(fresh)
        for chunk in chunks(moved, CHUNK):
            await self.connection.execute(insert(LOCATIONS), list(chunk))
        await self.secondaries([record[0] for record in fresh], regrouped)
        return counts

    async def secondaries(self, fresh: Sequence[str], regrouped: Sequence[str]) -> None:
        rows = self.parsed.rows["tps"]
        tps_id = await self.ids(TPS, "code") if fresh else {c: r.id for c, r in self.stored.tps.items()}
        stale = [tps_id[code] for code in regrouped]
        for chunk in chunks(stale, CHUNK):
            await self.connection.execute(delete(SECONDARY).where(SECONDARY.c.tps_id.in_(chunk)))
        pairs = [
            (tps_id[code], self.unit_id[unit])
            for code in (*fresh, *regrouped)
            for unit in rows[code][0].secondary_unit_codes
        ]
        await bulk_insert(self.connection, SECONDARY, ("tps_id", "unit_id"), pairs)

    async def shifts(self) -> Counts:
        """Few rows with typed times: plain Core inserts, so UTC conversion applies."""
        columns = ("name", "phase", "starts_at", "ends_at")
        fresh, items = [], []
        for code, (row, _) in self.parsed.rows["shifts"].items():
            new = {c: getattr(row, c) for c in columns}
            old_row = self.stored.shifts.get(code)
            if old_row is None:
                fresh.append({"code": code, **new})
            else:
                items.append((code, {c: getattr(old_row, c) for c in columns}, new, new, "shift.updated"))
        if fresh:
            await self.connection.execute(insert(SHIFTS), fresh)
        counts = await self.update_changed("shifts", SHIFTS, columns, items)
        counts.created = len(fresh)
        return counts

    async def assignments(self) -> Counts:
        """Each shift named in the import gets exactly the imported assignments.

        Keys are packed into one int per (person, TPS, shift): a Sumsel
        import holds ~400k of them, and tuples would triple the memory.
        Stored rows are streamed and matched off the wanted set, so they are
        never all held at once.
        """
        parsed = self.parsed
        if not parsed.assignments:
            return Counts()
        person, tps, shift = (
            await self.ids(PERSONNEL, "nrp"),
            await self.ids(TPS, "code"),
            await self.ids(SHIFTS, "code"),
        )
        t_span, s_span = max(tps.values()) + 1, max(shift.values()) + 1
        # Index -> database id for every code the import numbered (spreadsheet.Codes), pre-scaled.
        p_ids = [person.get(code, 0) * t_span * s_span for code in parsed.nrps.codes]
        t_ids = [tps.get(code, 0) * s_span for code in parsed.tps_codes.codes]
        s_ids = [shift.get(code, 0) for code in parsed.shift_codes.codes]
        t_bits, s_bits = TPS_BITS, SHIFT_BITS
        t_mask, s_mask = (1 << t_bits) - 1, (1 << s_bits) - 1
        wanted = {
            p_ids[key >> (t_bits + s_bits)] + t_ids[key >> s_bits & t_mask] + s_ids[key & s_mask]
            for key in parsed.assignments
        }
        imported = len(wanted)
        covered = sorted({shift[code] for code in parsed.shift_codes.codes})
        # Stored rows still wanted leave `wanted`; what remains there is new.
        unchanged, gone = 0, []
        query = select(ASSIGNMENTS.c.id, ASSIGNMENTS.c.personnel_id, ASSIGNMENTS.c.tps_id, ASSIGNMENTS.c.shift_id)
        stream = await self.connection.stream(query.where(ASSIGNMENTS.c.shift_id.in_(covered)))
        async for partition in stream.partitions(CHUNK):
            for id_, p, t, s in partition:
                key = (p * t_span + t) * s_span + s
                if key in wanted:
                    wanted.remove(key)
                    unchanged += 1
                else:
                    gone.append(id_)
        new = list(wanted)
        del wanted
        for chunk in chunks(gone, CHUNK):
            await self.connection.execute(delete(ASSIGNMENTS).where(ASSIGNMENTS.c.id.in_(chunk)))
        for chunk in chunks(new, 50_000):
            records = [(key // s_span // t_span, key // s_span % t_span, key % s_span) for key in chunk]
            await bulk_insert(self.connection, ASSIGNMENTS, ("personnel_id", "tps_id", "shift_id"), records)
        assert unchanged + len(new) == imported
        return Counts(created=len(new), unchanged=unchanged, deleted=len(gone))

    async def finish(self, counts: dict[str, Counts], files: Sequence[str]) -> None:
        """Per-record audit rows plus one summary row, only when something changed."""
        if not self.audit and not any(c.created or c.updated or c.deleted for c in counts.values()):
            return
        summary = {entity: vars(c) for entity, c in counts.items()}
        self.audited("roster.imported", "roster", None, {"files": list(files), "counts": summary})
        for chunk in chunks(self.audit, 1_000):
            await self.connection.execute(insert(AUDIT), list(chunk))


Step = Callable[["Writer"], Awaitable[Counts]]


async def write(
    session: AsyncSession,
    parsed: Parsed,
    stored: Stored,
    *,
    actor: str,
    files: Sequence[str],
    more: Mapping[str, Step] | None = None,
) -> dict[str, Counts]:
    """Apply an accepted import in the session's transaction; counts per entity present.

    `more`: the writers of entities whose capability keeps them elsewhere
    (escorts: bot/services/escorts/imports.py), run in ENTITIES order too.
    """
    writer = Writer(session, await session.connection(), parsed, stored, actor)
    steps: dict[str, Step] = {
        "units": Writer.units,
        "personnel": Writer.personnel,
        "tps": Writer.tps,
        "shifts": Writer.shifts,
        "assignments": Writer.assignments,
        **(more or {}),
    }
    counts = {}
    for entity in ENTITIES:
        if entity in parsed.present:
            started = time.perf_counter()
            counts[entity] = await steps[entity](writer)
            log.debug("import wrote %s in %.2fs", entity, time.perf_counter() - started)
    await writer.finish(counts, files)
    return counts


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def bulk_insert(
    connection: AsyncConnection, table: Table, columns: Sequence[str], records: Sequence[tuple[Any, ...]]
) -> None:
    """Plain values only (no type processing): COPY on PostgreSQL, executemany on SQLite."""
    if not records:
        return
    if connection.dialect.name == "postgresql":
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None and raw.is_in_transaction(), "COPY outside the import's transaction"
        await raw.copy_records_to_table(table.name, records=records, columns=list(columns))
        return
    placeholders = ", ".join("?" * len(columns))
    names = ", ".join(f'"{column}"' for column in columns)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({placeholders})'
    for chunk in chunks(records, 50_000):
        await connection.exec_driver_sql(sql, list(chunk))


__all__ = ["ENTITIES", "Counts", "Stored", "Writer", "bulk_insert", "diff", "load"]
