"""What a person reads: an alert rendered for a route, and a digest of folded alerts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from automates.alerts.channels import Envelope
from automates.store.alerts import Alert

MAX_DIGEST_LINES = 50


def run_link(ui_url: str, flow_run_id: Any) -> str | None:
    return f"{ui_url}/runs/flow-run/{flow_run_id}" if flow_run_id else None


def envelope(alert: Alert, route: str, ui_url: str) -> Envelope:
    """The alert as sent on one route; its idempotency key is the same at every retry."""
    link = run_link(ui_url, alert.flow_run_id)
    lines = [alert.body]
    if link:
        lines.append(f"Run: {link}")
    lines.append(
        f"alert #{alert.id} · {alert.kind} · raised {alert.raised_at:%Y-%m-%d %H:%M:%S %Z}"
    )
    fields = {
        "alert_id": str(alert.id),
        "kind": alert.kind.value,
        "automate": alert.automate or "",
        "run_url": link or "",
        "raised_at": alert.raised_at.isoformat(),
    }
    return Envelope(
        title=f"[automates] {alert.title}",
        body="\n".join(lines),
        idempotency_key=f"automates-alert-{alert.id}-{route}",
        fields=fields,
    )


def digest(route: str, folded: Sequence[Alert], limit: int) -> tuple[str, str]:
    """Title and body of the digest of alerts folded on a route past its rate limit."""
    title = f"{len(folded)} alerts folded on route {route} (rate limit {limit}/hour)"
    lines = [f"- #{item.id} {item.kind}: {item.title}" for item in folded[:MAX_DIGEST_LINES]]
    if len(folded) > MAX_DIGEST_LINES:
        lines.append(f"… and {len(folded) - MAX_DIGEST_LINES} more (`automates alerts list`)")
    return title, "\n".join(lines)
