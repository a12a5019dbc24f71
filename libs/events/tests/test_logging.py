"""Logs are JSON lines that always carry event_id, correlation_id and tenant."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from cadre.events.logging import (
    RepeatLimiter,
    configure_logging,
    event_log_context,
    get_logger,
)
from cadre.events.samples import sample_event


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_every_line_has_the_context_keys_even_when_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("attendance")
    get_logger("t").info("starting", port=8002)
    [line] = _lines(capsys.readouterr().err)
    assert line["event"] == "starting"
    assert line["service"] == "attendance"
    assert line["level"] == "info"
    assert {"event_id", "correlation_id", "tenant", "timestamp"} <= set(line)
    assert line["event_id"] is None


def test_inside_an_event_context_lines_carry_its_id_tenant_and_correlation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("scoring")
    event = sample_event("journal.journal_missed", tenant="wangmo", correlation_id="req-7")
    with event_log_context(event):
        get_logger("t").warning("projecting")
        logging.getLogger("some.library").warning("from the stdlib")
    get_logger("t").info("after")
    inside, stdlib, after = _lines(capsys.readouterr().err)
    for line in (inside, stdlib):
        assert line["event_id"] == str(event.id)
        assert line["tenant"] == "wangmo"
        assert line["correlation_id"] == "req-7"
    assert stdlib["logger"] == "some.library"
    assert after["event_id"] is None


def test_logs_follow_stderr_when_it_is_replaced_and_the_old_one_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Library threads (an SMTP server, a Kafka client) keep logging after pytest swaps stderr."""
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("notify")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("mail.log").warning("peer connected")
    get_logger("t").info("sent")
    stdlib, ours = _lines(second.getvalue())
    assert stdlib["logger"] == "mail.log"
    assert ours["event"] == "sent"


def test_a_library_repeating_itself_is_held_to_one_line_per_window() -> None:
    now = [0.0]
    limiter = RepeatLimiter(window_s=10, clock=lambda: now[0])

    def record(name: str, message: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, message, ("node 1",), None)

    refused = "Unable connect to %s: connection refused"
    assert limiter.filter(record("aiokafka.conn", refused))
    assert not any(limiter.filter(record("aiokafka.conn", refused)) for _ in range(500))
    assert limiter.filter(record("aiokafka.conn", "another message %s"))  # its own window
    assert limiter.filter(record("cadre.relay", refused))  # our own lines are never held back
    now[0] = 10.5
    later = record("aiokafka.conn", refused)
    assert limiter.filter(later)
    assert (
        later.getMessage()
        == "Unable connect to node 1: connection refused (500 more like it in the last window)"
    )
