"""Missing ratings with known totals: the exact marginal over every consistent assignment.

Reviews publish per-study risk-of-bias ratings only in a supplement, and their text gives the
totals ("low 10, moderate 19, high 11" of 40 studies). With J studies, K levels and totals
T_1..T_K (sum J), every assignment b of levels to the studies with those counts is equally
likely a priori (probability 1 / N, N = J! / prod_k T_k!), and a rated study's level is fixed.
Given per-study log-likelihoods L[j, k] (study j's data if its level were k), the likelihood of
the data is

    p(y | theta) = (1 / N) sum_{b : counts(b) = T} prod_j exp(L[j, b_j])

which a forward recursion over the studies computes exactly: its state after j studies is the
count of each level used so far, so the cost is J x K x prod_k (T_k + 1) (40 x 3 x 2,640 for
the bundled review), not K^J. The same recursion run backwards gives each study's posterior
level probabilities P(b_j = k | y, theta), which are also the gradient of log p(y | theta)
with respect to L[j, k]; summed over the studies they equal the totals exactly.

Everything here is plain numpy on log-likelihood arrays; the model that uses it builds L from
its parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import gammaln, logsumexp

from bayesreview.errors import DataError

__all__ = [
    "assignment_count",
    "check_totals",
    "level_probabilities_given_totals",
    "log_likelihood_given_totals",
]


def check_totals(
    levels: Sequence[str], totals: Mapping[str, int], observed: Sequence[str | None]
) -> np.ndarray:
    """The totals as an array in the order of ``levels``, checked against the studies.

    Parameters
    ----------
    levels
        The covariate's levels, e.g. ``("low", "moderate", "high")``.
    totals
        Number of studies at each level, e.g. ``{"low": 10, "moderate": 19, "high": 11}``.
    observed
        Each study's rated level, or None where it is not rated.

    Raises
    ------
    DataError
        Naming the level and the numbers: a level that is not a level, a level without a
        total, a total that is not a whole number >= 0, totals that do not add up to the
        number of studies, or rated studies that already exceed a level's total.
    """
    unknown = [name for name in totals if name not in levels]
    if unknown:
        raise DataError(
            f"bias_totals: {', '.join(map(repr, unknown))} is not a level; the levels are "
            f"{', '.join(map(repr, levels))}"
        )
    missing = [name for name in levels if name not in totals]
    if missing:
        raise DataError(f"bias_totals: no total for level(s) {', '.join(map(repr, missing))}")
    values = []
    for name in levels:
        value = totals[name]
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise DataError(f"bias_totals[{name!r}] = {value!r}: must be a whole number >= 0")
        values.append(int(value))
    if sum(values) != len(observed):
        shown = " + ".join(f"{name} {v}" for name, v in zip(levels, values, strict=True))
        raise DataError(
            f"bias_totals: {shown} = {sum(values)} studies, but the table has {len(observed)}"
        )
    for name, value in zip(levels, values, strict=True):
        rated = sum(1 for level in observed if level == name)
        if rated > value:
            raise DataError(
                f"bias_totals[{name!r}] = {value}, but {rated} studies are already rated {name!r}"
            )
    return np.asarray(values, dtype=np.int64)


def assignment_count(totals: Sequence[int]) -> float:
    """log N: the log of the number of assignments of levels with these totals."""
    totals = np.asarray(totals, dtype=float)
    return float(gammaln(totals.sum() + 1) - gammaln(totals + 1).sum())


def _shift(values: np.ndarray, axis: int, step: int) -> np.ndarray:
    """``values`` moved by ``step`` (+1 or -1) along ``axis``, the vacated cells -inf."""
    out = np.full_like(values, -np.inf)
    source = [slice(None)] * values.ndim
    target = [slice(None)] * values.ndim
    if step > 0:
        source[axis], target[axis] = slice(None, -1), slice(1, None)
    else:
        source[axis], target[axis] = slice(1, None), slice(None, -1)
    out[tuple(target)] = values[tuple(source)]
    return out


def _forward(loglik: np.ndarray, totals: np.ndarray) -> list[np.ndarray]:
    """alpha_j(c) for j = 0..J: log of the sum over the first j studies' assignments with
    level counts c of prod exp(L); each array is shaped (T_1 + 1, ..., T_K + 1)."""
    alpha = np.full(tuple(totals + 1), -np.inf)
    alpha[(0,) * len(totals)] = 0.0
    out = [alpha]
    for row in loglik:
        alpha = logsumexp([_shift(alpha, k, +1) + row[k] for k in range(len(totals))], axis=0)
        out.append(alpha)
    return out


def _checked(loglik: np.ndarray, totals: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    loglik = np.asarray(loglik, dtype=float)
    totals = np.asarray(totals, dtype=np.int64)
    if loglik.ndim != 2 or loglik.shape[1] != len(totals):
        raise ValueError(f"loglik must be (studies, {len(totals)} levels), got {loglik.shape}")
    if totals.sum() != loglik.shape[0] or (totals < 0).any():
        raise ValueError(f"totals {totals.tolist()} must be >= 0 and sum to {loglik.shape[0]}")
    return loglik, totals


def log_likelihood_given_totals(loglik: np.ndarray, totals: Sequence[int]) -> float:
    """log p(y | theta) with each study's level unknown but the level totals known.

    Parameters
    ----------
    loglik
        (J, K) log-likelihood of each study at each level; a rated study has ``-inf`` at every
        level but its own.
    totals
        (K,) number of studies at each level, summing to J.

    Returns
    -------
    float
        log of (1 / N) sum over the consistent assignments of prod_j exp(L[j, b_j]); ``-inf``
        where no consistent assignment has positive likelihood (e.g. rated studies that
        exceed a total).
    """
    loglik, totals = _checked(loglik, totals)
    final = _forward(loglik, totals)[-1][tuple(totals)]
    return float(final - assignment_count(totals))


def level_probabilities_given_totals(loglik: np.ndarray, totals: Sequence[int]) -> np.ndarray:
    """(J, K) posterior probability of each study's level given the data and the totals.

    ``P(b_j = k | y, theta)``, by the forward and the backward recursion; each row sums to 1
    and each column to its total (to rounding). It is also the gradient of
    :func:`log_likelihood_given_totals` with respect to ``loglik``.
    """
    loglik, totals = _checked(loglik, totals)
    forward = _forward(loglik, totals)
    log_z = forward[-1][tuple(totals)]
    if not np.isfinite(log_z):
        raise ValueError("no assignment consistent with the totals has positive likelihood")
    # beta_j(c): log of the sum over the studies after j of prod exp(L), from counts c to T
    beta = np.full(tuple(totals + 1), -np.inf)
    beta[tuple(totals)] = 0.0
    out = np.zeros(loglik.shape)
    levels = range(len(totals))
    for j in range(loglik.shape[0] - 1, -1, -1):
        after = [_shift(beta, k, -1) for k in levels]  # beta_{j+1}(c + e_k)
        out[j] = [np.exp(logsumexp(forward[j] + loglik[j, k] + after[k]) - log_z) for k in levels]
        beta = logsumexp([loglik[j, k] + after[k] for k in levels], axis=0)
    return out
