"""The LLM facade against a real local HTTP server speaking the Messages API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from automates.agents.llm import Llm
from automates.agents.pricing import cost_usd, price_for
from automates.errors import LlmError
from automates.guard import journal
from automates.settings import Settings
from automates.settings.groups import LlmSettings
from automates.store.engine import make_engine, migrate
from tests.fixtures.fake_claude.messages_api import FakeMessagesApi, failure, text


@pytest.fixture
def guarded_run() -> Iterator[journal.RunJournal]:
    """The journal of a guarded run, as the guard begins it."""
    with journal.keeping(journal.RunJournal("llm-test")) as run:
        yield run


def facade(api: FakeMessagesApi, max_retries: int = 2, store: str | None = None) -> Llm:
    """The facade; its calls of no agent go unrecorded without a `store`, a call of an agent
    needs one (its budget: tests/store/test_llm_spend.py)."""
    llm = LlmSettings(
        api_base_url=api.url, max_retries=max_retries, agent_models={"scout": "claude-haiku-4-5"}
    )
    return Llm(Settings(llm=llm, database_url=store))


def test_generate_sends_the_resolved_model_and_accounts_the_usage(
    messages_api: FakeMessagesApi, guarded_run: journal.RunJournal, scratch_database: str
) -> None:
    migrate(engine := make_engine(scratch_database))
    engine.dispose()
    messages_api.responder = lambda request: text(
        "A tidy summary.", input_tokens=1000, output_tokens=200
    )
    llm = facade(messages_api, store=scratch_database)
    reply = llm.generate("Summarise this", system="Be brief", agent="scout")
    assert reply.text == "A tidy summary."
    assert reply.stop_reason == "end_turn"
    request = messages_api.requests[0]
    assert request["model"] == "claude-haiku-4-5"  # the agent's preference
    assert request["system"] == "Be brief"
    assert request["messages"] == [{"role": "user", "content": "Summarise this"}]
    expected_cost = (1000 * 1.0 + 200 * 5.0) / 1_000_000
    assert reply.usage.cost_usd == pytest.approx(expected_cost)
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (1000, 200)
    assert guarded_run.counters == {
        "llm_calls": 1,
        "llm_input_tokens": 1000,
        "llm_output_tokens": 200,
        "llm_cost_usd": pytest.approx(expected_cost),
    }


def test_calls_add_up_in_the_journal(
    messages_api: FakeMessagesApi, guarded_run: journal.RunJournal
) -> None:
    llm = facade(messages_api)
    llm.generate("one", model="claude-sonnet-4-6")
    llm.generate("two")  # no agent, no override: the default model
    assert [request["model"] for request in messages_api.requests] == ["claude-sonnet-4-6"] * 2
    assert guarded_run.counters["llm_calls"] == 2
    assert guarded_run.counters["llm_input_tokens"] == 200
    assert guarded_run.counters["llm_cost_usd"] == pytest.approx(2 * (100 * 3 + 20 * 15) / 1e6)


def test_an_overloaded_then_failing_api_is_retried_by_the_sdk(
    messages_api: FakeMessagesApi,
) -> None:
    messages_api.queued.extend([failure(529), failure(500)])
    messages_api.responder = lambda request: text("third time lucky")
    reply = facade(messages_api).generate("hello")
    assert reply.text == "third time lucky"
    assert len(messages_api.requests) == 3


def test_exhausted_retries_raise_a_clear_error(messages_api: FakeMessagesApi) -> None:
    messages_api.responder = lambda request: failure(529)
    with pytest.raises(LlmError, match=r"model 'claude-sonnet-4-6'.*529 after 1 retries"):
        facade(messages_api, max_retries=1).generate("hello")
    assert len(messages_api.requests) == 2


def test_an_unreachable_api_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-key")
    closed = f"http://127.0.0.1:{free_port()}"
    llm = Llm(Settings(llm=LlmSettings(api_base_url=closed, max_retries=0)))
    with pytest.raises(LlmError, match="could not be reached"):
        llm.generate("hello")


def test_classify_returns_one_of_the_labels(messages_api: FakeMessagesApi) -> None:
    messages_api.responder = lambda request: text(" Question. ")
    label = facade(messages_api).classify("When is my invoice due?", ["run", "question", "noise"])
    assert label == "question"
    system = messages_api.requests[0]["system"]
    assert "run, question, noise" in system
    assert messages_api.requests[0]["max_tokens"] == 20


def test_classify_refuses_an_answer_outside_the_labels(messages_api: FakeMessagesApi) -> None:
    messages_api.responder = lambda request: text("I think it is spam")
    with pytest.raises(LlmError, match=r"not one of the labels \['run', 'noise'\]"):
        facade(messages_api).classify("Buy now", ["run", "noise"])


def test_the_price_table_prefers_the_longest_prefix_and_errs_high_on_unknown_models() -> None:
    assert price_for("claude-opus-4-5-20251101").input_per_mtok == 5.0
    assert price_for("claude-opus-4-1-20250805").input_per_mtok == 15.0
    assert price_for("some-future-model").output_per_mtok == 75.0
    usage = {"input_tokens": 1000, "cache_read_input_tokens": 10000, "output_tokens": 100}
    assert cost_usd("claude-sonnet-4-6", usage) == pytest.approx(
        (1000 * 3 + 10000 * 0.3 + 100 * 15) / 1e6
    )
