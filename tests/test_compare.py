"""Pairwise comparisons and ranks, checked against independent computations on the draws."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayesreview as br
from bayesreview.compare import pairwise, ranks

# calcinosis_fit: tests/conftest.py (any response by group, 2 x 300 draws)


def _raw_rates(fit, outcome: str, name: str = "rate") -> dict[str, np.ndarray]:
    """Draws per modality straight from the posterior array (chain x draw, flattened)."""
    array = fit.idata.posterior[name].sel(outcome=outcome)
    return {g: array.sel(group=g).values.ravel() for g in array["group"].values}


def _independent_rank_probabilities(rates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """P(rank = r) per modality with scipy's ordinal ranks of the negated rates, draw by draw."""
    names = list(rates)
    matrix = np.column_stack([rates[g] for g in names])
    ranked = np.vstack([stats.rankdata(-row, method="ordinal") for row in matrix])
    k = len(names)
    return {
        g: np.array([(ranked[:, i] == r).mean() for r in range(1, k + 1)])
        for i, g in enumerate(names)
    }


# --- pairwise ---------------------------------------------------------------------------------


def test_pairwise_has_every_ordered_pair_once(calcinosis_fit, comparison_columns):
    table = pairwise(calcinosis_fit)
    groups = calcinosis_fit.groups
    k = len(groups)
    assert list(table.columns) == comparison_columns
    assert len(table) == k * (k - 1)
    pairs = set(zip(table["modality_a"], table["modality_b"], strict=True))
    assert pairs == {(a, b) for a in groups for b in groups if a != b}
    assert set(table["outcome"]) == {"any"}


def test_pairwise_matches_the_draws(calcinosis_fit):
    rates = _raw_rates(calcinosis_fit, "any")
    table = pairwise(calcinosis_fit, outcome="any", level=0.9)
    for row in table.itertuples():
        diff = rates[row.modality_a] - rates[row.modality_b]
        assert row.p_greater == pytest.approx(np.mean(diff > 0), abs=1e-12)
        assert row.diff_median == pytest.approx(np.median(diff), abs=1e-12)
        assert row.diff_lower == pytest.approx(np.percentile(diff, 5), abs=1e-12)
        assert row.diff_upper == pytest.approx(np.percentile(diff, 95), abs=1e-12)


def test_probabilities_of_a_pair_and_its_reverse_sum_to_one(calcinosis_fit):
    table = pairwise(calcinosis_fit).set_index(["modality_a", "modality_b"])
    for (a, b), row in table.iterrows():
        assert row["p_greater"] + table.loc[(b, a), "p_greater"] == pytest.approx(1, abs=1e-12)
        assert row["diff_median"] == pytest.approx(-table.loc[(b, a), "diff_median"], abs=1e-12)


def test_a_threshold_lowers_every_probability(calcinosis_fit):
    rates = _raw_rates(calcinosis_fit, "any")
    plain = pairwise(calcinosis_fit).set_index(["modality_a", "modality_b"])["p_greater"]
    strict = pairwise(calcinosis_fit, threshold=0.1).set_index(["modality_a", "modality_b"])
    assert (strict["p_greater"] <= plain).all()
    assert (strict["p_greater"] < plain).any()
    for (a, b), p in strict["p_greater"].items():
        assert p == pytest.approx(np.mean(rates[a] - rates[b] > 0.1), abs=1e-12)
    negative = pairwise(calcinosis_fit, threshold=-0.1)
    assert (negative.set_index(["modality_a", "modality_b"])["p_greater"] >= plain).all()


def test_unknown_outcome_is_named(calcinosis_fit):
    with pytest.raises(br.BayesReviewError, match=r"outcome='complete'.*any"):
        pairwise(calcinosis_fit, outcome="complete")
    with pytest.raises(br.BayesReviewError, match=r"outcome='partial'.*any"):
        ranks(calcinosis_fit, outcome="partial")


@pytest.mark.parametrize("threshold", [1.0, -1.0, 1.5, float("nan"), float("inf"), "0.1", True])
def test_bad_threshold(calcinosis_fit, threshold):
    with pytest.raises(br.BayesReviewError, match=re.escape(f"threshold={threshold!r}")):
        pairwise(calcinosis_fit, threshold=threshold)


@pytest.mark.parametrize("level", [0, 1, 1.2, float("nan")])
def test_bad_level(calcinosis_fit, level):
    with pytest.raises(br.BayesReviewError, match="level="):
        pairwise(calcinosis_fit, level=level)


def test_fit_methods_delegate(calcinosis_fit):
    pd.testing.assert_frame_equal(
        calcinosis_fit.compare(threshold=0.05), pairwise(calcinosis_fit, threshold=0.05)
    )
    pd.testing.assert_frame_equal(calcinosis_fit.ranks(), ranks(calcinosis_fit))


# --- ranks ------------------------------------------------------------------------------------


def test_rank_probabilities_agree_with_an_independent_ranking(calcinosis_fit):
    table = ranks(calcinosis_fit).set_index("modality")
    k = len(calcinosis_fit.groups)
    expected = _independent_rank_probabilities(_raw_rates(calcinosis_fit, "any"))
    columns = [f"p_rank_{r}" for r in range(1, k + 1)]
    for group, probs in expected.items():
        np.testing.assert_allclose(table.loc[group, columns].to_numpy(float), probs, atol=1e-12)


def test_rank_table_is_coherent(calcinosis_fit):
    table = ranks(calcinosis_fit)
    k = len(calcinosis_fit.groups)
    probs = table[[f"p_rank_{r}" for r in range(1, k + 1)]].to_numpy(float)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-12)  # over ranks, per modality
    np.testing.assert_allclose(probs.sum(axis=0), 1, atol=1e-12)  # over modalities, per rank
    np.testing.assert_array_equal(table["p_best"].to_numpy(), probs[:, 0])
    np.testing.assert_allclose(table["mean_rank"], probs @ np.arange(1, k + 1), atol=1e-12)
    # SUCRA from the mean rank alone (an identity, independent of the cumulative-sum route)
    np.testing.assert_allclose(table["sucra"], (k - table["mean_rank"]) / (k - 1), atol=1e-12)
    assert table["mean_rank"].sum() == pytest.approx(k * (k + 1) / 2)


def test_adjusted_false_uses_the_mix_rate(calcinosis_fit):
    mix = _raw_rates(calcinosis_fit, "any", "rate_mix")
    table = pairwise(calcinosis_fit, adjusted=False)
    row = table.iloc[0]
    diff = mix[row["modality_a"]] - mix[row["modality_b"]]
    assert row["p_greater"] == pytest.approx(np.mean(diff > 0), abs=1e-12)


# --- simulation truth -------------------------------------------------------------------------


@pytest.mark.slow
def test_a_clearly_better_modality_is_found(fast_fit):
    """Three modalities with true rates 0.9, 0.5 and 0.2, ten studies of 20 patients each."""
    rng = np.random.default_rng(7)
    truth = {"high": 0.9, "mid": 0.5, "low": 0.2}
    rows = []
    for modality, rate in truth.items():
        for j in range(10):
            events = int(rng.binomial(20, rate))
            rows.append(
                {"study": f"{modality} {j}", "modality": modality, "n": 20, "events": events}
            )
    studies = br.read_studies(pd.DataFrame(rows))
    fit = fast_fit(studies, outcome="events", seed=3)
    assert fit.outcomes == ("events",)
    table = pairwise(fit).set_index(["modality_a", "modality_b"])["p_greater"]
    assert table[("high", "mid")] > 0.99
    assert table[("high", "low")] > 0.99
    assert table[("mid", "low")] > 0.99
    rank_table = ranks(fit).set_index("modality")
    assert rank_table.loc["high", "p_best"] > 0.95
    assert rank_table.loc["high", "sucra"] > 0.95
    assert rank_table.loc["low", "p_rank_3"] > 0.95
    assert list(rank_table["mean_rank"].sort_values().index) == ["high", "mid", "low"]
