"""Prefect blocks of the project: configuration shared by flows, workers and the UI."""
