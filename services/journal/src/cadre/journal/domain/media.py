"""What an upload is, judged by its content (never its name), and how large it may be. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import filetype


class MediaKind(StrEnum):
    IMAGE = "image"
    DOCUMENT = "document"
    AUDIO = "audio"
    VIDEO = "video"


ALLOWED: dict[str, MediaKind] = {
    "image/jpeg": MediaKind.IMAGE,
    "image/png": MediaKind.IMAGE,
    "image/gif": MediaKind.IMAGE,
    "image/webp": MediaKind.IMAGE,
    "image/heic": MediaKind.IMAGE,
    "application/pdf": MediaKind.DOCUMENT,
    "application/msword": MediaKind.DOCUMENT,
    "application/vnd.ms-excel": MediaKind.DOCUMENT,
    "application/vnd.ms-powerpoint": MediaKind.DOCUMENT,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": MediaKind.DOCUMENT,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": MediaKind.DOCUMENT,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        MediaKind.DOCUMENT
    ),
    "application/vnd.oasis.opendocument.text": MediaKind.DOCUMENT,
    "audio/mpeg": MediaKind.AUDIO,
    "audio/mp4": MediaKind.AUDIO,
    "audio/aac": MediaKind.AUDIO,
    "audio/amr": MediaKind.AUDIO,
    "audio/ogg": MediaKind.AUDIO,
    "audio/x-wav": MediaKind.AUDIO,
    "video/mp4": MediaKind.VIDEO,
    "video/quicktime": MediaKind.VIDEO,
    "video/3gpp": MediaKind.VIDEO,
    "video/x-m4v": MediaKind.VIDEO,
    "video/webm": MediaKind.VIDEO,
}
MiB = 1024 * 1024
# Bytes enough for every signature filetype knows (the office formats look inside the zip).
SNIFF_BYTES = 8192


def _default_limits() -> dict[MediaKind, int]:
    return {
        MediaKind.IMAGE: 10 * MiB,
        MediaKind.DOCUMENT: 20 * MiB,
        MediaKind.AUDIO: 20 * MiB,
        MediaKind.VIDEO: 100 * MiB,
    }


@dataclass(frozen=True)
class UploadPolicy:
    limits: dict[MediaKind, int] = field(default_factory=_default_limits)
    max_files: int = 9

    @property
    def largest(self) -> int:
        return max(self.limits.values())


class UploadRefused(ValueError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Sniffed:
    media_type: str
    kind: MediaKind


def sniff(head: bytes, filename: str = "") -> Sniffed:
    """The media type of a file from its first bytes; anything not on the list is refused,
    whatever it is called."""
    guess = filetype.guess(head)
    media_type = guess.mime if guess is not None else None
    if media_type is None or media_type not in ALLOWED:
        found = media_type or "unrecognised content"
        raise UploadRefused(
            415,
            "unsupported-media-type",
            f"{filename or 'the file'}: {found} is not accepted; send images, documents"
            " (PDF, Word, Excel, PowerPoint), voice or video.",
        )
    return Sniffed(media_type, ALLOWED[media_type])


def check_size(sniffed: Sniffed, size: int, policy: UploadPolicy, filename: str = "") -> None:
    limit = policy.limits[sniffed.kind]
    if size > limit:
        raise UploadRefused(
            413,
            "attachment-too-large",
            f"{filename or 'the file'}: {size} bytes is over the {sniffed.kind.value} limit"
            f" of {limit} bytes.",
        )
    if size == 0:
        raise UploadRefused(422, "empty-attachment", f"{filename or 'the file'} is empty.")
