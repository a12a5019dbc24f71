"""The benchmark's lean HTTP client: keep-alive reuse, answers as sent, failures reported."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bench.http_load import HttpError, HttpPool


class _Server(ThreadingHTTPServer):
    connections = 0
    close_after_answer = False
    hang_up = False


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless told otherwise
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.hang_up:
            self.close_connection = True
            return
        payload = json.loads(body)
        status = 422 if payload.get("bad") else 201
        self._answer(status, {"got": payload, "auth": self.headers["Authorization"]})

    def do_GET(self) -> None:
        self._answer(200, {"path": self.path})

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.server.close_after_answer:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(server: _Server) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


async def test_answers_come_back_as_sent_over_one_kept_alive_connection(server: _Server) -> None:
    async with HttpPool(_url(server), limit=4) as pool:
        for i in range(5):
            status, body = await pool.post_json("/v1/x", {"n": i}, {"Authorization": "Bearer t"})
            assert status == 201
            assert json.loads(body) == {"got": {"n": i}, "auth": "Bearer t"}
        status, body = await pool.get("/v1/y?z=1", {})
    assert (status, json.loads(body)) == (200, {"path": "/v1/y?z=1"})
    assert server.connections == 1


async def test_a_connection_idle_longer_than_the_limit_is_not_reused(server: _Server) -> None:
    """A server closes idle connections after its keep-alive timeout; one it is closing
    just as a request goes out resets that request. The pool retires them first."""
    async with HttpPool(_url(server), max_idle_s=0.2) as pool:
        await pool.get("/", {})
        await pool.get("/", {})
        assert server.connections == 1
        await asyncio.sleep(0.3)
        status, _ = await pool.get("/", {})
    assert status == 200
    assert server.connections == 2


async def test_a_refusal_keeps_its_status_and_body(server: _Server) -> None:
    async with HttpPool(_url(server)) as pool:
        status, body = await pool.post_json("/v1/x", {"bad": True}, {"Authorization": "-"})
    assert status == 422
    assert json.loads(body)["got"] == {"bad": True}


async def test_a_server_that_closes_after_each_answer_gets_a_new_connection(
    server: _Server,
) -> None:
    server.close_after_answer = True
    async with HttpPool(_url(server)) as pool:
        for _ in range(3):
            status, _ = await pool.get("/", {})
            assert status == 200
    assert server.connections == 3


async def test_a_hang_up_before_the_answer_is_an_error(server: _Server) -> None:
    server.hang_up = True
    async with HttpPool(_url(server)) as pool:
        with pytest.raises(HttpError):
            await pool.post_json("/v1/x", {}, {"Authorization": "-"})


async def test_only_plain_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="plain http"):
        HttpPool("https://example.invalid")
