from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from seqscore.settings import SETTINGS, Settings, settings_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def test_every_setting_is_declared_once_with_the_dataclass_default():
    fields = {f.name: f.default for f in dataclasses.fields(Settings)}
    declared = {s.name: s.default for s in SETTINGS}
    assert fields == declared


def test_docs_settings_table_matches_the_declarations():
    assert settings_markdown() in DOC.read_text(encoding="utf-8"), (
        "docs/settings.md is stale: regenerate with `seqscore settings --markdown`")


def test_environment_overrides_defaults_and_explicit_options_override_both():
    env = {"SEQSCORE_SETTLE_MINUTES": "15", "SEQSCORE_WORKER": "off",
           "SEQSCORE_DATA_DIR": "/tmp/x"}
    settings = Settings.from_env(env, data_dir=Path("/tmp/y"))
    assert (settings.settle_minutes, settings.worker, settings.data_dir) == (
        15, False, Path("/tmp/y"))


def test_a_bad_value_names_its_variable():
    with pytest.raises(ValueError, match="SEQSCORE_PORT"):
        Settings.from_env({"SEQSCORE_PORT": "eighty"})
