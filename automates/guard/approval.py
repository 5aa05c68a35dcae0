"""The guard's approval pre-check (automates/scheduling/approval.py).

An approval is for one version of the declaration: the digest sync stores, carried to the run
in its policy. A run of a version approved in the store goes on; otherwise:

- `before_enable`: the run ends "Skipped" at once. Sync keeps such an automate's schedules
  inactive; this stops the runs that do not come from a schedule (event triggers, the
  webhook, a manual run) until `automates approve NAME`.
- `before_first_run`: the run waits for approval with Prefect's own machinery,
  `suspend_flow_run(wait_for_input=ApprovalInput)`. The run leaves its process (a suspended
  run holds no worker, and the guard's run timeout does not tick) and shows in the UI as
  Suspended, with a Resume form asking for `approve`, `by` and `note`. Resuming reschedules
  it; the worker runs the flow again from the start, and the guard comes back here:

  * resumed by `automates approve`: the approval is in the store already, the run goes on;
  * resumed from the UI (or `resume_flow_run(id, run_input=...)`): the same suspend call now
    returns the input instead of suspending (Prefect refuses a second suspend under the same
    key), so the guard records the approval (who: `by`, else "prefect-ui") and goes on, or,
    for `approve: false`, ends the run Cancelled, named "Rejected", recording nothing.

The suspend key names the version, so a run resumed after the declaration changed asks again,
for the new version, rather than reading an answer given for the old one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect.client.schemas.objects import State
from prefect.exceptions import Pause
from prefect.input import RunInput
from prefect.states import Cancelled, Completed
from pydantic import Field

from automates.alerts import catalog
from automates.alerts.outbox import Alert, raise_alert
from automates.guard.context import RunContext
from automates.guard.recording import record_run, store
from automates.scheduling.approval import Approval, Gate, gate
from automates.store.approvals import approval_of, record_approval
from automates.store.engine import transaction

# The stage a waiting run is approved at (before_enable never waits: it is skipped).
WAITS = Approval.BEFORE_FIRST_RUN.value
APPROVED_FROM_UI = "prefect-ui"
KEY_PREFIX = "approval-"


class ApprovalInput(RunInput):
    """The Resume form of a run waiting for approval."""

    approve: bool = Field(
        title="Approve", description="true runs this version of the automate; false rejects it."
    )
    by: str | None = Field(
        default=None, title="Approved by", description="Who decides (default: prefect-ui)."
    )
    note: str | None = Field(default=None, title="Note")


class ApprovalCheck:
    """A run of a version of the declaration nobody approved waits for approval, or ends."""

    name = "approval"

    def check(self, run: RunContext) -> State | None:
        policy = run.policy
        if policy.approval is Approval.NONE:
            return None
        digest = policy.declaration_digest
        approved = digest is not None and _approved(run, digest)
        can_wait = run.deployment_id is not None
        step = gate(
            policy.approval, versioned=digest is not None, approved=approved, can_wait=can_wait
        )
        if step is Gate.GO:
            return None
        if step is Gate.NO_VERSION or digest is None:
            return Completed(
                name="Skipped",
                message=f"skipped: {policy.automate} asks for approval, but its deployment "
                "carries no declaration digest; run `automates sync`",
            )
        if step is Gate.NOT_APPROVED:
            return Completed(
                name="Skipped",
                message=f"skipped: version {version(digest)} of {policy.automate} is not "
                f"approved (approval: before_enable); run `automates approve {policy.automate}`",
            )
        if step is Gate.CANNOT_WAIT:
            return Completed(
                name="Skipped",
                message=f"skipped: version {version(digest)} of {policy.automate} is not "
                "approved, and only a deployment's run can wait for approval",
            )
        answer = _wait_for_approval(run, digest)  # leaves the process while waiting
        refused = verdict(policy.automate, digest, answer)
        if refused is not None:
            _alert_rejected(run, approver(answer))
            return _journaled(run, refused)
        who = approver(answer)
        _record(run, digest, who, answer.note)
        run.logger.info("version %s of %s approved by %s", version(digest), policy.automate, who)
        return None


def verdict(automate: str, digest: str, answer: ApprovalInput) -> State | None:
    """What the Resume form's answer does to the run: None (approved: it goes on), or the
    Cancelled state, named Rejected, that ends it."""
    if answer.approve:
        return None
    note = f": {answer.note}" if answer.note else ""
    return Cancelled(
        name="Rejected",
        message=f"rejected by {approver(answer)}: version {version(digest)} of {automate} "
        f"was not approved{note}",
    )


def approver(answer: ApprovalInput) -> str:
    return (answer.by or "").strip() or APPROVED_FROM_UI


def version(digest: str) -> str:
    """How a version shows to people: the digest's first 12 characters."""
    return digest[:12]


def suspend_key(digest: str) -> str:
    return f"{KEY_PREFIX}{digest[:16]}"


def _wait_for_approval(run: RunContext, digest: str) -> ApprovalInput:
    """Suspend the run until it is resumed with an answer; the answer once it has one.

    Prefect's async suspend runs to completion on Prefect's own loop thread whether the flow
    is sync or async (the sync variant would hand an async flow unawaited coroutines). Pause,
    the signal that ends the process, is carried out as a value and raised here.
    """
    from prefect.flow_runs import asuspend_flow_run
    from prefect.utilities.asyncutils import run_coro_as_sync

    automate = run.automate
    form = ApprovalInput.with_initial_data(
        description=f"**{automate}**: approve version `{version(digest)}` of its "
        "declaration to run it (`approve: true`), or reject this run (`approve: false`). "
        f"`automates approve {automate}` does the same from a terminal."
    )

    async def suspend() -> ApprovalInput | Pause:
        try:
            return await asuspend_flow_run(
                wait_for_input=form,
                key=suspend_key(digest),
                timeout=run.settings.approval_timeout_seconds,
            )
        except Pause as pause:
            _alert(run, catalog.approval_waiting(automate, _flow_run_id(run), WAITS))
            run.logger.warning(
                "waiting for approval of version %s of %s: Resume in the Prefect UI, or "
                "`automates approve %s`",
                version(digest),
                automate,
                automate,
            )
            return pause

    answer = run_coro_as_sync(suspend())
    if isinstance(answer, Pause):
        raise answer
    assert answer is not None
    return answer


def _approved(run: RunContext, digest: str) -> bool:
    with transaction(store(run.settings.store_block)) as connection:
        return approval_of(connection, run.automate, digest, run.policy.approval.value) is not None


def _alert(run: RunContext, alert: Alert) -> None:
    """Tell the approvers (a suspended run tells nobody else)."""
    with transaction(store(run.settings.store_block)) as connection:
        raise_alert(connection, alert)


def _alert_rejected(run: RunContext, who: str) -> None:
    """A rejection is a decision too: the waiting alert is resolved."""
    _alert(run, catalog.approval_decided(run.automate, who, approved=False))


def _record(run: RunContext, digest: str, who: str, note: str | None) -> None:
    with transaction(store(run.settings.store_block)) as connection:
        record_approval(
            connection,
            run.automate,
            digest,
            WAITS,
            who,
            flow_run_id=_flow_run_id(run),
            note=note,
        )
        raise_alert(connection, catalog.approval_decided(run.automate, who))


def _journaled(run: RunContext, state: State) -> State:
    """Journal a rejected run here: Prefect calls no state hook for a Cancelled state the flow
    returns (only for completion, failure, crash and cancelling), so the guard's would not."""
    assert run.flow_run is not None
    try:
        record_run(run.settings, run.policy, run.journal, run.flow_run, state, datetime.now(UTC))
    except Exception:
        run.logger.exception("could not write the journals of %s", run.automate)
    return state


def _flow_run_id(run: RunContext) -> Any:
    return run.flow_run.id if run.flow_run is not None else None
