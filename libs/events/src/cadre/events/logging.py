"""structlog JSON logs; every line carries `event_id`, `correlation_id` and `tenant` when known."""

from __future__ import annotations

import logging
import sys
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from cadre.events.envelope import EventEnvelope

_CONTEXT_KEYS = ("event_id", "correlation_id", "tenant")


def _ensure_context_keys(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in _CONTEXT_KEYS:
        event_dict.setdefault(key, None)
    return event_dict


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at emit time.

    A handler bound to the stderr of configuration time breaks when that stream is swapped and
    closed (pytest's capture does this), and library threads then print "Logging error" traces.
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def _current_stderr_logger(*_: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure_logging(service: str, level: str = "INFO") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _ensure_context_keys,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_current_stderr_logger,
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries log through the stdlib: render those lines as the same JSON.
    handler = _CurrentStderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def event_log_context(event: EventEnvelope) -> AbstractContextManager[None]:
    """Binds the event's id, tenant and correlation id to every log line inside the block."""
    return structlog.contextvars.bound_contextvars(
        event_id=str(event.id), tenant=event.tenant, correlation_id=event.correlation_id
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
