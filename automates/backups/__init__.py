"""Backups of the layer's database, and the restore drills that prove them.

One database holds the store (schema `automates`) and the Prefect server's tables; a backup is
a `pg_dump` of it in custom format with a JSON manifest beside it, in the backup folder. A
drill restores one into a scratch database and checks it against its manifest
(docs/decisions/0045-backups-and-restore-drills.md).
"""
