"""A cron command split the way /bin/sh would split it, to know what it would run.

cron hands every command to `/bin/sh -c`. The guard runs one executable with its arguments and
no shell, so a command translates only if the shell would have done nothing but split words
and apply redirections. This reads quotes, backslashes, operators (`|`, `&&`, `;`, `&`, `>`,
`2>&1` ...), comments, and marks what the shell would have expanded (`$NAME`, `$(...)`,
backquotes, globs, `~`) instead of expanding it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Longest first, so `>>` is not read as two `>`.
OPERATORS = (
    *("&&", "||", ";;", ">>", ">&", "<&", "&>", "|&", "<<"),
    *("|", "&", ";", "<", ">", "(", ")"),
)
REDIRECTIONS = frozenset({">>", ">&", "<&", "&>", "<<", "<", ">"})
_OPERATOR_STARTS = frozenset(op[0] for op in OPERATORS)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GLOB = frozenset("*?[")


class ShellSyntaxError(ValueError):
    """The command is not even valid shell (an unterminated quote)."""


@dataclass(frozen=True)
class Part:
    """A piece of a word: literal text, or a variable the shell would substitute."""

    text: str
    variable: bool = False


@dataclass(frozen=True)
class Token:
    """A word (its parts after quote removal) or an operator (`fd` for `2>`, `2>&`)."""

    parts: tuple[Part, ...] = ()
    operator: str | None = None
    fd: str | None = None
    expansions: tuple[str, ...] = field(default=())  # what else the shell would expand

    @property
    def literal(self) -> str | None:
        """The word as the shell would pass it, if nothing in it is substituted."""
        if self.operator is not None or any(p.variable for p in self.parts) or self.expansions:
            return None
        return "".join(p.text for p in self.parts)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(p.text for p in self.parts if p.variable)


@dataclass(frozen=True)
class Split:
    tokens: tuple[Token, ...]
    comment: str | None  # a trailing `# ...`, which the shell ignores


def split(command: str) -> Split:
    return _Splitter(command).run()


class _Splitter:
    def __init__(self, text: str) -> None:
        self.text = text
        self.index = 0
        self.tokens: list[Token] = []
        self.parts: list[Part] = []
        self.expansions: list[str] = []
        self.in_word = False
        self.quoted = False  # the current word has a quoted part (so `2` in `'2'>x` is no fd)

    def run(self) -> Split:
        text = self.text
        while self.index < len(text):
            char = text[self.index]
            if char in " \t\n":
                self._end_word()
                self.index += 1
            elif char == "#" and not self.in_word:
                self._end_word()
                return Split(tuple(self.tokens), text[self.index + 1 :].strip())
            elif char == "\\":
                self._literal(text[self.index + 1 : self.index + 2])
                self.index += 2
            elif char == "'":
                end = text.find("'", self.index + 1)
                if end < 0:
                    raise ShellSyntaxError("a single quote is not closed")
                self.quoted = True
                self._literal(text[self.index + 1 : end])
                self.index = end + 1
            elif char == '"':
                self._double_quoted()
            elif char == "$":
                self._dollar()
            elif char == "`":
                self._expansion("a backquoted command substitution")
                end = text.find("`", self.index + 1)
                if end < 0:
                    raise ShellSyntaxError("a backquote is not closed")
                self._literal(text[self.index : end + 1])
                self.index = end + 1
            elif (operator := self._operator()) is not None:
                self._emit_operator(operator)
            else:
                if not self.in_word and char == "~":
                    self._expansion("a ~ (the home folder)")
                elif char in _GLOB:
                    self._expansion(f"a glob character {char!r}")
                self._literal(char)
                self.index += 1
        self._end_word()
        return Split(tuple(self.tokens), None)

    def _operator(self) -> str | None:
        if self.text[self.index] not in _OPERATOR_STARTS:
            return None
        return next((op for op in OPERATORS if self.text.startswith(op, self.index)), None)

    def _emit_operator(self, operator: str) -> None:
        word = "".join(p.text for p in self.parts)
        fd = None
        plain = not self.quoted and not self.expansions and not any(p.variable for p in self.parts)
        if operator in REDIRECTIONS and self.in_word and word.isdigit() and plain:
            fd, self.parts, self.in_word = word, [], False
        self._end_word()
        self.tokens.append(Token(operator=operator, fd=fd))
        self.index += len(operator)

    def _double_quoted(self) -> None:
        text = self.text
        self.quoted = True
        self.in_word = True
        self.index += 1
        while self.index < len(text):
            char = text[self.index]
            if char == '"':
                self.index += 1
                return
            if char == "\\" and text[self.index + 1 : self.index + 2] in ('"', "\\", "$", "`"):
                self._literal(text[self.index + 1])
                self.index += 2
            elif char == "$":
                self._dollar()
            elif char == "`":
                self._expansion("a backquoted command substitution")
                self._literal(char)
                self.index += 1
            else:
                self._literal(char)
                self.index += 1
        raise ShellSyntaxError("a double quote is not closed")

    def _dollar(self) -> None:
        text, after = self.text, self.text[self.index + 1 :]
        if after.startswith("{"):
            end = after.find("}")
            name = after[1:end] if end > 0 else ""
            if end > 0 and _NAME.fullmatch(name):
                self._variable(name)
                self.index += end + 2
                return
        elif (match := _NAME.match(after)) is not None:
            self._variable(match.group())
            self.index += 1 + match.end()
            return
        if after.startswith("("):
            self._expansion("a $(...) command substitution")
        elif after[:1] and after[:1] not in " \t\"'":
            self._expansion(f"a special parameter ${after[:1]}")
        else:
            self._literal("$")  # a lone `$` is literal
            self.index += 1
            return
        self._literal(text[self.index : self.index + 2])
        self.index += 2

    def _variable(self, name: str) -> None:
        self.in_word = True
        self.parts.append(Part(name, variable=True))

    def _literal(self, text: str) -> None:
        self.in_word = True
        if self.parts and not self.parts[-1].variable:
            self.parts[-1] = Part(self.parts[-1].text + text)
        else:
            self.parts.append(Part(text))

    def _expansion(self, what: str) -> None:
        self.in_word = True
        self.expansions.append(what)

    def _end_word(self) -> None:
        if self.in_word:
            self.tokens.append(Token(parts=tuple(self.parts), expansions=tuple(self.expansions)))
        self.parts, self.expansions, self.in_word, self.quoted = [], [], False, False
