"""Where a check-in happened: great-circle distance and geofence judgement. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance in metres between two WGS-84 points along the Earth's surface."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Fence:
    lat: float
    lon: float
    radius_m: float


def within_any(fences: Iterable[Fence], lat: float, lon: float) -> bool:
    """Inside at least one fence (the edge counts as inside)."""
    return any(haversine_m(f.lat, f.lon, lat, lon) <= f.radius_m for f in fences)
