import asyncio

from fastapi import FastAPI

from cadre.events.consumer import IdempotentConsumer
from cadre.events.faststream_adapter import broker_dead_letter, subscribe_idempotent
from cadre.events.service import ServiceRuntime, create_service_app
from cadre.journal import __doc__ as service_doc
from cadre.journal.adapters.blobs import BlobStore, LocalBlobStore, S3BlobStore
from cadre.journal.adapters.inbound import apply_inbound
from cadre.journal.entrypoints import entries, reactions, study, tasks
from cadre.journal.entrypoints.jobs import run_overdue_sweep
from cadre.journal.settings import JournalSettings


def blob_store(settings: JournalSettings) -> BlobStore:
    if settings.blob_store == "s3":
        import boto3  # only needed when configured

        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
        )
        return S3BlobStore(client, settings.s3_bucket, settings.s3_prefix)
    return LocalBlobStore(settings.blob_dir)


def create_app(settings: JournalSettings | None = None) -> FastAPI:
    settings = settings or JournalSettings()

    def subscribe(runtime: ServiceRuntime) -> None:
        consumer = IdempotentConsumer(
            name=settings.consumer_group,
            sessions=runtime.sessions,
            apply=apply_inbound,
            dead_letter=broker_dead_letter(runtime.broker),
            max_attempts=settings.consumer_max_attempts,
        )
        subscribe_idempotent(
            runtime.broker,
            consumer,
            *settings.inbound_topics,
            group_id=settings.consumer_group,
        )

    async def start(runtime: ServiceRuntime) -> None:
        runtime.tasks.append(
            asyncio.create_task(
                run_overdue_sweep(runtime.sessions, settings.overdue_interval_s),
                name="overdue-sweep",
            )
        )

    app = create_service_app(
        settings,
        title="cadre journal",
        description=service_doc or "",
        routers=[entries.router, reactions.router, tasks.router, study.router],
        subscribers=subscribe,
        on_startup=start,
    )
    app.state.blobs = blob_store(settings)
    return app
