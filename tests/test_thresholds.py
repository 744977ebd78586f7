"""Clinical thresholds (issue 17): P(pooled rate beyond t) and the share of new studies beyond t.

Checked against an exact grid integral of a one-modality posterior, against the fit's own draws
(the definition), and against a simulation of new studies from a known truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

import bayesreview as br

# The intralesional STS studies of the review (Table 1): any response / patients
EVENTS = [1, 26, 1, 0, 2, 1, 1, 6, 1]
TRIALS = [1, 29, 5, 7, 2, 1, 1, 6, 1]


def _table(events, trials) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": [f"s{i}" for i in range(len(events))],
            "modality": "m",
            "n": trials,
            "events": events,
        }
    )


def _grid_answers(threshold: float) -> tuple[float, float]:
    """P(mu > t | y) and P(p_new > t | y) by integrating the posterior of (alpha, log phi).

    One modality: heterogeneity is not pooled, so the default spec's priors are
    alpha ~ Normal(0, 1.5) and log phi ~ Normal(log 10, 1); p_new ~ Beta(mu phi, (1 - mu) phi).
    """
    alpha = np.linspace(-4, 6, 401)
    log_phi = np.linspace(-4, 7, 331)
    a, lp = np.meshgrid(alpha, log_phi, indexing="ij")
    mu, phi = special.expit(a), np.exp(lp)
    log_post = stats.norm(0, 1.5).logpdf(a) + stats.norm(np.log(10), 1).logpdf(lp)
    for k, n in zip(EVENTS, TRIALS, strict=True):
        log_post += stats.betabinom(n, mu * phi, (1 - mu) * phi).logpmf(k)
    density = np.exp(log_post - log_post.max())

    def expect(values):
        inner = integrate.trapezoid(density * values, log_phi, axis=1)
        return integrate.trapezoid(inner, alpha) / integrate.trapezoid(
            integrate.trapezoid(density, log_phi, axis=1), alpha
        )

    new_above = stats.beta(mu * phi, (1 - mu) * phi).sf(threshold)
    return float(expect(mu > threshold)), float(expect(new_above))


@pytest.fixture(scope="module")
def one_modality():
    return br.fit(
        _table(EVENTS, TRIALS),
        outcome="events",
        seed=3,
        draws=2000,
        tune=1000,
        chains=4,
        progressbar=False,
    )


def test_exceedance_matches_an_exact_grid_integral(one_modality):
    row = br.exceedance(one_modality, 0.6).iloc[0]
    exact_pooled, exact_new = _grid_answers(0.6)
    # 8000 draws, ESS >= 1000: Monte Carlo SE of a probability <= 0.016
    assert row["p_pooled"] == pytest.approx(exact_pooled, abs=0.04)
    assert row["share_new"] == pytest.approx(exact_new, abs=0.04)
    assert row["direction"] == "above" and row["threshold"] == 0.6


def test_exceedance_is_the_share_of_draws_beyond_the_threshold(calcinosis_fit):
    table = br.exceedance(calcinosis_fit, 0.5, better="lower")
    rate = calcinosis_fit.idata.posterior["rate"].sel(outcome="any")
    for row in table.itertuples():
        draws = rate.sel(group=row.modality).values.ravel()
        assert row.p_pooled == pytest.approx(np.mean(draws < 0.5), abs=1e-12)
    assert set(table["direction"]) == {"below"}


def test_share_of_new_studies_against_a_simulation_of_the_truth():
    # 300 series of 40 patients from Beta(mu phi, (1 - mu) phi), mu = 0.4, phi = 8: the
    # posterior concentrates near the truth, so the share of new studies above 0.5 must be
    # close to the share of new true rates above 0.5, found here by simulating a million.
    rng = np.random.default_rng(12)
    mu, phi = 0.4, 8.0
    rates = rng.beta(mu * phi, (1 - mu) * phi, 300)
    table = _table(rng.binomial(40, rates), np.full(300, 40))
    result = br.fit(table, outcome="events", seed=1, draws=1000, chains=2, progressbar=False)
    truth = np.mean(rng.beta(mu * phi, (1 - mu) * phi, 1_000_000) > 0.5)
    share = br.exceedance(result, 0.5)["share_new"].iloc[0]
    assert share == pytest.approx(truth, abs=0.03)


def test_bad_thresholds_are_refused(calcinosis_fit):
    with pytest.raises(br.BayesReviewError, match=r"threshold\['any'\] = 1.5"):
        br.exceedance(calcinosis_fit, 1.5)
    with pytest.raises(br.BayesReviewError, match="no value for outcome"):
        br.exceedance(calcinosis_fit, {"complete": 0.3})
    with pytest.raises(br.BayesReviewError, match="better="):
        br.exceedance(calcinosis_fit, 0.3, better="worse")
