"""The tabulated beta-binomial Op (bayesreview.backend.ops) against scipy, differences and limits.

The Op evaluates one stage's log-likelihood from the sufficient counts of
bayesreview.model_data.tabulate, with its gradient, in one compiled loop. Its value must equal the
sum over studies of scipy's beta-binomial log-pmf (less the binomial coefficients), its
gradient must equal finite differences of that value, and where the concentration underflows
it must equal the exact small-phi limit of the beta-binomial. The per-study Op (all stages,
missing bias levels marginalised) is checked against the mixture written out with scipy and
against finite differences, its log rising factorial and digamma against exact sums and scipy.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from conftest import rows_op_inputs
from pytensor.gradient import verify_grad
from scipy import special, stats

from bayesreview.backend.ops import (
    BetaBinomialRows,
    SimplexLogProbabilities,
    TabulatedBetaBinomial,
    _digamma,
    _log_rising_factorial,
    beta_binomial_rows,
    logit_normal_rows,
    tabulated_beta_binomial,
)
from bayesreview.known_totals import packed_states
from bayesreview.model_data import cell_covariates, model_data, tabulate


def _studies(bias: str | None, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_studies = 60
    n = rng.integers(1, 30, n_studies)
    table = pd.DataFrame(
        {
            "study": [f"s{j}" for j in range(n_studies)],
            "modality": rng.choice(["a", "b", "c"], n_studies),
            "n": n,
            "events": rng.binomial(n, rng.uniform(0.05, 0.95, n_studies)),
        }
    )
    if bias == "level":
        table["level"] = pd.Categorical(rng.choice(["low", "some", "high"], n_studies))
    if bias == "value":
        table["value"] = rng.normal(2000, 10, n_studies).round()
    return table


def _stage(bias: str | None, seed: int = 0):
    """(data, the Op's data inputs) for one stage of a synthetic table."""
    data = model_data(_studies(bias, seed), "events", by="modality", bias=bias)
    tabulated = tabulate(data)
    ((term_cell, *counts),) = tabulated.terms.values()
    inputs = (tabulated.cell_group, cell_covariates(data, tabulated), term_cell, *counts)
    return data, inputs


def _per_study_sum(data, alpha, log_phi, beta) -> float:
    """Sum over studies of scipy's beta-binomial log-pmf less log C(n, y)."""
    eta = alpha[data.group_idx]
    if data.bias is not None and data.bias.kind == "numeric":
        eta = eta + beta[0] * data.bias.codes
    elif data.bias is not None:
        eta = eta + np.concatenate([[0.0], beta])[data.bias.codes]
    phi = np.exp(log_phi[data.group_idx])
    mu = special.expit(eta)
    y, n = data.events, data.trials
    logpmf = stats.betabinom.logpmf(y, n, mu * phi, (1 - mu) * phi)
    return float(np.sum(logpmf - np.log(special.comb(n, y))))


def _parameters(data, rng):
    n_beta = 0 if data.bias is None else max(len(data.bias.levels) - 1, 1)
    return (
        rng.normal(0.0, 1.5, data.n_groups),
        rng.normal(1.0, 1.0, data.n_groups),
        rng.normal(0.0, 0.5, n_beta) / (10.0 if n_beta and data.bias.kind == "numeric" else 1),
    )


@pytest.mark.parametrize("bias", [None, "level", "value"])
def test_value_equals_the_sum_of_scipy_log_pmfs(bias):
    data, inputs = _stage(bias)
    rng = np.random.default_rng(1)
    for _ in range(5):
        alpha, log_phi, beta = _parameters(data, rng)
        logp, *_ = tabulated_beta_binomial(alpha, log_phi, beta, *inputs)
        assert logp == pytest.approx(_per_study_sum(data, alpha, log_phi, beta), rel=1e-10)


@pytest.mark.parametrize("bias", [None, "level", "value"])
def test_gradient_equals_finite_differences(bias):
    data, inputs = _stage(bias, seed=2)
    rng = np.random.default_rng(3)
    alpha, log_phi, beta = _parameters(data, rng)
    constants = [pt.as_tensor(x) for x in inputs]

    def loglik(alpha, log_phi, beta=None):
        beta = pt.zeros(0) if beta is None else beta
        return TabulatedBetaBinomial()(alpha, log_phi, beta, *constants)[0]

    points = [alpha, log_phi] if bias is None else [alpha, log_phi, beta]
    verify_grad(loglik, points, rng=rng, abs_tol=1e-4, rel_tol=1e-4)


def test_numba_backend_equals_the_python_call():
    # PyTensor's numba backend runs the Op through its own wrapper; same numbers expected.
    data, inputs = _stage("level", seed=4)
    alpha, log_phi, beta = (pt.dvector(name) for name in ("alpha", "log_phi", "beta"))
    logp = TabulatedBetaBinomial()(alpha, log_phi, beta, *map(pt.as_tensor, inputs))[0]
    gradient = pt.grad(logp, [alpha, log_phi, beta])
    outputs = [logp, *gradient]
    numba_fn = pytensor.function([alpha, log_phi, beta], outputs, mode="NUMBA")
    default_fn = pytensor.function([alpha, log_phi, beta], outputs)
    values = _parameters(data, np.random.default_rng(5))
    for got, expected in zip(numba_fn(*values), default_fn(*values), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_underflowing_concentration_gives_the_exact_small_phi_limit():
    # As phi -> 0 the beta-binomial puts y = n with probability mu, y = 0 with 1 - mu, and
    # 0 < y < n with probability ~ phi mu (1 - mu) C(n, y) B(y, n - y): at log phi = -800
    # (phi = 0 in double precision) the Op must still return that limit, and a finite gradient.
    data, inputs = _stage(None, seed=6)
    alpha = np.array([-0.5, 0.3, 1.2])
    log_phi = np.full(3, -800.0)
    logp, grad_alpha, grad_log_phi, _ = tabulated_beta_binomial(
        alpha, log_phi, np.zeros(0), *inputs
    )
    expected = 0.0
    for g, y, n in zip(data.group_idx, data.events, data.trials, strict=True):
        log_mu, log_1m = -np.logaddexp(0, -alpha[g]), -np.logaddexp(0, alpha[g])
        if y == n:
            expected += log_mu
        elif y == 0:
            expected += log_1m
        else:  # log [phi mu (1 - mu) Gamma(y) Gamma(n - y) / Gamma(n)]
            expected += log_phi[g] + log_mu + log_1m
            expected += math.lgamma(y) + math.lgamma(n - y) - math.lgamma(n)
    assert logp == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(grad_alpha).all() and np.isfinite(grad_log_phi).all()
    # d/d log phi of the limit: the number of studies with 0 < y < n in each group
    interior = (data.events > 0) & (data.events < data.trials)
    counts = np.bincount(data.group_idx[interior], minlength=3)
    np.testing.assert_allclose(grad_log_phi, counts, atol=1e-9)


def test_second_derivatives_are_refused():
    _, inputs = _stage(None)
    alpha = pt.dvector("alpha")
    logp = TabulatedBetaBinomial()(alpha, pt.ones(3), pt.zeros(0), *map(pt.as_tensor, inputs))[0]
    gradient = pt.grad(logp, alpha)
    with pytest.raises(pytensor.gradient.NullTypeGradError):
        pt.grad(gradient.sum(), alpha)


def test_digamma_matches_scipy():
    values = np.geomspace(1e-6, 1e9, 200)
    got = np.array([_digamma(x) for x in values])
    np.testing.assert_allclose(got, special.digamma(values), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("log_x", [-800.0, -3.0, 0.5, 4.0, 12.0, 25.0])
def test_log_rising_factorial_value_and_slope(log_x):
    # log (x)_k from log x against exact sums; where x underflows (log x = -800) the exact
    # value is log x + log Gamma(k) for k >= 1, with slope 1 in log x.
    x = math.exp(log_x)
    for k in [0.0, 1.0, 2.0, 7.0, 40.0]:
        value, slope = _log_rising_factorial(log_x, k)
        if log_x == -800.0:
            expected = log_x + math.lgamma(k) if k else 0.0
            expected_slope = 1.0 if k else 0.0
        else:
            expected = sum(math.log(x + i) for i in range(int(k)))
            expected_slope = sum(x / (x + i) for i in range(int(k)))
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert slope == pytest.approx(expected_slope, rel=1e-8, abs=1e-10)


#: The rows kernels' ``log_w`` input without publication selection: empty.
NO_SELECTION = np.zeros(0)


def _rows(mixture: bool, seed: int = 0, totals: bool = False):
    """Random inputs of BetaBinomialRows: 2 stages, 3 groups, 3 levels, 12 rows; with
    ``totals``, the levels' totals known (and log pi unused) instead of a mixture."""
    rng = np.random.default_rng(seed)
    n_rows, n_levels = 12, 3
    trials = rng.integers(0, 15, n_rows).astype(float)
    events = rng.binomial(trials.astype(int), 0.6).astype(float)
    responders = rng.binomial(events.astype(int), 0.5).astype(float)
    parameters = [
        rng.normal(0.0, 1.0, (2, 3)),  # alpha
        rng.normal(1.0, 1.0, (2, 3)),  # log_phi
        np.column_stack([np.zeros(2), rng.normal(0.0, 0.5, (2, n_levels - 1))]),
        rng.normal(0.0, 0.3, (2, n_rows)),  # row_shift
        np.log(rng.dirichlet(np.ones(n_levels))) if mixture else np.zeros(n_levels),
    ]
    missing = mixture or totals
    known = (rng.uniform(size=n_rows) < 0.5) if missing else np.ones(n_rows, dtype=bool)
    level = rng.integers(0, n_levels, n_rows)
    counts = np.full(n_levels, -1, dtype=np.int64)
    if totals:  # the levels' totals (rated studies' levels plus one possible assignment), and
        # their recursion's states, as the model hands them to the Op
        counts = packed_states(np.bincount(level, minlength=n_levels).astype(np.int64))
    data = [
        rng.integers(0, 3, n_rows),  # group
        np.vstack([events, responders]),
        np.vstack([trials, events]),
        rng.integers(0, 3, n_rows).astype(float) * (rng.uniform(size=n_rows) < 0.9),  # weights
        level,
        known.astype(float),
        counts,
    ]
    return parameters, data


def _scipy_rows(alpha, log_phi, level_shift, row_shift, group, events, trials, weights):
    """(J, K) weighted log-likelihood of each row at each level, with scipy."""
    out = np.zeros((len(group), level_shift.shape[1]))
    for j, g in enumerate(group):
        for k in range(level_shift.shape[1]):
            eta = alpha[:, g] + level_shift[:, k] + row_shift[:, j]
            mu, phi = special.expit(eta), np.exp(log_phi[:, g])
            pmf = stats.betabinom.logpmf(events[:, j], trials[:, j], mu * phi, (1 - mu) * phi)
            out[j, k] = weights[j] * pmf.sum()
    return out


@pytest.mark.parametrize("mixture", [False, True])
def test_rows_value_equals_the_mixture_written_with_scipy(mixture):
    (alpha, log_phi, level_shift, row_shift, log_pi), data = _rows(mixture)
    group, events, trials, weights, level, known, _ = data
    ones = np.ones_like(weights)
    at_level = _scipy_rows(alpha, log_phi, level_shift, row_shift, group, events, trials, ones)
    expected = 0.0
    for j in range(len(group)):
        row = log_pi + at_level[j]
        expected += weights[j] * (row[level[j]] if known[j] else special.logsumexp(row))
    got = beta_binomial_rows(alpha, log_phi, level_shift, row_shift, log_pi, NO_SELECTION, *data)[0]
    assert got == pytest.approx(expected, rel=1e-10)


def test_rows_value_with_known_totals_equals_enumeration():
    """The average over every assignment of the unrated rows' levels consistent with the
    totals of prod_j exp(L_j), enumerated; rows of weight 0 count toward the totals."""
    (alpha, log_phi, level_shift, row_shift, log_pi), data = _rows(False, seed=3, totals=True)
    group, events, trials, weights, level, known, states = data
    totals = states[:3]  # packed_states: the totals, then their states
    at_level = _scipy_rows(alpha, log_phi, level_shift, row_shift, group, events, trials, weights)
    rated = known > 0
    free = np.flatnonzero(~rated)
    left = totals - np.bincount(level[rated], minlength=3)
    terms = []
    for choice in itertools.product(range(3), repeat=free.size):
        if np.array_equal(np.bincount(choice, minlength=3), left):
            terms.append(at_level[free, choice].sum())
    log_n = special.gammaln(len(group) + 1) - special.gammaln(totals + 1).sum()
    expected = at_level[rated, level[rated]].sum() + special.logsumexp(terms) - log_n
    got = beta_binomial_rows(alpha, log_phi, level_shift, row_shift, log_pi, NO_SELECTION, *data)[0]
    assert got == pytest.approx(expected, rel=1e-10)


def test_logit_normal_rows_with_known_totals_equal_enumeration():
    """The logit-normal rows share the recursion: the average over the consistent
    assignments, each row's effect integrated out by scipy's quadrature."""
    (alpha, _, level_shift, row_shift, log_pi), data = _rows(False, seed=6, totals=True)
    group, events, trials, weights, level, known, states = data
    totals = states[:3]  # packed_states: the totals, then their states
    tau = np.random.default_rng(7).uniform(0.2, 1.5, (2, 3))
    at_level = np.zeros((len(group), 3))
    for j, g in enumerate(group):
        for k in range(3):
            eta = alpha[:, g] + level_shift[:, k] + row_shift[:, j]
            for s in range(2):
                at_level[j, k] += weights[j] * _quad_loglik(
                    events[s, j], trials[s, j], eta[s], tau[s, g]
                )
    rated = known > 0
    free = np.flatnonzero(~rated)
    left = totals - np.bincount(level[rated], minlength=3)
    terms = [
        at_level[free, choice].sum()
        for choice in itertools.product(range(3), repeat=free.size)
        if np.array_equal(np.bincount(choice, minlength=3), left)
    ]
    log_n = special.gammaln(len(group) + 1) - special.gammaln(totals + 1).sum()
    expected = at_level[rated, level[rated]].sum() + special.logsumexp(terms) - log_n
    got = logit_normal_rows(alpha, tau, level_shift, row_shift, log_pi, NO_SELECTION, *data)[0]
    assert got == pytest.approx(expected, rel=1e-7)


def _quad_loglik(y: float, n: float, eta: float, tau: float) -> float:
    """log of the integral of Binomial(y | n, invlogit(eta + tau z)) N(z) dz, by scipy quad."""
    from scipy import integrate

    def integrand(z):
        p = special.expit(eta + tau * z)
        return stats.binom.pmf(y, n, p) * stats.norm.pdf(z)

    value, _ = integrate.quad(integrand, -12, 12, points=[0.0], limit=200, epsabs=0)
    return float(np.log(value))


def test_rows_gradient_with_known_totals_equals_finite_differences():
    parameters, data = _rows(False, seed=4, totals=True)
    op_parameters, op_data = rows_op_inputs(parameters, data)
    constants = [pt.as_tensor(x) for x in op_data]

    def loglik(*p):
        return BetaBinomialRows(2)(*p, pt.zeros(3), pt.zeros(0), *constants)[0]

    rng = np.random.default_rng(5)
    verify_grad(loglik, op_parameters[:8], rng=rng, abs_tol=1e-4, rel_tol=1e-4)


@pytest.mark.parametrize("mixture", [False, True])
def test_rows_gradient_equals_finite_differences(mixture):
    # per stage: alpha, log_phi, the non-reference levels' shifts, the row shifts; then log pi
    parameters, data = _rows(mixture, seed=1)
    op_parameters, op_data = rows_op_inputs(parameters, data)
    constants = [pt.as_tensor(x) for x in op_data]

    def loglik(*parameters):
        return BetaBinomialRows(2)(*parameters, pt.zeros(0), *constants)[0]

    rng = np.random.default_rng(2)
    if not mixture:  # log pi: a constant 0 without a mixture
        stages = op_parameters[:8]
        verify_grad(lambda *p: loglik(*p, pt.zeros(3)), stages, rng=rng, abs_tol=1e-4, rel_tol=1e-4)
    else:
        verify_grad(loglik, op_parameters[:9], rng=rng, abs_tol=1e-4, rel_tol=1e-4)


@pytest.mark.parametrize("mode", ["FAST_COMPILE", "NUMBA"])
def test_rows_op_per_stage_equals_the_kernel_on_stacked_arrays(mode):
    # The Op takes each stage's vectors and packs them for the kernel: its value and gradient
    # must be the kernel's, to rounding, under the Python and the numba implementation alike
    # (numba may fuse or reorder floating-point operations differently on another CPU).
    stacked, data = _rows(True, seed=8)
    op_parameters, op_data = rows_op_inputs(stacked, data)
    variables = [pt.dvector() for _ in op_parameters[:9]]  # no selection: no classes' log w
    outputs = BetaBinomialRows(2)(*variables, pt.zeros(0), *map(pt.as_tensor, op_data))
    function = pytensor.function(variables, outputs, mode=mode)
    logp, *gradient = function(*op_parameters[:9])
    expected, d_alpha, d_log_phi, d_level, d_row, d_log_pi, _ = beta_binomial_rows(
        *stacked, NO_SELECTION, *data
    )
    assert float(logp) == pytest.approx(expected, rel=1e-12)
    stages = [x for s in range(2) for x in (d_alpha[s], d_log_phi[s], d_level[s, 1:], d_row[s])]
    for got, want in zip(gradient, [*stages, d_log_pi, np.zeros(0)], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_compiled_logit_normal_loglik_equals_quadrature_by_scipy():
    # the per-study values of every draw (for LOO) come from the compiled kernel: they must be
    # the binomial-normal marginal likelihood, here integrated by scipy's adaptive quadrature
    from bayesreview.backend.ops import logit_normal_loglik_compiled

    cases = [(0, 1, -1.0, 0.5), (3, 7, 0.4, 1.2), (150, 200, 1.1, 0.3), (5000, 7178, 0.0, 2.0)]
    y, n, eta, tau = (np.array(column, dtype=float) for column in zip(*cases, strict=True))
    got = logit_normal_loglik_compiled(y, n, eta, tau)
    for value, case in zip(got, cases, strict=True):
        assert value == pytest.approx(_log_marginal_by_quad(*case), abs=1e-8)


def _log_marginal_by_quad(y: float, n: float, eta: float, tau: float) -> float:
    from scipy import integrate

    def integrand(u):
        return stats.binom.pmf(y, n, special.expit(eta + tau * u)) * stats.norm.pdf(u)

    peak = (special.logit((y + 0.5) / (n + 1.0)) - eta) / tau
    total, _ = integrate.quad(integrand, -12, 12, points=[peak], limit=400, epsabs=0, epsrel=1e-12)
    return float(np.log(total))


def test_simplex_log_probabilities_equal_scipys_log_softmax_and_their_gradient():
    # log pi = log_softmax([z, -sum z]), PyMC's simplex map; its gradient node against finite
    # differences of a weighted sum, and the numba backend against the Python call
    z = pt.dvector("z")
    upstream = np.array([0.7, -1.3, 2.0, 0.4])
    log_pi = SimplexLogProbabilities()(z)
    objective = pt.sum(upstream * log_pi)
    outputs = [log_pi, pt.grad(objective, z)]
    default_fn = pytensor.function([z], outputs)
    numba_fn = pytensor.function([z], outputs, mode="NUMBA")
    rng = np.random.default_rng(11)
    for point in (np.zeros(3), rng.normal(size=3), np.array([40.0, -3.0, 0.5])):
        value, gradient = default_fn(point)
        np.testing.assert_allclose(
            value, special.log_softmax(np.append(point, -point.sum())), atol=1e-12
        )
        step = 1e-6
        numeric = [
            (
                upstream
                @ special.log_softmax(np.append(point + step * e, -(point + step * e).sum()))
                - upstream
                @ special.log_softmax(np.append(point - step * e, -(point - step * e).sum()))
            )
            / (2 * step)
            for e in np.eye(3)
        ]
        np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-6)
        for got, expected in zip(numba_fn(point), (value, gradient), strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
