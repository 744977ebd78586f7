"""Harms as outcomes (issue 17): lower is better, pooled totals, benefit against risk.

The review prints its adverse events as totals per modality. A total enters as its patients,
so the likelihood is that of the modality's mean rate alone: the posterior of each mean rate is
then a one-dimensional integral (prior of the intercept times a binomial likelihood), and the
heterogeneity's posterior is its prior. Both are checked here against those independent
computations, with counts taken from the review's text.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

import bayesreview as br
from bayesreview.harms import benefit_risk_draws

REVIEW = Path(__file__).resolve().parents[2] / "shared" / "seed"
REVIEW_TEXT = REVIEW / "calcinosis_cutis_review_2021.txt"
HARM_SETTINGS = {"draws": 1000, "tune": 500, "chains": 4, "seed": 7, "progressbar": False}


def _text_count(pattern: str) -> tuple[int, int]:
    """``(events, n)`` of the first "k/n" after ``pattern`` in the review's text."""
    text = REVIEW_TEXT.read_text(encoding="utf-8")
    match = re.search(pattern + r"[^()]*\((\d+)/(\d+)\)", text)
    assert match, pattern
    return int(match.group(1)), int(match.group(2))


@pytest.fixture(scope="module")
def adverse_events() -> pd.DataFrame:
    return br.load_dataset("calcinosis_cutis_adverse_events")


@pytest.fixture(scope="module")
def infection_fit(adverse_events) -> br.Fit:
    return br.fit_harm(adverse_events, "infection", **HARM_SETTINGS)


def _exact_mean_rate(events: int, n: int, prior) -> tuple[np.ndarray, np.ndarray]:
    """Grid of the mean rate and its posterior density: logit-scale prior x binomial."""
    alpha = np.linspace(-12, 8, 20001)
    mu = special.expit(alpha)
    log_post = prior.logpdf(alpha) + stats.binom(n, mu).logpmf(events)
    density = np.exp(log_post - log_post.max())
    return mu, density / integrate.trapezoid(density, alpha), alpha


def _exact_probability_below(events: int, n: int, prior, t: float) -> float:
    mu, density, alpha = _exact_mean_rate(events, n, prior)
    return float(integrate.trapezoid(density * (mu < t), alpha))


# ---- the study table of a harm -----------------------------------------------------------


def test_totals_are_the_reviews_counts(adverse_events):
    table = br.harm_studies(adverse_events, "infection")
    totals = table.groupby("modality")[["events", "n"]].sum()
    assert tuple(totals.loc["intralesional_sts"]) == _text_count("Infection was recognised in")
    assert tuple(totals.loc["co2_laser"]) == _text_count(r"of patients after IL-STS \[4, 10, 17\]")
    assert (table["n"] == 1).all()
    assert set(table["pooled_total"]) == {"ae05", "ae09"}  # Table 2's rows, not the text's


def test_unreported_counts_are_left_out_not_invented(adverse_events):
    pain = br.harm_studies(adverse_events, "injection_pain")
    assert pain["events"].sum() == 6 and len(pain) == 53  # Table 2's "6", not "over 11%"
    with pytest.raises(br.DataError, match="no row gives a count"):
        br.harm_studies(adverse_events, "skin_discoloration")  # Table 2: N/R
    with pytest.raises(br.DataError, match=r"events there: .*infection"):
        br.harm_studies(adverse_events, "no_such_event")
    with pytest.raises(br.DataError, match="rows='both'"):
        br.harm_studies(adverse_events, "infection", rows="both")


def test_study_rows_warn_that_they_cover_only_cited_studies(adverse_events):
    with pytest.warns(UserWarning, match="likely too high"):
        rows = br.harm_studies(adverse_events, "infection", rows="studies")
    assert "pooled_total" not in rows
    bottomley = rows.set_index("study").loc["Bottomley 1996"]
    assert (bottomley["events"], bottomley["n"]) == (2, 6)  # codebook item 7


def test_the_input_is_not_modified(adverse_events):
    before = adverse_events.copy()
    br.harm_studies(adverse_events, "infection")
    pd.testing.assert_frame_equal(adverse_events, before)


def test_a_patient_of_a_total_has_one_patient():
    table = pd.DataFrame(
        {"study": ["a", "b"], "modality": "m", "n": [1, 3], "events": [1, 1]}
    ).assign(pooled_total=["t1", "t1"])
    with pytest.raises(br.DataError, match=r"row\(s\) 2 \(b\)"):
        br.fit(table, outcome="events", draws=10, tune=10, chains=1, progressbar=False)


# ---- the harm fit: exact answers ---------------------------------------------------------


def test_mean_rates_equal_the_exact_integral(infection_fit):
    prior = infection_fit.spec.prior("intercept", "marginal")
    summary = infection_fit.summary().set_index("modality")
    draws = br.compare.rate_draws(infection_fit, "events")
    for j, (modality, (events, n)) in enumerate(
        {"intralesional_sts": (5, 53), "co2_laser": (2, 18)}.items()
    ):
        mu, density, alpha = _exact_mean_rate(events, n, prior)
        cdf = integrate.cumulative_trapezoid(density, alpha, initial=0)
        median = float(np.interp(0.5, cdf, mu))
        upper = float(np.interp(0.975, cdf, mu))
        assert summary.loc[modality, "mean_rate"] == pytest.approx(median, abs=0.01)
        assert summary.loc[modality, "mean_rate_upper"] == pytest.approx(upper, abs=0.02)
        exact = _exact_probability_below(events, n, prior, 0.1)
        assert np.mean(draws[:, j] < 0.1) == pytest.approx(exact, abs=0.035)


def test_heterogeneity_is_its_prior(infection_fit):
    """Nothing about between-study differences is learned from totals."""
    spec = infection_fit.spec
    rng = np.random.default_rng(3)
    u = rng.random((3, 200_000))
    centre = spec.prior("log_concentration", "marginal").quantile(u[0])
    spread = spec.prior("log_concentration_sd", "marginal").quantile(u[1])
    prior_log_phi = centre + spread * stats.norm.ppf(u[2])
    posterior = np.log(infection_fit.draws("phi").values).ravel()
    q = [0.1, 0.5, 0.9]
    assert np.quantile(posterior, q) == pytest.approx(np.quantile(prior_log_phi, q), abs=0.12)
    assert infection_fit.heterogeneity_from_prior == ("intralesional_sts", "co2_laser")
    assert "nothing about how those studies differ" in repr(infection_fit)


def test_lower_is_better_ranks_the_lower_rate_first(infection_fit):
    prior = infection_fit.spec.prior("intercept", "marginal")
    mu_a, dens_a, alpha = _exact_mean_rate(5, 53, prior)
    mu_b, dens_b, _ = _exact_mean_rate(2, 18, prior)
    cdf_b = integrate.cumulative_trapezoid(dens_b, alpha, initial=0)
    # P(mu_IL-STS < mu_CO2) = E[P(mu_CO2 > mu_IL-STS)], the two posteriors independent
    exact = float(integrate.trapezoid(dens_a * (1 - np.interp(mu_a, mu_b, cdf_b)), alpha))
    ranks = infection_fit.ranks().set_index("modality")
    assert infection_fit.better == "lower" and ranks.attrs["better"] == "lower"
    assert ranks.loc["intralesional_sts", "p_best"] == pytest.approx(exact, abs=0.035)
    pairs = infection_fit.compare().set_index(["modality_a", "modality_b"])
    row = pairs.loc[("intralesional_sts", "co2_laser")]
    assert row["p_better"] == pytest.approx(1 - row["p_greater"], abs=1e-12)
    assert row["p_better"] == pytest.approx(exact, abs=0.035)


def test_thresholds_count_rates_below_for_a_harm(infection_fit):
    prior = infection_fit.spec.prior("intercept", "marginal")
    table = infection_fit.exceedance(0.1).set_index("modality")
    assert (table["direction"] == "below").all()
    exact = _exact_probability_below(5, 53, prior, 0.1)
    assert table.loc["intralesional_sts", "p_pooled"] == pytest.approx(exact, abs=0.035)
    summary = infection_fit.summary(threshold=0.1).set_index("modality")
    assert summary["p_beyond"].to_dict() == table["p_pooled"].to_dict()
    assert summary["share_new_beyond"].to_dict() == table["share_new"].to_dict()


# ---- benefit against risk ----------------------------------------------------------------


@pytest.fixture(scope="module")
def response(fast_fit, studies) -> br.Fit:
    return fast_fit(studies, seed=5, draws=500, chains=4)


def test_benefit_risk_is_the_product_of_independent_posteriors(response, infection_fit):
    table = br.benefit_risk(response, infection_fit, 0.5, 0.1).set_index("modality")
    assert list(table.index) == ["intralesional_sts", "co2_laser"]  # the modalities both have
    prior = infection_fit.spec.prior("intercept", "marginal")
    for modality, (events, n) in {"intralesional_sts": (5, 53), "co2_laser": (2, 18)}.items():
        row = table.loc[modality]
        expected = _exact_probability_below(events, n, prior, 0.1)
        assert row["p_harm"] == pytest.approx(expected, abs=0.035)
        assert row["p_both"] == pytest.approx(row["p_response"] * row["p_harm"], abs=0.03)


def test_the_credible_region_holds_its_mass(response, infection_fit):
    table = br.benefit_risk(response, infection_fit, 0.5, 0.1, level=0.9).set_index("modality")
    for modality, (resp, harm) in benefit_risk_draws(response, infection_fit).items():
        row = table.loc[modality]
        inside = (
            (resp >= row["response_region_lower"])
            & (resp <= row["response_region_upper"])
            & (harm >= row["harm_region_lower"])
            & (harm <= row["harm_region_upper"])
        )
        assert inside.mean() == pytest.approx(0.9, abs=0.03)


def test_benefit_risk_refuses_two_benefits(response):
    with pytest.raises(br.BayesReviewError, match="better='lower'"):
        br.benefit_risk(response, response, 0.5, 0.1)


def test_benefit_risk_figure(response, infection_fit):
    from bayesreview.plots import benefit_risk_plot

    fig = benefit_risk_plot(response, infection_fit, 0.5, 0.1)
    gids = {a.get_gid() for a in fig.axes[0].get_children()}
    assert {"region:co2_laser", "draws:intralesional_sts", "threshold:harm"} <= gids
    assert "Infection rate" in fig.axes[0].get_ylabel()
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith(f"{response.label('co2_laser')} (P(both) 0.") for t in legend)


def test_harm_forest_plot_says_what_its_diamonds_are(infection_fit):
    import matplotlib.pyplot as plt

    fig = infection_fit.forest_plot()
    footer = next(
        t for t in fig.findobj() if getattr(t, "get_gid", lambda: None)() == "text:footer"
    )
    assert "population mean rate (lower is better)" in footer.get_text().replace("\n", " ")
    plt.close(fig)
