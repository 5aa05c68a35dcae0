"""The project's own store: tables beside Prefect's, in one PostgreSQL schema."""
