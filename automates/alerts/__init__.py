"""Alerts: routes, the outbox, the deliverer and the outbound heartbeat (docs/alerts.md)."""
