"""`siaga import` of places, escorts and escort_members: the checks that need other rows, and the writes.

The rules are the roster's (bot/services/roster.py): all or nothing, every
bad row named, upserts keyed by code. Here besides:
- an escort's `from_code`, `to_code` and each `via_codes` entry name a place
  or a TPS, of this invocation or the database; a place's code must not also
  be a TPS code, or an endpoint would name two things;
- escort_members are keyed by (escort, NRP) and replaced per escort: for
  every escort named in the invocation's member rows, its members become
  exactly those rows; an escort has at most one `ketua`;
- an escort's vias are replaced when its `via_codes` change (what was passed
  is forgotten with them).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.services.roster_write import PERSONNEL, Counts, Item, Stored, Writer, bulk_insert
from bot.services.spreadsheet import Parsed
from models import Escort, EscortMember, EscortVia, Place, Tps

PLACES, ESCORTS, VIAS, MEMBERS, TPS = (
    cast(Table, model.__table__) for model in (Place, Escort, EscortVia, EscortMember, Tps)
)
CHUNK = 5_000
ESCORT_COLUMNS = ("kind", "cargo", "from_code", "to_code", "via_codes", "unit_code", "depart_at", "arrive_by", "access")


# --- reading what is stored ----------------------------------------------------------------------


async def load(session: AsyncSession, stored: Stored, present: set[str]) -> None:
    """Places and escorts as stored, keyed by code; an escort's endpoints and vias as codes."""
    if present & {"places", "escorts"}:
        stored.places = {row.code: row for row in await session.execute(select(PLACES))}
    if present & {"escorts", "escort_members"}:
        from_place, from_tps, to_place, to_tps = aliased(Place), aliased(Tps), aliased(Place), aliased(Tps)
        query = (
            select(
                Escort.id,
                Escort.code,
                Escort.kind,
                Escort.cargo,
                func.coalesce(from_place.code, from_tps.code).label("from_code"),
                func.coalesce(to_place.code, to_tps.code).label("to_code"),
                Escort.unit_id,
                Escort.depart_at,
                Escort.arrive_by,
                Escort.access,
            )
            .outerjoin(from_place, from_place.id == Escort.from_place_id)
            .outerjoin(from_tps, from_tps.id == Escort.from_tps_id)
            .outerjoin(to_place, to_place.id == Escort.to_place_id)
            .outerjoin(to_tps, to_tps.id == Escort.to_tps_id)
        )
        stored.escorts = {row.code: row for row in await session.execute(query)}
        vias: dict[int, list[str]] = {}
        via_query = (
            select(EscortVia.escort_id, func.coalesce(Place.code, Tps.code))
            .outerjoin(Place, Place.id == EscortVia.place_id)
            .outerjoin(Tps, Tps.id == EscortVia.tps_id)
            .order_by(EscortVia.escort_id, EscortVia.seq)
        )
        for escort_id, code in await session.execute(via_query):
            vias.setdefault(escort_id, []).append(code)
        stored.vias = {escort_id: tuple(codes) for escort_id, codes in vias.items()}


async def tps_ids(session: AsyncSession, codes: Iterable[str]) -> dict[str, int]:
    """The stored TPS among `codes`, by code: endpoints name a few of a province's thousands."""
    wanted, found = sorted(set(codes)), {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        found.update(dict((await session.execute(select(TPS.c.code, TPS.c.id).where(TPS.c.code.in_(chunk)))).all()))
    return found


# --- checks ---------------------------------------------------------------------------------------


async def check(session: AsyncSession, parsed: Parsed, stored: Stored, *, units: Collection[str]) -> None:
    """Unknown units, places, TPS, escorts and NRPs; codes naming two things; a second ketua.

    `units`: every unit code the tree will hold (stored and imported).
    """
    if not parsed.present & {"places", "escorts", "escort_members"}:
        return
    places, escorts, rejected = parsed.rows["places"], parsed.rows["escorts"], parsed.rejected

    def known_unit(code: str) -> bool:
        return code in units or code in rejected["units"]

    endpoint_codes = {code for row, _ in escorts.values() for code in (row.from_code, row.to_code, *row.via_codes)}
    stored_tps = await tps_ids(session, endpoint_codes | set(places))
    tps_codes = set(parsed.rows["tps"]) | set(stored_tps) | rejected["tps"]
    place_codes = set(places) | set(stored.places) | rejected["places"]
    for code, (row, at) in places.items():
        if not known_unit(row.unit_code):
            parsed.add_error(at, "unit_code", unknown_unit(row.unit_code))
        if code in tps_codes:
            parsed.add_error(at, "code", f"place code {code!r} is also a TPS code: an escort could not tell them apart")

    def unknown(code: str) -> bool:
        return code not in place_codes and code not in tps_codes

    for row, at in escorts.values():
        if not known_unit(row.unit_code):
            parsed.add_error(at, "unit_code", unknown_unit(row.unit_code))
        for column in ("from_code", "to_code"):
            code = getattr(row, column)
            if unknown(code):
                parsed.add_error(
                    at, column, f"unknown place or TPS {code!r}: not in the places or tps sheet or the database"
                )
        missing = [code for code in row.via_codes if unknown(code)]
        if missing:
            parsed.add_error(
                at,
                "via_codes",
                "names no place or TPS: " + ", ".join(map(repr, missing)) + " (not in the files or the database)",
            )
    _check_members(parsed, stored)


def unknown_unit(code: str) -> str:
    return f"unknown unit {code!r}: not in the units sheet or the database"


def _check_members(parsed: Parsed, stored: Stored) -> None:
    rejected = parsed.rejected
    leads: dict[str, int] = {}
    for (escort_code, nrp), (row, at) in parsed.members.items():
        if (
            escort_code not in parsed.rows["escorts"]
            and escort_code not in stored.escorts
            and escort_code not in rejected["escorts"]
        ):
            parsed.add_error(
                at, "escort_code", f"unknown escort {escort_code!r}: not in the escorts sheet or the database"
            )
        if nrp not in parsed.rows["personnel"] and nrp not in stored.personnel and nrp not in rejected["personnel"]:
            parsed.add_error(at, "nrp", "unknown nrp: not in the personnel sheet or the database")
        if row.role == "ketua":
            first = leads.setdefault(escort_code, at)
            if first != at:
                parsed.add_error(at, "role", f"escort {escort_code!r} has a ketua already, on row {first & 0xFFFFFFFF}")


# --- writes ---------------------------------------------------------------------------------------


async def write_places(writer: Writer) -> Counts:
    rows, unit_id, code_of = writer.parsed.rows["places"], writer.unit_id, writer.unit_code
    plain = ("name", "kind", "lat", "lon")
    fresh, items = [], []
    for code, (row, _) in rows.items():
        new = {**{c: getattr(row, c) for c in plain}, "unit_code": row.unit_code}
        values = {**new, "unit_id": unit_id[row.unit_code]}
        old_row = writer.stored.places.get(code)
        if old_row is None:
            fresh.append((code, *(values[c] for c in (*plain, "unit_id"))))
            continue
        old = {**{c: getattr(old_row, c) for c in plain}, "unit_code": code_of.get(old_row.unit_id)}
        items.append((code, old, new, values, "place.updated"))
    await bulk_insert(writer.connection, PLACES, ("code", *plain, "unit_id"), fresh)
    counts = await writer.update_changed("places", PLACES, (*plain, "unit_id"), items)
    return Counts(created=len(fresh), updated=counts.updated, unchanged=counts.unchanged)


async def write_escorts(writer: Writer) -> Counts:
    """Typed inserts (their times go through the UTC column type); vias replaced where they changed."""
    rows, stored = writer.parsed.rows["escorts"], writer.stored
    place_id = await writer.ids(PLACES, "code")
    tps_id = await tps_ids(
        writer.session, {c for row, _ in rows.values() for c in (row.from_code, row.to_code, *row.via_codes)}
    )

    def endpoint(code: str) -> tuple[int | None, int | None]:
        return (place_id[code], None) if code in place_id else (None, tps_id[code])

    fresh: list[dict[str, Any]] = []
    items: list[Item] = []
    rerouted: list[str] = []
    for code, (row, _) in rows.items():
        new = {c: getattr(row, c) for c in ESCORT_COLUMNS}
        new["via_codes"] = ";".join(row.via_codes)
        (from_place, from_tps), (to_place, to_tps) = endpoint(row.from_code), endpoint(row.to_code)
        values = {
            **new,
            "from_place_id": from_place,
            "from_tps_id": from_tps,
            "to_place_id": to_place,
            "to_tps_id": to_tps,
            "unit_id": writer.unit_id[row.unit_code],
        }
        old_row = stored.escorts.get(code)
        if old_row is None:
            fresh.append(
                {"code": code, **{c: values[c] for c in _ESCORT_WRITTEN}, "state": "terjadwal", "on_water": False}
            )
            rerouted.append(code)
            continue
        old = {c: getattr(old_row, c) for c in ESCORT_COLUMNS if c not in ("via_codes", "unit_code")}
        old["via_codes"] = ";".join(stored.vias.get(old_row.id, ()))
        old["unit_code"] = writer.unit_code.get(old_row.unit_id)
        if old["via_codes"] != new["via_codes"]:
            rerouted.append(code)
        items.append((code, old, new, values, "escort.updated"))
    if fresh:
        await writer.connection.execute(insert(ESCORTS), fresh)
    counts = await writer.update_changed("escorts", ESCORTS, _ESCORT_WRITTEN, items)
    await _replace_vias(writer, rerouted, place_id, tps_id)
    return Counts(created=len(fresh), updated=counts.updated, unchanged=counts.unchanged)


_ESCORT_WRITTEN = (
    "kind",
    "cargo",
    "from_place_id",
    "from_tps_id",
    "to_place_id",
    "to_tps_id",
    "unit_id",
    "depart_at",
    "arrive_by",
    "access",
)


async def _replace_vias(writer: Writer, codes: Sequence[str], place_id: dict[str, int], tps_id: dict[str, int]) -> None:
    if not codes:
        return
    escort_id = await _escort_ids(writer, codes)
    ids = [escort_id[code] for code in codes]
    for start in range(0, len(ids), CHUNK):
        await writer.connection.execute(delete(VIAS).where(VIAS.c.escort_id.in_(ids[start : start + CHUNK])))
    records = [
        {
            "escort_id": escort_id[code],
            "seq": seq,
            "place_id": place_id.get(via),
            "tps_id": None if via in place_id else tps_id[via],
        }
        for code in codes
        for seq, via in enumerate(writer.parsed.rows["escorts"][code][0].via_codes, start=1)
    ]
    if records:
        await writer.connection.execute(insert(VIAS), records)


async def _escort_ids(writer: Writer, codes: Iterable[str]) -> dict[str, int]:
    wanted, found = sorted(set(codes)), {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        query = select(ESCORTS.c.code, ESCORTS.c.id).where(ESCORTS.c.code.in_(chunk))
        found.update(dict((await writer.connection.execute(query)).all()))
    return found


async def write_members(writer: Writer) -> Counts:
    """Each escort named in the member rows gets exactly those members, with their roles."""
    members = writer.parsed.members
    escort_id = await _escort_ids(writer, {escort for escort, _ in members})
    person_id = await writer.ids(PERSONNEL, "nrp")
    wanted = {(escort_id[e], person_id[n]): row.role for (e, n), (row, _) in members.items()}
    ids = sorted(set(escort_id.values()))
    stored: dict[tuple[int, int], tuple[int, str]] = {}
    for start in range(0, len(ids), CHUNK):
        query = select(MEMBERS.c.id, MEMBERS.c.escort_id, MEMBERS.c.personnel_id, MEMBERS.c.role).where(
            MEMBERS.c.escort_id.in_(ids[start : start + CHUNK])
        )
        for id_, escort, person, role in await writer.connection.execute(query):
            stored[(escort, person)] = (id_, role)
    gone = [id_ for key, (id_, _) in stored.items() if key not in wanted]
    changed = [(id_, wanted[key]) for key, (id_, role) in stored.items() if key in wanted and wanted[key] != role]
    fresh = [
        {"escort_id": e, "personnel_id": p, "role": role} for (e, p), role in wanted.items() if (e, p) not in stored
    ]
    for start in range(0, len(gone), CHUNK):
        await writer.connection.execute(delete(MEMBERS).where(MEMBERS.c.id.in_(gone[start : start + CHUNK])))
    await writer.update(MEMBERS, ("role",), [{"_id": id_, "_role": role} for id_, role in changed])
    if fresh:
        await writer.connection.execute(insert(MEMBERS), fresh)
    unchanged = len(wanted) - len(fresh) - len(changed)
    return Counts(created=len(fresh), updated=len(changed), unchanged=unchanged, deleted=len(gone))


WRITERS = {"places": write_places, "escorts": write_escorts, "escort_members": write_members}
