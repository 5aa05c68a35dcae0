"""Bringing the local layer up and down: embedded PostgreSQL, Prefect server, worker."""
