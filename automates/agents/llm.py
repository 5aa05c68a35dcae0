"""The LLM facade: model calls made inside automates (content generation, classification).

A thin layer over the `anthropic` SDK that adds what every call here needs: the project's model
resolution (override -> agent preference -> default, as for the CLI), the timeout and retries
from the settings (the SDK's own backoff does the retrying, on 408/409/429/5xx/529 and
connection errors), errors translated to `LlmError`, and each call's tokens and cost added to
the execution journal's counters of the guarded run it happens in:

    llm_calls, llm_input_tokens, llm_output_tokens, llm_cost_usd

Each call also counts in its agent's rolling budget, the one task runs are held to
(`llm_budget.py`): reserved at its worst case before it is made, refused (`LlmOverBudgetError`,
and an `llm_over_budget` alert) when that does not fit, settled at its real cost after. A call
naming no agent is the platform's own: recorded, in no agent's budget (with no store to reach,
only in its run's journal counters).

The API key is the SDK's usual ANTHROPIC_API_KEY.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import anthropic
from pydantic import BaseModel, ConfigDict

from automates.agents.llm_budget import UNRECORDED, LlmBudget, Reservation, worst_case_usd
from automates.agents.models import resolve_model
from automates.agents.pricing import cost_usd
from automates.errors import LlmError, LlmOverBudgetError
from automates.guard import journal
from automates.settings import Settings


class LlmUsage(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float


class LlmReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    stop_reason: str | None
    usage: LlmUsage


class Llm:
    """Model calls with the project's settings; one client, reused across calls."""

    def __init__(self, settings: Settings | None = None, budget: LlmBudget | None = None) -> None:
        self.settings = settings or Settings()
        # The store is found at the first call, not here: a facade made and never called
        # needs none.
        self._budget = budget
        self._client = anthropic.Anthropic(
            base_url=self.settings.llm.api_base_url,
            timeout=self.settings.llm.timeout_seconds,
            max_retries=self.settings.llm.max_retries,
        )

    def resolve_model(self, agent: str | None, override: str | None) -> str:
        return resolve_model(
            default=self.settings.llm.default_model,
            agent_models=self.settings.llm.agent_models,
            agent=agent,
            override=override,
        )

    def generate(
        self,
        prompt: str,
        *,
        system: str | None = None,
        agent: str | None = None,
        model: str | None = None,
        max_tokens: int = 1024,
    ) -> LlmReply:
        """One completion of `prompt`; its text, stop reason and accounted usage."""
        chosen = self.resolve_model(agent, model)
        request: dict[str, Any] = {
            "model": chosen,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }
        if system:
            request["system"] = system
        reservation = self._reserve(
            agent, chosen, worst_case_usd(chosen, prompt, system, max_tokens)
        )
        try:
            message = self._client.messages.create(**request)
        except anthropic.APIStatusError as error:
            reservation.failed()  # refused by the API: not billed
            raise LlmError(
                f"model {chosen!r}: the Messages API answered {error.status_code} "
                f"after {self.settings.llm.max_retries} retries: {error.message}"
            ) from error
        except anthropic.APIConnectionError as error:  # includes timeouts
            # Whether the API served it is unknown: its worst case stays held in the budget.
            raise LlmError(
                f"model {chosen!r}: the Messages API could not be reached "
                f"({type(error).__name__}, timeout {self.settings.llm.timeout_seconds:g} s, "
                f"{self.settings.llm.max_retries} retries)"
            ) from error
        text = "".join(block.text for block in message.content if block.type == "text")
        usage = _account(message.model or chosen, message.usage.model_dump())
        reservation.spent(usage.model, usage.cost_usd, usage.input_tokens, usage.output_tokens)
        return LlmReply(text=text, stop_reason=message.stop_reason, usage=usage)

    def _reserve(self, agent: str | None, model: str, worst_case: Decimal) -> Reservation:
        """The call's worst case held in its agent's budget. The store is found at the first
        call: without one, a call of an agent is refused (nothing to check it against); a call
        of no agent, in no budget, goes on unrecorded but in its run's journal counters."""
        if self._budget is None:
            try:
                self._budget = LlmBudget.of(self.settings)
            except LlmOverBudgetError:
                if agent is not None:
                    raise
                return UNRECORDED
        return self._budget.reserve(agent, model, worst_case)

    def classify(
        self,
        text: str,
        labels: Sequence[str],
        *,
        instructions: str = "",
        agent: str | None = None,
        model: str | None = None,
    ) -> str:
        """The one label of `labels` that fits `text`; an answer outside them is an error."""
        if not labels:
            raise LlmError("classify: labels must not be empty")
        system = (
            f"{instructions}\nClassify the user's text. Answer with exactly one of these "
            f"labels and nothing else: {', '.join(labels)}."
        ).strip()
        reply = self.generate(text, system=system, agent=agent, model=model, max_tokens=20)
        answer = reply.text.strip().strip(".").strip()
        for label in labels:
            if answer.lower() == label.lower():
                return label
        raise LlmError(
            f"model {reply.usage.model!r} answered {answer[:80]!r}, not one of the labels "
            f"{list(labels)}"
        )


def _account(model: str, usage: dict[str, Any]) -> LlmUsage:
    """The call's usage, added to the current guarded run's journal counters."""
    input_tokens = sum(
        usage.get(key) or 0
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    output_tokens = usage.get("output_tokens") or 0
    cost = cost_usd(model, usage)
    journal.bump("llm_calls")
    journal.bump("llm_input_tokens", input_tokens)
    journal.bump("llm_output_tokens", output_tokens)
    journal.bump("llm_cost_usd", cost)
    return LlmUsage(
        model=model, input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost
    )
