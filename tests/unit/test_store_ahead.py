"""A run's process loads the store's engine once, ahead of its body, and a run that asks while
that load is under way waits for it (automates/guard/recording.py `load_store_ahead`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine

import blocks.store
from automates.guard import recording


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Each read of the store block (the API call a run's process makes), slowed down so that
    the run's own ask arrives while the load ahead is under way."""
    made: list[str] = []
    loading = threading.Event()

    def from_block(name: str) -> Engine:
        made.append(name)
        loading.set()
        time.sleep(0.3)
        return create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")

    monkeypatch.setattr(blocks.store, "store_engine_from_block", from_block)
    recording.forget_stores()
    yield made
    recording.forget_stores()


def test_a_run_asking_during_the_load_ahead_waits_for_it(loads: list[str]) -> None:
    recording.load_store_ahead("the-store")
    deadline = time.monotonic() + 10
    while not loads and time.monotonic() < deadline:  # the load ahead has begun
        time.sleep(0.01)
    engine = recording.store("the-store")
    assert recording.session_store("the-store").url == engine.url
    assert recording.store("the-store") is engine
    assert loads == ["the-store"]  # one read of the block, not two


def test_a_load_ahead_that_fails_is_tried_again_by_the_run(
    loads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = threading.Event()
    working = blocks.store.store_engine_from_block

    def flaky(name: str) -> Engine:
        if not failed.is_set():
            failed.set()
            raise RuntimeError("the API is busy")
        return working(name)

    monkeypatch.setattr(blocks.store, "store_engine_from_block", flaky)
    recording.load_store_ahead("the-store")
    assert failed.wait(10), "the load ahead never began"
    engine = recording.store("the-store")  # the load ahead failed: the run loads it itself
    assert engine is recording.store("the-store")
    assert loads == ["the-store"]
