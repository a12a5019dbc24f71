"""The event spine shared by every cadre service.

One envelope, one catalogue, one event store and outbox, one relay and one idempotent
consumer helper: services import these instead of writing their own.
"""

from cadre.events.catalogue import EVENT_CLASSES, AnyEvent, parse_event
from cadre.events.envelope import EventEnvelope, new_event_id

__all__ = ["EVENT_CLASSES", "AnyEvent", "EventEnvelope", "new_event_id", "parse_event"]
