import asyncio

import httpx
from fastapi import FastAPI

from cadre.events.consumer import IdempotentConsumer
from cadre.events.faststream_adapter import broker_dead_letter, subscribe_idempotent
from cadre.events.service import ServiceRuntime, create_service_app
from cadre.notify import __doc__ as service_doc
from cadre.notify.adapters.inbound import inbound_applier
from cadre.notify.adapters.senders import EmailSender, Sender, WebhookSender
from cadre.notify.entrypoints import inbox, webhooks
from cadre.notify.entrypoints.jobs import routing_config, run_deliveries, run_reminders
from cadre.notify.entrypoints.live import InboxHub
from cadre.notify.settings import NotifySettings


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or NotifySettings()

    def subscribe(runtime: ServiceRuntime) -> None:
        consumer = IdempotentConsumer(
            name=settings.consumer_group,
            sessions=runtime.sessions,
            apply_batch=inbound_applier(routing_config(settings)),
            dead_letter=broker_dead_letter(runtime.broker),
            max_attempts=settings.consumer_max_attempts,
        )
        subscribe_idempotent(
            runtime.broker,
            consumer,
            *settings.inbound_topics,
            group_id=settings.consumer_group,
            max_records=settings.consumer_max_records,
        )

    async def start(runtime: ServiceRuntime) -> None:
        client = httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False)
        app.state.http = client
        senders: dict[str, Sender] = {"webhook": WebhookSender(client)}
        smtp = settings.smtp()
        if smtp is not None:
            senders["email"] = EmailSender(smtp)
        jobs = {
            "live-listener": app.state.hub.run(),
            "deliveries": run_deliveries(runtime.sessions, senders, settings),
            "reminders": run_reminders(runtime.sessions, settings),
        }
        for name, job in jobs.items():
            runtime.tasks.append(asyncio.create_task(job, name=name))

    app = create_service_app(
        settings,
        title="cadre notify",
        description=service_doc or "",
        routers=[inbox.router, webhooks.router],
        subscribers=subscribe,
        on_startup=start,
    )
    app.state.hub = InboxHub(settings.effective_database_url)
    return app
