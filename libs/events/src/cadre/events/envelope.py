"""The one envelope every event travels in (DESIGN section 3, CloudEvents attribute names)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import uuid6
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A concrete event's `source` (the service in its type) and `schema_version` (its
        current one) are constants: declared here as `Literal` fields with those defaults,
        before pydantic collects the fields, so validation checks them in pydantic-core.
        Two model validators in Python did it before, a fifth of validating an event that
        a replay reads (5.2 against 4.1 µs a closed day)."""
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("type")
        if isinstance(event_type, str):
            service = event_type.split(".", 1)[0]
            cls.__annotations__["source"] = Literal[service]
            cls.__annotations__["schema_version"] = Literal[cls.CURRENT_SCHEMA_VERSION]
            cls.source = service
            cls.schema_version = cls.CURRENT_SCHEMA_VERSION
