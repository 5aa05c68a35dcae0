"""A run's heartbeats (automates/guard/heartbeats.py): beats while the block runs, then one end
that follows the last beat, whichever way the block is left; on the in-memory orchestrator."""

from __future__ import annotations

import threading
import time
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun

from automates.guard.heartbeats import beating
from automates.server.unresponsive import HEARTBEAT_EVENT, HEARTBEATS_ENDED_EVENT, automation
from tests.fixtures.orchestrator import MemoryOrchestrator

EVERY = 0.02  # seconds between beats in these tests


def a_run() -> FlowRun:
    return FlowRun(id=uuid4(), name="calm-otter", flow_id=uuid4())


def wait_for_beats(orchestrator: MemoryOrchestrator, count: int) -> None:
    deadline = time.monotonic() + 30
    while sum(e.name == HEARTBEAT_EVENT for e in orchestrator.events) < count:
        assert time.monotonic() < deadline, "the beats did not come"
        time.sleep(EVERY / 2)


def test_beats_while_the_block_runs_then_an_end_that_follows_the_last() -> None:
    orchestrator, run = MemoryOrchestrator(), a_run()
    with beating(orchestrator, run, every=EVERY):
        wait_for_beats(orchestrator, 3)
    *beats, end = orchestrator.events
    assert {b.name for b in beats} == {HEARTBEAT_EVENT}
    assert end.name == HEARTBEATS_ENDED_EVENT
    assert end.follows is beats[-1]
    for event in orchestrator.events:
        assert event.resource["prefect.resource.id"] == f"prefect.flow-run.{run.id}"
    assert not [t for t in threading.enumerate() if t.name == f"heartbeats-{run.id}"]


def test_a_block_shorter_than_a_beat_still_beats_once_and_ends() -> None:
    orchestrator = MemoryOrchestrator()
    with beating(orchestrator, a_run(), every=3600):
        pass
    beat, end = orchestrator.events
    assert (beat.name, end.name, end.follows) == (HEARTBEAT_EVENT, HEARTBEATS_ENDED_EVENT, beat)


def test_a_block_that_raises_ends_its_beats_too() -> None:
    orchestrator = MemoryOrchestrator()
    with pytest.raises(RuntimeError), beating(orchestrator, a_run(), every=EVERY):
        wait_for_beats(orchestrator, 2)
        raise RuntimeError("the body failed")
    assert orchestrator.events[-1].name == HEARTBEATS_ENDED_EVENT
    assert orchestrator.events[-1].follows is orchestrator.events[-2]


def test_no_flow_run_no_beats() -> None:
    orchestrator = MemoryOrchestrator()
    with beating(orchestrator, None, every=EVERY):
        pass
    assert orchestrator.events == []


def test_the_automation_watches_these_beats() -> None:
    trigger = automation(30).trigger
    assert trigger.after == {HEARTBEAT_EVENT}  # type: ignore[union-attr]
