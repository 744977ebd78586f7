"""Numbers as people read them: percentages rounded the way papers print them."""

from __future__ import annotations

import math


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
