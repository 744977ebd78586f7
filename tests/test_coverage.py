"""The ML binomial-normal GLMM and the coverage study (bayesreview.coverage)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

from bayesreview.coverage import (
    coverage_plot,
    coverage_replicate,
    coverage_table,
    fit_glmm,
    glmm_loglik,
    logit_normal_mu,
    simulate_review,
)
from bayesreview.errors import BayesReviewError

matplotlib.use("Agg")

Y = np.array([0, 3, 12, 7, 1, 30])
N = np.array([4, 20, 25, 9, 1, 30])


def quad_loglik(mu: float, tau: float, y, n) -> float:
    """The GLMM log-likelihood by scipy.integrate.quad, independently of the adaptive quadrature.

    Each study's integral of Bin(y | n, invlogit(mu + tau z)) phi(z) over z in [-12, 12] (the
    rest weighs below 1e-30), split at the integrand's peak, found on a fine grid.
    """
    grid = np.linspace(-12, 12, 24001)
    total = 0.0
    for yj, nj in zip(y, n, strict=True):

        def integrand(z, yj=yj, nj=nj):
            return stats.binom.pmf(yj, nj, special.expit(mu + tau * z)) * stats.norm.pdf(z)

        peak = float(grid[np.argmax(integrand(grid))])
        value, _ = integrate.quad(
            integrand, -12, 12, points=[peak], limit=400, epsabs=0, epsrel=1e-12
        )
        total += math.log(value)
    return total


# The 32-node adaptive Gauss-Hermite rule of bayesreview.integrals is exact to about 1e-12 for
# moderate tau; for tau of several units with studies of 0 or n events among few patients (the
# skewed, one-sided integrands here: 0 of 4, 1 of 1, 30 of 30) it documents errors below 1e-4.
@pytest.mark.parametrize(
    "mu, tau, tolerance",
    [(-0.4, 0.3, 1e-10), (0.5, 1.0, 1e-10), (1.2, 2.5, 1e-5), (-2.0, 4.0, 1e-4)],
)
def test_loglik_matches_quadrature_on_probability_scale(mu, tau, tolerance):
    expected = quad_loglik(mu, tau, Y, N)
    assert glmm_loglik(mu, tau, Y, N) == pytest.approx(expected, abs=tolerance)
    assert glmm_loglik(mu, -tau, Y, N) == glmm_loglik(mu, tau, Y, N)  # even in tau


def test_loglik_at_tau_zero_is_binomial():
    mu = 0.3
    expected = stats.binom.logpmf(Y, N, special.expit(mu)).sum()
    assert glmm_loglik(mu, 0.0, Y, N) == pytest.approx(expected, abs=1e-10)


def mean_by_quad(mu: float, tau: float) -> float:
    value, _ = integrate.quad(
        lambda z: special.expit(mu + tau * z) * stats.norm.pdf(z), -np.inf, np.inf, epsabs=1e-13
    )
    return value


def test_logit_normal_mu_inverts_the_mean_rate():
    # symmetric population: mean 0.5 at mu = 0 whatever tau
    assert logit_normal_mu(0.5, 2.0) == pytest.approx(0.0, abs=1e-7)
    for rate, tau in [(0.2, 1.0), (0.8, 0.3), (0.05, 3.0)]:
        mu = logit_normal_mu(rate, tau)
        assert mean_by_quad(mu, tau) == pytest.approx(rate, abs=1e-6)
    mu = logit_normal_mu(0.2, 1.0)
    assert special.expit(mu) < 0.2  # the median is below the mean when the mean is below 0.5
    assert logit_normal_mu(0.3, 0.0) == pytest.approx(special.logit(0.3))
    with pytest.raises(BayesReviewError, match="strictly between"):
        logit_normal_mu(1.0, 1.0)


def test_fit_is_a_maximum_with_zero_gradient():
    fitted = fit_glmm(Y, N)
    assert fitted.converged and not fitted.boundary and fitted.tau > 0
    h = 1e-5
    d_mu = (
        quad_loglik(fitted.mu + h, fitted.tau, Y, N) - quad_loglik(fitted.mu - h, fitted.tau, Y, N)
    ) / (2 * h)
    d_tau = (
        quad_loglik(fitted.mu, fitted.tau + h, Y, N) - quad_loglik(fitted.mu, fitted.tau - h, Y, N)
    ) / (2 * h)
    assert abs(d_mu) < 1e-3 and abs(d_tau) < 1e-3
    # no better point nearby (independent likelihood)
    best = quad_loglik(fitted.mu, fitted.tau, Y, N)
    for dm, dt in [(0.05, 0), (-0.05, 0), (0, 0.05), (0, -0.05)]:
        assert quad_loglik(fitted.mu + dm, fitted.tau + dt, Y, N) < best
    # tau is about 3 here: the adaptive rule's error is about 2e-6 (see the loglik test)
    assert fitted.loglik == pytest.approx(best, abs=1e-5)
    z = stats.norm.ppf(0.975)
    assert fitted.mu_lower == pytest.approx(fitted.mu - z * fitted.se_mu, abs=1e-10)
    assert fitted.median == pytest.approx(special.expit(fitted.mu))
    assert fitted.mean == pytest.approx(mean_by_quad(fitted.mu, fitted.tau), abs=1e-6)
    assert fitted.mean_lower < fitted.mean < fitted.mean_upper


def test_delta_method_interval_of_the_mean_by_quadrature():
    # d E[p] / d (mu, tau) by central differences of the quad mean, independently of the
    # Stein's-lemma moments fit_glmm uses; then the Wald interval on logit(E[p])
    fitted = fit_glmm(Y, N)
    h = 1e-5
    grad = np.array(
        [
            (mean_by_quad(fitted.mu + h, fitted.tau) - mean_by_quad(fitted.mu - h, fitted.tau))
            / (2 * h),
            (mean_by_quad(fitted.mu, fitted.tau + h) - mean_by_quad(fitted.mu, fitted.tau - h))
            / (2 * h),
        ]
    )
    mean = mean_by_quad(fitted.mu, fitted.tau)
    se = math.sqrt(grad @ fitted.cov @ grad) / (mean * (1 - mean))
    z = stats.norm.ppf(0.975)
    assert fitted.mean_lower == pytest.approx(special.expit(special.logit(mean) - z * se), abs=1e-6)
    assert fitted.mean_upper == pytest.approx(special.expit(special.logit(mean) + z * se), abs=1e-6)


def test_boundary_fit_is_the_pooled_binomial():
    # identical observed proportions: ML tau is 0, mu the pooled logit, SE 1 / sqrt(N p (1-p))
    y, n = np.array([2, 4, 6]), np.array([10, 20, 30])
    fitted = fit_glmm(y, n)
    assert fitted.converged and fitted.boundary and fitted.tau == 0.0
    assert fitted.mu == pytest.approx(special.logit(0.2), abs=1e-6)
    assert fitted.se_mu == pytest.approx(1 / math.sqrt(60 * 0.2 * 0.8), rel=1e-6)


def test_recovers_parameters_of_a_large_simulation():
    rng = np.random.default_rng(20240801)
    k, mu, tau = 400, -0.7, 0.8
    n = rng.integers(1, 31, size=k)
    y = rng.binomial(n, special.expit(mu + tau * rng.standard_normal(k)))
    fitted = fit_glmm(y, n)
    assert fitted.converged
    assert abs(fitted.mu - mu) < 3 * fitted.se_mu
    assert abs(fitted.tau - tau) < 3 * math.sqrt(fitted.cov[1, 1])
    assert fitted.se_mu < 0.1  # informative enough for the check to mean something


def test_all_zero_events_is_a_reported_failure():
    fitted = fit_glmm([0, 0, 0], [3, 10, 1])
    assert not fitted.converged
    assert "mu at the search bound" in fitted.message
    assert math.isnan(fitted.median_lower)


@pytest.mark.parametrize(
    "events, trials, match",
    [([1, 5], [2, 3], "study 1"), ([1], [2, 3], "one length"), ([0.5], [2], "whole numbers")],
)
def test_bad_counts(events, trials, match):
    with pytest.raises(BayesReviewError, match=match):
        fit_glmm(events, trials)


def test_simulate_review_mean_rate():
    rng = np.random.default_rng(1)
    events, trials = simulate_review(20_000, 0.2, 1.0, rng, n_range=(1, 30))
    assert trials.min() >= 1 and trials.max() <= 30
    # E[y / n] = E[p] = 0.2; SD of y/n is at most 0.5, so the SE is below 0.004
    assert abs(np.mean(events / trials) - 0.2) < 0.012


def hand_made_results() -> pd.DataFrame:
    """Two cells: 4 replicates with known coverage, one GLMM failure."""
    rows = []
    for i, (lo, hi) in enumerate([(0.1, 0.3), (0.25, 0.4), (0.15, 0.21), (0.0, 0.19)]):
        rows.append(
            {
                "k": 3, "true_rate": 0.2, "tau": 1.0, "model": "beta_binomial",
                "true_mean": 0.2, "true_median": 0.16,
                "bayes_mean_lower": lo, "bayes_mean_upper": hi,
                "bayes_median_lower": lo, "bayes_median_upper": hi,
                "glmm_median_lower": lo if i else np.nan, "glmm_median_upper": hi if i else np.nan,
                "glmm_mean_lower": lo, "glmm_mean_upper": hi,
                "glmm_converged": i != 0,
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_coverage_table_on_hand_made_results():
    table = coverage_table(hand_made_results()).set_index(["method", "target"])
    bayes_mean = table.loc[("bayes_beta_binomial", "mean")]
    # true mean 0.2 is inside [0.1, 0.3] and [0.15, 0.21] only: 2 of 4
    assert bayes_mean["coverage"] == 0.5
    assert bayes_mean["mc_se"] == pytest.approx(math.sqrt(0.25 / 4))
    assert bayes_mean["mean_width"] == pytest.approx((0.2 + 0.15 + 0.06 + 0.19) / 4)
    assert bayes_mean["failures"] == 0 and bayes_mean["replicates"] == 4
    # median 0.16: inside [0.1, 0.3], [0.15, 0.21], [0, 0.19]: 3 of 4
    assert table.loc[("bayes_beta_binomial", "median"), "coverage"] == 0.75
    glmm = table.loc[("glmm_ml", "median")]
    # the failed first replicate is left out and counted: 2 of the other 3 cover 0.16
    assert glmm["failures"] == 1 and glmm["replicates"] == 3
    assert glmm["coverage"] == pytest.approx(2 / 3)
    assert glmm["mc_se"] == pytest.approx(math.sqrt(2 / 9 / 3))
    assert table.loc[("glmm_ml", "mean"), "coverage"] == pytest.approx(1 / 3)
    # the delta-method interval has no failure flag of its own: it follows glmm_converged
    assert table.loc[("glmm_ml_delta", "mean"), "failures"] == 1


def test_coverage_table_needs_columns():
    with pytest.raises(BayesReviewError, match="true_median"):
        coverage_table(hand_made_results().drop(columns="true_median"))


def test_coverage_plot_returns_figure():
    from matplotlib.figure import Figure

    fig = coverage_plot(coverage_table(hand_made_results()), target="median")
    assert isinstance(fig, Figure)
    assert len(fig.axes[0].lines) > 0
    with pytest.raises(BayesReviewError, match="target"):
        coverage_plot(coverage_table(hand_made_results()), target="mode")


def test_coverage_replicate_records_intervals_and_truth():
    result = coverage_replicate(3, k=3, rate=0.8, tau=1.0, draws=300, tune=300)
    json.dumps(result)  # saveable by run_replicates
    assert result["true_mean"] == 0.8
    assert result["true_median"] == pytest.approx(special.expit(logit_normal_mu(0.8, 1.0)))
    assert result["true_median"] > 0.8
    for prefix in ("bayes_mean", "bayes_median"):
        assert 0 < result[f"{prefix}_lower"] < result[f"{prefix}_upper"] < 1
    glmm = fit_glmm(result["events"], result["trials"])
    assert result["glmm_converged"] == glmm.converged
    if glmm.converged:
        assert result["glmm_median_lower"] == pytest.approx(glmm.median_lower)


# ---------------------------------------------------------------------------------------------
# Against metafor's rma.glmm (R), when installed
# ---------------------------------------------------------------------------------------------

DATA_SETS = [
    ([2, 5, 9, 1], [10, 12, 15, 3]),
    ([0, 3, 12, 7, 1], [4, 20, 25, 9, 1]),
    ([10, 2, 20, 5, 0, 9, 14, 3, 8, 1], [12, 20, 25, 6, 3, 10, 30, 11, 9, 1]),
]

R_SCRIPT = """
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
for (line in args) {
  parts <- strsplit(line, ";")[[1]]
  xi <- as.numeric(strsplit(parts[1], ",")[[1]]); ni <- as.numeric(strsplit(parts[2], ",")[[1]])
  r <- rma.glmm(xi = xi, ni = ni, measure = "PLO", method = "ML")  # glmer, nAGQ = 7
  cat(sprintf("%.10f %.10f %.10f %.10f %.10f\\n", r$beta, sqrt(r$tau2), r$se, r$ci.lb, r$ci.ub))
}
"""


def _metafor_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    check = subprocess.run(
        ["Rscript", "-e", "library(metafor); library(lme4)"], capture_output=True, timeout=120
    )
    return check.returncode == 0


@pytest.mark.slow
def test_fit_agrees_with_metafor_rma_glmm(tmp_path):
    if not _metafor_available():
        pytest.skip("Rscript with metafor and lme4 is not installed")
    script = tmp_path / "glmm.R"
    script.write_text(R_SCRIPT)
    args = [f"{','.join(map(str, y))};{','.join(map(str, n))}" for y, n in DATA_SETS]
    out = subprocess.run(
        ["Rscript", str(script), *args], capture_output=True, text=True, timeout=300, check=True
    )
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    assert len(lines) == len(DATA_SETS)
    for (y, n), line in zip(DATA_SETS, lines, strict=True):
        mu, tau, se, lower, upper = map(float, line.split())
        fitted = fit_glmm(y, n)
        assert fitted.mu == pytest.approx(mu, abs=1e-3)
        assert fitted.tau == pytest.approx(tau, abs=1e-2)
        assert fitted.se_mu == pytest.approx(se, abs=1e-2)
        assert fitted.mu_lower == pytest.approx(lower, abs=1e-2)
        assert fitted.mu_upper == pytest.approx(upper, abs=1e-2)
