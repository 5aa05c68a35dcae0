"""The rules of agents' heartbeats, table-driven: what acknowledges, what checklist is empty,
and the active hours (across midnight, across a DST change)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from automates.scheduling.agent_heartbeat import (
    MAX_ACK_EXTRA_CHARS,
    ActiveHours,
    checklist_is_empty,
    is_acknowledgement,
)


@pytest.mark.parametrize(
    ("reply", "acknowledges"),
    [
        ("HEARTBEAT_OK", True),
        ("  HEARTBEAT_OK\n", True),
        ("**HEARTBEAT_OK**", True),
        ("<b>HEARTBEAT_OK</b>", True),
        ("`HEARTBEAT_OK`.", True),
        ("HEARTBEAT_OK — nothing needed attention.", True),
        ("Checked the queue and the disks: all quiet.\n\nHEARTBEAT_OK", True),
        ("All quiet. **HEARTBEAT_OK**", True),
        ("HEARTBEAT_OK " + "x" * MAX_ACK_EXTRA_CHARS, True),
        ("HEARTBEAT_OK " + "x" * (MAX_ACK_EXTRA_CHARS + 1), False),  # a report, not an ack
        ("The backup failed twice. HEARTBEAT_OK otherwise. Please look.", False),  # middle
        ("HEARTBEAT_OKAY", False),
        ("HEARTBEAT_OK_NOT", False),
        ("NOT_HEARTBEAT_OK", False),
        ("heartbeat_ok", False),
        ("", False),
        ("The disk is 97% full.", False),
    ],
)
def test_an_acknowledgement_is_the_token_at_an_end_with_little_else(
    reply: str, acknowledges: bool
) -> None:
    assert is_acknowledgement(reply) is acknowledges


@pytest.mark.parametrize(
    ("checklist", "empty"),
    [
        ("", True),
        ("\n\n   \n", True),
        ("# Heartbeat\n\n## Daily\n", True),
        ("# Checklist\n- \n* [ ]\n1.\n2) [x]\n", True),
        ("<!-- add items here -->\n# Heartbeat\n", True),
        ("<!--\n- check the disks\n-->\n", True),  # a commented-out item asks nothing
        ("- check the disks", False),
        ("# Heartbeat\n- [ ] the backup ran tonight\n", False),
        ("Look at the alert outbox.", False),
        ("#hashtag is text, not a heading", False),
    ],
)
def test_an_empty_checklist_asks_nothing(checklist: str, empty: bool) -> None:
    assert checklist_is_empty(checklist) is empty


PARIS_DAY = ActiveHours.model_validate(
    {"start": "08:00", "end": "22:00", "timezone": "Europe/Paris"}
)
PARIS_NIGHT = ActiveHours.model_validate(
    {"start": "22:00", "end": "06:00", "timezone": "Europe/Paris"}
)


@pytest.mark.parametrize(
    ("hours", "moment", "inside"),
    [
        (PARIS_DAY, "2026-12-06T07:00:00Z", True),  # 08:00 in Paris (UTC+1)
        (PARIS_DAY, "2026-12-06T06:59:00Z", False),
        (PARIS_DAY, "2026-12-06T21:00:00Z", False),  # 22:00: the end is outside
        (PARIS_NIGHT, "2026-12-06T22:30:00Z", True),  # 23:30, across midnight
        (PARIS_NIGHT, "2026-12-07T04:59:00Z", True),  # 05:59
        (PARIS_NIGHT, "2026-12-07T05:00:00Z", False),  # 06:00
        (PARIS_NIGHT, "2026-12-06T12:00:00Z", False),
        # The spring-forward morning (2026-03-29, 02:00 → 03:00): 08:00 local is 06:00 UTC.
        (PARIS_DAY, "2026-03-29T06:00:00Z", True),
        (PARIS_DAY, "2026-03-29T05:59:00Z", False),
        # The fall-back evening (2026-10-25): 22:00 local is 21:00 UTC again.
        (PARIS_DAY, "2026-10-25T20:59:00Z", True),
        (PARIS_DAY, "2026-10-25T21:00:00Z", False),
        (
            ActiveHours.model_validate({"start": "09:00", "end": "09:00"}),
            "2026-12-06T03:00:00Z",
            True,
        ),
    ],
)
def test_active_hours_follow_the_local_clock(hours: ActiveHours, moment: str, inside: bool) -> None:
    at = datetime.fromisoformat(moment).astimezone(UTC)
    assert hours.contains(at) is inside


def test_a_heartbeat_checks_in_every_30_minutes_by_default() -> None:
    from automates.registry.heartbeat import Heartbeat

    heartbeat = Heartbeat(agent="atlas", checklist="- the backup ran tonight")
    assert heartbeat.every == "30m"
    [schedule] = heartbeat.declaration(pool="agents").schedules
    assert schedule.every == "30m"
