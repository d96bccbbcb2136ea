"""ScoringModel: the spec's defaults, validation, TOML overrides, provider lookup."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from seqscore.scoring.model import (
    DEFAULT_MODEL,
    Band,
    Direction,
    ModelError,
    ScoringModel,
    SpamDenominator,
    apply_overrides,
    load_model,
    provider_for_domain,
)


def test_default_model_is_the_spec_v1() -> None:
    m = DEFAULT_MODEL
    assert (m.version, m.short_window_days, m.long_window_days, m.engagement_window_days) == (
        "v1", 7, 30, 90)
    assert (m.min_denominator, m.min_messages, m.top_providers, m.cap_above_lowest) == (
        100, 1000, 5, 1)
    assert m.spam_denominator == SpamDenominator.DELIVERED
    assert dict(m.weights) == {
        "spam_rate": Fraction(3, 10), "bounce_classification": Fraction(1, 5),
        "bounce_rate": Fraction(1, 5), "engagement_recency": Fraction(3, 20),
        "open_rate": Fraction(3, 20)}
    lower, higher = Direction.LOWER_IS_BETTER, Direction.HIGHER_IS_BETTER
    assert dict(m.bands) == {
        "spam_rate": Band(lower, (Fraction(1, 20), Fraction(1, 10), Fraction(1, 5),
                                  Fraction(3, 10))),
        "bounce_rate": Band(lower, (Fraction(1), Fraction(2), Fraction(5), Fraction(10))),
        "bounce_classification": Band(lower, (Fraction(1, 10), Fraction(1, 2), Fraction(1),
                                              Fraction(3))),
        "open_rate": Band(higher, (Fraction(20), Fraction(15), Fraction(10), Fraction(5))),
        "engagement_recency": Band(higher, (Fraction(50), Fraction(35), Fraction(20),
                                            Fraction(10))),
    }


def test_default_provider_map_matches_events_spec() -> None:
    assert len(DEFAULT_MODEL.providers) == 21
    assert {d: p for d, p in DEFAULT_MODEL.providers.items() if p == "apple"} == {
        "icloud.com": "apple", "me.com": "apple", "mac.com": "apple"}
    assert DEFAULT_MODEL.providers["hotmail.fr"] == "microsoft"
    assert DEFAULT_MODEL.providers["yahoo.co.jp"] == "yahoo"
    assert DEFAULT_MODEL.providers["aol.com"] == "yahoo"


@pytest.mark.parametrize(("domain", "provider"), [
    ("gmail.com", "gmail"), ("GoogleMail.COM", "gmail"), (" live.co.uk. ", "microsoft"),
    ("aim.com", "yahoo"), ("Example.COM.", "example.com"), ("mail.gmail.com", "mail.gmail.com"),
])
def test_provider_for_domain(domain: str, provider: str) -> None:
    assert provider_for_domain(DEFAULT_MODEL, domain) == provider


def test_model_is_frozen_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_MODEL.min_messages = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        DEFAULT_MODEL.weights["spam_rate"] = Fraction(1)  # type: ignore[index]
    assert hash(ScoringModel()) == hash(DEFAULT_MODEL) and ScoringModel() == DEFAULT_MODEL


def _weights(**changes: Fraction) -> dict[str, Fraction]:
    return {**DEFAULT_MODEL.weights, **changes}


@pytest.mark.parametrize(("changes", "key"), [
    ({"weights": _weights(spam_rate=Fraction(35, 100))}, "weights"),
    ({"weights": _weights(spam_rate=Fraction(-1, 10), open_rate=Fraction(11, 20))},
     "weights.spam_rate"),
    ({"weights": {"spam_rate": Fraction(1)}}, "weights"),
    ({"short_window_days": 0}, "short_window_days"),
    ({"min_denominator": 0}, "min_denominator"),
    ({"top_providers": True}, "top_providers"),
    ({"short_window_days": 31}, "short_window_days/long_window_days"),
    ({"engagement_window_days": 29}, "long_window_days/engagement_window_days"),
    ({"bands": {**DEFAULT_MODEL.bands, "spam_rate": Band(
        Direction.LOWER_IS_BETTER, (Fraction(1), Fraction(1), Fraction(2), Fraction(3)))}},
     "bands.spam_rate.edges_pct"),
    ({"bands": {**DEFAULT_MODEL.bands, "open_rate": Band(
        Direction.HIGHER_IS_BETTER, (Fraction(5), Fraction(10), Fraction(15), Fraction(20)))}},
     "bands.open_rate.edges_pct"),
    ({"bands": {**DEFAULT_MODEL.bands, "open_rate": Band(
        Direction.HIGHER_IS_BETTER, (Fraction(20), Fraction(10), Fraction(5)))}},
     "bands.open_rate.edges_pct"),
    ({"spam_denominator": "recipients"}, "spam_denominator"),
    ({"version": ""}, "version"),
])
def test_invalid_model_names_the_key(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(ModelError) as caught:
        ScoringModel(**changes)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "model.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_model_partial_override_keeps_other_defaults(tmp_path: Path) -> None:
    model = load_model(write(tmp_path, 'version = "v1-small"\nmin_messages = 500\n'))
    assert model == dataclasses.replace(DEFAULT_MODEL, version="v1-small", min_messages=500)


def test_load_model_empty_file_is_the_default(tmp_path: Path) -> None:
    assert load_model(write(tmp_path, "")) == DEFAULT_MODEL
    assert load_model(write(tmp_path, 'version = "v1"\nmin_messages = 1000\n')) == DEFAULT_MODEL


def test_load_model_reads_numbers_exactly(tmp_path: Path) -> None:
    model = load_model(write(tmp_path, """
version = "x"
[bands.spam_rate]
edges_pct = [0.1, "0.2", "3/10", 1]
[bands.open_rate]
direction = "higher_is_better"
edges_pct = [30, 20.5, 10, 5]
[weights]
spam_rate = 0.1
engagement_recency = "7/20"
"""))
    assert model.bands["spam_rate"].edges_pct == (
        Fraction(1, 10), Fraction(1, 5), Fraction(3, 10), Fraction(1))
    assert model.bands["open_rate"].edges_pct[1] == Fraction(41, 2)
    assert model.weights["spam_rate"] == Fraction(1, 10)
    assert model.weights["engagement_recency"] == Fraction(7, 20)
    assert model.weights["bounce_rate"] == Fraction(1, 5)  # merged over the default
    assert model.bands["bounce_rate"] == DEFAULT_MODEL.bands["bounce_rate"]


def test_load_model_flips_a_direction(tmp_path: Path) -> None:
    model = load_model(write(tmp_path, """
version = "x"
[bands.engagement_recency]
direction = "lower_is_better"
edges_pct = [10, 20, 35, 50]
"""))
    assert model.bands["engagement_recency"].direction == Direction.LOWER_IS_BETTER


def test_load_model_extends_providers(tmp_path: Path) -> None:
    model = load_model(write(tmp_path, 'version = "x"\n[providers]\n"Proton.me" = "proton"\n'))
    assert provider_for_domain(model, "proton.me") == "proton"
    assert provider_for_domain(model, "gmail.com") == "gmail"


def test_load_model_openers(tmp_path: Path) -> None:
    model = load_model(write(tmp_path, 'version = "x"\nspam_denominator = "openers"\n'))
    assert model.spam_denominator is SpamDenominator.OPENERS


@pytest.mark.parametrize(("text", "key"), [
    ('version = "x"\nmin_mesages = 5\n', "min_mesages"),
    ('version = "x"\nmin_messages = "1000"\n', "min_messages"),
    ('version = "x"\nmin_messages = 1000.0\n', "min_messages"),
    ('version = "x"\ntop_providers = true\n', "top_providers"),
    ('version = "x"\nlong_window_days = 5\n', "short_window_days/long_window_days"),
    ('version = "x"\nspam_denominator = "recipients"\n', "spam_denominator"),
    ('version = 2\n', "version"),
    ('version = "x"\nbands = 1\n', "bands"),
    ('version = "x"\n[bands.spam]\nedges_pct = [1, 2, 3, 4]\n', "bands.spam"),
    ('version = "x"\n[bands.spam_rate]\nedges = [1, 2, 3, 4]\n', "bands.spam_rate.edges"),
    ('version = "x"\n[bands.spam_rate]\nedges_pct = [1, 2, "x", 4]\n',
     "bands.spam_rate.edges_pct[2]"),
    ('version = "x"\n[bands.spam_rate]\nedges_pct = [4, 3, 2, 1]\n', "bands.spam_rate.edges_pct"),
    ('version = "x"\n[bands.spam_rate]\nedges_pct = [1, 2, 3]\n', "bands.spam_rate.edges_pct"),
    ('version = "x"\n[bands.spam_rate]\ndirection = "up"\n', "bands.spam_rate.direction"),
    ('version = "x"\n[weights]\nspam_rate = 0.35\n', "weights"),
    ('version = "x"\n[weights]\nspam = 0.3\n', "weights.spam"),
    ('version = "x"\n[providers]\n"a.example" = 1\n', "providers.a.example"),
    ("min_messages = 500\n", "version"),
    ('version = "v1"\nmin_messages = 500\n', "version"),
])
def test_load_model_error_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ModelError) as caught:
        load_model(write(tmp_path, text))
    assert caught.value.key == key


def test_load_model_weights_error_message(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"^weights: must sum to 1, they sum to 1\.05$"):
        load_model(write(tmp_path, 'version = "x"\n[weights]\nspam_rate = 0.35\n'))


def test_load_model_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "version = \n")
    with pytest.raises(ModelError, match="not valid TOML") as caught:
        load_model(path)
    assert caught.value.key == str(path)


def test_apply_overrides_rejects_floats() -> None:
    with pytest.raises(ModelError, match="not exact") as caught:
        apply_overrides(DEFAULT_MODEL, {"version": "x", "weights": {"spam_rate": 0.3}})
    assert caught.value.key == "weights.spam_rate"
