"""Known risk-of-bias totals (issue 14): the recursion against brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp

from bayesreview.errors import DataError
from bayesreview.known_totals import (
    assignment_count,
    check_totals,
    level_probabilities_given_totals,
    log_likelihood_given_totals,
)

TOTALS = (3, 3, 2)


def _enumerate(loglik: np.ndarray, totals) -> tuple[float, np.ndarray]:
    """log p(y) and P(b_j = k | y) over every assignment of levels with the given counts."""
    n_studies, n_levels = loglik.shape
    weights, assignments = [], []
    for levels in itertools.product(range(n_levels), repeat=n_studies):
        if tuple(np.bincount(levels, minlength=n_levels)) == tuple(totals):
            weights.append(loglik[np.arange(n_studies), levels].sum())
            assignments.append(levels)
    weights = np.asarray(weights)
    log_z = logsumexp(weights)
    marginals = np.zeros(loglik.shape)
    for w, levels in zip(weights, assignments, strict=True):
        marginals[np.arange(n_studies), levels] += np.exp(w - log_z)
    return float(log_z - np.log(len(assignments))), marginals


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recursion_equals_enumeration_of_all_assignments(seed):
    loglik = np.random.default_rng(seed).normal(-2.0, 1.5, (8, 3))
    expected, marginals = _enumerate(loglik, TOTALS)
    assert log_likelihood_given_totals(loglik, TOTALS) == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(level_probabilities_given_totals(loglik, TOTALS), marginals)


def test_rated_studies_fix_their_level():
    loglik = np.random.default_rng(5).normal(-2.0, 1.0, (8, 3))
    rated = loglik.copy()
    rated[0, 1:] = -np.inf  # study 0 rated level 0
    rated[4, [0, 2]] = -np.inf  # study 4 rated level 1
    expected, marginals = _enumerate(rated, TOTALS)
    assert log_likelihood_given_totals(rated, TOTALS) == pytest.approx(expected, abs=1e-12)
    got = level_probabilities_given_totals(rated, TOTALS)
    np.testing.assert_allclose(got, marginals, atol=1e-12)
    assert got[0, 0] == 1.0 and got[4, 1] == 1.0


def test_expected_numbers_per_level_equal_the_totals():
    loglik = np.random.default_rng(9).normal(-3.0, 2.0, (40, 3))
    totals = (10, 19, 11)  # the review's text: low 10, moderate 19, high 11
    probabilities = level_probabilities_given_totals(loglik, totals)
    np.testing.assert_allclose(probabilities.sum(axis=0), totals, rtol=0, atol=1e-9)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)


def test_the_probabilities_are_the_gradient():
    loglik = np.random.default_rng(3).normal(-2.0, 1.0, (8, 3))
    gradient = np.zeros(loglik.shape)
    step = 1e-6
    for index in np.ndindex(loglik.shape):
        up, down = loglik.copy(), loglik.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = (
            log_likelihood_given_totals(up, TOTALS) - log_likelihood_given_totals(down, TOTALS)
        ) / (2 * step)
    np.testing.assert_allclose(
        level_probabilities_given_totals(loglik, TOTALS), gradient, atol=1e-7
    )


def test_with_no_information_every_consistent_assignment_is_equally_likely():
    # flat likelihoods: p(y) = 1 (log 0), and each study is at level k with probability T_k/J
    flat = np.zeros((8, 3))
    assert log_likelihood_given_totals(flat, TOTALS) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(
        level_probabilities_given_totals(flat, TOTALS), np.tile(np.array(TOTALS) / 8, (8, 1))
    )
    assert assignment_count(TOTALS) == pytest.approx(np.log(560))  # 8! / (3! 3! 2!)


LEVELS = ("low", "moderate", "high")


def test_totals_are_checked_against_the_table():
    observed = [None] * 7 + ["high"]
    np.testing.assert_array_equal(
        check_totals(LEVELS, {"low": 3, "moderate": 3, "high": 2}, observed), TOTALS
    )
    with pytest.raises(DataError, match=r"low 3 \+ moderate 3 \+ high 3 = 9 studies.*has 8"):
        check_totals(LEVELS, {"low": 3, "moderate": 3, "high": 3}, observed)
    with pytest.raises(DataError, match="'serious' is not a level"):
        check_totals(LEVELS, {"low": 3, "moderate": 3, "serious": 2}, observed)
    with pytest.raises(DataError, match=r"bias_totals\['high'\] = 0, but 1 studies are already"):
        check_totals(LEVELS, {"low": 4, "moderate": 4, "high": 0}, observed)
    with pytest.raises(DataError, match="no total for level"):
        check_totals(LEVELS, {"low": 5, "moderate": 3}, observed)
