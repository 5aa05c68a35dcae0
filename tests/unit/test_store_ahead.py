"""A run's process loads the store's engine once, ahead of its body, and a run that asks while
that load is under way waits for it (automates/guard/recording.py `load_store_ahead`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine, create_engine

import blocks.store
from automates.guard import recording


@dataclass
class Loads:
    """Each read of the store block (the API call a run's process makes), and when the first
    began."""

    made: list[str] = field(default_factory=list)
    began: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loads]:
    seen = Loads()

    def from_block(name: str) -> Engine:
        seen.made.append(name)
        seen.began.set()
        return create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")

    monkeypatch.setattr(blocks.store, "store_engine_from_block", from_block)
    recording.forget_stores()
    yield seen
    recording.forget_stores()


def test_a_run_asking_during_the_load_ahead_waits_for_it(loads: Loads) -> None:
    recording.load_store_ahead("the-store")
    # The load ahead holds the store's lock from before its read until the engines are kept:
    # asked from here on, the run waits for it or finds its engine, and never reads again.
    assert loads.began.wait(10), "the load ahead never began"
    engine = recording.store("the-store")
    assert recording.session_store("the-store").url == engine.url
    assert recording.store("the-store") is engine
    assert loads.made == ["the-store"]  # one read of the block, not two


def test_a_load_ahead_that_fails_is_tried_again_by_the_run(
    loads: Loads, monkeypatch: pytest.MonkeyPatch
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
    assert loads.made == ["the-store"]
