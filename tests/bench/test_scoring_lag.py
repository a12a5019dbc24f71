"""How far behind the ingest benchmark finds scoring's consumer group, on a real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from bench.ingest import _lag
from cadre.devstack.pytest_plugin import TopicFactory

pytestmark = [pytest.mark.integration]


async def test_lag_counts_uncommitted_records_on_every_partition_of_the_topics_committed_on(
    kafka_bootstrap: str, make_topic: TopicFactory
) -> None:
    watched = await make_topic("lag", partitions=3)
    elsewhere = await make_topic("lag-other", partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for partition, count in ((0, 5), (1, 3)):  # partition 2 stays empty
            for i in range(count):
                await producer.send_and_wait(watched, b"x", key=b"%d" % i, partition=partition)
        await producer.send_and_wait(elsewhere, b"x", partition=0)  # never committed on
    finally:
        await producer.stop()

    group = f"scoring-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    ends_of = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    member = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await admin.start()
    await ends_of.start()
    await member.start()
    member.assign([TopicPartition(watched, 0), TopicPartition(watched, 1)])  # to commit on
    try:
        assert await _lag(admin, ends_of, group) == 0  # nothing committed: nothing to wait for

        await member.commit({TopicPartition(watched, 0): OffsetAndMetadata(2, "")})
        # partition 0: 5 - 2; partition 1 is uncommitted and counts from its start: 3
        assert await _lag(admin, ends_of, group) == 3 + 3

        await member.commit(
            {
                TopicPartition(watched, 0): OffsetAndMetadata(5, ""),
                TopicPartition(watched, 1): OffsetAndMetadata(3, ""),
            }
        )
        assert await _lag(admin, ends_of, group) == 0
    finally:
        await member.stop()
        await ends_of.stop()
        await admin.close()
