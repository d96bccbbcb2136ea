"""Exact numbers: parsing configured values, writing fractions as text."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqscore.scoring.exact import (
    decimal_text,
    exact_text,
    parse_exact,
    ratio_decimal_text,
    ratio_text,
)


@pytest.mark.parametrize(("value", "expected"), [
    (3, Fraction(3)), (Decimal("0.05"), Fraction(1, 20)), ("0.10", Fraction(1, 10)),
    (" 3/20 ", Fraction(3, 20)), (Fraction(1, 3), Fraction(1, 3)),
])
def test_parse_exact(value: object, expected: Fraction) -> None:
    assert parse_exact(value) == expected


@pytest.mark.parametrize("value", [0.1, True, "abc", "1/0", None, [1]])
def test_parse_exact_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_exact(value)


@pytest.mark.parametrize(("value", "text", "exact"), [
    (Fraction(0), "0", True), (Fraction(5), "5", True), (Fraction(1, 10), "0.1", True),
    (Fraction(1, 20), "0.05", True), (Fraction(7, 2), "3.5", True),
    (Fraction(1, 1024), "0.0009765625", True),
    (Fraction(100, 3), "33.333333", False), (Fraction(200, 3), "66.666667", False),
    (Fraction(2, 19), "0.105263", False), (Fraction(1, 3_000_000), "0.000000", False),
    (Fraction(-1, 8), "-0.125", True),
])
def test_decimal_text(value: Fraction, text: str, exact: bool) -> None:
    assert decimal_text(value) == (text, exact)


def test_decimal_text_approx_places() -> None:
    assert decimal_text(Fraction(2, 3), approx_places=2) == ("0.67", False)
    assert decimal_text(Fraction(1, 3), approx_places=0) == ("0", False)
    # a terminating value is always written in full
    assert decimal_text(Fraction(1, 1_600_000), approx_places=2) == ("0.000000625", True)


def test_exact_text() -> None:
    assert exact_text(Fraction(3, 20)) == "0.15"
    assert exact_text(Fraction(1, 3)) == "1/3"


# -- the integer forms scoring uses per result agree with Fraction and Decimal --------------

@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=-10**9, max_value=10**9),
       st.integers(min_value=1, max_value=10**9) | st.sampled_from([1, 2, 4, 5, 8, 10, 16, 125]),
       st.integers(min_value=0, max_value=8))
def test_ratio_texts_agree_with_fraction_and_decimal(numerator: int, denominator: int,
                                                     places: int) -> None:
    value = Fraction(numerator, denominator)
    assert ratio_text(abs(numerator), denominator) == str(abs(value))
    text, exact = ratio_decimal_text(numerator, denominator, places)
    rest = value.denominator
    for prime in (2, 5):
        while rest % prime == 0:
            rest //= prime
    assert exact == (rest == 1)
    if exact:
        assert Fraction(Decimal(text)) == value  # a terminating value is written in full
    else:  # rounded half up (away from zero) to `places` places
        assert abs(Fraction(Decimal(text)) - value) <= Fraction(1, 2 * 10**places)
        assert len(text.partition(".")[2]) == places
    assert decimal_text(value, places) == (text, exact)
