"""Validation of the /v3/engagementquality query parameters, row by row.

The table in spec/seq-api.md is encoded as data: each field's checks run in
table order and the field reports only its first failing row; the answer holds
one error per failing field, in table order.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from seqscore.errors import FieldError, InvalidInput
from seqscore.types import Day

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SIGNED_INT_RE = re.compile(r"-?[0-9]+")
_BIGINT_MAX = 2**63 - 1


def _msg(text: str) -> str:
    return f"failed to parse request: {text}"


def _bounded_int(digits: str) -> int:
    """A ``-?[0-9]+`` string as an int, clamped to the BIGINT range.

    Clamping first keeps arbitrarily long inputs away from ``int()``, which refuses
    strings over 4300 digits (a ValueError, i.e. a 500, instead of a 400).
    """
    sign = -1 if digits.startswith("-") else 1
    magnitude = digits.lstrip("-").lstrip("0") or "0"
    if len(magnitude) > len(str(_BIGINT_MAX)):
        return sign * _BIGINT_MAX
    return sign * min(int(magnitude), _BIGINT_MAX)


def _parse_day(text: str) -> Day | None:
    if not _DATE_RE.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RangeParams:
    first: Day
    last: Day


@dataclass(frozen=True, slots=True)
class PageParams:
    day: Day
    limit: int
    after_user_id: int | None


def _check_date(
    name: str, raw: str | None, today: Day, history_days: int, *, future_allowed: bool
) -> tuple[Day | None, FieldError | None]:
    if raw is None or raw == "":
        return None, FieldError(name, _msg(f'"{name}" must be provided'))
    day = _parse_day(raw)
    if day is None:
        return None, FieldError(name, _msg(f'"{name}" invalid'))
    if (today - day).days > history_days:
        return None, FieldError(
            name, _msg(f'"{name}" cannot be more than {history_days} days in the past'))
    if not future_allowed and day > today:
        return None, FieldError(name, _msg(f'"{name}" cannot be in the future'))
    return day, None


def parse_range(query: Mapping[str, str], *, today: Day, history_days: int) -> RangeParams:
    """``from``/``to`` of /scores; raises ``InvalidInput`` with SendGrid's messages."""
    errors: list[FieldError] = []
    first, from_error = _check_date("from", query.get("from"), today, history_days,
                                    future_allowed=True)
    last, to_error = _check_date("to", query.get("to"), today, history_days,
                                 future_allowed=False)
    if from_error:
        errors.append(from_error)
    if to_error:
        errors.append(to_error)
    elif first is not None and last is not None and first > last:
        errors.append(FieldError("to", _msg('"from" cannot come after "to"')))
    if errors:
        raise InvalidInput(errors)
    assert first is not None and last is not None
    return RangeParams(first, last)


def parse_page(
    query: Mapping[str, str], *, today: Day, history_days: int, limit_max: int
) -> PageParams:
    """``date``/``limit``/``after_key`` of /subusers/scores; raises ``InvalidInput``."""
    errors: list[FieldError] = []
    day, date_error = _check_date("date", query.get("date"), today, history_days,
                                  future_allowed=False)
    if date_error:
        errors.append(date_error)

    limit = limit_max
    raw_limit = query.get("limit")
    if raw_limit is not None:
        value = _bounded_int(raw_limit) if _SIGNED_INT_RE.fullmatch(raw_limit) else None
        if value is None or value > limit_max:
            errors.append(FieldError("limit", _msg('"limit" invalid')))
        elif value <= 0:
            errors.append(FieldError("limit", _msg('"limit" must be a positive integer')))
        else:
            limit = value

    after: int | None = None
    raw_after = query.get("after_key")
    if raw_after is not None:
        if not raw_after.isascii() or not raw_after.isdigit():
            errors.append(FieldError("after_key", _msg('"after_key" invalid')))
        else:
            # user_ids are BIGINTs: a larger key is valid and simply follows them all
            after = _bounded_int(raw_after)

    if errors:
        raise InvalidInput(errors)
    assert day is not None
    return PageParams(day, limit, after)
