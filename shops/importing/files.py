"""From bytes to CSV records: sniff what the file is, its encoding and delimiter, then stream it."""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, BinaryIO

SNIFF_BYTES = 64 * 1024


class NotCsv(Exception):
    """The file is not something we can read as CSV; `reason` says what it is instead."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel .xls workbook"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "an RTF document"),
)


# Bytes that are not UTF-8 are read as cp1252 (what Excel on Windows writes); the five bytes cp1252
# leaves undefined fall back to Latin-1, so decoding never fails.
def _cp1252_char(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)


_CP1252 = [_cp1252_char(b) for b in range(256)]


def _decode_as_cp1252(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "".join(_CP1252[b] for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error("shops_import_cp1252", _decode_as_cp1252)
_ERRORS = "shops_import_cp1252"


@contextmanager
def open_binary(file: BinaryIO | bytes | str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    if isinstance(file, bytes | bytearray | memoryview):
        yield io.BytesIO(file)
    elif isinstance(file, str | os.PathLike):
        with open(file, "rb") as fh:
            yield fh
    else:
        yield file  # the caller's file: theirs to close


class _Prefixed(io.RawIOBase):
    """The bytes already sniffed, then the rest of the stream: lets us read ahead without seeking."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_csv(stream: IO[bytes]) -> Any:
    """A csv reader over `stream`, decoded and split as sniffed from its first 64 KB; raises NotCsv."""
    head = _read_up_to(stream, SNIFF_BYTES)
    at_eof = len(head) < SNIFF_BYTES
    encoding, reason = _sniff_encoding(head, at_eof=at_eof)
    if reason:
        raise NotCsv(reason)
    head_text = codecs.getincrementaldecoder(encoding)(errors=_ERRORS).decode(head, final=at_eof)
    text = io.TextIOWrapper(io.BufferedReader(_Prefixed(head, stream)), encoding=encoding, errors=_ERRORS, newline="")
    return csv.reader(text, delimiter=_sniff_delimiter(head_text), skipinitialspace=True)


class Unreadable(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


def numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """(first physical line of the record, its cells); raises Unreadable where the csv module gives up."""
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise Unreadable(start, str(exc)) from exc
        yield start, cells


def _read_up_to(stream: IO[bytes], size: int) -> bytes:
    """`size` bytes, fewer only at the end of the file (a raw stream may return less per read)."""
    chunks, got = [], 0
    while got < size and (chunk := stream.read(size - got)):
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def count_lines(stream: IO[bytes]) -> int | None:
    """Lines in a seekable file (for the progress bar), read in chunks; None when it can't seek."""
    try:
        if not stream.seekable():
            return None
        start = stream.tell()
    except (AttributeError, OSError):
        return None
    lf = cr = 0
    last = b""
    while chunk := stream.read(1 << 20):
        lf += chunk.count(b"\n")
        cr += chunk.count(b"\r")
        last = chunk[-1:]
    stream.seek(start)
    lines = lf or cr
    return lines + (1 if last and last not in b"\r\n" else 0)


def _sniff_encoding(head: bytes, *, at_eof: bool) -> tuple[str, str | None]:
    """(encoding, None), or ("", why this is not a CSV file)."""
    if not head.strip():
        return "", "The file is empty."
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return "", f"This is {what}, not a CSV file. Export the work orders as CSV and upload that."
    if head.lstrip()[:14].lower().startswith((b"<!doctype html", b"<html")):
        return "", "This is a web page (HTML), not a CSV file. Export the work orders as CSV and upload that."
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\x00" in head:
        return "", "This is a binary file, not a CSV file. Export the work orders as CSV and upload that."
    elif head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    else:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=at_eof)
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "cp1252"
    text = codecs.getincrementaldecoder(encoding)(errors=_ERRORS).decode(head, final=at_eof)
    if not text.strip():
        return "", "The file is empty."
    # Text has next to no control characters (DOS tools may end a file with Ctrl-Z); binary has lots.
    controls = sum(1 for ch in text if ch < " " and ch not in "\t\n\r\f\v\x1a")
    if controls > max(2, len(text) // 100):
        return "", "This is a binary file, not a CSV file. Export the work orders as CSV and upload that."
    return encoding, None


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header line most: comma, semicolon, tab or pipe."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
