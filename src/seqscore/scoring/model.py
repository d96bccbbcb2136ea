"""The scoring model: every number of spec/scoring-model.md as one frozen, versioned value.

``DEFAULT_MODEL`` is the spec's v1. ``load_model`` reads a TOML file that overrides
any subset of it; ``apply_overrides`` does the same from a mapping. A model is
validated whenever it is built, so an invalid one cannot exist. Every error is a
``ModelError`` whose message starts with the offending key (``weights: ...``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

from seqscore.scoring.exact import exact_text, parse_exact
from seqscore.types import METRIC_NAMES

#: Scores run 1..5, so a band table has one edge per score from 5 down to 2.
EDGES_PER_BAND = 4


class ModelError(ValueError):
    """An invalid scoring model or model file; ``key`` names the offending setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class Direction(StrEnum):
    LOWER_IS_BETTER = "lower_is_better"
    HIGHER_IS_BETTER = "higher_is_better"


class SpamDenominator(StrEnum):
    #: delivered messages (mailbox providers' published thresholds)
    DELIVERED = "delivered"
    #: engaged recipients (SendGrid's wording)
    OPENERS = "openers"


@dataclass(frozen=True, slots=True)
class Band:
    """One metric's band table: edges in percent for scores 5, 4, 3, 2 (else 1).

    Lower is better: score 5 if rate < edges_pct[0], 4 if < edges_pct[1], ...
    Higher is better: score 5 if rate >= edges_pct[0], 4 if >= edges_pct[1], ...
    A rate exactly on an edge therefore scores worse for lower-is-better metrics
    and better for higher-is-better ones.
    """

    direction: Direction
    edges_pct: tuple[Fraction, ...]


def _band(direction: Direction, *edges_pct: str) -> Band:
    return Band(direction, tuple(Fraction(edge) for edge in edges_pct))


_LOWER, _HIGHER = Direction.LOWER_IS_BETTER, Direction.HIGHER_IS_BETTER

DEFAULT_BANDS: Mapping[str, Band] = MappingProxyType({
    "engagement_recency": _band(_HIGHER, "50", "35", "20", "10"),
    "open_rate": _band(_HIGHER, "20", "15", "10", "5"),
    "bounce_classification": _band(_LOWER, "0.1", "0.5", "1", "3"),
    "bounce_rate": _band(_LOWER, "1", "2", "5", "10"),
    "spam_rate": _band(_LOWER, "0.05", "0.10", "0.20", "0.30"),
})

DEFAULT_WEIGHTS: Mapping[str, Fraction] = MappingProxyType({
    "engagement_recency": Fraction("0.15"),
    "open_rate": Fraction("0.15"),
    "bounce_classification": Fraction("0.20"),
    "bounce_rate": Fraction("0.20"),
    "spam_rate": Fraction("0.30"),
})

_PROVIDER_DOMAINS: dict[str, tuple[str, ...]] = {
    "gmail": ("gmail.com", "googlemail.com"),
    "microsoft": ("outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk",
                  "live.co.uk", "outlook.fr", "hotmail.fr"),
    "yahoo": ("yahoo.com", "ymail.com", "rocketmail.com", "aol.com", "aim.com",
              "yahoo.co.uk", "yahoo.fr", "yahoo.co.jp"),
    "apple": ("icloud.com", "me.com", "mac.com"),
}

#: domain -> mailbox provider (spec/events.md "Mailbox providers").
DEFAULT_PROVIDERS: Mapping[str, str] = MappingProxyType({
    domain: provider for provider, domains in _PROVIDER_DOMAINS.items() for domain in domains
})

_INT_SETTINGS: dict[str, int] = {  # name -> smallest allowed value
    "short_window_days": 1, "long_window_days": 1, "engagement_window_days": 1,
    "min_denominator": 1, "min_messages": 0, "top_providers": 1, "cap_above_lowest": 0,
}


@dataclass(frozen=True, slots=True)
class ScoringModel:
    """Every number the score depends on. Results carry ``version``: change it with
    any number. Windows are in UTC days; band edges are percent; weights are exact
    fractions summing to 1; ``providers`` maps a lower-case domain to its provider."""

    version: str = "v1"
    short_window_days: int = 7
    long_window_days: int = 30
    engagement_window_days: int = 90
    #: a measure is available when its denominator is at least this
    min_denominator: int = 100
    #: processed(long window) needed for a score
    min_messages: int = 1000
    top_providers: int = 5
    #: the score is at most the lowest metric score plus this
    cap_above_lowest: int = 1
    spam_denominator: SpamDenominator = SpamDenominator.DELIVERED
    bands: Mapping[str, Band] = field(default_factory=lambda: DEFAULT_BANDS)
    weights: Mapping[str, Fraction] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    providers: Mapping[str, str] = field(default_factory=lambda: DEFAULT_PROVIDERS)

    def __post_init__(self) -> None:
        _validate(self)
        # Read-only views, so a frozen model cannot change through its mappings.
        object.__setattr__(self, "spam_denominator", SpamDenominator(self.spam_denominator))
        object.__setattr__(self, "bands", MappingProxyType(dict(self.bands)))
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))
        object.__setattr__(self, "providers", MappingProxyType(
            {domain.lower(): provider for domain, provider in self.providers.items()}))

    def __hash__(self) -> int:
        return hash(tuple(
            tuple(sorted(value.items())) if isinstance(value, Mapping) else value
            for value in (getattr(self, f.name) for f in fields(self))
        ))


def _validate(model: ScoringModel) -> None:
    if not isinstance(model.version, str) or not model.version.strip():
        raise ModelError("version", "must be a non-empty string")
    for name, least in _INT_SETTINGS.items():
        value = getattr(model, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelError(name, f"must be an integer, got {value!r}")
        if value < least:
            raise ModelError(name, f"must be at least {least}, got {value}")
    windows = ("short_window_days", "long_window_days", "engagement_window_days")
    for shorter, longer in pairwise(windows):
        if getattr(model, shorter) > getattr(model, longer):
            raise ModelError(f"{shorter}/{longer}", f"{shorter} ({getattr(model, shorter)}) "
                             f"must not exceed {longer} ({getattr(model, longer)})")
    if model.spam_denominator not in set(SpamDenominator):
        raise ModelError("spam_denominator", f"must be one of {[str(s) for s in SpamDenominator]}"
                         f", got {model.spam_denominator!r}")
    _validate_metric_keys("bands", model.bands)
    for metric, band in model.bands.items():
        _validate_band(f"bands.{metric}", band)
    _validate_metric_keys("weights", model.weights)
    for metric, weight in model.weights.items():
        if not isinstance(weight, Fraction) or weight < 0:
            raise ModelError(f"weights.{metric}", f"must be an exact non-negative Fraction, "
                             f"got {weight!r}")
    total = sum(model.weights.values(), Fraction(0))
    if total != 1:
        raise ModelError("weights", f"must sum to 1, they sum to {exact_text(total)}")
    for domain, provider in model.providers.items():
        if not (isinstance(domain, str) and domain and isinstance(provider, str) and provider):
            raise ModelError(f"providers.{domain}", "domain and provider must be non-empty "
                             "strings")


def _validate_metric_keys(key: str, table: Mapping[str, object]) -> None:
    missing = [m for m in METRIC_NAMES if m not in table]
    unknown = sorted(set(table) - set(METRIC_NAMES))
    if missing or unknown:
        raise ModelError(key, f"needs exactly the metrics {list(METRIC_NAMES)}; "
                         f"missing {missing}, unknown {unknown}")


def _validate_band(key: str, band: Band) -> None:
    if not isinstance(band, Band) or band.direction not in set(Direction):
        raise ModelError(key, f"must be a Band with a direction of {[str(d) for d in Direction]}")
    edges = band.edges_pct
    if len(edges) != EDGES_PER_BAND or not all(isinstance(e, Fraction) for e in edges):
        raise ModelError(f"{key}.edges_pct",
                         f"needs {EDGES_PER_BAND} exact edges (scores 5, 4, 3, 2), got {edges!r}")
    if any(edge < 0 for edge in edges):
        raise ModelError(f"{key}.edges_pct", "edges are percentages and cannot be negative")
    pairs = list(pairwise(edges))
    if band.direction == Direction.LOWER_IS_BETTER:
        ok, order = all(a < b for a, b in pairs), "increase"
    else:
        ok, order = all(a > b for a, b in pairs), "decrease"
    if not ok:
        shown = ", ".join(exact_text(e) for e in edges)
        raise ModelError(f"{key}.edges_pct",
                         f"must strictly {order} for {band.direction}, got [{shown}]")


DEFAULT_MODEL = ScoringModel()


def provider_for_domain(model: ScoringModel, domain: str) -> str:
    """The mailbox provider of a recipient domain under ``model``.

    The domain is trimmed, lower-cased and stripped of a trailing dot first; a
    domain not in ``model.providers`` is its own provider (``"example.com"``).
    """
    normalised = domain.strip().lower().rstrip(".")
    return model.providers.get(normalised, normalised)


def load_model(path: str | Path, base: ScoringModel = DEFAULT_MODEL) -> ScoringModel:
    """Read a TOML model file: any subset of the settings, over ``base``.

    TOML floats are read as exact decimals (``0.05`` is exactly 5/100); numbers may
    also be strings (``"3/20"``). Raises ``ModelError`` naming the bad key, or the
    file for invalid TOML; ``OSError`` when the file cannot be read.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(str(path), f"not valid TOML: {exc}") from None
    return apply_overrides(base, data)


def apply_overrides(base: ScoringModel, data: Mapping[str, Any]) -> ScoringModel:
    """``base`` with the settings in ``data`` replaced (TOML layout, see docs/scoring.md).

    ``bands.<metric>`` may set ``edges_pct`` and/or ``direction``; ``weights`` and
    ``providers`` are merged key by key over ``base`` (the merged weights must still
    sum to 1). Raises ``ModelError`` naming the key for an unknown key, a wrong type,
    an invalid result, or a changed model that keeps ``base.version``.
    """
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key == "version":
            changes[key] = _require(key, value, str)
        elif key in _INT_SETTINGS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ModelError(key, f"must be an integer, got {value!r}")
            changes[key] = value
        elif key == "spam_denominator":
            try:
                changes[key] = SpamDenominator(_require(key, value, str))
            except ValueError:
                raise ModelError(key, f"must be one of {[str(s) for s in SpamDenominator]}, "
                                 f"got {value!r}") from None
        elif key == "bands":
            changes[key] = _merge_bands(base.bands, _require(key, value, Mapping))
        elif key == "weights":
            weights = dict(base.weights)
            for metric, weight in _require(key, value, Mapping).items():
                _require_metric(f"weights.{metric}", metric)
                weights[metric] = _exact(f"weights.{metric}", weight)
            changes[key] = weights
        elif key == "providers":
            providers = dict(base.providers)
            for domain, provider in _require(key, value, Mapping).items():
                providers[domain.lower()] = _require(f"providers.{domain}", provider, str)
            changes[key] = providers
        else:
            raise ModelError(key, "unknown setting")
    model = replace(base, **changes)
    if model != base and model.version == base.version:
        raise ModelError("version", f"the file changes the model but keeps version "
                         f"{base.version!r}; give the changed model its own version")
    return model


def _merge_bands(bands: Mapping[str, Band], data: Mapping[str, Any]) -> dict[str, Band]:
    merged = dict(bands)
    for metric, table in data.items():
        key = f"bands.{metric}"
        _require_metric(key, metric)
        band = merged[metric]
        for name, value in _require(key, table, Mapping).items():
            if name == "edges_pct":
                edges = _require(f"{key}.edges_pct", value, list)
                band = replace(band, edges_pct=tuple(
                    _exact(f"{key}.edges_pct[{i}]", edge) for i, edge in enumerate(edges)))
            elif name == "direction":
                try:
                    band = replace(band, direction=Direction(_require(f"{key}.direction",
                                                                      value, str)))
                except ValueError:
                    raise ModelError(f"{key}.direction", f"must be one of "
                                     f"{[str(d) for d in Direction]}, got {value!r}") from None
            else:
                raise ModelError(f"{key}.{name}", "unknown setting (edges_pct, direction)")
        merged[metric] = band
    return merged


_KIND_NAMES: dict[type, str] = {str: "string", list: "array", Mapping: "table"}


def _require(key: str, value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise ModelError(key, f"must be a {_KIND_NAMES[kind]}, got {value!r}")
    return value


def _require_metric(key: str, metric: str) -> None:
    if metric not in METRIC_NAMES:
        raise ModelError(key, f"unknown metric; metrics are {list(METRIC_NAMES)}")


def _exact(key: str, value: object) -> Fraction:
    try:
        return parse_exact(value)
    except ValueError as exc:
        raise ModelError(key, str(exc)) from None
