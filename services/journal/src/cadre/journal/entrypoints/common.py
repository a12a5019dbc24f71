"""What every journal route needs: sessions, settings, the blob store, the caller, and the
translation of domain refusals into problem answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from cadre.events.auth import CurrentPrincipal
from cadre.events.problems import Problem
from cadre.events.service import request_sessions
from cadre.journal.adapters import uploads
from cadre.journal.adapters.blobs import BlobStore
from cadre.journal.domain.media import UploadRefused
from cadre.journal.domain.rules import Refused
from cadre.journal.settings import JournalSettings

__all__ = ["CurrentPrincipal", "sessions_of", "settings_of"]

ModelT = TypeVar("ModelT", bound=BaseModel)
ResultT = TypeVar("ResultT")

sessions_of = request_sessions


def settings_of(request: Request) -> JournalSettings:
    settings: JournalSettings = request.app.state.runtime.settings
    return settings


def blobs_of(request: Request) -> BlobStore:
    blobs: BlobStore = request.app.state.blobs
    return blobs


def today(request: Request) -> date:
    return datetime.now(ZoneInfo(settings_of(request).default_timezone)).date()


@contextmanager
def as_problems() -> Iterator[None]:
    """Domain refusals become RFC 9457 answers with their status and code."""
    try:
        yield
    except (Refused, UploadRefused) as exc:
        raise Problem(exc.status, exc.code, str(exc)) from exc


async def json_or_form(
    request: Request,
    model: type[ModelT],
    what: str,
    *,
    from_form: Callable[[FormData], dict[str, Any]],
    file_field: str,
    max_files: int,
    max_fields: int,
) -> tuple[ModelT, list[UploadFile]]:
    """A body sent as JSON, or as multipart/form-data with files under `file_field`;
    `from_form` turns the form's fields into the model's input (and may refuse them)."""
    content_type = request.headers.get("content-type", "")
    files: list[UploadFile] = []
    raw: Any
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=max_files, max_fields=max_fields)
        files = [v for v in form.getlist(file_field) if isinstance(v, UploadFile)]
        raw = from_form(form)
    elif content_type.startswith("application/json"):
        try:
            raw = await request.json()
        except ValueError as exc:
            raise Problem(400, "bad-json", "The body is not valid JSON.") from exc
    else:
        raise Problem(
            415, "unsupported-content-type", "Send application/json or multipart/form-data."
        )
    try:
        return model.model_validate(raw), files
    except ValidationError as exc:
        raise Problem(
            422,
            "validation-error",
            f"The {what} is not valid.",
            errors=exc.errors(include_url=False, include_context=False, include_input=False),
        ) from exc


async def with_uploads(
    request: Request,
    files: list[UploadFile],
    record: Callable[[uploads.PreparedBatch], Awaitable[ResultT]],
) -> ResultT:
    """Check every file, store them, then `record` the change. If anything fails after
    storing, the blobs this request added and nothing refers to are deleted again."""
    blobs, sessions = blobs_of(request), sessions_of(request)
    with as_problems():
        batch = await uploads.prepare(files, settings_of(request).upload_policy())
    try:
        await uploads.store(batch, blobs)
        return await record(batch)
    except BaseException:
        await uploads.discard_unreferenced(sessions, blobs, batch.stored)
        raise
    finally:
        batch.close()
