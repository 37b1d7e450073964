"""The unit tree: its closure table, subtrees and chains of command.

Authorization (`/status` of one's own subtree), escalation (one unit up the
tree) and the import's command check all ask the same two questions: which
units lie under this one, and which lie above it. `unit_closure` answers both
with one indexed lookup on any engine; it is derived data, rebuilt from
`units.parent_id` whenever the tree changes (the import calls
`rebuild_closure`), so the parent column stays the single source of truth.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

from sqlalchemy import and_, bindparam, delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.db import table_of
from models import Unit, UnitClosure

K = TypeVar("K", bound=Hashable)

CHUNK = 5_000


class UnitCycleError(ValueError):
    """The parent links loop; `cycle` lists the units on the loop, in parent order."""

    def __init__(self, cycle: list[object]) -> None:
        super().__init__("unit tree has a cycle: " + " -> ".join(map(str, [*cycle, cycle[0]])))
        self.cycle = cycle


def find_cycles(parents: Mapping[K, K | None]) -> list[list[K]]:
    """Every loop of parent links, each listed once, starting from its smallest member's walk.

    Works on any keys (codes before an import writes anything, ids after), so
    the import can refuse a cycle formed together with units already stored.
    A parent that is not a key is treated as a root.
    """
    state: dict[K, int] = {}  # 1: on the current walk, 2: done
    cycles: list[list[K]] = []
    for start in parents:
        walk: list[K] = []
        node: K | None = start
        while node is not None and node in parents and state.get(node) is None:
            state[node] = 1
            walk.append(node)
            node = parents[node]
        if node is not None and state.get(node) == 1:
            cycles.append(walk[walk.index(node) :])
        for visited in walk:
            state[visited] = 2
    return cycles


def closure_of(parents: Mapping[K, K | None]) -> dict[tuple[K, K], int]:
    """(ancestor, unit) -> distance for every unit, itself included at 0.

    Raises UnitCycleError rather than looping: a tree with a cycle has no closure.
    """
    cycles = find_cycles(parents)
    if cycles:
        raise UnitCycleError(list(cycles[0]))
    chains: dict[K, list[K]] = {}  # unit -> [unit, parent, grandparent, ...]

    def chain(unit: K) -> list[K]:
        pending: list[K] = []
        node: K | None = unit
        while node is not None and node in parents and node not in chains:
            pending.append(node)
            node = parents[node]
        above = chains.get(node, []) if node is not None else []
        for member in reversed(pending):
            above = [member, *above]
            chains[member] = above
        return chains[unit]

    pairs: dict[tuple[K, K], int] = {}
    for unit in parents:
        for distance, ancestor in enumerate(chain(unit)):
            pairs[(ancestor, unit)] = distance
    return pairs


async def rebuild_closure(session: AsyncSession) -> int:
    """Bring `unit_closure` and `Unit.depth` in line with the parent links; returns rows changed.

    Computes the closure in Python from one query and writes only the
    difference, so a re-import that moved nothing writes nothing. Runs in the
    caller's transaction.
    """
    rows = (await session.execute(select(Unit.id, Unit.parent_id, Unit.depth))).all()
    parents = {row.id: row.parent_id for row in rows}
    wanted = closure_of(parents)
    have = {
        (row.ancestor_id, row.unit_id): row.distance
        for row in (await session.execute(select(UnitClosure.ancestor_id, UnitClosure.unit_id, UnitClosure.distance)))
    }
    stale = [pair for pair, distance in have.items() if wanted.get(pair) != distance]
    fresh = [pair for pair, distance in wanted.items() if have.get(pair) != distance]
    table = table_of(UnitClosure)
    for start in range(0, len(stale), CHUNK):
        chunk = stale[start : start + CHUNK]
        await session.execute(
            delete(table).where(table.c.ancestor_id == bindparam("a")).where(table.c.unit_id == bindparam("u")),
            [{"a": a, "u": u} for a, u in chunk],
        )
    for start in range(0, len(fresh), CHUNK):
        chunk = fresh[start : start + CHUNK]
        await session.execute(
            insert(table), [{"ancestor_id": a, "unit_id": u, "distance": wanted[(a, u)]} for a, u in chunk]
        )
    depth: dict[int, int] = {}  # the distance to the root is the largest one
    for (_, unit), distance in wanted.items():
        if distance > depth.get(unit, 0):
            depth[unit] = distance
    moved = [{"i": row.id, "d": depth.get(row.id, 0)} for row in rows if row.depth != depth.get(row.id, 0)]
    units = table_of(Unit)
    if moved:
        await session.execute(update(units).where(units.c.id == bindparam("i")).values(depth=bindparam("d")), moved)
    return len(stale) + len(fresh) + len(moved)


async def subtree_ids(session: AsyncSession, unit_id: int) -> list[int]:
    """The unit and every unit below it (the scope of a commander's view)."""
    query = select(UnitClosure.unit_id).where(UnitClosure.ancestor_id == unit_id).order_by(UnitClosure.distance)
    return list((await session.scalars(query)).all())


async def ancestors(session: AsyncSession, unit_id: int, *, include_self: bool = False) -> list[Unit]:
    """The chain of command above a unit, nearest first (where an escalation goes next)."""
    query = (
        select(Unit)
        .join(UnitClosure, UnitClosure.ancestor_id == Unit.id)
        .where(UnitClosure.unit_id == unit_id)
        .where(UnitClosure.distance >= (0 if include_self else 1))
        .order_by(UnitClosure.distance)
    )
    return list((await session.scalars(query)).all())


async def is_within(session: AsyncSession, unit_id: int, ancestor_id: int) -> bool:
    """Whether `unit_id` is `ancestor_id` or lies below it (a commander's authority check)."""
    query = select(exists().where(and_(UnitClosure.ancestor_id == ancestor_id, UnitClosure.unit_id == unit_id)))
    return bool(await session.scalar(query))
