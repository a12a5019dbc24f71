"""Who makes a change and in which request: the envelope fields every emitted event shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a replay worker, which reads no request, need not import FastAPI
    from fastapi import Request

    from cadre.events.auth import Principal


@dataclass(frozen=True)
class ChangeContext:
    tenant: str
    actor: str
    correlation_id: str | None = None

    def envelope(
        self, subject: str, unit_path: str, occurred_at: datetime | None = None
    ) -> dict[str, Any]:
        """Keyword arguments for an event class, apart from `data`."""
        return {
            "tenant": self.tenant,
            "subject": subject,
            "unit_path": unit_path,
            "actor": self.actor,
            "correlation_id": self.correlation_id,
            "occurred_at": occurred_at or datetime.now(UTC),
        }

    @classmethod
    def of(cls, request: Request, principal: Principal) -> ChangeContext:
        return cls(principal.tenant, principal.sub, getattr(request.state, "correlation_id", None))
