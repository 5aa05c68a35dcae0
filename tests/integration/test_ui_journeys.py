"""The operator's journeys in the Prefect UI, in headless Chromium against a real layer.

One project is synced once for the module (five automates, one worker); the runs that end by
themselves start at once and are waited for through the API, then each journey opens the
pages an operator opens and asserts on what they show. With AUTOMATES_UI_SCREENSHOTS=1 the
journeys also rewrite the screenshots of docs/operations.md (docs/images/ui/).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode
from uuid import UUID

import httpx
import pytest
from playwright.sync_api import expect
from prefect.client.schemas.objects import FlowRun, StateType

from automates.platform import components
from automates.registry.loader import load_registry
from automates.server.client import prefect_client
from automates.settings import Settings
from tests.fixtures.commands import invoke_json
from tests.fixtures.projects import TEMPLATE, Project, automate, script
from tests.fixtures.servers import (
    cli_env,
    empty_layer,
    final_run,
    layer_settings,
    store_rows,
    wait_for,
)
from tests.fixtures.ui import PrefectUI, beside_the_browser

AUDIT, NIGHTLY, GATED, FRAGILE, HUSHED = (
    "ui-audit",
    "ui-nightly",
    "ui-gated",
    "ui-fragile",
    "ui-hushed",
)
FULL_NAMES = {
    AUDIT: "script/ui-audit",
    NIGHTLY: "hello/ui-nightly",
    GATED: "hello/ui-gated",
    FRAGILE: "script/ui-fragile",
    HUSHED: "hello/ui-hushed",
}
# What the UI calls each declared schedule (Prefect's own wording of the cron or interval).
SCHEDULE_LABELS = {
    NIGHTLY: ["At 03:00 AM", "Every 1 day"],
    FRAGILE: ["At 03:00 AM", "At 12:00 PM"],
}
# A run goes through a worker that starts a fresh Python process: slow on a loaded machine.
RUN_SECONDS = 300

T = TypeVar("T")


@dataclass
class Layer:
    settings: Settings
    runs: dict[str, UUID]  # the run started at set-up, by automate


def declarations(pool: str) -> list[dict[str, Any]]:
    return [
        # An audit: its script exits 2, which is findings (soft-fail), with an artifact.
        script(AUDIT, ["scripts/audit.sh"], family="audits", work_pool=pool),
        automate(
            NIGHTLY,
            agents=["atlas", "scout"],
            schedules=[
                {"slug": "nightly", "cron": "0 3 * * *", "timezone": "Asia/Makassar"},
                {"slug": "daily", "every": "1d"},
            ],
            work_pool=pool,
        ),
        automate(GATED, kind="oneshot", schedules=[], work_pool=pool, approval="before_first_run"),
        # One failure opens its breaker.
        automate(
            FRAGILE,
            entrypoint=None,
            command=["scripts/broken.sh"],
            family="exports",
            breaker_threshold=1,
            schedules=[
                {"slug": "daily", "cron": "0 3 * * *"},
                {"slug": "noon", "cron": "0 12 * * *"},
            ],
            work_pool=pool,
        ),
        automate(
            HUSHED,
            kind="oneshot",
            schedules=[],
            work_pool=pool,
            quiet_hours={"start": "00:00", "end": "00:00", "action": "skip"},  # always quiet
        ),
    ]


def run_async(work: Coroutine[Any, Any, T]) -> T:
    return beside_the_browser(lambda: asyncio.run(work))


def start(settings: Settings, name: str) -> UUID:
    """A run of the automate's deployment, as the UI's Run button or `prefect deployment run`."""

    async def go() -> UUID:
        async with prefect_client(settings.api_url) as client:
            deployment = await client.read_deployment_by_name(FULL_NAMES[name])
            return (await client.create_flow_run_from_deployment(deployment.id)).id

    return run_async(go())


def read_run(settings: Settings, run_id: UUID) -> FlowRun:
    async def go() -> FlowRun:
        async with prefect_client(settings.api_url) as client:
            return await client.read_flow_run(run_id)

    return run_async(go())


def ended(settings: Settings, run_id: UUID) -> FlowRun:
    return beside_the_browser(
        lambda: wait_for(lambda: final_run(settings, run_id), RUN_SECONDS, f"run {run_id} to end")
    )


def state_history(settings: Settings, run_id: UUID) -> list[str]:
    async def go() -> list[str]:
        async with prefect_client(settings.api_url) as client:
            return [s.name or "" for s in await client.read_flow_run_states(run_id)]

    return run_async(go())


def logged(settings: Settings, run_id: UUID, line: re.Pattern[str]) -> bool:
    """Whether the server has a log line of the run that matches `line`."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def go() -> bool:
        async with prefect_client(settings.api_url) as client:
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
            )
        return any(line.search(log.message) for log in logs)

    return run_async(go())


def schedules_active(settings: Settings, name: str) -> list[bool]:
    async def go() -> list[bool]:
        async with prefect_client(settings.api_url) as client:
            deployment = await client.read_deployment_by_name(FULL_NAMES[name])
        return [s.active for s in deployment.schedules]

    return run_async(go())


def iso_z(moment: datetime) -> str:
    """A time as the UI writes one in its addresses: UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def events(settings: Settings, name: str, resource: str) -> list[dict[str, Any]]:
    """The server's stored events named `name` about `resource`, of the past day."""
    body = {"filter": {"event": {"name": [name]}, "resource": {"id": [resource]}}, "limit": 10}
    answer = httpx.post(f"{settings.api_url}/events/filter", json=body, timeout=30)
    answer.raise_for_status()
    return list(answer.json()["events"])


def open_event_feed(prefect_ui: PrefectUI, settings: Settings, name: str, event: str) -> None:
    """The Event Feed filtered on the automate `name`, showing its `event`. The feed reads the
    events once, so it is opened when the server has stored the event, and over a range that
    ends after now: its "Past day" ends at the start of the current minute."""
    resource = f"automates.automate.{name}"
    wait_for(lambda: events(settings, event, resource), 60, f"the event {event}")
    now = datetime.now(UTC)
    feed = {
        "resource": json.dumps([resource]),
        "rangeType": "range",
        "start": iso_z(now - timedelta(days=1)),
        "end": iso_z(now + timedelta(hours=1)),
    }
    prefect_ui.open("/events?" + urlencode(feed))
    page = prefect_ui.page
    expect(page.get_by_text(event, exact=True)).to_be_visible()
    expect(page.get_by_text(name, exact=True).first).to_be_visible()


@pytest.fixture(scope="module")
def layer(server_session: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layer]:
    """The module's project, synced to the session's server, with one worker on its pool; the
    runs of the audit, the fragile export and the quiet automate started."""
    beside_the_browser(lambda: empty_layer(server_session))
    project = Project(tmp_path_factory.mktemp("ui-journeys") / "checkout")
    shutil.copytree(TEMPLATE, project.root)
    (project.root / "deployments").mkdir()
    pool = f"pool-{os.urandom(3).hex()}"
    components.start_worker(
        layer_settings(server_session, project_root=project.root, work_pool=pool), pool
    )
    try:
        settings = beside_the_browser(
            lambda: project.declare_and_sync(server_session, *declarations(pool))
        )
        yield Layer(settings, {name: start(settings, name) for name in (AUDIT, FRAGILE, HUSHED)})
    finally:
        components.worker(server_session, pool).stop()


def test_the_deployments_page_lists_each_automate_with_its_schedules_and_tags(
    layer: Layer, prefect_ui: PrefectUI
) -> None:
    page = prefect_ui.page
    declared = load_registry(layer.settings.registry_path)
    prefect_ui.open("/")
    page.get_by_role("link", name="Deployments").click()
    expect(page).to_have_url(re.compile(r"/v2/deployments"))
    expect(page.get_by_text(f"{len(FULL_NAMES)} Deployments")).to_be_visible()
    for name in FULL_NAMES:
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))
        expect(row).to_be_visible()
        # The flow under the name; the first tag, and the others behind "+N".
        expect(row.get_by_role("link", name=FULL_NAMES[name].split("/")[0])).to_be_visible()
        more = page.get_by_role("dialog")
        show_more = row.get_by_role("button", name=re.compile(r"^Show \d+ more tags$"))
        prefect_ui.reveal(show_more.click, more)
        declaration = declared.get(name)
        assert declaration is not None
        for tag in declaration.tags:
            # The row lays out every tag and hides those that do not fit behind "+N"; a refresh
            # of the rows closes that popover, so it is opened again when a tag is out of sight.
            shown = row.get_by_text(tag, exact=True).or_(more.get_by_text(tag, exact=True))
            try:
                expect(shown.filter(visible=True).first).to_be_visible(timeout=5_000)
            except AssertionError:
                prefect_ui.reveal(show_more.click, more.get_by_text(tag, exact=True))
        page.keyboard.press("Escape")
        expect(more).to_be_hidden()

        # A recurring automate's schedules, in Prefect's words, behind "N schedules".
        badge = row.get_by_text(re.compile(r"^\d+ schedules?$"))
        if name not in SCHEDULE_LABELS:
            expect(badge).to_have_count(0)
            continue
        expect(badge).to_have_text(f"{len(SCHEDULE_LABELS[name])} schedules")
        card = page.locator("[data-slot=hover-card-content]")
        prefect_ui.hover(badge, card)
        for label in SCHEDULE_LABELS[name]:
            expect(card.get_by_text(label, exact=True)).to_be_visible()
        if name == NIGHTLY:
            expect(card.get_by_text("Active", exact=True)).to_have_count(2)
            prefect_ui.screenshot("deployments")
        page.mouse.move(0, 0)
        expect(card).to_have_count(0)


def test_a_findings_run_shows_its_state_message_and_artifact(
    layer: Layer, prefect_ui: PrefectUI
) -> None:
    run = ended(layer.settings, layer.runs[AUDIT])
    assert run.state is not None
    message = "scripts/audit.sh exited 2: findings"
    assert (run.state_name, run.state.message) == ("Findings", message)
    # The run page reads the logs of an ended run once, and they reach the server in batches,
    # after its final state may: the page is opened when the server has the script's line.
    line = re.compile(re.escape("2 expire within 14 days"))
    wait_for(lambda: logged(layer.settings, run.id, line), 60, "the audit's log line")
    page = prefect_ui.page
    prefect_ui.open(f"/runs/flow-run/{run.id}")
    expect(prefect_ui.state("Findings")).to_be_visible()
    expect(page.get_by_text("2 expire within 14 days", exact=True)).to_be_visible()  # its log
    page.get_by_role("tab", name="Details").click()
    expect(page.get_by_text("State Message", exact=True)).to_be_visible()
    expect(page.get_by_text(message, exact=True)).to_be_visible()
    prefect_ui.screenshot("findings-run")

    page.get_by_role("tab", name="Artifacts").click()
    card = page.get_by_text(f"findings-{AUDIT}", exact=True)
    expect(card).to_be_visible()
    expect(page.get_by_text("exit code 2", exact=True)).to_be_visible()
    card.click()
    expect(page).to_have_url(re.compile(rf"/artifacts/key/findings-{AUDIT}$"))
    # The newest (only) version of the artifact, rendered: what the audit printed.
    page.get_by_role("link", name=re.compile(r"^[0-9a-f]{8}$")).first.click()
    expect(page.get_by_role("heading", name="Findings", exact=True)).to_be_visible()
    expect(page.get_by_text("scripts/audit.sh exited 2.")).to_be_visible()
    output = page.locator("code").filter(has_text="checked 12 certificates")
    expect(output).to_have_text("checked 12 certificates\n2 expire within 14 days\n")
    prefect_ui.screenshot("findings-artifact")


def test_a_waiting_run_is_approved_through_the_resume_form(
    layer: Layer, prefect_ui: PrefectUI
) -> None:
    settings = layer.settings
    run_id = start(settings, GATED)

    def suspended() -> FlowRun | None:
        run = read_run(settings, run_id)
        return run if run.state is not None and run.state.type is StateType.PAUSED else None

    wait_for(suspended, RUN_SECONDS, f"run {run_id} of {GATED} to wait for approval")
    # The Logs tab reads the logs once for a run that is not running: it is opened when the
    # server has the line (a run's logs reach it in batches, after its state may).
    waiting = re.compile(rf"^waiting for approval of version \w+ of {GATED}")
    wait_for(lambda: logged(settings, run_id, waiting), 60, "the run's log line")
    # (A Suspended run is no longer taken for dead 90 s after its last heartbeat: the
    # automation "automates: crash unresponsive runs" expects any event of the run,
    # Suspended included; tests/unit/test_unresponsive_runs.py.)
    page = prefect_ui.page
    prefect_ui.open(f"/runs/flow-run/{run_id}")
    expect(prefect_ui.state("Suspended")).to_be_visible()
    expect(page.get_by_text(waiting)).to_be_visible()

    page.get_by_role("button", name="Open menu").first.click()
    page.get_by_role("menuitem", name="Resume").click()
    form = page.get_by_role("dialog")
    expect(form.get_by_role("heading", name="Resume Flow Run")).to_be_visible()
    expect(
        form.get_by_text(re.compile(rf"^{GATED}: approve version \w+ of its declaration"))
    ).to_be_visible()
    form.get_by_role("switch", name="Approve").click()
    expect(form.get_by_role("switch", name="Approve")).to_be_checked()
    approver = form.locator("div.group").filter(has=page.get_by_text("Approved by", exact=False))
    approver.get_by_role("tab", name="str").click()
    approver.get_by_role("textbox").fill("alice")
    prefect_ui.screenshot("resume-form")
    form.get_by_role("button", name="Resume", exact=True).click()
    expect(form).to_be_hidden()

    # The page follows the run to its end.
    expect(prefect_ui.state("Completed")).to_be_visible(timeout=RUN_SECONDS * 1000)
    run = ended(settings, run_id)
    assert run.state_name == "Completed"
    history = state_history(settings, run_id)
    assert "Suspended" in history and "Crashed" not in history, history
    [approval] = store_rows(
        settings,
        "SELECT approved_by, stage FROM automates.approvals WHERE flow_run_id = :id",
        id=run_id,
    )
    assert approval == {"approved_by": "alice", "stage": "before_first_run"}


def test_a_breaker_held_automate_shows_why_and_is_active_again_after_a_reset(
    layer: Layer, prefect_ui: PrefectUI
) -> None:
    settings = layer.settings
    failed = ended(settings, layer.runs[FRAGILE])
    assert failed.state_name == "Failed"
    # The breaker commits its state, then pauses the schedules through the API.
    wait_for(lambda: schedules_active(settings, FRAGILE) == [False, False], 60, "the pause")
    page = prefect_ui.page
    prefect_ui.open("/deployments")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=FRAGILE, exact=True))
    card = page.locator("[data-slot=hover-card-content]")
    prefect_ui.hover(row.get_by_text("2 schedules"), card)
    expect(card.get_by_text("Paused", exact=True)).to_have_count(2)
    page.mouse.move(0, 0)
    row.get_by_role("link", name=FRAGILE, exact=True).click()
    deployment_page = re.compile(r"/deployments/deployment/[0-9a-f-]+")
    expect(page).to_have_url(deployment_page)
    deployment_url = page.url
    for label in SCHEDULE_LABELS[FRAGILE]:
        expect(page.get_by_role("switch", name=f"toggle {label}")).not_to_be_checked()
    expect(page.get_by_role("link", name=failed.name)).to_be_visible()
    expect(prefect_ui.state("Failed")).to_be_visible()
    pause = page.locator("[data-slot=tooltip-trigger]").filter(has=page.locator(".lucide-pause"))
    tooltip = page.locator("[data-slot=tooltip-content]")
    prefect_ui.hover(pause.first, tooltip)
    expect(tooltip).to_contain_text("Schedule is paused")
    prefect_ui.screenshot("breaker-held")
    page.mouse.move(0, 0)

    # Why: the failed run's log says the breaker opened, and its state says what failed. The
    # run's last lines reach the server after its final state (Prefect ships logs in batches)
    # and the run page reads them as it opens: they are waited for on the server first.
    opened = f"circuit breaker of {FRAGILE} opened after 1 consecutive failures: schedules paused"
    wait_for(lambda: logged(settings, failed.id, re.compile(re.escape(opened))), 60, "its log")
    page.get_by_role("link", name=failed.name).click()
    expect(page.get_by_text(opened)).to_be_visible()
    page.get_by_role("tab", name="Details").click()
    expect(
        page.get_by_text(re.compile(r"ScriptFailed: scripts/broken.sh exited with 3"))
    ).to_be_visible()
    # And the Event Feed, filtered on the automate, has the breaker's event.
    open_event_feed(prefect_ui, settings, FRAGILE, "automates.breaker.opened")
    prefect_ui.screenshot("breaker-event")

    reset = beside_the_browser(lambda: invoke_json(cli_env(settings), "breaker", "reset", FRAGILE))
    assert (reset["was"], reset["schedules"]) == ("open", "resumed")
    page.goto(deployment_url)
    for label in SCHEDULE_LABELS[FRAGILE]:
        expect(page.get_by_role("switch", name=f"toggle {label}")).to_be_checked()


def test_a_skipped_run_shows_why(layer: Layer, prefect_ui: PrefectUI) -> None:
    run = ended(layer.settings, layer.runs[HUSHED])
    assert run.state is not None and run.state_name == "Skipped"
    message = run.state.message or ""
    assert re.fullmatch(r"skipped: tick .+ is in quiet hours \(always, UTC\)", message), message
    page = prefect_ui.page
    prefect_ui.open(f"/runs/flow-run/{run.id}")
    expect(prefect_ui.state("Skipped")).to_be_visible()
    page.get_by_role("tab", name="Details").click()
    expect(page.get_by_text(message, exact=True)).to_be_visible()
    prefect_ui.screenshot("skipped-run")


def test_an_automate_paused_from_the_terminal_shows_who_and_why_and_resumes(
    layer: Layer, prefect_ui: PrefectUI
) -> None:
    settings = layer.settings
    env = cli_env(settings)
    paused = beside_the_browser(
        lambda: invoke_json(env, "pause", NIGHTLY, "--reason", "disk migration", "--by", "ana")
    )
    assert paused["schedules"] == "paused"
    page = prefect_ui.page
    prefect_ui.open("/deployments")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=NIGHTLY, exact=True))
    row.get_by_role("link", name=NIGHTLY, exact=True).click()
    expect(page).to_have_url(re.compile(r"/deployments/deployment/[0-9a-f-]+"))
    deployment_url = page.url
    for label in SCHEDULE_LABELS[NIGHTLY]:
        expect(page.get_by_role("switch", name=f"toggle {label}")).not_to_be_checked()

    # Who and why: the automate's events in the Event Feed, the pause's payload in it.
    open_event_feed(prefect_ui, settings, NIGHTLY, "automates.automate.paused")
    page.get_by_text("Show raw event").click()
    # The raw event, in the UI's JSON viewer (a read-only editor).
    raw = page.get_by_role("textbox").filter(has_text='"event": "automates.automate.paused"')
    expect(raw.first).to_contain_text('"by": "ana"')
    expect(raw.first).to_contain_text('"reason": "disk migration"')
    prefect_ui.screenshot("paused-event")

    resumed = beside_the_browser(lambda: invoke_json(env, "resume", NIGHTLY, "--by", "ben"))
    assert resumed["schedules"] == "resumed"
    page.goto(deployment_url)
    for label in SCHEDULE_LABELS[NIGHTLY]:
        expect(page.get_by_role("switch", name=f"toggle {label}")).to_be_checked()
    resource = f"automates.automate.{NIGHTLY}"
    wait_for(lambda: events(settings, "automates.automate.resumed", resource), 60, "the event")
