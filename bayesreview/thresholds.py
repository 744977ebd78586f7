"""Clinical thresholds: how likely a modality is to clear a bar that matters to patients.

For a threshold t on the 0-1 scale, per outcome and modality:

- ``p_pooled``: the posterior probability that the pooled rate is beyond t,
  P(rate > t | y) for a benefit (``better="higher"``), P(rate < t | y) for a harm;
- ``share_new``: the expected share of new studies whose true rate is beyond t, the posterior
  predictive probability P(p_new > t | y) = E[P(p_new > t | theta) | y]. It is the Bayesian
  counterpart of what R meta's ``cidprop`` reads off a prediction interval, and it is
  estimated from the posterior's draws of a new study's rate (``rate_pred``, one per
  posterior draw), so its Monte Carlo error is that of a proportion over the draws.

Rates are the bias-adjusted ones (at the reference level) unless ``adjusted=False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayesreview.compare import check_rate, direction_of, select_outcomes
from bayesreview.errors import BayesReviewError

if TYPE_CHECKING:
    from bayesreview.fitting import Fit

__all__ = ["DIRECTIONS", "exceedance"]

#: ``better`` -> the side of the threshold that counts.
DIRECTIONS = {"higher": "above", "lower": "below"}
#: The pooled estimands one can ask about, by their name in :meth:`Fit.summary`.
_ESTIMANDS = {"mean_rate": "rate", "median_rate": "rate_median"}


def _thresholds(threshold: float | Mapping[str, float], outcomes: tuple[str, ...]) -> dict:
    """One threshold per outcome, each checked to lie strictly between 0 and 1."""
    if isinstance(threshold, Mapping):
        missing = [o for o in outcomes if o not in threshold]
        if missing:
            raise BayesReviewError(f"threshold: no value for outcome(s) {', '.join(missing)}")
        values = {o: threshold[o] for o in outcomes}
    else:
        values = dict.fromkeys(outcomes, threshold)
    return {o: check_rate(f"threshold[{o!r}]", v) for o, v in values.items()}


def _beyond(draws: np.ndarray, threshold: float, better: str) -> np.ndarray:
    """Share of draws beyond the threshold (per column), on the side ``better`` says."""
    beyond = draws > threshold if better == "higher" else draws < threshold
    return beyond.mean(axis=0)


def exceedance(
    fit: Fit,
    threshold: float | Mapping[str, float],
    outcome: str | None = None,
    better: str | None = None,
    estimand: str = "mean_rate",
    adjusted: bool = True,
) -> pd.DataFrame:
    """Per outcome and modality, the probability of clearing ``threshold`` (see module docs).

    Parameters
    ----------
    fit
        A fitted meta-analysis.
    threshold
        A rate on the 0-1 scale (e.g. 0.5 for "at least half respond"), or one per outcome
        (``{"complete": 0.3, "any": 0.6}``).
    outcome
        One outcome; default every outcome of the fit.
    better
        ``"higher"`` (a benefit: counts rates above the threshold) or ``"lower"`` (a harm:
        counts rates below it); default the fit's own direction (:attr:`Fit.better`).
    estimand
        The pooled rate of ``p_pooled``: ``"mean_rate"`` (default) or ``"median_rate"``.
    adjusted
        With a bias covariate: rates at the reference level (default), or averaged over each
        modality's own mix of studies (``rate_mix``, ``rate_pred_mix``).

    Returns
    -------
    pandas.DataFrame
        ``outcome``, ``modality``, ``threshold``, ``direction`` (``"above"``/``"below"``),
        ``p_pooled`` and ``share_new``.
    """
    better = direction_of(fit, better)
    if estimand not in _ESTIMANDS:
        raise BayesReviewError(f"estimand={estimand!r}: must be one of {', '.join(_ESTIMANDS)}")
    if estimand == "median_rate" and not adjusted:
        raise BayesReviewError("estimand='median_rate' is reported at the reference level only")
    outcomes = select_outcomes(fit, outcome)
    thresholds = _thresholds(threshold, outcomes)
    pooled_name = _ESTIMANDS[estimand] if adjusted else "rate_mix"
    new_name = "rate_pred" if adjusted else "rate_pred_mix"
    rows = []
    for name in outcomes:
        t = thresholds[name]
        pooled = fit.draws(pooled_name, name).transpose("sample", "group").values
        new = fit.draws(new_name, name).transpose("sample", "group").values
        for group, p, share in zip(
            fit.groups, _beyond(pooled, t, better), _beyond(new, t, better), strict=True
        ):
            rows.append(
                {
                    "outcome": name,
                    "modality": group,
                    "threshold": t,
                    "direction": DIRECTIONS[better],
                    "p_pooled": float(p),
                    "share_new": float(share),
                }
            )
    return pd.DataFrame(rows)
