"""A restart net, `pgrep -f x || x`: what it watches, what it starts, and whether the one
finds the other.

A crontab keeps a service alive with such a line every few minutes; under the layer, which
restarts a service itself, the net is accounted for as part of the `@reboot` service it watches
(classify.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from automates.crontab.commands import (
    WATCHERS,
    Command,
    Context,
    Outcome,
    service_from_tokens,
)
from automates.crontab.shell import REDIRECTIONS, ShellSyntaxError, Token, split

_PGREP_VALUE = {
    "-u",
    "-U",
    "-g",
    "-G",
    "-P",
    "-s",
    "-t",
    "-F",
    "-d",
    "--euid",
    "--uid",
    "--pidfile",
}


@dataclass(frozen=True)
class Net:
    """A restart net, `CHECK || START`: START runs when CHECK finds no process."""

    watch: str  # CHECK as written, e.g. `pgrep -f loop.sh`
    start: Command  # START, read as a service's command
    watches_start: bool  # whether CHECK's pattern matches the command START runs


def restart_net(command: str, context: Context) -> Net | None:
    """`pgrep [-f] PATTERN || START` (or `pidof NAME || START`, output redirections allowed on
    both sides); None when the command is not of that form."""
    if "||" not in command:
        return None
    try:
        tokens = list(split(command).tokens)
    except ShellSyntaxError:
        return None
    cut = next((i for i, t in enumerate(tokens) if t.operator == "||"), None)
    if cut is None:
        return None
    check = _plain_words(tokens[:cut])
    if not check or PurePosixPath(check[0]).name not in WATCHERS:
        return None
    start = service_from_tokens(tokens[cut + 1 :], context, command)
    argv = start.argv if start.outcome in (Outcome.READY, Outcome.BROKEN) else ()
    return Net(" ".join(check), start, bool(argv) and _watches(check, argv))


def _plain_words(tokens: Sequence[Token]) -> list[str] | None:
    """The literal words of a simple command, output redirections skipped; None if anything
    else is there (another operator, a substitution)."""
    words: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.operator is not None:
            if token.operator not in REDIRECTIONS or token.operator in ("<", "<<", "<&"):
                return None
            index += 2
            continue
        if token.literal is None:
            return None
        words.append(token.literal)
        index += 1
    return words


def _watches(check: list[str], argv: Sequence[str]) -> bool:
    """Whether the check finds the process that `argv` starts: `pgrep -f` matches the whole
    command line, `pgrep` the process name (15 characters at most), `pidof` the program or,
    with -x, the script's name."""
    program, args = PurePosixPath(check[0]).name, check[1:]
    names = {PurePosixPath(a).name for a in argv[:2]}
    if program == "pidof":
        operands, skip = [], False
        for arg in args:
            if skip or arg.startswith("-"):
                skip = arg == "-o"
                continue
            operands.append(arg)
        return bool(operands) and all(name in names for name in operands)
    full = exact = False
    pattern = None
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in _PGREP_VALUE:
            index += 2
            continue
        if arg in ("--full", "--exact"):
            full, exact = full or arg == "--full", exact or arg == "--exact"
        elif arg.startswith("-") and not arg.startswith("--"):
            full, exact = full or "f" in arg, exact or "x" in arg
        elif not arg.startswith("-"):
            pattern = arg
            break
        index += 1
    if pattern is None:
        return False
    try:
        compiled = re.compile(pattern)
    except re.error:
        return False
    candidates = [" ".join(argv)] if full else [PurePosixPath(argv[0]).name[:15]]
    if exact:
        return any(compiled.fullmatch(c) for c in candidates)
    return any(compiled.search(c) for c in candidates)
