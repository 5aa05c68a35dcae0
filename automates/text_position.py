"""Where a byte stands in a text file an operator wrote: its line and column, for errors that
point at it (a registry or a crontab that is not UTF-8)."""

from __future__ import annotations


class NotUtf8(ValueError):
    """Bytes that are not UTF-8: the first bad byte, and where it stands. The message says it
    plainly (`not UTF-8: byte 0xe9 at line 3, column 14`); a reader may word its own."""

    def __init__(self, byte: int, line: int, column: int) -> None:
        super().__init__(f"not UTF-8: byte 0x{byte:02x} at line {line}, column {column}")
        self.byte = byte
        self.line = line
        self.column = column


def utf8_text(data: bytes) -> str:
    """`data` decoded as UTF-8, or `NotUtf8` pointing at its first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = line_and_column(data, error.start)
        raise NotUtf8(data[error.start], line, column) from None


def line_and_column(data: bytes, index: int) -> tuple[int, int]:
    """The 1-based line and column of `data[index]`, columns counted in characters."""
    line_start = data.rfind(b"\n", 0, index) + 1
    line = data.count(b"\n", 0, index) + 1
    column = len(data[line_start:index].decode("utf-8", errors="replace")) + 1
    return line, column
