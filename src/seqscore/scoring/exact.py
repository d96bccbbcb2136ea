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


def _twos_and_fives(denominator: int) -> tuple[int, int, int]:
    """``denominator`` as ``2**a * 5**b * rest``: returns ``(a, b, rest)``."""
    a = (denominator & -denominator).bit_length() - 1  # trailing zero bits
    rest, b = denominator >> a, 0
    while rest % 5 == 0:
        rest //= 5
        b += 1
    return a, b, rest


def is_terminating(value: Fraction) -> bool:
    """True when ``value`` has a finite decimal expansion (denominator 2^a * 5^b)."""
    return _twos_and_fives(value.denominator)[2] == 1


def decimal_text(value: Fraction, approx_places: int = APPROX_PLACES) -> tuple[str, bool]:
    """The decimal text of ``value`` and whether that text is exact.

    A terminating value is written in full with no trailing zeros
    (``Fraction(1, 10)`` -> ``("0.1", True)``). Any other value is rounded half up
    (away from zero on ties) to ``approx_places`` places
    (``Fraction(100, 3)`` -> ``("33.333333", False)``); decisions never use this text.
    """
    return ratio_decimal_text(value.numerator, value.denominator, approx_places)


def ratio_decimal_text(numerator: int, denominator: int,
                       approx_places: int = APPROX_PLACES) -> tuple[str, bool]:
    """``decimal_text`` of ``numerator / denominator`` (``denominator`` > 0, the
    fraction need not be reduced), in integer arithmetic only: scoring writes a
    dozen of these per result."""
    negative = numerator < 0
    numerator = abs(numerator)
    divisor = math.gcd(numerator, denominator)
    numerator, denominator = numerator // divisor, denominator // divisor
    twos, fives, rest = _twos_and_fives(denominator)
    exact = rest == 1
    # a terminating fraction needs as many places as the larger exponent of 2 or 5
    places = max(twos, fives) if exact else approx_places
    # floor(|value| * 10**places + 1/2), in integers
    digits = (2 * numerator * 10**places + denominator) // (2 * denominator)
    if places:
        whole, fraction = divmod(digits, 10**places)
        text = f"{whole}.{fraction:0{places}d}"
    else:
        text = str(digits)
    if negative and digits != 0:
        text = "-" + text
    return text, exact


def ratio_text(numerator: int, denominator: int) -> str:
    """``str(Fraction(numerator, denominator))`` (``denominator`` > 0) without building
    the Fraction: ``"n/d"`` in lowest terms, or ``"n"`` when d is 1."""
    divisor = math.gcd(numerator, denominator)
    numerator, denominator = numerator // divisor, denominator // divisor
    return str(numerator) if denominator == 1 else f"{numerator}/{denominator}"


def exact_text(value: Fraction) -> str:
    """``value`` as exact text: a decimal when it terminates (``"0.05"``), else ``"n/d"``."""
    text, exact = decimal_text(value)
    return text if exact else str(value)
