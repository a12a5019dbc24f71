"""The one loop for a service's background job that runs every so often."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from cadre.events.logging import get_logger

log = get_logger(__name__)


async def repeat(job: str, interval_s: float, run_round: Callable[[], Awaitable[bool]]) -> None:
    """Run `run_round` forever, waiting `interval_s` between rounds. A round that returns True
    found more work waiting and is followed at once. A round that fails is logged and tried
    again next time: the database may be away for a while."""
    while True:
        try:
            if await run_round():
                continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("background job round failed", job=job, error=repr(exc))
        await asyncio.sleep(interval_s)
