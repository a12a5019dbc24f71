"""Calls to the other services' public APIs with the viewer's token.

An upstream 4xx is passed on as it is (its problem body names the reason: 404 for what the
token may not see, 422 for a bad period). An upstream that is down, slow or failing becomes
`503 service-unavailable` naming the service, so the page can tell the viewer which panel
is affected instead of going blank."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from cadre.events.logging import get_logger
from cadre.events.problems import Problem
from cadre.events.service import POOLED_CONNECTION_MAX_IDLE_S

log = get_logger(__name__)
PAGE_LIMIT = 500


def unavailable(service: str, reason: str) -> Problem:
    return Problem(
        503,
        "service-unavailable",
        f"The {service} service is not answering ({reason}).",
        service=service,
    )


class Upstreams:
    def __init__(self, urls: Mapping[str, str], timeout_s: float) -> None:
        self.urls = dict(urls)
        self.timeout_s = timeout_s
        self.client = httpx.AsyncClient(
            timeout=timeout_s,
            follow_redirects=False,
            # httpx keeps idle connections 5 s, as long as the services do: one reused at
            # that moment could be closed under the request (503 for the panel, or a live
            # stream refused). Retiring them a second sooner leaves no such moment.
            limits=httpx.Limits(keepalive_expiry=POOLED_CONNECTION_MAX_IDLE_S),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def _url(self, service: str, path: str) -> str:
        return self.urls[service].rstrip("/") + path

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        token: str | None,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        try:
            response = await self.client.request(
                method, self._url(service, path), params=params, json=json, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise unavailable(service, "timed out") from exc
        except httpx.HTTPError as exc:
            raise unavailable(service, type(exc).__name__) from exc
        if response.status_code >= 500:
            log.warning("upstream failed", service=service, path=path, status=response.status_code)
            raise unavailable(service, f"status {response.status_code}")
        if response.status_code >= 400:
            raise _passed_on(service, response)
        return response

    async def get(self, service: str, path: str, token: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return (await self.request(service, "GET", path, token, params=clean)).json()

    async def get_all(
        self, service: str, path: str, token: str, *, limit: int, **params: Any
    ) -> list[dict[str, Any]]:
        """Every item of a cursor-paginated list, up to `limit` items."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await self.get(service, path, token, limit=PAGE_LIMIT, cursor=cursor, **params)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor or len(items) >= limit:
                return items[:limit]

    @asynccontextmanager
    async def stream(
        self, service: str, path: str, token: str, headers: Mapping[str, str]
    ) -> AsyncIterator[httpx.Response]:
        """An open streaming response (for SSE); no read timeout, since a quiet stream is
        normal."""
        request = self.client.build_request(
            "GET",
            self._url(service, path),
            headers={"authorization": f"Bearer {token}", **headers},
            timeout=httpx.Timeout(self.timeout_s, read=None),
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("upstream stream failed", service=service, path=path, error=repr(exc))
            raise unavailable(service, type(exc).__name__) from exc
        try:
            if response.status_code >= 400:
                await response.aread()
                # Logged with the body, since the page only learns that its stream closed.
                report = log.warning if response.status_code >= 500 else log.info
                report(
                    "upstream stream refused",
                    service=service,
                    path=path,
                    status=response.status_code,
                    body=response.text[:300],
                )
                if response.status_code >= 500:
                    raise unavailable(service, f"status {response.status_code}")
                raise _passed_on(service, response)
            yield response
        finally:
            await response.aclose()


def _passed_on(service: str, response: httpx.Response) -> Problem:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or "upstream-rejected")
    detail = str(body.get("detail") or f"{service} answered {response.status_code}.")
    extra = {
        k: v
        for k, v in body.items()
        if k not in {"type", "title", "status", "detail", "code", "instance"}
    }
    return Problem(response.status_code, code, detail, service=service, **extra)
