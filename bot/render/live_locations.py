"""The Bot API options of an escort's live location in its command group: a map pin, no words.

The group's alerts and `/kawal` say which escort it is; the pin itself
only carries where the escort is, how long Telegram keeps it live, and
nothing Telegram would show as text.
"""

from __future__ import annotations

from typing import Any


def start_payload(lat: float, lon: float, live_seconds: int) -> dict[str, Any]:
    return {"latitude": lat, "longitude": lon, "live_period": live_seconds}


def move_payload(message_id: int, lat: float, lon: float) -> dict[str, Any]:
    return {"message_id": message_id, "latitude": lat, "longitude": lon}


def stop_payload(message_id: int) -> dict[str, Any]:
    return {"message_id": message_id}
