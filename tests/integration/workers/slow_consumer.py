"""A consumer process for the kill test: applies each event slowly through the
idempotent helper so that a SIGKILL lands in the middle of a batch.

usage: slow_consumer.py DATABASE_URL BOOTSTRAP TOPIC GROUP
"""

from __future__ import annotations

import asyncio
import sys

from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncSession

from cadre.devstack.testing import Projection
from cadre.events.catalogue import AnyEvent
from cadre.events.consumer import IdempotentConsumer, KafkaRecordLike
from cadre.events.db import create_engine, session_factory
from cadre.events.faststream_adapter import broker_dead_letter, subscribe_idempotent


async def main(database_url: str, bootstrap: str, topic: str, group: str) -> None:
    engine = create_engine(database_url)
    projection = Projection(engine)

    async def slow_apply(session: AsyncSession, event: AnyEvent, record: KafkaRecordLike) -> None:
        await projection.apply(session, event, record)
        await asyncio.sleep(0.004)

    broker = KafkaBroker(bootstrap)
    consumer = IdempotentConsumer(
        name=group,
        sessions=session_factory(engine),
        apply=slow_apply,
        dead_letter=broker_dead_letter(broker),
    )
    subscribe_idempotent(broker, consumer, topic, group_id=group, max_records=200)
    await broker.start()
    print("consuming", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
