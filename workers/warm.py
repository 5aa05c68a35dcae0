"""The warm worker for one pool: `python -m workers.warm [--pool warm]`.

`automates up` starts one when an automate declares the warm pool (AUTOMATES_WARM_POOL). It
fetches runs up to 10 s ahead of their scheduled time, polling every `--poll-seconds` (1 s by
default: a run started by hand waits about 0.5 s), and starts each at its scheduled time inside
its own process (automates/platform/inprocess.py).
"""

from __future__ import annotations

from workers.agents import serve

DEFAULT_POLL_SECONDS = 1.0


def main(argv: list[str] | None = None) -> None:
    serve(argv, __doc__, "warm", DEFAULT_POLL_SECONDS)


if __name__ == "__main__":
    main()
