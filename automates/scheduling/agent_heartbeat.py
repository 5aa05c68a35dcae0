"""The rules of an agent's heartbeat (seed 002): a periodic check-in with a checklist, silent
when all is well.

Pure: given a checklist, a reply, a window and a moment, they answer. Before any model call a
heartbeat is skipped when its checklist is effectively empty or the moment is outside its
active hours; after the call, a reply that acknowledges (`HEARTBEAT_OK` at its start or end,
with little else) delivers nothing, and any other reply is a finding.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from automates.fields import Timezone
from automates.scheduling.quiet_hours import Clock

ACK_TOKEN = "HEARTBEAT_OK"
# An acknowledgement may say a little more ("all quiet, HEARTBEAT_OK"), never a report.
MAX_ACK_EXTRA_CHARS = 300

# Markup a model may wrap the token in: **…**, __…__, `…`, ~~…~~, a heading or quote mark.
_MARKS = r"[\s*_`~#>]*"
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*\s*/?>")  # <b>, </strong>, <br/>: tags only
_AT_START = re.compile(rf"^{_MARKS}{ACK_TOKEN}(?!_?[A-Za-z0-9]){_MARKS}[.!:;,]?")
_AT_END = re.compile(rf"(?<![A-Za-z0-9_]){_MARKS}{ACK_TOKEN}{_MARKS}[.!]?{_MARKS}$")

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_HEADING = re.compile(r"^#{1,6}(\s.*)?$")
# A list item with nothing in it: "-", "* [ ]", "1.", "2) [x]".
_EMPTY_ITEM = re.compile(r"^([-*+]|\d+[.)])(\s+\[[ xX]?\])?$")


def is_acknowledgement(reply: str) -> bool:
    """Whether `reply` acknowledges: the token at its start or end (markup around it
    tolerated), and at most MAX_ACK_EXTRA_CHARS other characters."""
    text = _TAG.sub("", reply).strip()
    for pattern in (_AT_START, _AT_END):
        match = pattern.search(text)
        if match is not None:
            rest = (text[: match.start()] + text[match.end() :]).strip()
            return len(rest) <= MAX_ACK_EXTRA_CHARS
    return False


def checklist_is_empty(checklist: str) -> bool:
    """Whether a checklist asks nothing: only blank lines, headings, empty list items and
    comments (`<!-- -->`)."""
    for line in _COMMENT.sub("", checklist).splitlines():
        item = line.strip()
        if item and not _HEADING.match(item) and not _EMPTY_ITEM.match(item):
            return False
    return True


class ActiveHours(BaseModel):
    """The daily window in which an agent's heartbeat runs: [start, end) in local wall time,
    possibly across midnight (22:00 → 06:00); start == end means all day."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    start: Clock
    end: Clock
    timezone: Timezone = "UTC"

    def contains(self, moment: datetime) -> bool:
        """Whether `moment` (aware) falls inside the window, read on the local clock of that
        day (so the window keeps its wall-clock hours across a DST change)."""
        local = moment.astimezone(ZoneInfo(self.timezone)).time().replace(tzinfo=None)
        return _within(local, self.start, self.end)

    @property
    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"


def _within(local: time, start: time, end: time) -> bool:
    if start == end:
        return True
    if start < end:
        return start <= local < end
    return local >= start or local < end
