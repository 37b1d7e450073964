"""Distances on the Earth, good to a few metres at TPS scale."""

from collections.abc import Sequence
from math import asin, cos, radians, sin, sqrt

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine great-circle distance in metres."""
    phi1, phi2 = radians(lat1), radians(lat2)
    dphi, dlmb = phi2 - phi1, radians(lon2 - lon1)
    h = sin(dphi / 2) ** 2 + cos(phi1) * cos(phi2) * sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * asin(min(1.0, sqrt(h)))


Point = tuple[float, float]  # (lat, lon)


def _local_xy(lat: float, lon: float, lat0: float, lon0: float) -> tuple[float, float]:
    """Metres east and north of (lat0, lon0): flat enough for the tens of kilometres of one escort leg."""
    scale = radians(1) * EARTH_RADIUS_M
    return (lon - lon0) * scale * cos(radians(lat0)), (lat - lat0) * scale


def distance_to_segment_m(lat: float, lon: float, a: Point, b: Point) -> float:
    """Distance from a point to the segment a-b, in metres."""
    ax, ay = _local_xy(a[0], a[1], lat, lon)
    bx, by = _local_xy(b[0], b[1], lat, lon)
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
    return sqrt((ax + t * dx) ** 2 + (ay + t * dy) ** 2)


def distance_to_polyline_m(lat: float, lon: float, points: Sequence[Point]) -> float:
    """Distance from a point to the nearest segment of a line through `points` (an escort's corridor)."""
    if not points:
        raise ValueError("a polyline needs at least one point")
    if len(points) == 1:
        return distance_m(lat, lon, *points[0])
    return min(distance_to_segment_m(lat, lon, a, b) for a, b in zip(points, points[1:], strict=False))


def path_length_m(points: Sequence[Point]) -> float:
    """Length of the line through `points`, leg by leg."""
    return sum(distance_m(*a, *b) for a, b in zip(points, points[1:], strict=False))
