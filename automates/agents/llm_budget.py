"""The LLM facade's calls in their agent's rolling budget, the one task runs are held to.

Before a call, its worst case (every byte of the prompt a token, `max_tokens` answered, at the
model's price) is checked against the agent's budget with the task runs' own check, under the
same per-agent lock, and reserved; after it, the reservation is settled at the call's real cost
and the day's spend thresholds are checked. A call that does not fit is refused, alerted
(`llm_over_budget`) and never made (decision 0046).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from sqlalchemy import Engine

from automates.agents.pricing import cost_usd
from automates.agents.spend_alerts import alert_thresholds
from automates.agents.taskruns import budget_refusal
from automates.alerts import catalog
from automates.alerts.outbox import raise_alert
from automates.errors import AutomatesError, LlmOverBudgetError
from automates.guard import journal
from automates.settings import Settings
from automates.states import LlmCallStatus
from automates.store import spend
from automates.store.database import database_url
from automates.store.engine import make_engine, transaction

# A token is at least one byte of UTF-8 text, so a prompt's bytes bound its tokens; the
# request's framing (the roles, the system prompt's markers) adds a few more.
FRAMING_TOKENS = 64


def worst_case_usd(model: str, prompt: str, system: str | None, max_tokens: int) -> Decimal:
    """The most a call can cost: every byte of its text a token, `max_tokens` answered."""
    input_tokens = len(prompt.encode()) + len((system or "").encode()) + FRAMING_TOKENS
    usage = {"input_tokens": input_tokens, "output_tokens": max_tokens}
    return Decimal(str(cost_usd(model, usage))).quantize(Decimal("0.000001"))


class LlmBudget:
    """The facade's side of the store: reserve a call, then settle it."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

    @classmethod
    def of(cls, settings: Settings) -> LlmBudget:
        """The store this process reaches: in a flow run, through the store block (as the
        guard's journals); elsewhere, AUTOMATES_DATABASE_URL or the running embedded one."""
        from prefect.context import FlowRunContext

        try:
            if FlowRunContext.get() is not None:
                from blocks.store import store_engine_from_block

                return cls(store_engine_from_block(settings.store_block), settings)
            return cls(make_engine(database_url(settings)), settings)
        except Exception as error:  # no store, no block: no budget to check, so no call
            raise LlmOverBudgetError(
                f"refused: the store holding the agents' budgets cannot be reached "
                f"({type(error).__name__}: {error})"
            ) from None

    def reserve(self, agent: str | None, model: str, worst_case: Decimal) -> Reservation:
        """Hold the call's worst case in its agent's budget (a call of no agent is the
        platform's, recorded but in no budget); `LlmOverBudgetError` if it does not fit."""
        run = journal.current()
        try:
            with transaction(self._engine) as connection:
                refusal = None
                if agent is not None:
                    refusal = budget_refusal(
                        connection, agent, worst_case, self._settings, what="this call's worst case"
                    )
                if refusal is not None:
                    assert agent is not None
                    raise_alert(connection, catalog.llm_over_budget(agent, model, refusal))
                    call_id = None
                else:
                    call_id = spend.reserve_llm_call(
                        connection,
                        agent=agent,
                        model=model,
                        reserved_usd=worst_case,
                        automate=run.automate if run else None,
                        flow_run_id=_flow_run_id(),
                    )
        except AutomatesError as error:
            raise LlmOverBudgetError(
                f"refused: the agent's budget cannot be checked: {error}"
            ) from error
        if call_id is None:
            raise LlmOverBudgetError(refusal or "refused")
        return Reservation(self, call_id)

    def spent(
        self, call_id: int, model: str, cost: float, input_tokens: int, output_tokens: int
    ) -> None:
        """The call was answered: its real cost in place of its worst case, then the day's
        thresholds. A store that fails here leaves the worst case held (on the safe side)."""
        try:
            with transaction(self._engine) as connection:
                row = spend.settle_llm_call(
                    connection,
                    call_id,
                    LlmCallStatus.SPENT,
                    model=model,
                    cost_usd=Decimal(str(cost)).quantize(Decimal("0.000001")),
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                )
                alert_thresholds(connection, row.agent, self._settings)
        except AutomatesError as error:
            journal.warn(
                f"the LLM call's cost could not be recorded (its worst case stays held): {error}"
            )

    def failed(self, call_id: int) -> None:
        """The API refused the call: nothing was spent, the reservation is released."""
        try:
            with transaction(self._engine) as connection:
                spend.settle_llm_call(connection, call_id, LlmCallStatus.FAILED)
        except AutomatesError as error:
            journal.warn(f"the refused LLM call's reservation could not be released: {error}")


@dataclass(frozen=True)
class Reservation:
    """One call's hold on its budget, to settle once the API answered (or refused)."""

    budget: LlmBudget | None  # None: a call recorded nowhere (no agent, no store)
    call_id: int = 0

    def spent(self, model: str, cost: float, input_tokens: int, output_tokens: int) -> None:
        if self.budget is not None:
            self.budget.spent(self.call_id, model, cost, input_tokens, output_tokens)

    def failed(self) -> None:
        if self.budget is not None:
            self.budget.failed(self.call_id)


UNRECORDED = Reservation(None)


def _flow_run_id() -> UUID | None:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return context.flow_run.id if context is not None and context.flow_run else None
