"""The map layer: TPS and contingencies of the shift as a GeoJSON FeatureCollection (QGIS loads it)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.services.reports.workbook import in_shift
from bot.services.status import (
    ShiftRef,
    is_narrow,
    scope_units,
    tps_facts,
)
from models import Contingency, Tps, Unit
from models.enums import ContingencyState


async def tps_features(
    session: AsyncSession, *, shift: ShiftRef, scope: int | None, settings: Settings
) -> list[dict[str, Any]]:
    """Every TPS of the scope: covered, uncovered, or contingency (an unresolved one at it)."""
    facts = tps_facts(
        shift_id=shift.id, scope=scope, staffing=settings.staffing, narrow=await is_narrow(session, scope)
    )
    troubled = exists().where(
        Contingency.tps_id == Tps.id,
        Contingency.state != ContingencyState.resolved.value,
        Contingency.raised_at.is_not(None),
    )
    query = (
        select(
            Tps.code,
            Tps.number,
            Tps.village,
            Tps.lat,
            Tps.lon,
            Tps.kerawanan,
            Unit.code,
            facts.c.covered,
            facts.c.meets,
            troubled,
        )
        .join(facts, facts.c.tps_id == Tps.id)
        .join(Unit, Unit.id == Tps.unit_id)
        .order_by(Tps.code)
    )
    features = []
    for code, number, village, lat, lon, kerawanan, unit, covered, meets, trouble in await session.execute(query):
        state = "contingency" if trouble else "covered" if covered else "uncovered"
        features.append(
            _point(
                lat,
                lon,
                {
                    "kind": "tps",
                    "code": code,
                    "number": number,
                    "village": village,
                    "unit": unit,
                    "kerawanan": kerawanan,
                    "state": state,
                    "meets_pattern": bool(meets),
                },
            )
        )
    return features


async def contingency_features(session: AsyncSession, *, shift: ShiftRef, scope: int | None) -> list[dict[str, Any]]:
    """The shift's contingencies and every unresolved one, where they were sent from (else at their TPS)."""
    query = (
        select(Contingency, Tps.code, Tps.lat, Tps.lon, Unit.code)
        .join(Unit, Unit.id == Contingency.unit_id)
        .outerjoin(Tps, Tps.id == Contingency.tps_id)
        .where(Contingency.raised_at.is_not(None))
        .where(
            or_(
                in_shift(shift, Contingency.shift_id, Contingency.created_at),
                Contingency.state != ContingencyState.resolved.value,
            )
        )
        .order_by(Contingency.id)
    )
    if scope is not None:
        query = query.where(Contingency.unit_id.in_(scope_units(scope)))
    features = []
    for item, tps, tps_lat, tps_lon, unit in await session.execute(query):
        lat, lon = (item.lat, item.lon) if item.lat is not None and item.lon is not None else (tps_lat, tps_lon)
        if lat is None or lon is None:
            continue
        features.append(
            _point(
                lat,
                lon,
                {
                    "kind": "contingency",
                    "id": item.id,
                    "severity": item.severity,
                    "state": item.state,
                    "tps": tps,
                    "unit": unit,
                    "text": item.text[:500],
                    "raised_at": (item.raised_at or item.created_at).isoformat(),
                },
            )
        )
    return features


def _point(lat: float, lon: float, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
        "properties": properties,
    }


def geojson_bytes(features: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"type": "FeatureCollection", "features": features}, ensure_ascii=False, separators=(",", ":")
    ).encode()
