"""Split a JSON array read in blocks into its elements, without parsing it whole.

msgspec finds where an element ends: decoding the buffer from an element's
first byte stops at the end of that value and reports "trailing characters"
with a byte position. The position convention is calibrated once at import, so
a msgspec release that changes it is noticed (``SplitError``) rather than
producing wrong splits; the splitter's tests pin it too. Memory stays at one
read block plus the largest element.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Final

import msgspec

_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
_POSITION = re.compile(r"\(byte (\d+)\)")
#: A decode error this close to the end of the buffer may be a token cut in two.
_TOKEN_MARGIN: Final = 64
_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_BOM: Final = b"\xef\xbb\xbf"


class SplitError(Exception):
    """The data is not a well-formed JSON array; ``offset`` and ``line`` say where."""

    def __init__(self, message: str, offset: int, line: int) -> None:
        super().__init__(message)
        self.offset = offset
        self.line = line


def _calibrate() -> int | None:
    # b"0 ," has its trailing "," at index 2: how far off is msgspec's "byte N"?
    try:
        msgspec.json.decode(b"0 ,", type=msgspec.Raw)
    except msgspec.DecodeError as exc:
        match = _TRAILING.search(str(exc))
        if match:
            return int(match.group(1)) - 2
    return None


_POSITION_SHIFT: Final = _calibrate()


class ArraySplitter:
    """Yields ``(offset, line, element_bytes)`` for each element of JSON arrays.

    ``read(n)`` returns up to n bytes, ``b""`` at the end. Several arrays one
    after the other (saved webhook bodies appended to one file) are read as
    one. ``offset`` is the element's first byte in the stream and ``line`` its
    1-based line. Elements are returned as they are, not validated: that is the
    caller's job. Raises ``SplitError`` for anything that is not arrays of
    values, for data cut short, and for an element over ``max_element_bytes``.
    """

    def __init__(
        self, read: Callable[[int], bytes], *, block_bytes: int = 1 << 20,
        max_element_bytes: int = 16 << 20,
    ) -> None:
        self._read = read
        self._block = block_bytes
        self._max = max_element_bytes
        self._buf = b""
        self._pos = 0  # next unread byte of _buf
        self._base = 0  # stream offset of _buf[0]
        self._line = 1  # line number at _buf[_pos]
        self._eof = False

    def _fill(self) -> bool:
        """Append a block, dropping what was consumed; False at end of input."""
        if self._eof:
            return False
        data = self._read(self._block)
        if not data:
            self._eof = True
            return False
        self._base += self._pos
        self._buf = self._buf[self._pos:] + data
        self._pos = 0
        return True

    def _advance(self, to: int) -> None:
        self._line += self._buf.count(b"\n", self._pos, to)
        self._pos = to

    def _next_char(self) -> int | None:
        """Skip whitespace; the next byte (not consumed), or None at end of input."""
        while True:
            match = _WHITESPACE.match(self._buf, self._pos)
            assert match is not None  # matches the empty string at least
            self._advance(match.end())
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return None

    def _fail(self, message: str, at: int | None = None) -> SplitError:
        """A ``SplitError`` at ``at`` in the buffer (default: the read position)."""
        position = self._pos if at is None else at
        line = self._line + self._buf.count(b"\n", self._pos, max(position, self._pos))
        return SplitError(message, self._base + position, line)

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        if _POSITION_SHIFT is None:
            raise SplitError("this msgspec version reports JSON errors in an unknown form; "
                             "the JSON-array reader needs updating", 0, 1)
        while len(self._buf) < len(_BOM) and self._fill():
            pass
        if self._buf.startswith(_BOM):
            self._pos = len(_BOM)
        first = self._next_char()
        arrays = 0
        while first is not None:
            if first != ord("["):
                raise self._fail("unexpected data after the array" if arrays
                                 else "expected a JSON array ('[')")
            arrays += 1
            self._advance(self._pos + 1)
            following = self._next_char()
            if following == ord("]"):
                self._advance(self._pos + 1)
            else:
                yield from self._elements()
            first = self._next_char()

    def _elements(self) -> Iterator[tuple[int, int, bytes]]:
        decode = msgspec.json.Decoder(msgspec.Raw).decode
        shift = _POSITION_SHIFT
        assert shift is not None
        while True:
            if self._next_char() is None:
                raise self._fail("the data ends inside the array")
            start = self._pos
            end = -1
            while end < 0:
                problem = None  # msgspec's complaint, when not merely "truncated"
                view = memoryview(self._buf)[start:]
                try:
                    decode(view)
                except msgspec.DecodeError as exc:
                    match = _TRAILING.search(str(exc))
                    if match:
                        end = start + int(match.group(1)) - shift
                        break
                    # A token cut by the end of the buffer ("-", "tru") errors
                    # near that end: read on. An error well before it is real.
                    at = _POSITION.search(str(exc))
                    if at and int(at.group(1)) - shift + _TOKEN_MARGIN < len(view):
                        raise self._fail(f"invalid JSON: {exc}", start) from None
                    if "truncated" not in str(exc):
                        problem = str(exc)
                except RecursionError:
                    raise self._fail("an element is nested too deeply") from None
                finally:
                    view.release()
                # The value runs to the end of the buffer, or is cut short: read on.
                if len(self._buf) - start > self._max:
                    raise self._fail(f"an element is larger than {self._max} bytes")
                if not self._fill():
                    raise self._fail(f"invalid JSON: {problem}" if problem
                                     else "the data ends inside the array")
                start = self._pos  # the fill dropped what came before the element
            element = self._buf[start:end].rstrip(b" \t\r\n")
            if len(element) > self._max:
                raise self._fail(f"an element is larger than {self._max} bytes")
            yield self._base + start, self._line, element
            self._advance(end)
            separator = self._buf[end]
            self._advance(end + 1)
            if separator == ord("]"):
                return
            if separator != ord(","):
                self._pos = end
                raise self._fail(f"expected ',' or ']' after an element, found {chr(separator)!r}")
