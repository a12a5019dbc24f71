"""The dashboard's calls to the other services reuse connections, but never one the
service may be closing for idleness at that moment (a request on it would be reset)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from cadre.dashboard.adapters.upstream import Upstreams
from cadre.devstack.testing import JsonHandler, LocalHttpServer, local_http_server
from cadre.events.service import HTTP_KEEP_ALIVE_S, POOLED_CONNECTION_MAX_IDLE_S


class _Answer(JsonHandler):
    def do_GET(self) -> None:
        self.answer(200, {"ok": True})


@pytest.fixture
def service() -> Iterator[LocalHttpServer]:
    with local_http_server(LocalHttpServer, _Answer) as server:
        yield server


async def test_an_idle_connection_is_retired_before_the_service_would_close_it(
    service: LocalHttpServer,
) -> None:
    assert POOLED_CONNECTION_MAX_IDLE_S < HTTP_KEEP_ALIVE_S
    upstreams = Upstreams({"scoring": service.url}, timeout_s=5)
    try:
        await upstreams.get("scoring", "/v1/a", "token")
        await upstreams.get("scoring", "/v1/b", "token")
        assert service.connections == 1  # kept alive and reused
        # Idle past the dashboard's limit, still inside the service's keep-alive timeout:
        # the next call must not go out on the old connection.
        await asyncio.sleep(POOLED_CONNECTION_MAX_IDLE_S + 0.3)
        assert await upstreams.get("scoring", "/v1/c", "token") == {"ok": True}
    finally:
        await upstreams.aclose()
    assert service.connections == 2
