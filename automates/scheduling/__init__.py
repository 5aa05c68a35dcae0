"""Scheduling policies on top of Prefect schedules: schedule forms and natural phrases, stable
jitter, quiet hours, the minimum interval of agent-created routines, and the preview."""
