"""Numbers and names as people read them: percentages rounded the way papers print them, and
the outcomes in words."""

from __future__ import annotations

import math

#: The outcomes in words, as tables, figures and reports name them (lower case).
OUTCOME_WORDS = {
    "any": "any response (complete or partial)",
    "complete": "complete response",
    "partial": "partial response",
    "events": "events",
}


def outcome_words(outcome: str, capital: bool = False) -> str:
    """The outcome in words (:data:`OUTCOME_WORDS`), capitalised for a title; else itself."""
    words = OUTCOME_WORDS.get(outcome, outcome)
    return words[:1].upper() + words[1:] if capital else words


def percent(rate: float, digits: int = 0) -> str:
    """A 0-1 rate as a percentage string, rounded half up (62.5 -> "63", as journals print).

    Python's ``round`` rounds half to even (62.5 -> 62), which would disagree with published
    tables. NaN gives ``"NA"``.
    """
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return "NA"
    scale = 10**digits
    value = math.floor(100 * float(rate) * scale + 0.5 + 1e-9) / scale
    return f"{value:.{digits}f}"
