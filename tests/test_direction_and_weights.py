"""Issue 13, items 4 and 10: studies of weight 0 stay out of every in-sample computation, and
comparisons follow the declared direction (``better="higher" | "lower"``).

Direction tests run on a tiny fake fit with synthetic draws, checked against scipy's ranks and
direct counts; weight tests on a leave-two-studies-out refit of the bundled data, checked
against ArviZ run on the in-sample columns only and counts straight from the study table.
"""

from __future__ import annotations

import itertools
import re
import warnings

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import bayesreview as br
from bayesreview import plots
from bayesreview.checks import (
    InfluentialStudyWarning,
    compare_models,
    in_sample,
    influential_studies,
    loo,
    ppc,
)
from bayesreview.compare import pairwise, rank_draws, ranks
from bayesreview.errors import BayesReviewError
from bayesreview.robustness import log_prior, prior_sensitivity

# --------------------------------------------------------------------------------------------
# Direction, on synthetic draws
# --------------------------------------------------------------------------------------------


class _FakeFit:
    """What bayesreview.compare and the comparison figures read from a fit: ``outcomes``,
    ``groups``, ``labels`` (none), ``better`` (its direction) and ``draws(name, outcome)``
    (dims sample x group)."""

    def __init__(self, rates: np.ndarray, groups: tuple[str, ...], outcome: str = "events"):
        self.better = "higher"
        self.groups = groups
        self.labels: dict[str, str] = {}
        self.outcomes = (outcome,)
        self._rates = xr.DataArray(rates, dims=("sample", "group"), coords={"group": list(groups)})

    def draws(self, name: str, outcome: str | None = None) -> xr.DataArray:
        return self._rates


GROUPS = ("a", "b", "c", "d")


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(13)
    means = np.array([0.2, 0.25, 0.4, 0.45])
    rates = np.clip(rng.normal(means, 0.08, size=(4000, 4)), 0.001, 0.999)
    return rates, _FakeFit(rates, GROUPS)


def _rank_probabilities(ranked: np.ndarray) -> np.ndarray:
    k = ranked.shape[1]
    return np.stack([(ranked == r).mean(axis=0) for r in range(1, k + 1)], axis=1)


def test_rank_draws_lower_are_scipy_ranks_of_the_negated_rates(synthetic):
    rates, _ = synthetic
    lower = rank_draws(rates, better="lower")
    # scipy ranks ascending (1 = smallest): rank 1 = lowest rate = highest negated rate
    expected = np.vstack([stats.rankdata(row, method="ordinal") for row in rates])
    np.testing.assert_array_equal(lower, expected)
    np.testing.assert_array_equal(lower, rank_draws(-rates, better="higher"))
    expected_higher = np.vstack([stats.rankdata(-row, method="ordinal") for row in rates])
    np.testing.assert_array_equal(rank_draws(rates), expected_higher)


def test_ranks_lower_is_better(synthetic):
    rates, fake = synthetic
    table = ranks(fake, better="lower").set_index("modality")
    assert table.attrs["better"] == "lower"
    ranked = np.vstack([stats.rankdata(row, method="ordinal") for row in rates])
    probs = _rank_probabilities(ranked)
    k = len(GROUPS)
    columns = [f"p_rank_{r}" for r in range(1, k + 1)]
    np.testing.assert_allclose(table.loc[list(GROUPS), columns].to_numpy(float), probs, atol=1e-12)
    # P(best) = P(lowest rate), straight from argmin
    lowest = np.bincount(rates.argmin(axis=1), minlength=k) / len(rates)
    np.testing.assert_allclose(table.loc[list(GROUPS), "p_best"], lowest, atol=1e-12)
    # SUCRA = (K - mean rank) / (K - 1) with scipy's ranks
    sucra = (k - ranked.mean(axis=0)) / (k - 1)
    np.testing.assert_allclose(table.loc[list(GROUPS), "sucra"], sucra, atol=1e-12)
    # the lowest-mean modality is the best; the direction reverses the higher-is-better order
    assert table["sucra"].idxmax() == "a"
    higher = ranks(fake).set_index("modality")
    assert higher["sucra"].idxmax() == "d"
    np.testing.assert_allclose(
        higher.loc[list(GROUPS), "mean_rank"], k + 1 - table.loc[list(GROUPS), "mean_rank"]
    )


def test_pairwise_p_better_follows_the_direction(synthetic):
    rates, fake = synthetic
    d = 0.05
    for better in ("higher", "lower"):
        table = pairwise(fake, threshold=d, better=better)
        assert table.attrs["better"] == better
        assert len(table) == 12
        for row in table.itertuples():
            ra, rb = rates[:, GROUPS.index(row.modality_a)], rates[:, GROUPS.index(row.modality_b)]
            # p_greater is on the rate scale whatever the direction
            assert row.p_greater == pytest.approx(np.mean(ra - rb > d), abs=1e-12)
            better_by_d = ra - rb > d if better == "higher" else rb - ra > d
            assert row.p_better == pytest.approx(np.mean(better_by_d), abs=1e-12)
            assert row.diff_median == pytest.approx(np.median(ra - rb), abs=1e-12)
    lower = pairwise(fake, better="lower").set_index(["modality_a", "modality_b"])
    # a's mean rate is 0.25 below d's (SD of the difference 0.08 * sqrt(2)): under
    # lower-is-better P(a better than d) = Phi(0.25 / 0.113) = 0.986
    assert lower.loc[("a", "d"), "p_better"] == pytest.approx(0.986, abs=0.01)
    assert lower.loc[("a", "d"), "p_greater"] == pytest.approx(0.014, abs=0.01)


def test_no_better_means_the_fits_own_direction(synthetic):
    rates, _ = synthetic
    harm = _FakeFit(rates, GROUPS)
    harm.better = "lower"
    pd.testing.assert_frame_equal(ranks(harm), ranks(harm, better="lower"))
    pd.testing.assert_frame_equal(pairwise(harm), pairwise(harm, better="lower"))
    assert ranks(harm).loc[0, "p_best"] != ranks(harm, better="higher").loc[0, "p_best"]
    with pytest.raises(BayesReviewError, match="better=None"):
        rank_draws(rates, better=None)  # a bare array has no direction of its own


@pytest.mark.parametrize("better", ["Higher", "worse", 1, ""])
def test_invalid_better_is_refused(synthetic, better):
    rates, fake = synthetic
    with pytest.raises(BayesReviewError, match=re.escape(f"better={better!r}")):
        ranks(fake, better=better)
    with pytest.raises(BayesReviewError, match=re.escape(f"better={better!r}")):
        pairwise(fake, better=better)
    with pytest.raises(BayesReviewError, match=re.escape(f"better={better!r}")):
        rank_draws(rates, better=better)


def _by_gid(fig, prefix: str) -> dict:
    found = fig.findobj(lambda a: (a.get_gid() or "").startswith(prefix))
    return {a.get_gid()[len(prefix) :]: a for a in found}


def test_heatmap_and_rankogram_follow_the_direction(synthetic):
    rates, fake = synthetic
    fig = plots.comparison_heatmap(fake, better="lower")
    cells = _by_gid(fig, "cell:")
    assert len(cells) == 12
    for (i, a), (j, b) in itertools.permutations(enumerate(GROUPS), 2):
        assert cells[f"{a}:{b}"].get_text() == f"{np.mean(rates[:, i] < rates[:, j]):.2f}"
    title = fig.axes[0].get_title()
    assert "P(a < b)" in title and "lower is better" in title
    plt.close(fig)
    fig = plots.rankogram(fake, better="lower")
    lines = _by_gid(fig, "rank:")
    probs = _rank_probabilities(np.vstack([stats.rankdata(row, "ordinal") for row in rates]))
    for i, group in enumerate(GROUPS):
        np.testing.assert_allclose(lines[group].get_ydata(), probs[i], atol=1e-12)
    ax = fig.axes[0]
    assert "lowest" in ax.get_xlabel() and "lower is better" in ax.get_title()
    plt.close(fig)
    fig = plots.rankogram(fake)
    assert "highest" in fig.axes[0].get_xlabel()
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Studies of weight 0, on a leave-two-studies-out refit
# --------------------------------------------------------------------------------------------

#: Left out: Ma 2019 (28 patients, topical) and Tonial 2018 (0 of 7 responders).
LEFT_OUT = ("Ma 2019", "Tonial 2018")


@pytest.fixture(scope="module")
def weighted(studies):
    weights = [0 if s in LEFT_OUT else 1 for s in studies["study"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = br.fit(
            studies, draws=200, tune=200, chains=2, seed=1, progressbar=False, weights=weights
        )
    return fit, np.array(weights, dtype=bool)


def test_in_sample_reads_the_weights(weighted, modality_fit):
    fit, keep = weighted
    np.testing.assert_array_equal(in_sample(fit), keep)
    np.testing.assert_array_equal(in_sample(fit.idata), keep)
    assert in_sample(modality_fit).all()


def test_loo_of_a_weighted_fit_is_over_in_sample_studies(weighted, studies):
    fit, keep = weighted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InfluentialStudyWarning)
        elpd = loo(fit, pointwise=True)
    assert elpd.n_data_points == 38
    assert list(elpd.loo_i.study.values) == [s for s in studies["study"] if s not in LEFT_OUT]
    columns = fit.idata.log_likelihood["events"].values[:, :, keep]
    reference = az.InferenceData(
        posterior=fit.idata.posterior,
        log_likelihood=xr.Dataset({"events": (("chain", "draw", "study"), columns)}),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = az.loo(reference, pointwise=True)
    assert elpd.elpd_loo == pytest.approx(expected.elpd_loo, rel=1e-10)
    assert elpd.p_loo == pytest.approx(expected.p_loo, rel=1e-10)
    np.testing.assert_allclose(elpd.pareto_k.values, expected.pareto_k.values)
    listed = influential_studies(fit, threshold=-np.inf)
    assert sorted(listed.study) == sorted(s for s in studies["study"] if s not in LEFT_OUT)


def test_compare_models_refuses_different_weights(weighted, modality_fit):
    fit, _ = weighted
    with pytest.raises(BayesReviewError, match=r"weights.*Ma 2019, Tonial 2018"):
        compare_models({"all": modality_fit, "left out": fit})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InfluentialStudyWarning)
        same = compare_models({"one": fit, "two": fit})
    assert same["elpd_diff"].tolist() == pytest.approx([0.0, 0.0])


def test_ppc_of_a_weighted_fit_is_over_in_sample_studies(weighted, studies):
    fit, keep = weighted
    table = ppc(fit).set_index("statistic")
    responders = (studies["complete"] + studies["partial"]).to_numpy()
    n = studies["n"].to_numpy()
    # Tonial 2018 (a zero-event study) is left out: 2 of the 3 zero-event studies remain
    assert table.loc["zero_event_studies", "observed"] == ((responders == 0) & keep).sum() == 2
    assert table.loc["all_event_studies", "observed"] == ((responders == n) & keep).sum()
    rep = fit.idata.posterior_predictive["events"].values.reshape(-1, len(keep))[:, keep]
    zeros = (rep == 0).sum(axis=1)
    assert table.loc["zero_event_studies", "replicated_mean"] == pytest.approx(zeros.mean())
    mid_p = np.mean(zeros > 2) + 0.5 * np.mean(zeros == 2)
    assert table.loc["zero_event_studies", "p_value"] == pytest.approx(mid_p)
    rate_sd = np.std(responders[keep] / n[keep])
    assert table.loc["rate_sd", "observed"] == pytest.approx(rate_sd)


def test_ppc_plot_legend_is_the_ppc_table(weighted):
    fit, keep = weighted
    table = ppc(fit).set_index("statistic")
    fig = plots.ppc_plot(fit, kind="extremes")
    lines = _by_gid(fig, "observed:")
    assert lines["zero"].get_xdata()[0] == 2
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    for stat, name in (("no events", "zero_event_studies"), ("all events", "all_event_studies")):
        p = table.loc[name, "p_two_sided"]
        assert f"{stat}: replicated, two-sided p = {p:.2f}" in texts
    plt.close(fig)
    fig = plots.ppc_plot(fit)
    shown = set(_by_gid(fig, "observed:"))
    assert shown == {s for s, k in zip(fit.data.study, keep, strict=True) if k}
    plt.close(fig)


def test_prior_sensitivity_scales_only_the_in_sample_likelihood(weighted):
    fit, keep = weighted
    names = ["log_phi", "alpha"]
    table = prior_sensitivity(fit, var_names=names).set_index("parameter")
    reference = az.InferenceData(
        posterior=fit.idata.posterior,
        log_likelihood=xr.Dataset(
            {
                "events": (
                    ("chain", "draw", "study"),
                    fit.idata.log_likelihood["events"].values[:, :, keep],
                )
            }
        ),
        log_prior=log_prior(fit),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = az.psens(reference, component="likelihood", var_names=names)
    assert table.loc["log_phi", "likelihood"] == pytest.approx(float(expected["log_phi"]))
    for group in fit.groups:
        value = float(expected["alpha"].sel(group=group))
        assert table.loc[f"alpha[{group}]", "likelihood"] == pytest.approx(value, rel=1e-10)
