"""Comparisons of modalities: pairwise posterior probabilities, rank probabilities and SUCRA.

Everything here is computed from the posterior draws of the pooled mean response rate
(``fit.draws("rate")``, the bias-adjusted population mean, or ``"rate_mix"``, averaged over the
observed mix of bias levels), one draw at a time, so each probability is a posterior
probability of a statement about the modalities' rates (not a p-value).

Direction: ``better="higher"`` means a higher rate is better (response, remission);
``better="lower"`` a lower rate is better (harms, bleeding, recurrence); the default is the
fit's own direction (:attr:`Fit.better`). It decides which
modality is "best" (rank 1), P(best), SUCRA and :func:`pairwise`'s ``p_better``; the
differences ``rate_a - rate_b`` and ``p_greater`` are on the rate scale whatever the direction.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayesreview.errors import BayesReviewError

if TYPE_CHECKING:
    from bayesreview.fitting import Fit


__all__ = [
    "BETTER",
    "check_better",
    "check_level",
    "check_rate",
    "direction_of",
    "pairwise",
    "rank_draws",
    "ranks",
    "rate_draws",
    "select_outcomes",
]

#: Accepted values of ``better``: whether a higher or a lower rate is the better one.
BETTER = ("higher", "lower")

#: Columns of :func:`pairwise`, in order (also the names of each row's fields below).
_PAIRWISE_COLUMNS = (
    "outcome modality_a modality_b p_greater p_better diff_median diff_lower diff_upper"
)


def select_outcomes(fit: Fit, outcome: str | None) -> tuple[str, ...]:
    """The outcomes a table or figure covers: all of the fit's for ``None``, else the one named.

    Parameters
    ----------
    fit
        A fitted meta-analysis.
    outcome
        One of ``fit.outcomes``, or None for all of them.

    Returns
    -------
    tuple of str
        Outcomes in the order of ``fit.outcomes``.

    Raises
    ------
    BayesReviewError
        For an outcome the fit does not have.
    """
    if outcome is None:
        return tuple(fit.outcomes)
    if outcome not in fit.outcomes:
        raise BayesReviewError(
            f"outcome={outcome!r}: not an outcome of this fit, whose outcomes are "
            f"{', '.join(fit.outcomes)}"
        )
    return (outcome,)


def check_level(level: float) -> None:
    """Check that an interval's probability mass ``level`` lies strictly between 0 and 1.

    Raises
    ------
    BayesReviewError
        For anything else (also a non-number, NaN or infinity).
    """
    if not isinstance(level, int | float) or not math.isfinite(level) or not 0 < level < 1:
        raise BayesReviewError(f"level={level!r}: must be a number strictly between 0 and 1")


def check_rate(name: str, value: float) -> float:
    """``value`` as a float, checked to be a rate strictly between 0 and 1.

    Raises
    ------
    BayesReviewError
        Naming ``name``, for anything else (also a bool, NaN or infinity).
    """
    number = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or not 0 < value < 1:
        raise BayesReviewError(f"{name} = {value!r}: must be a rate strictly between 0 and 1")
    return float(value)


def check_better(better: str) -> None:
    """Check that ``better`` is ``"higher"`` or ``"lower"``; BayesReviewError otherwise."""
    if not isinstance(better, str) or better not in BETTER:
        raise BayesReviewError(
            f"better={better!r}: must be 'higher' (a higher rate is better, e.g. response) or "
            "'lower' (a lower rate is better, e.g. adverse events, recurrence)"
        )


def direction_of(fit: Fit, better: str | None) -> str:
    """``better`` as given and checked, or the fit's own direction (:attr:`Fit.better`)."""
    if better is None:
        better = fit.better
    check_better(better)
    return better


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
    (outcome,) = select_outcomes(fit, outcome)
    draws = fit.draws("rate" if adjusted else "rate_mix", outcome)
    return np.asarray(draws.transpose("sample", "group").sel(group=list(fit.groups)).values)


def pairwise(
    fit: Fit,
    outcome: str | None = None,
    threshold: float = 0.0,
    adjusted: bool = True,
    level: float = 0.95,
    better: str | None = None,
) -> pd.DataFrame:
    """Posterior probability that one modality is better than another, for every pair.

    Parameters
    ----------
    fit
        A fitted meta-analysis.
    outcome
        One outcome of the fit; default None: every outcome (a long table).
    threshold
        Minimal important difference d on the rate scale (0-1): ``p_greater`` is
        P(rate_a - rate_b > d) and ``p_better`` is P(a better than b by more than d). Default
        0. Must be finite and strictly between -1 and 1.
    adjusted
        ``True`` (default) compares bias-adjusted rates (reference bias level); ``False`` the
        rates averaged over the observed mix of bias levels.
    level
        Probability mass of the equal-tailed interval of the difference; default 0.95.
    better
        ``"higher"`` (a higher rate is better, e.g. response) or ``"lower"`` (a lower rate is
        better, e.g. adverse events, recurrence); default the fit's own (:attr:`Fit.better`).

    Returns
    -------
    pandas.DataFrame
        One row per outcome and ordered pair of different modalities (a, b), in the order of
        ``fit.groups``: ``outcome``, ``modality_a``, ``modality_b``,

        - ``p_greater``: P(rate_a - rate_b > d), whatever ``better`` says;
        - ``p_better``: P(a is better than b by more than d) in the declared direction:
          P(rate_a - rate_b > d) with ``better="higher"`` (then equal to ``p_greater``),
          P(rate_b - rate_a > d) with ``better="lower"``;
        - ``diff_median``, ``diff_lower``, ``diff_upper``: posterior median and equal-tailed
          interval of rate_a - rate_b (0-1 scale; negative = a has the lower rate).

        ``.attrs["better"]`` records the direction.

    Raises
    ------
    BayesReviewError
        For an unknown outcome, or an invalid threshold, level or ``better``.
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
    check_level(level)
    better = direction_of(fit, better)
    sign = 1.0 if better == "higher" else -1.0
    tail = (1 - level) / 2
    rows = []
    for name in select_outcomes(fit, outcome):
        rates = rate_draws(fit, name, adjusted)
        for a, group_a in enumerate(fit.groups):
            for b, group_b in enumerate(fit.groups):
                if a == b:
                    continue
                diff = rates[:, a] - rates[:, b]
                lower, median, upper = np.quantile(diff, [tail, 0.5, 1 - tail])
                p_greater = float(np.mean(diff > threshold))
                p_better = float(np.mean(sign * diff > threshold))
                rows.append(
                    (
                        name,
                        group_a,
                        group_b,
                        p_greater,
                        p_better,
                        float(median),
                        float(lower),
                        float(upper),
                    )
                )
    table = pd.DataFrame(rows, columns=_PAIRWISE_COLUMNS.split())
    table.attrs["better"] = better
    return table


def rank_draws(rates: np.ndarray, better: str = "higher") -> np.ndarray:
    """Ordinal ranks of the columns of ``rates`` in every draw; rank 1 = the best rate.

    Parameters
    ----------
    rates
        Array shaped (draws, modalities).
    better
        ``"higher"`` (default): rank 1 = highest rate; ``"lower"``: rank 1 = lowest rate.

    Returns
    -------
    numpy.ndarray
        Integer ranks 1..K with the same shape. Exact ties (probability 0 for continuous
        draws) are broken by column order.

    Raises
    ------
    BayesReviewError
        For an invalid ``better``.
    """
    check_better(better)
    rates = np.asarray(rates)
    key = -rates if better == "higher" else rates
    order = np.argsort(key, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(rates.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, rates.shape[1] + 1)[None, :]
    return ranks


def ranks(
    fit: Fit, outcome: str | None = None, adjusted: bool = True, better: str | None = None
) -> pd.DataFrame:
    """Rank probabilities, P(best), mean rank and SUCRA of each modality.

    Ranks are taken in every posterior draw of the pooled mean rates; rank 1 is the best
    modality: the highest rate with ``better="higher"``, the lowest with ``better="lower"``
    (default: the fit's own direction, :attr:`Fit.better`).

    Parameters
    ----------
    fit
        A fitted meta-analysis.
    outcome
        One outcome of the fit; default None: every outcome (a long table).
    adjusted
        ``True`` (default) ranks bias-adjusted rates; ``False`` rates averaged over the
        observed mix of bias levels.
    better
        ``"higher"`` (a higher rate is better, e.g. response) or ``"lower"`` (a lower rate is
        better, e.g. adverse events, recurrence); default the fit's own (:attr:`Fit.better`).

    Returns
    -------
    pandas.DataFrame
        One row per outcome and modality: ``outcome``, ``modality``, ``p_best`` (P(rank 1):
        the probability of the highest rate, or of the lowest with ``better="lower"``),
        ``mean_rank``, ``sucra`` (surface under the cumulative ranking curve,
        sum_{r=1}^{K-1} P(rank <= r) / (K - 1): 1 = surely best, 0 = surely worst; NaN when
        K = 1) and ``p_rank_1`` ... ``p_rank_K``. ``.attrs["better"]`` records the direction.

    Raises
    ------
    BayesReviewError
        For an unknown outcome or an invalid ``better``.
    """
    better = direction_of(fit, better)
    k = len(fit.groups)
    frames = []
    for name in select_outcomes(fit, outcome):
        rank = rank_draws(rate_draws(fit, name, adjusted), better)
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
    table = pd.concat(frames, ignore_index=True)
    table.attrs["better"] = better
    return table
