"""Process tuning: after start-up, what exists is frozen out of the collector's scans and
young objects are collected less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cadre.events.runtime import GC_THRESHOLDS, tune_garbage_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_tuning_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    tune_garbage_collector()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700, "collect young objects less often than CPython's default"
    assert gc.get_freeze_count() > 0
