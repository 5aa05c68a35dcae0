"""`python -m automates.platform.server_main server start ...`: Prefect's own CLI, patched.

`automates up` starts the Prefect server through this module so that the server process carries
the workarounds of `prefect_patches`; everything else is `prefect server start` unchanged (one
uvicorn worker, in this process, with the server's services).
"""

from __future__ import annotations

from automates.server.prefect_patches import apply_server

if __name__ == "__main__":
    apply_server()
    from prefect.cli import app

    app()
