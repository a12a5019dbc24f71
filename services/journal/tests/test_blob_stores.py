"""Both blob stores keep the same contract: content-addressed, idempotent puts, reads of
missing keys answer None, deletes are quiet. The S3 store runs against an S3-compatible
HTTP server in its own process (moto's server: no MinIO or cloud bucket is reachable from
this machine or CI)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest
import pytest_asyncio

from cadre.devstack.ports import free_port
from cadre.devstack.processes import wait_for_port
from cadre.journal.adapters.blobs import BlobStore, LocalBlobStore, S3BlobStore

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout_s=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest_asyncio.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - the local server's dummy credentials
    )
    client.create_bucket(Bucket="journal-test")
    yield S3BlobStore(client, "journal-test")


async def test_a_blob_is_stored_once_under_its_hash(store: BlobStore, tmp_path: Path) -> None:
    content = "走访记录".encode() * 1000
    key = hashlib.sha256(content).hexdigest()
    source = tmp_path / "upload"
    source.write_bytes(content)
    assert not await store.exists(key)
    assert await store.read(key) is None
    assert await store.put(key, source, "application/pdf") is True
    assert await store.put(key, source, "application/pdf") is False
    assert await store.exists(key)
    assert await store.read(key) == content
    await store.delete(key)
    await store.delete(key)
    assert not await store.exists(key)


async def test_a_key_that_is_not_a_hash_is_refused(store: BlobStore) -> None:
    with pytest.raises(ValueError, match="sha256"):
        await store.read("../../etc/passwd")
