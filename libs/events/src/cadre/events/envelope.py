"""The one envelope every event travels in (DESIGN section 3, CloudEvents attribute names)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import uuid6
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
# Org paths are built from unit slugs, for example /gz/wangmo/leye.
UNIT_PATH_PATTERN = r"^(/[^/\s]{1,64}){1,12}$"


def new_event_id() -> uuid.UUID:
    """A UUIDv7: unique, roughly time ordered, and the deduplication key everywhere."""
    return uuid.UUID(str(uuid6.uuid7()))


def utc_now() -> datetime:
    return datetime.now(UTC)


class EventData(BaseModel):
    """Base of every typed payload: strict about unknown fields so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EventEnvelope(BaseModel):
    """Fields shared by every event; subclasses narrow `type` and type `data`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The version of `data` this class describes; older versions are upcast on read.
    CURRENT_SCHEMA_VERSION: ClassVar[int] = 1

    id: uuid.UUID = Field(default_factory=new_event_id)
    type: str
    schema_version: int = 1
    source: str = ""
    tenant: str = Field(pattern=TENANT_PATTERN)
    subject: str = Field(min_length=1, max_length=128)
    unit_path: str = Field(pattern=UNIT_PATH_PATTERN)
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime = Field(default_factory=utc_now)
    actor: str = Field(min_length=1, max_length=128)
    correlation_id: str | None = Field(default=None, max_length=128)
    causation_id: str | None = Field(default=None, max_length=128)
    data: EventData

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, values: Any) -> Any:
        if isinstance(values, dict):
            type_name = values.get("type") or cls.model_fields["type"].default
            if isinstance(type_name, str) and not values.get("source"):
                values = {**values, "source": type_name.split(".", 1)[0]}
            if "schema_version" not in values:
                values = {**values, "schema_version": cls.CURRENT_SCHEMA_VERSION}
        return values

    @model_validator(mode="after")
    def _check_consistency(self) -> EventEnvelope:
        service = self.type.split(".", 1)[0]
        if self.source != service:
            raise ValueError(
                f"source {self.source!r} does not match the type's service {service!r}"
            )
        if self.schema_version != self.CURRENT_SCHEMA_VERSION:
            raise ValueError(
                f"{self.type} is at schema_version {self.CURRENT_SCHEMA_VERSION}; "
                f"got {self.schema_version} (upcast older versions before validating)"
            )
        return self
