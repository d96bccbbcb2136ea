"""docs/scoring.md shows the model's own tables and a TOML example that loads."""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from pathlib import Path

from seqscore.scoring.doc import BEGIN, END, generated_block, render_tables, replace_block
from seqscore.scoring.model import DEFAULT_MODEL, Band, Direction, SpamDenominator, load_model

DOC = Path(__file__).resolve().parents[2] / "docs" / "scoring.md"


def test_doc_tables_are_generated_from_default_model() -> None:
    assert generated_block(DOC.read_text(encoding="utf-8")) == render_tables(DEFAULT_MODEL), (
        "docs/scoring.md is out of date: python -m seqscore.scoring.doc docs/scoring.md")


def test_render_tables_shows_the_spec_rows() -> None:
    tables = render_tables(DEFAULT_MODEL)
    for row in ("| spam_rate | 0.05 | 0.1 | 0.2 | 0.3 | ≥ 0.3 |",
                "| bounce_rate | 1 | 2 | 5 | 10 | ≥ 10 |",
                "| bounce_classification | 0.1 | 0.5 | 1 | 3 | ≥ 3 |",
                "| open_rate | 20 | 15 | 10 | 5 | < 5 |",
                "| engagement_recency | 50 | 35 | 20 | 10 | < 10 |",
                "| spam_rate | 0.3 |", "| open_rate | 0.15 |", "| `min_messages` | 1000 |",
                "| gmail | gmail.com, googlemail.com |"):
        assert row + "\n" in tables


def test_render_tables_follows_the_model() -> None:
    bands = {**DEFAULT_MODEL.bands, "spam_rate": Band(
        Direction.LOWER_IS_BETTER, (Fraction(1, 50), Fraction(1, 20), Fraction(1, 10),
                                    Fraction(1, 3)))}
    model = dataclasses.replace(DEFAULT_MODEL, version="v9", bands=bands, min_messages=10)
    tables = render_tables(model)
    assert "| spam_rate | 0.02 | 0.05 | 0.1 | 1/3 | ≥ 1/3 |\n" in tables
    assert "| `min_messages` | 10 |\n" in tables
    assert "Model version `v9`." in tables


def test_replace_block_swaps_only_the_block() -> None:
    text = f"intro\n{BEGIN}\nold\n{END}\noutro\n"
    replaced = replace_block(text, "new\n")
    assert replaced == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
    assert generated_block(replaced) == "new\n"


def test_doc_toml_example_loads(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1
    path = tmp_path / "model.toml"
    path.write_text(blocks[0], encoding="utf-8")
    model = load_model(path)
    assert model.version == "v1-strict-spam"
    assert model.min_messages == 500
    assert model.spam_denominator is SpamDenominator.OPENERS
    assert model.bands["spam_rate"].edges_pct == (
        Fraction(1, 50), Fraction(1, 20), Fraction(1, 10), Fraction(1, 5))
    assert model.weights["spam_rate"] == Fraction(2, 5)
    assert model.weights["engagement_recency"] == Fraction(1, 20)
    assert model.providers["protonmail.com"] == "proton"
