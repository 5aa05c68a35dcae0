"""Every bound on what a declaration may hold, in one place, and the check of free-form values.

The registry is read by `validate`, `sync` and the flows that reload it, and what it declares
is written to the Prefect server, the registry table and prefect.yaml. Without bounds, a few
lines of YAML (an anchor bomb) or one huge field make those commands allocate without limit,
or fill every deployments listing. Each value below is far above what a real registry uses
(the shipped one: 12 automates, 7 KB, descriptions under 300 characters, parameters a few
bytes, nesting 6 deep) and far below what hurts. See decisions/0027-bounded-declarations.md.
"""

from __future__ import annotations

import json
import math
from typing import Any

# The whole registry file, checked on the bytes before anything is decoded or parsed. About
# 1500 automates as the shipped ones are written; PyYAML's pure-Python parser reads a
# realistic file of that size in under 2 s.
MAX_REGISTRY_BYTES = 1024 * 1024

# YAML nodes (every mapping, list and scalar) composed from the file. A realistic automate is
# 20 to 60 nodes; this bounds the parser's work on pathological input such as `[{},{},...]`,
# which costs about 30 µs a node, even inside MAX_REGISTRY_BYTES.
MAX_YAML_NODES = 100_000

# Nesting of the whole document. The deepest declared field, a schedule's parameters, starts
# at depth 6 (automates > list > automate > schedules > schedule > parameters), so this leaves
# MAX_PARAMETERS_DEPTH inside it and refuses the rest before PyYAML's recursive composer can
# exhaust the stack.
MAX_YAML_DEPTH = 32

# Characters of an integer scalar. Python refuses to convert more than 4300 digits (and raises
# a plain ValueError from inside PyYAML); no field takes a number anywhere near 64 digits.
MAX_INT_CHARS = 64

# Automates in one registry. Sync compares every declaration with its deployment; decision
# 0026 measured the checks as cheap "at hundreds of automates".
MAX_AUTOMATES = 1000

# Characters of any one string of a declaration: names, paths, commands' items, phrases,
# trigger events, and the description, which Prefect shows in every deployments listing (the
# shipped ones are under 300 characters; 4096 is a long page).
MAX_STRING_CHARS = 4096

# Items of a declared list: agents, environments, env files, touches, triggers, schedules.
MAX_LIST_ITEMS = 64

# Items of a script's command: its argv. Far below the kernel's own limits on a command line.
MAX_COMMAND_ITEMS = 256

# Parameters (an automate's, or one schedule's): nesting depth and size as JSON. Prefect stores
# them on the deployment and every run, and sends them in every listing; 64 KiB is far above
# any flow's defaults and keeps a deployment listing of a full registry readable.
MAX_PARAMETERS_DEPTH = 10
MAX_PARAMETERS_BYTES = 64 * 1024


def parameters_problem(value: Any) -> str | None:
    """Why `value` cannot be sent as flow parameters (too deep, too large, or not JSON); None
    if it can. Walks iteratively, so a deep value cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth > MAX_PARAMETERS_DEPTH:
                return f"nested more than {MAX_PARAMETERS_DEPTH} levels deep"
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, float) and not math.isfinite(item):
            return f"{item} is not a JSON number (Prefect would store null)"
    try:
        size = len(json.dumps(value, default=str).encode())
    except (TypeError, ValueError) as error:  # e.g. a YAML date as a mapping's key
        return f"not JSON: {error}"
    if size > MAX_PARAMETERS_BYTES:
        return f"{size} bytes as JSON, at most {MAX_PARAMETERS_BYTES} are accepted"
    return None
