"""The content-addressed blob store for attachments: a file's key is its sha256, so the
same photo uploaded twice is stored once. A local directory by default, or any
S3-compatible store (`CADRE_JOURNAL_BLOB_STORE=s3`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _checked(sha256: str) -> str:
    if not SHA256.match(sha256):
        raise ValueError(f"not a sha256 key: {sha256!r}")
    return sha256


class BlobStore(Protocol):
    async def put(self, sha256: str, source: Path, media_type: str) -> bool:
        """Store `source` under `sha256`; False when it was already there."""

    async def read(self, sha256: str) -> bytes | None: ...

    async def exists(self, sha256: str) -> bool: ...

    async def delete(self, sha256: str) -> None: ...


class LocalBlobStore:
    """Files under `root/ab/cd/<sha256>`, written to a temporary name and renamed into place,
    so a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        key = _checked(sha256)
        return self.root / key[:2] / key[2:4] / key

    async def put(self, sha256: str, source: Path, media_type: str) -> bool:
        return await asyncio.to_thread(self._put, sha256, source)

    def _put(self, sha256: str, source: Path) -> bool:
        target = self.path(sha256)
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out, source.open("rb") as data:
                while chunk := data.read(1 << 20):
                    out.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return True

    async def read(self, sha256: str) -> bytes | None:
        path = self.path(sha256)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self.path(sha256).exists)

    async def delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path(sha256).unlink)


class S3BlobStore:
    """Objects `<prefix><sha256>` in a bucket of any S3-compatible store (boto3, run in a
    worker thread so the event loop never blocks)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "blobs/") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def key(self, sha256: str) -> str:
        return f"{self.prefix}{_checked(sha256)}"

    async def put(self, sha256: str, source: Path, media_type: str) -> bool:
        if await self.exists(sha256):
            return False
        await asyncio.to_thread(
            self.client.upload_file,
            str(source),
            self.bucket,
            self.key(sha256),
            ExtraArgs={"ContentType": media_type},
        )
        return True

    async def read(self, sha256: str) -> bytes | None:
        try:
            answer = await asyncio.to_thread(
                self.client.get_object, Bucket=self.bucket, Key=self.key(sha256)
            )
        except self.client.exceptions.NoSuchKey:
            return None
        body: bytes = await asyncio.to_thread(answer["Body"].read)
        return body

    async def exists(self, sha256: str) -> bool:
        try:
            await asyncio.to_thread(
                self.client.head_object, Bucket=self.bucket, Key=self.key(sha256)
            )
        except self.client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def delete(self, sha256: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self.key(sha256))
