"""Heuristics that flag a suspect check-in. A flagged check-in is still recorded: the flags
travel in the event and scoring and leaders decide what they mean. Pure."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from cadre.attendance.domain.geo import haversine_m
from cadre.events.vocabulary import FlagReason


@dataclass(frozen=True)
class SpoofPolicy:
    max_speed_kmh: float = 250.0  # faster than any road between two check-ins
    max_accuracy_m: float = 200.0
    min_distance_for_speed_m: float = 500.0  # below this, GPS jitter, not travel


@dataclass(frozen=True)
class Fix:
    occurred_at: datetime
    lat: float
    lon: float


def speed_kmh(before: Fix, after: Fix) -> float:
    distance_km = haversine_m(before.lat, before.lon, after.lat, after.lon) / 1000
    hours = abs((after.occurred_at - before.occurred_at).total_seconds()) / 3600
    return float("inf") if hours == 0 else distance_km / hours


def suspicions(
    fix: Fix,
    accuracy_m: float,
    *,
    day: date,
    neighbours: Collection[Fix] = (),
    coordinates_on_other_days: Collection[tuple[float, float, date]] = (),
    recent_device_mismatches: int = 0,
    policy: SpoofPolicy = SpoofPolicy(),
) -> list[FlagReason]:
    """The reasons to flag `fix`. `day`: its day where the cadre works, as check-ins store
    theirs (not the date of `occurred_at` in its own zone, which is another day for a
    morning check-in in China sent in UTC). `neighbours` are the cadre's check-ins just
    before and after it in event time (offline sync means either may arrive later)."""
    reasons: list[FlagReason] = []
    for other in neighbours:
        far = haversine_m(other.lat, other.lon, fix.lat, fix.lon) >= policy.min_distance_for_speed_m
        if far and speed_kmh(other, fix) > policy.max_speed_kmh:
            reasons.append(FlagReason.IMPOSSIBLE_SPEED)
            break
    if accuracy_m > policy.max_accuracy_m:
        reasons.append(FlagReason.POOR_ACCURACY)
    # Real GPS fixes jitter in the last digits; the very same coordinates on another day
    # suggest a replayed or simulated location.
    if any(
        (lat, lon) == (fix.lat, fix.lon) and other_day != day
        for lat, lon, other_day in coordinates_on_other_days
    ):
        reasons.append(FlagReason.REPEATED_COORDINATES)
    if recent_device_mismatches > 0:
        reasons.append(FlagReason.MISMATCH_HISTORY)
    return reasons
