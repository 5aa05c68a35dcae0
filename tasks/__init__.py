"""Prefect tasks shared by the built-in automates."""
