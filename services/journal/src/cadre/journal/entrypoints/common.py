"""What every journal route needs: sessions, settings, the blob store, the caller, and the
translation of domain refusals into problem answers."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fastapi import Request

from cadre.events.auth import CurrentPrincipal
from cadre.events.problems import Problem
from cadre.events.service import request_sessions
from cadre.journal.adapters.blobs import BlobStore
from cadre.journal.domain.media import UploadRefused
from cadre.journal.domain.rules import Refused
from cadre.journal.settings import JournalSettings

__all__ = ["CurrentPrincipal", "sessions_of", "settings_of"]

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


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, parts: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Problem(422, "bad-cursor", "The cursor is not one this service gave out.") from exc
    if len(values) != parts:
        raise Problem(422, "bad-cursor", "The cursor is not one this service gave out.")
    return values
