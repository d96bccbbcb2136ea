"""Exact numbers: parsing configured values, writing fractions as text."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from seqscore.scoring.exact import decimal_text, exact_text, parse_exact


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
