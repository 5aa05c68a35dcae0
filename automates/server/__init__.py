"""Talking to the Prefect server: reading what is deployed, syncing declarations to it."""
