"""Turning multipart uploads into checked, content-addressed attachments. Every file is
checked before any is stored, and a request that fails after storing takes back the blobs
nothing else refers to, so a refused upload leaves no orphan behind."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cadre.events.catalogue import AttachmentRef
from cadre.journal.adapters.blobs import BlobStore
from cadre.journal.adapters.tables import attachments
from cadre.journal.adapters.thumbnails import NotAnImage, thumbnail_jpeg
from cadre.journal.domain.media import (
    SNIFF_BYTES,
    MediaKind,
    Sniffed,
    UploadPolicy,
    UploadRefused,
    check_size,
    sniff,
)

CHUNK = 1 << 20


class Upload(Protocol):
    filename: str | None

    async def read(self, size: int = -1) -> bytes: ...


@dataclass
class Prepared:
    path: Path
    sha256: str
    size: int
    sniffed: Sniffed
    filename: str
    thumbnail: bytes | None = None
    thumbnail_sha256: str | None = None

    def ref(self) -> AttachmentRef:
        """How events name the file."""
        return AttachmentRef(
            sha256=self.sha256,
            media_type=self.sniffed.media_type,
            size_bytes=self.size,
            filename=self.filename,
        )

    def row(self, tenant: str, owner_id: str, position: int) -> dict[str, object]:
        """The `attachments` row tying the file to an entry or a task."""
        return {
            "tenant": tenant,
            "owner_id": owner_id,
            "sha256": self.sha256,
            "position": position,
            "media_type": self.sniffed.media_type,
            "kind": self.sniffed.kind.value,
            "size_bytes": self.size,
            "filename": self.filename,
            "thumbnail_sha256": self.thumbnail_sha256,
        }


@dataclass
class PreparedBatch:
    """Checked files in a temporary directory, removed by `close()`."""

    directory: tempfile.TemporaryDirectory[str]
    files: list[Prepared] = field(default_factory=list)
    stored: set[str] = field(default_factory=set)  # blobs this request added to the store

    def close(self) -> None:
        self.directory.cleanup()


async def prepare(uploads: Sequence[Upload], policy: UploadPolicy) -> PreparedBatch:
    """Spool, hash, sniff and size-check every upload; raise `UploadRefused` for the first
    bad one (nothing has been stored yet)."""
    if len(uploads) > policy.max_files:
        raise UploadRefused(
            422, "too-many-attachments", f"At most {policy.max_files} attachments per request."
        )
    batch = PreparedBatch(tempfile.TemporaryDirectory(prefix="cadre-upload-"))
    try:
        for index, upload in enumerate(uploads):
            batch.files.append(await _prepare_one(upload, index, batch, policy))
    except BaseException:
        batch.close()
        raise
    return batch


async def _prepare_one(
    upload: Upload, index: int, batch: PreparedBatch, policy: UploadPolicy
) -> Prepared:
    name = (upload.filename or f"file-{index + 1}")[:255]
    path = Path(batch.directory.name) / f"{index}"
    digest = hashlib.sha256()
    size = 0
    head = b""
    with path.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > policy.largest:
                raise UploadRefused(
                    413,
                    "attachment-too-large",
                    f"{name}: over {policy.largest} bytes, the largest any attachment may be.",
                )
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            digest.update(chunk)
            out.write(chunk)
    sniffed = sniff(head, name)
    check_size(sniffed, size, policy, name)
    prepared = Prepared(path, digest.hexdigest(), size, sniffed, name)
    if sniffed.kind is MediaKind.IMAGE:
        try:
            thumbnail = await asyncio.to_thread(thumbnail_jpeg, path)
        except NotAnImage as exc:
            raise UploadRefused(422, "corrupt-image", f"{name}: {exc}") from exc
        if thumbnail is not None:
            thumb_path = path.with_suffix(".thumb.jpg")
            thumb_path.write_bytes(thumbnail)
            prepared.thumbnail = thumbnail
            prepared.thumbnail_sha256 = hashlib.sha256(thumbnail).hexdigest()
    return prepared


async def store(batch: PreparedBatch, blobs: BlobStore) -> None:
    for item in batch.files:
        if await blobs.put(item.sha256, item.path, item.sniffed.media_type):
            batch.stored.add(item.sha256)
        if item.thumbnail_sha256 is not None and await blobs.put(
            item.thumbnail_sha256, item.path.with_suffix(".thumb.jpg"), "image/jpeg"
        ):
            batch.stored.add(item.thumbnail_sha256)


async def discard_unreferenced(
    sessions: async_sessionmaker[AsyncSession], blobs: BlobStore, keys: Iterable[str]
) -> None:
    """Delete the blobs no attachment row refers to (after a failed request)."""
    wanted = set(keys)
    if not wanted:
        return
    async with sessions() as session:
        referenced = set(
            (
                await session.execute(
                    sa.select(attachments.c.sha256).where(attachments.c.sha256.in_(wanted))
                )
            ).scalars()
        ) | set(
            (
                await session.execute(
                    sa.select(attachments.c.thumbnail_sha256).where(
                        attachments.c.thumbnail_sha256.in_(wanted)
                    )
                )
            ).scalars()
        )
    for key in wanted - referenced:
        with contextlib.suppress(Exception):
            await blobs.delete(key)
