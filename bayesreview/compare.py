"""Comparisons of modalities: pairwise posterior probabilities, rank probabilities and SUCRA.

Everything here is computed from the posterior draws of the pooled mean response rate
(``fit.draws("rate")``, the bias-adjusted population mean, or ``"rate_mix"``, averaged over the
observed mix of bias levels), one draw at a time, so each probability is a posterior
probability of a statement about the modalities' rates (not a p-value).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayesreview.errors import BayesReviewError

if TYPE_CHECKING:
    from bayesreview.fitting import Fit


#: Columns of :func:`pairwise`, in order (also the names of each row's fields below).
_PAIRWISE_COLUMNS = "outcome modality_a modality_b p_greater diff_median diff_lower diff_upper"


def _outcomes(fit: Fit, outcome: str | None) -> tuple[str, ...]:
    """The outcomes a table covers: all of the fit's for ``None``, else the one named."""
    if outcome is None:
        return tuple(fit.outcomes)
    if outcome not in fit.outcomes:
        raise BayesReviewError(
            f"outcome={outcome!r}: not an outcome of this fit, whose outcomes are "
            f"{', '.join(fit.outcomes)}"
        )
    return (outcome,)


def _check_level(level: float) -> None:
    if not isinstance(level, int | float) or not math.isfinite(level) or not 0 < level < 1:
        raise BayesReviewError(f"level={level!r}: must be a number strictly between 0 and 1")


def rate_draws(fit: Fit, outcome: str, adjusted: bool = True) -> np.ndarray:
    """Posterior draws of the pooled mean rate of every modality, shaped (draws, modalities).

    Parameters
    ----------
    fit
        A fitted meta-analysis.
    outcome
        One of ``fit.outcomes``.
    adjusted
        ``True`` (default): the bias-adjusted rate (``"rate"``, reference bias level);
        ``False``: the rate averaged over the observed mix of bias levels (``"rate_mix"``).
        Identical without a bias covariate.

    Returns
    -------
    numpy.ndarray
        Rates on the 0-1 scale; columns in the order of ``fit.groups``.
    """
    (outcome,) = _outcomes(fit, outcome)
    draws = fit.draws("rate" if adjusted else "rate_mix", outcome)
    return np.asarray(draws.transpose("sample", "group").sel(group=list(fit.groups)).values)


def pairwise(
    fit: Fit,
    outcome: str | None = None,
    threshold: float = 0.0,
    adjusted: bool = True,
    level: float = 0.95,
) -> pd.DataFrame:
    """Posterior probability that one modality's rate exceeds another's, for every pair.

    Parameters
    ----------
    fit
        A fitted meta-analysis.
    outcome
        One outcome of the fit; default None: every outcome (a long table).
    threshold
        Minimal important difference d on the rate scale (0-1): ``p_greater`` is
        P(rate_a - rate_b > d). Default 0. Must be finite and strictly between -1 and 1.
    adjusted
        ``True`` (default) compares bias-adjusted rates (reference bias level); ``False`` the
        rates averaged over the observed mix of bias levels.
    level
        Probability mass of the equal-tailed interval of the difference; default 0.95.

    Returns
    -------
    pandas.DataFrame
        One row per outcome and ordered pair of different modalities (a, b), in the order of
        ``fit.groups``: ``outcome``, ``modality_a``, ``modality_b``, ``p_greater``
        (P(rate_a - rate_b > threshold)), ``diff_median``, ``diff_lower``, ``diff_upper``
        (posterior median and equal-tailed interval of rate_a - rate_b, 0-1 scale).

    Raises
    ------
    BayesReviewError
        For an unknown outcome, or an invalid threshold or level.
    """
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float | np.floating | np.integer)
        or not math.isfinite(threshold)
        or not -1 < threshold < 1
    ):
        raise BayesReviewError(
            f"threshold={threshold!r}: must be a finite difference of rates strictly between "
            "-1 and 1 (rates are on the 0-1 scale: 0.1 means 10 percentage points)"
        )
    _check_level(level)
    tail = (1 - level) / 2
    rows = []
    for name in _outcomes(fit, outcome):
        rates = rate_draws(fit, name, adjusted)
        for a, group_a in enumerate(fit.groups):
            for b, group_b in enumerate(fit.groups):
                if a == b:
                    continue
                diff = rates[:, a] - rates[:, b]
                lower, median, upper = np.quantile(diff, [tail, 0.5, 1 - tail])
                p_greater = float(np.mean(diff > threshold))
                row = (name, group_a, group_b, p_greater, float(median), float(lower), float(upper))
                rows.append(row)
    return pd.DataFrame(rows, columns=_PAIRWISE_COLUMNS.split())


def rank_draws(rates: np.ndarray) -> np.ndarray:
    """Ordinal ranks of the columns of ``rates`` in every draw; rank 1 = highest rate.

    Parameters
    ----------
    rates
        Array shaped (draws, modalities).

    Returns
    -------
    numpy.ndarray
        Integer ranks 1..K with the same shape. Exact ties (probability 0 for continuous
        draws) are broken by column order.
    """
    order = np.argsort(-rates, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(rates.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, rates.shape[1] + 1)[None, :]
    return ranks


def ranks(fit: Fit, outcome: str | None = None, adjusted: bool = True) -> pd.DataFrame:
    """Rank probabilities, P(best), mean rank and SUCRA of each modality.

    Ranks are taken in every posterior draw of the pooled mean rates (rank 1 = highest rate).

    Parameters
    ----------
    fit
        A fitted meta-analysis.
    outcome
        One outcome of the fit; default None: every outcome (a long table).
    adjusted
        ``True`` (default) ranks bias-adjusted rates; ``False`` rates averaged over the
        observed mix of bias levels.

    Returns
    -------
    pandas.DataFrame
        One row per outcome and modality: ``outcome``, ``modality``, ``p_best`` (P(rank 1)),
        ``mean_rank``, ``sucra`` (surface under the cumulative ranking curve,
        sum_{r=1}^{K-1} P(rank <= r) / (K - 1): 1 = surely best, 0 = surely worst; NaN when
        K = 1) and ``p_rank_1`` ... ``p_rank_K``.

    Raises
    ------
    BayesReviewError
        For an unknown outcome.
    """
    k = len(fit.groups)
    frames = []
    for name in _outcomes(fit, outcome):
        rank = rank_draws(rate_draws(fit, name, adjusted))
        probs = np.stack([(rank == r).mean(axis=0) for r in range(1, k + 1)], axis=1)
        cumulative = np.cumsum(probs, axis=1)
        sucra = cumulative[:, : k - 1].sum(axis=1) / (k - 1) if k > 1 else np.full(k, np.nan)
        frame = pd.DataFrame(
            {
                "outcome": name,
                "modality": list(fit.groups),
                "p_best": probs[:, 0],
                "mean_rank": rank.mean(axis=0),
                "sucra": sucra,
            }
        )
        for r in range(k):
            frame[f"p_rank_{r + 1}"] = probs[:, r]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
