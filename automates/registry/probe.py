"""Child-process import probe: `python -m automates.registry.probe ENTRYPOINT...`.

Prints one JSON object on its last line mapping each entrypoint that failed to import (or
whose target is not a flow) to the error. Run in a child so a broken module, or one with
import-time side effects, cannot disturb the caller.
"""

from __future__ import annotations

import json
import sys


def main(entrypoints: list[str]) -> dict[str, str]:
    import importlib.util
    from pathlib import Path

    from prefect.flows import Flow, load_flow_from_entrypoint

    failures: dict[str, str] = {}
    for entrypoint in entrypoints:
        try:
            if ":" in entrypoint:
                target: object = load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False)
                if not isinstance(target, Flow):
                    failures[entrypoint] = "target is not a Prefect flow"
            else:
                path = Path(entrypoint)
                spec = importlib.util.spec_from_file_location(path.stem, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {entrypoint}")
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
        except BaseException as error:  # a probe must report, whatever the module raised
            failures[entrypoint] = f"{type(error).__name__}: {error}"
    return failures


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
