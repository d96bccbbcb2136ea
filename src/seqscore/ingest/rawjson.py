"""The ``raw`` column: an event's other fields as JSON, scrubbed and size-capped.

``raw`` keeps what has no column (custom args, ``reason``, ``url``...) and any
column field whose value could not be read, so nothing a sender posted is lost.
Two rules apply before it is stored:

- **No plaintext recipient.** Every occurrence of the event's own address is
  replaced by ``[recipient]``, case-insensitively, also in its JSON-escaped
  and URL-encoded spellings (``@`` as ``%40``, or every reserved character
  percent-encoded), and as ``\\u0040`` in JSON text held in a string value:
  bounce reasons and click URLs often quote it. Escapes such as ``\\u0040``
  are undone first so they cannot hide it. Other addresses
  (the sender's, say) are not the recipient's and are left alone.
- **A size cap** (``cap_bytes``, UTF-8 bytes of the JSON text, default 4096;
  at least 64, or 0 to store no raw JSON at all). An object over the cap keeps
  its fields in order while they fit, skips the ones that do not, and gains
  ``"~truncated": <bytes of the whole object>``.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

import msgspec

#: What an address is replaced with in ``raw``.
REDACTED: Final = "[recipient]"
#: Smallest cap that leaves room for the truncation marker.
MIN_CAP_BYTES: Final = 64
_TRUNCATED_KEY: Final = "~truncated"
_BACKSLASH: Final = ord("\\")
_MARKER_RESERVE: Final = 40  # bytes for ,"~truncated":<digits>}


class RawJson:
    """Finishes the ``raw`` text of events: scrub, then cap."""

    __slots__ = ("_cap",)

    def __init__(self, cap_bytes: int) -> None:
        if cap_bytes != 0 and cap_bytes < MIN_CAP_BYTES:
            raise ValueError(f"raw_cap_bytes must be 0 or at least {MIN_CAP_BYTES}: {cap_bytes}")
        self._cap = cap_bytes

    def finish(self, encoded: bytes, address: bytes | None) -> str | None:
        """The ``raw`` text of one event from its encoded other fields.

        ``encoded`` is a JSON object (``b"{}"`` when there is nothing else: then
        None); ``address`` is the event's normalised recipient as UTF-8, if it
        has one, to be scrubbed out.
        """
        if len(encoded) <= 2 or self._cap == 0:
            return None
        if address is not None:
            # Most events are decided here: the address is not there, nor possibly
            # hidden behind an escape (\u0040) or a URL encoding (%40). ASCII case
            # folding suffices for an ASCII address. (find() and an int membership
            # test are much faster than bytes "in".)
            lowered = encoded.lower()
            if (not address.isascii() or lowered.find(address) >= 0
                    or _BACKSLASH in lowered or lowered.find(b"%40") >= 0):
                scrubbed = _scrub(encoded, address)
                if scrubbed is None:
                    return None
                encoded = scrubbed
        if len(encoded) <= self._cap:
            return encoded.decode("utf-8", "surrogatepass")
        return _truncate(encoded, self._cap)


def _scrub(encoded: bytes, address: bytes) -> bytes | None:
    """JSON text ``encoded`` with the normalised ``address`` (UTF-8) replaced by
    ``REDACTED`` in every spelling (module docstring); None when the replacement
    could not be confirmed (exotic Unicode case folding), so nothing is stored."""
    if _BACKSLASH in encoded:
        encoded = _unescape(encoded)
    text = encoded.decode("utf-8", "surrogatepass")
    name = address.decode("utf-8", "surrogatepass")
    forms = {name, name.replace("@", "%40"), urllib.parse.quote(name, safe=""),
             msgspec.json.encode(name).decode("utf-8", "surrogatepass")[1:-1],
             # JSON text inside a string value (a custom arg), its "@" escaped there
             msgspec.json.encode(name.replace("@", "\\u0040")).decode(
                 "utf-8", "surrogatepass")[1:-1]}
    pattern = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    text = re.sub(pattern, REDACTED, text, flags=re.IGNORECASE)
    lowered_text = text.lower()
    if any(form in lowered_text for form in forms):
        return None
    return text.encode("utf-8", "surrogatepass")


def _unescape(encoded: bytes) -> bytes:
    # Re-encoding writes only the escapes JSON requires, so letters and "@" are literal.
    try:
        return msgspec.json.encode(msgspec.json.decode(encoded))
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return encoded


def _truncate(encoded: bytes, cap: int) -> str:
    marker = f'"{_TRUNCATED_KEY}":{len(encoded)}'.encode()
    try:
        fields = msgspec.json.decode(encoded)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        fields = None
    parts: list[bytes] = []
    if isinstance(fields, dict):
        budget = cap - _MARKER_RESERVE
        for key, value in fields.items():
            part = msgspec.json.encode(key) + b":" + msgspec.json.encode(value)
            if len(part) + 1 <= budget:
                parts.append(part)
                budget -= len(part) + 1
    parts.append(marker)
    return (b"{" + b",".join(parts) + b"}").decode("utf-8", "surrogatepass")
