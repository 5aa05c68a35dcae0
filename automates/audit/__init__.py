"""The nightly journal audit's rules: pure functions over plain rows of the journals, the
breakers' alerts, the declarations and the agents' spend (docs/runbooks/journal-audit.md).

Nothing here reads a store or a server: `flows/journal_audit.py` reads the rows and hands them
over, so every rule is tested over synthetic journals (decision 0046).
"""
