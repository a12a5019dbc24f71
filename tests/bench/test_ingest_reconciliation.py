"""The ingest benchmark's "0 lost" matches check-ins by id: the 2xx answers' against the
`checked_in` events in Kafka, so a request that timed out but was written cannot hide a
lost one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import bench.ingest
from bench.http_load import HttpPool
from bench.ingest import Load, checked_in_ids, reconcile
from cadre.devstack.testing import JsonHandler, LocalHttpServer, local_http_server
from cadre.events.samples import sample_event
from cadre.events.wire import encode


def _kafka_record(event_type: str, **data: Any) -> SimpleNamespace:
    """A record as the consumer hands it over: headers and value as `encode` wrote them."""
    event = sample_event(event_type)
    event = event.model_copy(update={"data": event.data.model_copy(update=data)})
    written = encode(event)
    return SimpleNamespace(headers=written.headers, value=written.value)


def test_kafkas_check_ins_are_the_ids_of_the_checked_in_events_each_counted_once() -> None:
    records = [
        _kafka_record("attendance.checked_in", check_in_id="ci-1"),
        _kafka_record("attendance.checked_in", check_in_id="ci-2"),
        _kafka_record("attendance.checked_in", check_in_id="ci-1"),  # a relay's redelivery
        _kafka_record("attendance.device_bound"),
    ]
    assert checked_in_ids(records) == {"ci-1", "ci-2"}


def test_a_lost_check_in_shows_even_when_an_unanswered_one_made_the_counts_equal() -> None:
    answered = {"ci-1", "ci-2", "ci-3"}
    in_kafka = {"ci-2", "ci-3", "ci-4"}  # ci-1 lost; ci-4 written, its client timed out
    assert reconcile(answered, in_kafka) == {"lost_events": 1, "unanswered_in_kafka": 1}
    assert reconcile(answered, answered) == {"lost_events": 0, "unanswered_in_kafka": 0}


class _CheckIns(JsonHandler):
    """201 with a check-in id, 422 for a refused phone, or an answer too late to count."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["device_id"] == "slow":
            time.sleep(0.5)
        if body["device_id"] == "refused":
            self.answer(422, {"code": "device-mismatch"})
        else:
            self.answer(201, {"check_in_id": f"ci-{body['n']}"})


@pytest.fixture
def attendance() -> Iterator[str]:
    with local_http_server(LocalHttpServer, _CheckIns) as server:
        yield server.url


async def test_the_load_acknowledges_only_the_check_ins_answered_2xx_in_time(
    attendance: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.ingest, "REQUEST_DEADLINE_S", 0.2)
    load = Load(attendance, {"c1": {"Authorization": "Bearer t"}})
    async with HttpPool(attendance) as http:
        outcomes = [
            await load.one(http, "c1", {"device_id": device, "n": n})
            for n, device in enumerate(("ok", "refused", "slow", "ok"), start=1)
        ]
    assert outcomes == [True, False, False, True]
    assert load.accepted == 2
    assert load.acknowledged_check_ins() == {"ci-1", "ci-4"}  # not the late ci-3
    assert load.errors == 1
