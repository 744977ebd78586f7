"""Missing ratings with known totals: the exact marginal over every consistent assignment.

Reviews publish per-study risk-of-bias ratings only in a supplement, and their text gives the
totals ("low 10, moderate 19, high 11" of 40 studies). With J studies, K levels and totals
T_1..T_K (sum J), every assignment b of levels to the studies with those counts is equally
likely a priori (probability 1 / N, N = J! / prod_k T_k!), and a rated study's level is fixed.
Given per-study log-likelihoods L[j, k] (study j's data if its level were k), the likelihood of
the data is

    p(y | theta) = (1 / N) sum_{b : counts(b) = T} prod_j exp(L[j, b_j])

which a forward recursion over the studies computes exactly: its state after j studies is the
count of each level used so far, and a state is reached after exactly as many studies as its
counts add up to, so a pass visits each of the prod_k (T_k + 1) states once: K x prod_k
(T_k + 1) steps (3 x 2,640 for the bundled review), not K^J. The same recursion run
backwards gives each study's posterior level probabilities P(b_j = k | y, theta), which are
also the gradient of log p(y | theta) with respect to L[j, k]; summed over the studies they
equal the totals exactly.

The recursion is a numba kernel (:func:`forward_backward_packed`) that follows a table of the
states, tabulated with numpy once per data set (:func:`packed_states`);
:func:`forward_backward` does both. The model's likelihood Op (:mod:`bayesreview.backend.ops`),
which builds L from the parameters, calls the kernel on the table it holds as data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numba
import numpy as np
from scipy.special import gammaln

from bayesreview.errors import DataError

__all__ = [
    "MAX_STATES",
    "assignment_count",
    "check_totals",
    "count_states",
    "forward_backward",
    "forward_backward_packed",
    "level_probabilities_given_totals",
    "log_likelihood_given_totals",
    "packed_states",
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
        number of studies, rated studies that already exceed a level's total, or totals too
        large for the exact recursion (more than :data:`MAX_STATES` count states).
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
    states = math.prod(v + 1 for v in values)
    if states > MAX_STATES:
        raise DataError(
            f"bias_totals: {states:,} count states (the product of total + 1 over the levels) "
            f"exceed the {MAX_STATES:,} the exact recursion takes on; give the proportions as "
            "Dirichlet prior counts instead (bias_prior_counts)"
        )
    return np.asarray(values, dtype=np.int64)


def assignment_count(totals: Sequence[int]) -> float:
    """log N: the log of the number of assignments of levels with these totals."""
    totals = np.asarray(totals, dtype=float)
    return float(gammaln(totals.sum() + 1) - gammaln(totals + 1).sum())


#: Largest number of states (prod_k (T_k + 1)) the recursion takes on; beyond it the totals
#: are too large for an exact marginal and the Dirichlet form is the way.
MAX_STATES = 2_000_000


def count_states(totals: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The recursion's states (count vectors c, 0 <= c_k <= T_k) ordered by their count sum:
    ``offsets`` (the states of sum j are ``offsets[j]`` to ``offsets[j + 1] - 1``, those
    reachable after j studies) and ``successor`` (S, K): the state that adding one study at
    level k leads to, or -1 where c_k = T_k. The first state is all zeros, the last the
    totals; states of one sum keep their mixed-radix order (level 0 counting fastest).

    numpy, not numba: computed once per data set, it compiles nothing, and the likelihood's
    compiled code does not carry it.
    """
    totals = np.asarray(totals, dtype=np.int64)
    n_levels = totals.size
    stride = np.cumprod(np.concatenate(([1], totals[:-1] + 1)))
    # every count vector in mixed-radix order: state s has c_k = (s // stride_k) % (T_k + 1)
    counts = np.indices(tuple(totals[::-1] + 1)).reshape(n_levels, -1)[::-1].T
    level_sum = counts.sum(axis=1)
    order = np.argsort(level_sum, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    offsets = np.concatenate(([0], np.cumsum(np.bincount(level_sum, minlength=totals.sum() + 1))))
    room = counts[order] < totals
    following = np.where(room, order[:, None] + stride, 0)
    successor = np.where(room, position[following], -1)
    return offsets.astype(np.int64, copy=False), successor.astype(np.int64, copy=False)


def packed_states(totals: Sequence[int]) -> np.ndarray:
    """The totals (K,), then the offsets and the successor table (S x K, row by row) of
    :func:`count_states`, in one int64 vector: what :func:`forward_backward_packed` takes,
    computed once per data set (the likelihood Ops' ``totals`` input)."""
    totals = np.asarray(totals, dtype=np.int64)
    offsets, successor = count_states(totals)
    return np.concatenate((totals, offsets, successor.ravel()))


def forward_backward(loglik: np.ndarray, totals: Sequence[int]) -> tuple[float, np.ndarray]:
    """(log of the sum over consistent assignments of prod_j exp(L[j, b_j]), (J, K) level
    probabilities), without the 1 / N; -inf and zeros where no assignment is possible.

    The forward pass sums over the first j studies' assignments reaching each state (the
    counts of each level used so far; one value per state, since a state's count sum says
    after how many studies it is reached), the backward pass over the rest; both are kept on
    a linear scale, rescaled after every study. Each study's row of probabilities sums to 1,
    each level's column to its total.
    """
    return forward_backward_packed(np.asarray(loglik, dtype=float), packed_states(totals))


@numba.njit(cache=True)
def forward_backward_packed(loglik, packed):
    """:func:`forward_backward` on the states of :func:`packed_states` (``packed``), which a
    caller with many ``loglik`` for the same totals computes once."""
    n_rows, n_levels = loglik.shape
    n_assigned = 0
    for k in range(n_levels):
        n_assigned += packed[k]
    if n_assigned != n_rows:
        raise ValueError("forward_backward_packed: the totals must sum to the rows of loglik")
    # packed[offsets + j]: the first state of count sum j; packed[successors + i * K + k]:
    # state i's successor at level k (indexed in place: slices would be strided views)
    offsets = n_levels
    successors = offsets + n_rows + 2
    n_states = (packed.shape[0] - successors) // n_levels
    scaled = np.empty((n_rows, n_levels))
    log_z = 0.0
    probabilities = np.zeros((n_rows, n_levels))
    for j in range(n_rows):
        top = -math.inf
        for k in range(n_levels):
            top = max(top, loglik[j, k])
        if top == -math.inf:
            return -math.inf, probabilities
        for k in range(n_levels):
            scaled[j, k] = math.exp(loglik[j, k] - top)
        log_z += top
    # each state is reached after exactly (its count sum) studies: one value per state suffices
    forward = np.zeros(n_states)
    forward[0] = 1.0
    for j in range(n_rows):
        largest = 0.0
        for i in range(packed[offsets + j], packed[offsets + j + 1]):
            a = forward[i]
            if a == 0.0:
                continue
            for k in range(n_levels):
                following = packed[successors + i * n_levels + k]
                if following >= 0:
                    forward[following] += a * scaled[j, k]
        for i in range(packed[offsets + j + 1], packed[offsets + j + 2]):
            largest = max(largest, forward[i])
        if largest == 0.0:
            return -math.inf, probabilities
        for i in range(packed[offsets + j + 1], packed[offsets + j + 2]):
            forward[i] /= largest
        log_z += math.log(largest)
    after = np.zeros(n_states)
    after[n_states - 1] = 1.0
    for j in range(n_rows - 1, -1, -1):
        largest = 0.0
        for i in range(packed[offsets + j], packed[offsets + j + 1]):
            total = 0.0
            for k in range(n_levels):
                following = packed[successors + i * n_levels + k]
                if following >= 0:
                    v = scaled[j, k] * after[following]
                    total += v
                    probabilities[j, k] += forward[i] * v
            after[i] = total  # the states of sum j: read only from study j - 1 on
            largest = max(largest, total)
        row = 0.0
        for k in range(n_levels):
            row += probabilities[j, k]
        for k in range(n_levels):
            probabilities[j, k] /= row
        for i in range(packed[offsets + j], packed[offsets + j + 1]):
            after[i] /= largest
    return log_z, probabilities


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
    log_z, _ = forward_backward(loglik, totals)
    return float(log_z - assignment_count(totals))


def level_probabilities_given_totals(loglik: np.ndarray, totals: Sequence[int]) -> np.ndarray:
    """(J, K) posterior probability of each study's level given the data and the totals.

    ``P(b_j = k | y, theta)``, by the forward and the backward recursion; each row sums to 1
    and each column to its total (to rounding). It is also the gradient of
    :func:`log_likelihood_given_totals` with respect to ``loglik``.
    """
    loglik, totals = _checked(loglik, totals)
    log_z, probabilities = forward_backward(loglik, totals)
    if not np.isfinite(log_z):
        raise ValueError("no assignment consistent with the totals has positive likelihood")
    return probabilities
