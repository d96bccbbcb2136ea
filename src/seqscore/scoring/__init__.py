"""Scoring: window counts to SEQ scores, exactly (spec/scoring-model.md).

``model`` holds the numbers (``ScoringModel``, ``DEFAULT_MODEL``, ``load_model``),
``score`` the rules (``score_day``). Pure: imports nothing of seqscore but ``types``.
"""

from seqscore.scoring.model import (
    DEFAULT_MODEL,
    ModelError,
    ScoringModel,
    apply_overrides,
    load_model,
    provider_for_domain,
)
from seqscore.scoring.score import ScoreDecision, score_day, to_day_result

__all__ = [
    "DEFAULT_MODEL",
    "ModelError",
    "ScoreDecision",
    "ScoringModel",
    "apply_overrides",
    "load_model",
    "provider_for_domain",
    "score_day",
    "to_day_result",
]
