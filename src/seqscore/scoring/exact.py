"""Exact numbers in and out of the scoring model.

Every number of the model (band edges, weights) and every rate is a
``fractions.Fraction``; floats never take part in a decision. This module turns
configured values into fractions and fractions into text for explanations and docs.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

#: Decimal places shown for a value whose decimal expansion does not terminate.
APPROX_PLACES = 6


def parse_exact(value: object) -> Fraction:
    """Read a configured number exactly.

    Accepts an ``int``, a ``Decimal`` (what ``tomllib`` gives for TOML floats when
    parsed with ``parse_float=Decimal``), a ``Fraction``, or a string such as
    ``"0.05"`` or ``"3/20"``. Rejects ``bool`` and ``float`` (a float such as
    ``0.1`` is not the number it was written as) with ``ValueError``.
    """
    if isinstance(value, bool | float):
        raise ValueError(f"{value!r} is not exact; write it as a string such as \"0.05\"")
    if isinstance(value, int | Decimal | Fraction):
        return Fraction(value)
    if isinstance(value, str):
        try:
            return Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{value!r} is not a number") from None
    raise ValueError(f"{value!r} is not a number")


def is_terminating(value: Fraction) -> bool:
    """True when ``value`` has a finite decimal expansion (denominator 2^a * 5^b)."""
    rest = value.denominator
    for prime in (2, 5):
        while rest % prime == 0:
            rest //= prime
    return rest == 1


def _decimal_places(value: Fraction) -> int:
    # For a terminating fraction, the number of places is the larger exponent of 2 or 5.
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    return places


def decimal_text(value: Fraction, approx_places: int = APPROX_PLACES) -> tuple[str, bool]:
    """The decimal text of ``value`` and whether that text is exact.

    A terminating value is written in full with no trailing zeros
    (``Fraction(1, 10)`` -> ``("0.1", True)``). Any other value is rounded half up
    (away from zero on ties) to ``approx_places`` places
    (``Fraction(100, 3)`` -> ``("33.333333", False)``); decisions never use this text.
    """
    exact = is_terminating(value)
    places = _decimal_places(value) if exact else approx_places
    scaled = abs(value) * 10**places
    digits = math.floor(scaled + Fraction(1, 2))
    text = format(Decimal(digits).scaleb(-places), "f")
    if value < 0 and digits != 0:
        text = "-" + text
    return text, exact


def exact_text(value: Fraction) -> str:
    """``value`` as exact text: a decimal when it terminates (``"0.05"``), else ``"n/d"``."""
    text, exact = decimal_text(value)
    return text if exact else str(value)
