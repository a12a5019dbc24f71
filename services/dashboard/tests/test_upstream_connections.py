"""The dashboard's calls to the other services reuse connections, but never one the
service may be closing for idleness at that moment (a request on it would be reset)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cadre.dashboard.adapters.upstream import Upstreams
from cadre.events.service import HTTP_KEEP_ALIVE_S, POOLED_CONNECTION_MAX_IDLE_S


class _Service(ThreadingHTTPServer):
    connections = 0


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections alive
    server: _Service

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_GET(self) -> None:
        data = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def service() -> Iterator[_Service]:
    httpd = _Service(("127.0.0.1", 0), _Answer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


async def test_an_idle_connection_is_retired_before_the_service_would_close_it(
    service: _Service,
) -> None:
    assert POOLED_CONNECTION_MAX_IDLE_S < HTTP_KEEP_ALIVE_S
    host, port = service.server_address[:2]
    upstreams = Upstreams({"scoring": f"http://{host!s}:{port}"}, timeout_s=5)
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
