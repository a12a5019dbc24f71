"""RFC 9457 problem details: every error answer is `application/problem+json`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cadre.events.db import is_infrastructure_error
from cadre.events.logging import get_logger
from cadre.events.store import ConcurrencyError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://cadre.example/problems/"
log = get_logger(__name__)


class Problem(Exception):
    """Raise from a handler to answer with a problem body; `code` is machine-readable."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        self.extra = extra


def problem_body(
    status: int, code: str, detail: str, instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail, instance, **extra),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _code_for_status(status: int) -> str:
    return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(
            exc.status, exc.code, exc.detail, request.url.path, headers=exc.headers, **exc.extra
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "loc": list(error.get("loc", ())),
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
            for error in exc.errors()
        ]
        return problem_response(
            422, "validation-failed", "The request is not valid.", request.url.path, errors=errors
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(
            exc.status_code,
            _code_for_status(exc.status_code),
            detail,
            request.url.path,
            headers=dict(exc.headers or {}),
        )

    async def on_conflict(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ConcurrencyError)
        return problem_response(
            409,
            "concurrent-modification",
            str(exc),
            request.url.path,
            stream_id=exc.stream_id,
            expected_version=exc.expected_version,
            actual_version=exc.actual_version,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_infrastructure_error(exc):
            # The database went away (a restart, a failover): nothing was written, and the
            # same request a moment later will most likely succeed.
            log.warning("database unavailable", path=request.url.path, error=repr(exc))
            return problem_response(
                503,
                "database-unavailable",
                "The database is not reachable just now; retry shortly.",
                request.url.path,
                headers={"Retry-After": "1"},
            )
        log.exception("unhandled error", path=request.url.path)
        return problem_response(
            500, "internal-error", "An unexpected error occurred.", request.url.path
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ConcurrencyError, on_conflict)
    app.add_exception_handler(Exception, on_unexpected)
