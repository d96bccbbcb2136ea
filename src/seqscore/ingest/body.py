"""A webhook body as a whole: UTF-8, a JSON array, its elements undecoded.

The checks that decide between a 400 (``BodyError``: nothing of the body is
stored) and a per-event outcome.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec
from msgspec import Raw

from seqscore.errors import SeqscoreError

_NOT_ARRAY: Final = {
    ord("{"): "an object", ord('"'): "a string", ord("t"): "a boolean", ord("f"): "a boolean",
    ord("n"): "null",
}
_LEADING_WS = re.compile(rb"[ \t\r\n]*")


class BodyError(SeqscoreError, ValueError):
    """The body as a whole is unusable: not UTF-8, not JSON, not an array, too deep.

    Nothing of such a body is stored; the message says what is wrong (the API
    answers 400 with it).
    """


def split_body(body: bytes) -> list[Raw]:
    """The elements of a JSON-array body, undecoded. Raises ``BodyError``.

    Errors, each with a specific message: invalid UTF-8, empty, not valid JSON
    (with msgspec's byte position), valid JSON but not an array, nesting deeper
    than the interpreter's recursion limit allows (about 1000 levels).
    """
    check_utf8(body)
    try:
        return msgspec.json.decode(body, type=list[Raw])
    except msgspec.ValidationError:
        match = _LEADING_WS.match(body)
        first = body[match.end() if match else 0]
        what = _NOT_ARRAY.get(first, "a number")
        raise BodyError(f"body is not a JSON array of events (it is {what})") from None
    except msgspec.DecodeError as exc:
        if not body.strip():
            raise BodyError("body is empty, expected a JSON array of events") from None
        raise BodyError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BodyError("body is nested too deeply to be events") from None


def check_utf8(body: bytes) -> None:
    """Raises ``BodyError`` unless ``body`` is bytes of valid UTF-8."""
    try:
        str(body, "utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not valid UTF-8 (byte {exc.start})") from None
    except TypeError:
        raise BodyError("body is not bytes") from None


class Elements:
    """The raw elements of a body, split only when first needed (a reject, a
    derived id): the one-call fast path never needs them otherwise."""

    __slots__ = ("_body", "_items")

    def __init__(self, body: bytes, items: list[Raw] | None = None) -> None:
        self._body = body
        self._items = items

    @property
    def items(self) -> list[Raw]:
        if self._items is None:
            self._items = split_body(self._body)
        return self._items

    def __getitem__(self, index: int) -> Raw:
        return self.items[index]
