"""structlog JSON logs; every line carries `event_id`, `correlation_id` and `tenant` when known."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
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


class RepeatLimiter(logging.Filter):
    """Lets one line per message template through every `window_s` for the loggers under
    `prefixes`, and says on the next one how many it held back. While Kafka is down aiokafka
    logs the same connection error in a tight loop: 31,000 lines in seconds."""

    def __init__(
        self,
        prefixes: tuple[str, ...] = ("aiokafka",),
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.window_s = window_s
        self.clock = clock
        self._open_until: dict[tuple[str, str], float] = {}
        self._held_back: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        if now < self._open_until.get(key, float("-inf")):
            self._held_back[key] = self._held_back.get(key, 0) + 1
            return False
        if len(self._open_until) > 1000:  # templates, so few; but never grow without bound
            self._open_until.clear()
        self._open_until[key] = now + self.window_s
        held_back = self._held_back.pop(key, 0)
        if held_back:
            record.msg = f"{record.msg} ({held_back} more like it in the last window)"
        return True


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
    handler.addFilter(RepeatLimiter())
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
