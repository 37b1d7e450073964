"""The audit trail: every state change a commander may have to account for."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditLog


def record(
    session: AsyncSession,
    *,
    action: str,
    entity: str,
    entity_id: object | None = None,
    actor_id: int | None = None,
    actor: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit row to the caller's transaction, so it commits or vanishes with the change."""
    row = AuditLog(
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        actor_id=actor_id,
        actor=actor,
        detail=detail or {},
    )
    session.add(row)
    return row
