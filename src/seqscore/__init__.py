"""seqscore: self-hosted SendGrid Engagement Quality (SEQ) scores."""

__version__ = "0.1.0"
