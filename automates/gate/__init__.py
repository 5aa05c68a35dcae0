"""The gate: an authenticating gateway in front of the Prefect API for residential workers."""
