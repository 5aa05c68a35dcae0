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

from typing import Any

from prefect.client.schemas.objects import State
from prefect.exceptions import Pause
from prefect.input import RunInput
from prefect.states import Cancelled, Completed
from pydantic import Field

from automates.registry.policy import GuardPolicy
from automates.scheduling.approval import Approval
from automates.settings import Settings

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


def approval_refusal(policy: GuardPolicy, settings: Settings) -> State | None:
    """None once this version of the automate is approved; otherwise the run waits for
    approval (before_first_run), or ends in the state returned."""
    if policy.approval is Approval.NONE:
        return None
    digest = policy.declaration_digest
    if digest is None:
        return Completed(
            name="Skipped",
            message=f"skipped: {policy.automate} asks for approval, but its deployment carries "
            "no declaration digest; run `automates sync`",
        )
    if _approved(policy.automate, digest, policy.approval, settings):
        return None
    if policy.approval is Approval.BEFORE_ENABLE:
        return Completed(
            name="Skipped",
            message=f"skipped: version {version(digest)} of {policy.automate} is not approved "
            f"(approval: before_enable); run `automates approve {policy.automate}`",
        )
    flow_run = _current_flow_run()
    if flow_run is None or flow_run.deployment_id is None:
        return Completed(
            name="Skipped",
            message=f"skipped: version {version(digest)} of {policy.automate} is not approved, "
            "and only a deployment's run can wait for approval",
        )
    answer = _wait_for_approval(policy, digest, settings)  # leaves the process while waiting
    refused = verdict(policy.automate, digest, answer)
    if refused is not None:
        _alert_rejected(policy.automate, approver(answer), settings)
        return _journaled(refused, policy, flow_run, settings)
    from automates.guard.runner import run_logger

    who = approver(answer)
    _record(policy.automate, digest, who, flow_run.id, answer.note, settings)
    run_logger().info("version %s of %s approved by %s", version(digest), policy.automate, who)
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


def _wait_for_approval(policy: GuardPolicy, digest: str, settings: Settings) -> ApprovalInput:
    """Suspend the run until it is resumed with an answer; the answer once it has one.

    Prefect's async suspend runs to completion on Prefect's own loop thread whether the flow
    is sync or async (the sync variant would hand an async flow unawaited coroutines). Pause,
    the signal that ends the process, is carried out as a value and raised here.
    """
    from prefect.flow_runs import asuspend_flow_run
    from prefect.utilities.asyncutils import run_coro_as_sync

    from automates.guard.runner import run_logger

    form = ApprovalInput.with_initial_data(
        description=f"**{policy.automate}**: approve version `{version(digest)}` of its "
        "declaration to run it (`approve: true`), or reject this run (`approve: false`). "
        f"`automates approve {policy.automate}` does the same from a terminal."
    )

    async def suspend() -> ApprovalInput | Pause:
        try:
            return await asuspend_flow_run(
                wait_for_input=form,
                key=suspend_key(digest),
                timeout=settings.approval_timeout_seconds,
            )
        except Pause as pause:
            _alert_waiting(policy.automate, settings)
            run_logger().warning(
                "waiting for approval of version %s of %s: Resume in the Prefect UI, or "
                "`automates approve %s`",
                version(digest),
                policy.automate,
                policy.automate,
            )
            return pause

    answer = run_coro_as_sync(suspend())
    if isinstance(answer, Pause):
        raise answer
    assert answer is not None
    return answer


def _approved(automate: str, digest: str, stage: Approval, settings: Settings) -> bool:
    from automates.guard.recording import store
    from automates.store.approvals import approval_of
    from automates.store.engine import transaction

    with transaction(store(settings.store_block)) as connection:
        return approval_of(connection, automate, digest, stage.value) is not None


def _alert_waiting(automate: str, settings: Settings) -> None:
    """Tell the approvers (the run is suspended: nothing else would)."""
    from automates.alerts import catalog
    from automates.alerts.outbox import raise_alert
    from automates.guard.recording import store
    from automates.store.engine import transaction

    flow_run = _current_flow_run()
    with transaction(store(settings.store_block)) as connection:
        raise_alert(
            connection,
            catalog.approval_waiting(
                automate, flow_run.id if flow_run else None, Approval.BEFORE_FIRST_RUN.value
            ),
        )


def _alert_rejected(automate: str, who: str, settings: Settings) -> None:
    """A rejection is a decision too: the waiting alert is resolved."""
    from automates.alerts import catalog
    from automates.alerts.outbox import raise_alert
    from automates.guard.recording import store
    from automates.store.engine import transaction

    with transaction(store(settings.store_block)) as connection:
        raise_alert(connection, catalog.approval_decided(automate, who, approved=False))


def _record(
    automate: str, digest: str, who: str, flow_run_id: Any, note: str | None, settings: Settings
) -> None:
    from automates.alerts import catalog
    from automates.alerts.outbox import raise_alert
    from automates.guard.recording import store
    from automates.store.approvals import record_approval
    from automates.store.engine import transaction

    with transaction(store(settings.store_block)) as connection:
        record_approval(
            connection,
            automate,
            digest,
            Approval.BEFORE_FIRST_RUN.value,
            who,
            flow_run_id=flow_run_id,
            note=note,
        )
        raise_alert(connection, catalog.approval_decided(automate, who))


def _journaled(state: State, policy: GuardPolicy, flow_run: Any, settings: Settings) -> State:
    """Journal a rejected run here: Prefect calls no state hook for a Cancelled state the flow
    returns (only for completion, failure, crash and cancelling), so the guard's would not."""
    from datetime import UTC, datetime

    from automates.guard import journal
    from automates.guard.recording import record_run
    from automates.guard.runner import run_logger

    run = journal.current() or journal.begin(policy.automate)
    try:
        record_run(settings, policy, run, flow_run, state, datetime.now(UTC))
    except Exception:
        run_logger().exception("could not write the journals of %s", policy.automate)
    finally:
        journal.end(flow_run.id)
    return state


def _current_flow_run() -> Any | None:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return context.flow_run if context is not None else None
