"""CSV records as event JSON: the header row names the fields, one record per event.

Each record becomes a JSON object of its non-empty cells, every value a string
(the parser reads ``"1600000000"``, ``"true"`` and ``"5"`` as the spec allows);
a ``category`` cell holding a JSON array of strings becomes that array. Records
may span lines (quoted line breaks); each is reported with the line it starts
on and its original bytes.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator
from typing import Final

import msgspec

_END_OF_DATA: Final = "unexpected end of data"
#: The csv module's error for a field over ``csv.field_size_limit()`` (128 KiB).
_FIELD_LIMIT: Final = "field larger than field limit"


class RecordTooLong(Exception):
    """A CSV record grew beyond the limit (usually an unbalanced quote)."""


class CsvRecords:
    """Iterates ``(first_line, original_bytes, element_json_or_reason)`` of a CSV file.

    ``lines`` yields ``(number, line_without_break, had_break)``. The result is
    the record's JSON object as bytes, or a ``str`` reason when the record is
    malformed (more cells than names, bad quoting, invalid UTF-8); missing
    trailing cells are empty. A record cut
    off by the end of the data raises ``csv.Error``; one over ``max_record_bytes``,
    or with a field over the csv module's limit (128 KiB: an unbalanced quote that
    swallowed the records after it), raises ``RecordTooLong``. ``record_line`` is
    the line the current record starts on.
    """

    def __init__(self, lines: Iterator[tuple[int, bytes, bool]], max_record_bytes: int) -> None:
        self._lines = lines
        self._max = max_record_bytes
        self._consumed: list[bytes] = []
        self._size = 0
        self.record_line = 0

    def _text_lines(self) -> Iterator[str]:
        for number, line, had_break in self._lines:
            if not self._consumed:
                self.record_line = number
            self._consumed.append(line.removesuffix(b"\r"))
            self._size += len(line) + 1
            if self._size > self._max:
                raise RecordTooLong(f"a CSV record is longer than {self._max} bytes "
                                    "(an unbalanced quote?)")
            yield line.decode("utf-8", "surrogateescape") + ("\n" if had_break else "")

    def __iter__(self) -> Iterator[tuple[int, bytes, bytes | str]]:
        reader = csv.reader(self._text_lines(), strict=True)
        header: list[str] | None = None
        while True:
            self._consumed, self._size = [], 0
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if _END_OF_DATA in str(exc):
                    raise
                if _FIELD_LIMIT in str(exc):  # a quote opened and not closed in sight
                    raise RecordTooLong(f"a CSV field is longer than {csv.field_size_limit()} "
                                        "bytes (an unbalanced quote?)") from None
                yield self.record_line, b"\n".join(self._consumed), f"malformed CSV: {exc}"
                continue
            original = b"\n".join(self._consumed)
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            if header is None:
                header = [name.strip() for name in row]
                continue
            yield self.record_line, original, _element(header, row, original)


def _element(header: list[str], row: list[str], original: bytes) -> bytes | str:
    # Fewer cells than names: the missing ones are empty (some writers drop them).
    if len(row) > len(header):
        return f"{len(row)} fields, but the header names {len(header)}"
    try:
        original.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 (byte {exc.start} of the record)"
    fields: dict[str, object] = {name: value for name, value in zip(header, row, strict=False)
                                 if name and value != ""}
    category = fields.get("category")
    if isinstance(category, str) and category.startswith("["):
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            fields["category"] = msgspec.json.decode(category, type=list[str])
    return msgspec.json.encode(fields)
