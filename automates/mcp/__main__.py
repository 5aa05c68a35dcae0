"""`python -m automates.mcp --agent NAME`: the layer's MCP tools for one agent, over stdio.

The LLM CLI starts it from the MCP configuration its permission template mounts; the agent is
fixed by whoever starts the server, never by the model. The store and the Prefect API are the
settings' (AUTOMATES_*, PREFECT_API_URL), as for every other process of the layer.
"""

from __future__ import annotations

import argparse
import sys

from automates.errors import AutomatesError
from automates.registry.fields import SLUG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m automates.mcp", description=__doc__)
    parser.add_argument("--agent", required=True, help="The agent these tools speak for.")
    args = parser.parse_args(argv)
    if not SLUG.match(args.agent) or len(args.agent) > 63:
        parser.error(f"--agent: {args.agent!r} is not a slug (lowercase letters, digits, dashes)")
    try:
        from automates.mcp.server import LayerToolServer
        from automates.routines.tools import RoutineTools
        from automates.settings import Settings
        from automates.store.database import database_url
        from automates.store.engine import make_engine

        settings = Settings()
        engine = make_engine(database_url(settings))
        server = LayerToolServer(RoutineTools(settings, engine, args.agent), engine)
    except AutomatesError as error:
        print(f"automates MCP server: {error}", file=sys.stderr)
        return 2
    server.run("stdio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
