"""Feeds an `IdempotentConsumer` straight from aiokafka, for consumers that must start, stop
and change consumer group at run time (scoring's generations and its replay), where a
FastStream subscriber is fixed when the app starts. The helper is the same; only the
transport differs: fetch a batch, settle it, then commit its offsets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from cadre.events.backoff import Backoff
from cadre.events.consumer import DeadLetterPublisher, IdempotentConsumer
from cadre.events.logging import get_logger

log = get_logger(__name__)


def producer_dead_letter(producer: AIOKafkaProducer) -> DeadLetterPublisher:
    async def publish(
        topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        await producer.send_and_wait(topic, value=value, key=key, headers=headers)

    return publish


class BatchConsumerLoop:
    """`assign_all` reads every partition of `topics` in this one process (a replay);
    otherwise the group shares the partitions among its members (scale-out). With
    `share=(index, count)`, `assign_all` takes only every `count`-th partition from
    `index` on, so `count` processes split one replay between them."""

    def __init__(
        self,
        consumer: IdempotentConsumer,
        *,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str,
        assign_all: bool = False,
        share: tuple[int, int] = (0, 1),
        max_records: int = 500,
        commit_interval_s: float = 1.0,
    ) -> None:
        index, count = share
        if not 0 <= index < count:
            raise ValueError(f"share index {index} is not in 0..{count - 1}")
        self.consumer = consumer
        self.topics = list(topics)
        self.group_id = group_id
        self.assign_all = assign_all
        self.share = share
        self.max_records = max_records
        self.commit_interval_s = commit_interval_s
        self._settled: dict[TopicPartition, int] = {}  # next offsets, not yet committed
        self._committed_at = time.monotonic()
        self._kafka = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_records,
            client_id=f"cadre-{group_id}",
        )

    async def start(self) -> None:
        backoff = Backoff(maximum_s=10.0)
        while True:
            try:
                await self._kafka.start()
                break
            except KafkaError as exc:
                delay = backoff.next()
                log.warning("kafka not reachable yet", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
        if self.assign_all:
            partitions: list[TopicPartition] = []
            for topic in self.topics:
                ids = self._kafka.partitions_for_topic(topic) or set()
                if not ids:
                    await self._kafka._client.force_metadata_update()
                    ids = self._kafka.partitions_for_topic(topic) or set()
                partitions.extend(TopicPartition(topic, p) for p in sorted(ids))
            index, count = self.share
            # Striding over the partitions of every topic in turn splits each topic evenly.
            self._kafka.assign(partitions[index::count])
        else:
            self._kafka.subscribe(self.topics)

    async def stop(self) -> None:
        try:
            await self.commit()
        except KafkaError as exc:  # Kafka is away: the next owner re-reads, dedup covers it
            log.warning("final offset commit failed", error=repr(exc))
        await self._kafka.stop()

    async def poll_once(self, timeout_ms: int = 500) -> int:
        """Fetch, settle and commit one batch; returns how many records it held."""
        fetched = await self._kafka.getmany(timeout_ms=timeout_ms, max_records=self.max_records)
        # aiokafka's records as they are: the helper copies only those it keeps.
        records = [
            record
            for partition in sorted(fetched, key=lambda tp: (tp.topic, tp.partition))
            for record in fetched[partition]
        ]
        if records:
            await self.consumer.handle_batch(records)
            for tp, batch in fetched.items():
                if batch:
                    self._settled[tp] = batch[-1].offset + 1
        # An empty poll commits too: a stream gone quiet would otherwise keep its last
        # offsets uncommitted, and its lag above 0, until the next record.
        if self._settled and time.monotonic() - self._committed_at >= self.commit_interval_s:
            await self.commit()
        return len(records)

    async def commit(self) -> None:
        """Commit the offsets settled since the last commit. `poll_once` commits at most
        every `commit_interval_s`, not after every batch: each commit is a request Kafka
        appends to its offsets log (a hundred a second under a steady stream of small
        batches), while a crash re-reads at most that interval, which the dedup records
        turn into no-ops."""
        self._committed_at = time.monotonic()
        if not self._settled:
            return
        offsets, self._settled = self._settled, {}
        try:
            await self._kafka.commit(offsets)
        except CommitFailedError as exc:  # a rebalance took the partitions; dedup covers it
            log.warning("offset commit lost to a rebalance", error=repr(exc))

    async def lag(self) -> int:
        """Records not yet settled on the partitions this process holds."""
        assigned = list(self._kafka.assignment())
        if not assigned:
            return 0
        ends = await self._kafka.end_offsets(assigned)
        total = 0
        for tp in assigned:
            total += max(0, ends[tp] - await self._kafka.position(tp))
        return total

    async def backlog(self) -> int:
        """Records between the committed offsets (or the start) and the end, now."""
        assigned = list(self._kafka.assignment())
        if not assigned:
            return 0
        ends = await self._kafka.end_offsets(assigned)
        starts = await self._kafka.beginning_offsets(assigned)
        total = 0
        for tp in assigned:
            committed = await self._kafka.committed(tp)
            total += max(0, ends[tp] - (committed if committed is not None else starts[tp]))
        return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.poll_once()
