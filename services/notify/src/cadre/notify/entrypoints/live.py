"""Wakes live streams when a notification for their reader commits. One PostgreSQL LISTEN
connection per process (NOTIFY is sent by whichever instance wrote the row, at commit);
streams also re-check on every keep-alive, so a lost connection delays, never loses."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

import asyncpg

from cadre.events.logging import get_logger
from cadre.notify.adapters.inbox import INBOX_CHANNEL

log = get_logger(__name__)


class InboxHub:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for event in self._waiting.get(payload, ()):
            event.set()

    async def wait(self, tenant: str, recipient: str, timeout_s: float) -> bool:
        """True when woken for this reader, False after `timeout_s`."""
        key = f"{tenant}/{recipient}"
        event = asyncio.Event()
        self._waiting[key].add(event)
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting[key].discard(event)
            if not self._waiting[key]:
                del self._waiting[key]

    def wake_all(self) -> None:
        for events in self._waiting.values():
            for event in events:
                event.set()

    async def run(self) -> None:
        delay = 0.5
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(self.dsn)
                closed = asyncio.Event()
                connection.add_termination_listener(lambda _, ended=closed: ended.set())
                await connection.add_listener(INBOX_CHANNEL, self._on_notify)
                delay = 0.5
                self.wake_all()  # anything committed while we were not listening
                while not closed.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(closed.wait(), timeout=30)
                    if not closed.is_set():
                        await connection.fetchval("SELECT 1", timeout=5)  # a silent peer?
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live listener lost its database, retrying", error=repr(exc))
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
