"""Upcasters turn an older `schema_version` of an event's `data` into the current one on read.

Events are immutable once written, so a payload change never rewrites the log: each step
from version N to N+1 is registered here and applied in order whenever an old event is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]


class UpcasterRegistry:
    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register the step that lifts `event_type` data from `from_version` to the next."""

        def decorator(step: Upcaster) -> Upcaster:
            key = (event_type, from_version)
            if key in self._steps:
                raise ValueError(f"an upcaster for {event_type} v{from_version} already exists")
            self._steps[key] = step
            return step

        return decorator

    def upcast(self, envelope: Payload, target: int) -> Payload:
        """Return the envelope with `data` lifted to version `target` of its type."""
        event_type = envelope.get("type")
        version = envelope.get("schema_version", target)
        if not isinstance(version, int) or version >= target:
            # Current already (nearly every event: no copy), or a newer producer than this
            # reader, which validation reports.
            return envelope
        data = envelope.get("data")
        while version < target:
            step = self._steps.get((str(event_type), version))
            if step is None:
                raise LookupError(f"no upcaster registered for {event_type} v{version}")
            data = step(dict(data) if isinstance(data, dict) else {})
            version += 1
        return {**envelope, "schema_version": version, "data": data}


UPCASTERS = UpcasterRegistry()


@UPCASTERS.register("attendance.checked_in", from_version=1)
def _checked_in_v1_to_v2(data: Payload) -> Payload:
    """v1 nested the fix as `location: {lat, lon, accuracy}` and had no branch-activity flag."""
    location = data.pop("location", {}) or {}
    data["lat"] = location.get("lat")
    data["lon"] = location.get("lon")
    data["accuracy_m"] = location.get("accuracy")
    data.setdefault("branch_activity", False)
    return data
