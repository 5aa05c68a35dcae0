"""Statements on the agents' spend: the LLM facade's calls (`llm_calls`), and the dollars spent
by task runs and facade calls together, per agent, the platform, and day.

A facade call is reserved at its worst case before it is made and settled after; while
reserved, its worst case counts in its agent's rolling budget, as a running task run's per-run
budget does (decision 0046). What was *spent* (threshold alerts, the audit's trend) counts
settled calls and ended task runs only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Select,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
    update,
)

from automates.audit.model import DaySpend
from automates.states import LlmCallStatus
from automates.store.rows import StoredRow
from automates.store.schema import llm_calls, task_runs


@dataclass(frozen=True)
class LlmCall(StoredRow):
    """A row of `llm_calls`: one call of the LLM facade and what it cost."""

    id: int
    agent: str | None  # None: a call of the platform's own, in no agent's budget
    model: str
    automate: str | None  # the guarded run it was made in, if any
    flow_run_id: UUID | None
    status: LlmCallStatus
    reserved_usd: Decimal  # its worst case, held while reserved
    cost_usd: Decimal
    input_tokens: int
    output_tokens: int
    started_at: datetime
    ended_at: datetime | None


def reserve_llm_call(
    connection: Connection,
    *,
    agent: str | None,
    model: str,
    reserved_usd: Decimal,
    automate: str | None,
    flow_run_id: UUID | None,
) -> int:
    """A call about to be made, its worst case held; its id."""
    statement = (
        insert(llm_calls)
        .values(
            agent=agent,
            model=model,
            reserved_usd=reserved_usd,
            automate=automate,
            flow_run_id=flow_run_id,
        )
        .returning(llm_calls.c.id)
    )
    return int(connection.execute(statement).scalar_one())


def settle_llm_call(
    connection: Connection,
    call_id: int,
    status: LlmCallStatus,
    *,
    model: str | None = None,
    cost_usd: Decimal = Decimal(0),
    input_tokens: int = 0,
    output_tokens: int = 0,
) -> LlmCall:
    """The call's real cost (nothing for a failed one) in place of its reservation."""
    values: dict[str, Any] = {
        "status": status,
        "cost_usd": cost_usd,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "ended_at": func.now(),
    }
    if model is not None:  # the model the API answered with (a dated name)
        values["model"] = model
    row = connection.execute(
        update(llm_calls).where(llm_calls.c.id == call_id).values(**values).returning(llm_calls)
    ).one()
    return LlmCall.from_row(row)


def read_llm_calls(connection: Connection, agent: str | None = None) -> list[LlmCall]:
    """The facade's calls, oldest first (of one agent, if given)."""
    query = select(llm_calls).order_by(llm_calls.c.id)
    if agent is not None:
        query = query.where(llm_calls.c.agent == agent)
    return [LlmCall.from_row(row) for row in connection.execute(query)]


def llm_committed(connection: Connection, agent: str, since: datetime) -> Decimal:
    """Dollars the agent's facade calls hold since `since`: the cost of settled calls, the worst
    case of those still reserved (under way, or whose process died before settling)."""
    held = case(
        (llm_calls.c.status == LlmCallStatus.RESERVED, llm_calls.c.reserved_usd),
        else_=llm_calls.c.cost_usd,
    )
    query = select(func.coalesce(func.sum(held), 0)).where(
        llm_calls.c.agent == agent, llm_calls.c.started_at >= since
    )
    return Decimal(connection.execute(query).scalar_one())


def spent_since(connection: Connection, since: datetime, agent: str | None = None) -> Decimal:
    """Dollars spent since `since` by task runs that ended and facade calls that were
    answered: one agent's, or (None) the whole platform's."""
    total = Decimal(0)
    for part in _spent(since, agent):
        inner = part.subquery()
        total += Decimal(
            connection.execute(select(func.coalesce(func.sum(inner.c.usd), 0))).scalar_one()
        )
    return total


def daily_spend(connection: Connection, since: datetime) -> list[DaySpend]:
    """What each agent (and the platform's own facade calls) spent on each UTC day since
    `since`, task runs and facade calls together; days with no spend are absent."""
    task_run_part, call_part = _spent(since, by_day=True)
    both = union_all(task_run_part, call_part).subquery()
    rows = connection.execute(
        select(both.c.agent, both.c.day, func.sum(both.c.usd).label("usd"))
        .group_by(both.c.agent, both.c.day)
        .order_by(both.c.day, both.c.agent)
    )
    return [DaySpend(agent, day, Decimal(usd)) for agent, day, usd in rows]


def _spent(
    since: datetime, agent: str | None = None, *, by_day: bool = False
) -> tuple[Select[Any], Select[Any]]:
    """The two sources of spend as selects of (agent, [day,] usd): every agent's, or one's."""

    def day(moment: ColumnElement[Any]) -> ColumnElement[Any]:
        return cast(func.timezone("UTC", moment), Date).label("day")

    task_run_columns: list[ColumnElement[Any]] = [
        task_runs.c.agent.label("agent"),
        task_runs.c.cost_usd.label("usd"),
    ]
    call_columns: list[ColumnElement[Any]] = [
        llm_calls.c.agent.label("agent"),
        llm_calls.c.cost_usd.label("usd"),
    ]
    if by_day:
        task_run_columns.insert(1, day(task_runs.c.ended_at))
        call_columns.insert(1, day(llm_calls.c.started_at))
    task_run_part = select(*task_run_columns).where(
        task_runs.c.ended_at >= since, task_runs.c.cost_usd > literal(0)
    )
    call_part = select(*call_columns).where(
        llm_calls.c.status == LlmCallStatus.SPENT, llm_calls.c.started_at >= since
    )
    if agent is not None:
        task_run_part = task_run_part.where(task_runs.c.agent == agent)
        call_part = call_part.where(llm_calls.c.agent == agent)
    return task_run_part, call_part


def lock_spend_alerts(connection: Connection, subject: str) -> None:
    """Serialise the threshold checks of one agent (or the platform) until the end of the
    transaction, so two spends recorded at once raise one alert, not two."""
    connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"spend-alerts:{subject}"}
    )
