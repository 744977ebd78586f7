"""The simulations of publication selection and missing ratings (bayesreview.bias_simulation).

The simulators are checked without fitting, against expectations worked out by hand from the
stated mechanism; one replicate of each kind runs end to end (marked slow).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayesreview as br
from bayesreview.bias_simulation import (
    BIAS_CONFIGURATIONS,
    REVIEW_LEVEL_COUNTS,
    bias_jobs,
    bias_settings,
    bundled_sizes,
    rating_recovery_replicate,
    rating_table,
    selection_replicate,
    selection_table,
    selection_weight_table,
    simulate_published_literature,
    simulate_rated_review,
)
from bayesreview.errors import BayesReviewError
from bayesreview.evidence import fingerprint_parts

WEIGHTS = {"case_report": 0.3, "case_series": 0.5}


def _within(observed: float, expected: float, draws: int, z: float = 4.0) -> bool:
    """Whether a share of ``draws`` Bernoulli draws is within ``z`` binomial SEs of its
    expectation."""
    return abs(observed - expected) <= z * math.sqrt(expected * (1 - expected) / draws)


# ---------------------------------------------------------------------------------------------
# The published literature
# ---------------------------------------------------------------------------------------------


def test_zero_event_case_reports_have_their_exact_share():
    # A case report's events are Bernoulli(r) whatever phi; a non-responder is published with
    # probability w: P(y = 0 | published) = w (1 - r) / (w (1 - r) + r).
    r, w, k = 0.6, WEIGHTS["case_report"], 20_000
    table = simulate_published_literature(
        np.random.default_rng(1), r, 5.0, WEIGHTS, [1], n_published=k
    )
    expected = w * (1 - r) / (w * (1 - r) + r)
    share = float((table["events"] == 0).mean())
    assert abs(expected - 1 / 6) < 1e-12
    assert _within(share, expected, k), (share, expected)
    # and the planned studies it took: each is published with probability w (1 - r) + r
    assert _within(k / table.attrs["planned"], w * (1 - r) + r, table.attrs["planned"])


def test_case_series_are_selected_with_their_own_weight():
    # Sizes 1 and 3 alternate; a series of 3 has no responders with the beta-binomial
    # probability f0 = BetaBinomial(0 | 3, r phi, (1 - r) phi) and is then published with the
    # case-series weight: P(y = 0 | published, n = 3) = w' f0 / (w' f0 + 1 - f0).
    r, phi, k = 0.4, 2.0, 20_000
    table = simulate_published_literature(
        np.random.default_rng(2), r, phi, WEIGHTS, [1, 3], n_published=k
    )
    series = table[table["n"] == 3]
    f0 = stats.betabinom.pmf(0, 3, r * phi, (1 - r) * phi)
    w = WEIGHTS["case_series"]
    expected = w * f0 / (w * f0 + 1 - f0)
    assert _within(float((series["events"] == 0).mean()), expected, len(series))
    reports = table[table["n"] == 1]
    w = WEIGHTS["case_report"]
    expected = w * (1 - r) / (w * (1 - r) + r)
    assert _within(float((reports["events"] == 0).mean()), expected, len(reports))


def test_planned_studies_are_cycled_in_order():
    sizes = [1, 4, 2, 9, 1]
    # without selection every planned study is published: the sizes in turn, cycled
    table = simulate_published_literature(
        np.random.default_rng(3), 0.5, 5.0, {"case_report": 1, "case_series": 1}, sizes, 12
    )
    assert table["planned"].tolist() == list(range(12))
    assert table["n"].tolist() == [sizes[i % 5] for i in range(12)]
    assert table.attrs["planned"] == 12
    assert table["study"].tolist() == [f"study {i + 1}" for i in range(12)]
    assert set(table["modality"]) == {"all"}
    # with selection some are skipped, and each published study keeps its planned size
    table = simulate_published_literature(
        np.random.default_rng(4), 0.3, 1.0, {"case_report": 0, "case_series": 0}, sizes, 30
    )
    planned = table["planned"].to_numpy()
    assert np.all(np.diff(planned) > 0) and table.attrs["planned"] == planned[-1] + 1
    assert table["n"].tolist() == [sizes[i % 5] for i in planned]
    assert len(table) == 30 and (table["events"] > 0).all()  # w = 0: no zero-event study
    assert table.attrs["planned"] > 30
    # the table is a study table bayesreview reads
    assert len(br.read_studies(table)) == 30


def test_the_same_generator_state_gives_the_same_literature():
    first = simulate_published_literature(
        np.random.default_rng(5), 0.6, 5.0, WEIGHTS, bundled_sizes()
    )
    again = simulate_published_literature(
        np.random.default_rng(5), 0.6, 5.0, WEIGHTS, bundled_sizes()
    )
    pd.testing.assert_frame_equal(first, again)
    assert len(first) == 40


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"true_rate": 0.0}, "true_rate"),
        ({"true_rate": 1.0}, "true_rate"),
        ({"true_rate": "0.5"}, "true_rate"),
        ({"phi": 0.0}, "phi"),
        ({"phi": math.inf}, "phi"),
        ({"weights": {"case_report": 0.2}}, "one weight for each of case_report, case_series"),
        ({"weights": {"case_report": 0.2, "case_series": 0.5, "rct": 1}}, "one weight"),
        ({"weights": {"case_report": 1.2, "case_series": 0.5}}, "between 0 and 1"),
        ({"weights": {"case_report": -0.1, "case_series": 0.5}}, "between 0 and 1"),
        ({"sizes": []}, "non-empty"),
        ({"sizes": [1, 2.5]}, "whole numbers"),
        ({"sizes": [1, 0]}, "whole numbers >= 1"),
        ({"sizes": [[1, 2]]}, "non-empty list"),
        ({"n_published": 0}, "n_published"),
        ({"n_published": 2.0}, "n_published"),
    ],
)
def test_simulate_published_literature_rejects_bad_input(kwargs, match):
    arguments = {"true_rate": 0.6, "phi": 5.0, "weights": WEIGHTS, "sizes": [1, 2]}
    arguments.update(kwargs)
    with pytest.raises(BayesReviewError, match=match):
        simulate_published_literature(np.random.default_rng(0), **arguments)


def test_a_literature_that_is_never_published_raises():
    with pytest.raises(BayesReviewError, match="only 0 of 1000 planned studies"):
        simulate_published_literature(
            np.random.default_rng(0),
            1e-9,
            5.0,
            {"case_report": 0.0, "case_series": 0.0},
            [1],
            n_published=1,
        )


# ---------------------------------------------------------------------------------------------
# The rated review
# ---------------------------------------------------------------------------------------------


def test_rated_review_has_the_review_totals_and_shifted_rates():
    shifts = {"moderate": 0.5, "high": 1.0}
    table = simulate_rated_review(np.random.default_rng(6), 0.6, 5.0, shifts, bundled_sizes())
    assert table["risk_of_bias"].value_counts().to_dict() == REVIEW_LEVEL_COUNTS
    assert table["n"].tolist() == bundled_sizes().tolist()
    assert ((table["events"] >= 0) & (table["events"] <= table["n"])).all()
    # the true rates' mean at each level: invlogit(logit(0.6) + shift), over many studies
    big = simulate_rated_review(np.random.default_rng(7), 0.6, 5.0, shifts, np.ones(30_000, int))
    assert big["risk_of_bias"].value_counts().to_dict() == {
        "low": 7500,
        "moderate": 14250,
        "high": 8250,
    }
    for level, shift in {"low": 0.0, **shifts}.items():
        rates = big.loc[big["risk_of_bias"] == level, "true_rate"]
        mean = 1 / (1 + math.exp(-(math.log(0.6 / 0.4) + shift)))
        sd = math.sqrt(mean * (1 - mean) / 6.0)  # SD of Beta(m phi, (1 - m) phi), phi = 5
        assert abs(rates.mean() - mean) < 4 * sd / math.sqrt(len(rates))


def test_rated_review_rounds_the_totals_for_other_sizes():
    table = simulate_rated_review(
        np.random.default_rng(8), 0.6, 5.0, {"moderate": 0.0, "high": 0.0}, [1] * 7
    )
    # 7 x (10, 19, 11) / 40 = (1.75, 3.325, 1.925): floors 1, 3, 1, the two largest
    # remainders (low 0.75, high 0.925) get the remaining two
    assert table["risk_of_bias"].value_counts().to_dict() == {"moderate": 3, "low": 2, "high": 2}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_rate": 1.0}, "base_rate"),
        ({"shifts": {"moderate": 0.5}}, "one shift for each of moderate, high"),
        ({"shifts": {"moderate": 0.5, "high": math.nan}}, "finite"),
        ({"level_counts": {"low": 1, "moderate": 2}}, "level_counts"),
        ({"level_counts": {"low": 0, "moderate": 0, "high": 0}}, "at least one"),
    ],
)
def test_simulate_rated_review_rejects_bad_input(kwargs, match):
    arguments = {"base_rate": 0.6, "phi": 5.0, "shifts": {"moderate": 0.5, "high": 1.0}}
    arguments.update(kwargs)
    with pytest.raises(BayesReviewError, match=match):
        simulate_rated_review(np.random.default_rng(0), sizes=[1, 2, 3], **arguments)


def test_rating_recovery_rejects_bad_fractions():
    for fraction in (-0.1, 1.5, "half"):
        with pytest.raises(BayesReviewError, match="fraction_rated"):
            rating_recovery_replicate(0, fraction)


# ---------------------------------------------------------------------------------------------
# The configurations and the aggregation
# ---------------------------------------------------------------------------------------------


def test_configurations_bind_the_sizes_and_are_fingerprinted():
    settings = bias_settings()
    assert set(settings) == set(BIAS_CONFIGURATIONS) == {"selection", "rating_1", "rating_0.5"}
    for config in settings.values():
        assert config["kwargs"]["sizes"] == bundled_sizes().tolist()
    quick = bias_settings(draws=40)
    assert all(quick[name] != settings[name] for name in settings)
    assert bias_jobs()["rating_0.5"].keywords["fraction_rated"] == 0.5
    assert "bayesreview/bias_simulation.py" in fingerprint_parts("bias_simulations")


def test_selection_and_rating_tables():
    results = pd.DataFrame(
        {
            "true_rate": [0.6] * 4,
            "unadjusted_covered": [True, False, False, True],
            "unadjusted_width": [0.1, 0.2, 0.3, 0.4],
            "unadjusted_median": [0.7, 0.8, 0.7, 0.6],
            "unadjusted_problems": [0, 1, 0, 0],
            "unadjusted_divergences": [0, 0, 0, 0],
            "selection_covered": [True, True, True, False],
            "selection_width": [0.2, 0.2, 0.2, 0.2],
            "selection_median": [0.6, 0.5, 0.6, 0.7],
            "selection_problems": [0, 0, 2, 1],
            "selection_divergences": [0, 0, 1, 0],
        }
    )
    table = selection_table(results).set_index("model")
    assert table.loc["unadjusted", "coverage"] == 0.5
    assert table.loc["unadjusted", "mc_se"] == pytest.approx(0.25)
    assert table.loc["unadjusted", "mean_width"] == pytest.approx(0.25)
    assert table.loc["unadjusted", "bias"] == pytest.approx(0.1)
    assert table.loc["selection", "coverage"] == 0.75
    assert table.loc["selection", "with_problems"] == 2
    assert table.loc["selection", "divergent"] == 1

    weights = pd.DataFrame(
        {
            "true_w_case_report": [0.2] * 3,
            "true_w_case_series": [0.5] * 3,
            "w_case_report_median": [0.1, 0.2, 0.4],
            "w_case_report_lower": [0.0, 0.1, 0.3],
            "w_case_report_upper": [0.5, 0.5, 0.9],
            "w_case_report_covered": [True, True, False],
            "w_case_series_median": [0.5, 0.6, 0.7],
            "w_case_series_lower": [0.1, 0.1, 0.1],
            "w_case_series_upper": [0.9, 0.9, 0.9],
            "w_case_series_covered": [True, True, True],
        }
    )
    table = selection_weight_table(weights).set_index("selection_class")
    assert table.loc["case_report", "median_of_medians"] == pytest.approx(0.2)
    assert table.loc["case_report", "coverage"] == pytest.approx(2 / 3)
    assert table.loc["case_series", "mean_width"] == pytest.approx(0.8)

    ratings = pd.DataFrame(
        {
            "fraction_rated": [0.5, 0.5, 1.0, 1.0],
            "true_beta_moderate": [0.5] * 4,
            "true_beta_high": [1.0] * 4,
            "beta_moderate_covered": [True, False, True, True],
            "beta_moderate_width": [2.0, 3.0, 1.0, 1.0],
            "beta_moderate_median": [0.5, 1.5, 0.5, 0.7],
            "beta_high_covered": [True, True, True, True],
            "beta_high_width": [3.0, 3.0, 2.0, 2.0],
            "beta_high_median": [1.0, 1.0, 1.0, 1.0],
            "problems": [0, 1, 0, 0],
        }
    )
    table = rating_table(ratings)
    assert table[["fraction_rated", "level"]].values.tolist() == [
        [1.0, "moderate"],
        [1.0, "high"],
        [0.5, "moderate"],
        [0.5, "high"],
    ]
    half = table[(table["fraction_rated"] == 0.5) & (table["level"] == "moderate")].iloc[0]
    assert half["coverage"] == 0.5 and half["mean_width"] == 2.5
    assert half["bias"] == pytest.approx(0.5) and half["with_problems"] == 1


# ---------------------------------------------------------------------------------------------
# One replicate of each kind
# ---------------------------------------------------------------------------------------------

FAST = {"draws": 200, "tune": 200, "chains": 2}


@pytest.mark.slow
def test_one_selection_replicate_runs():
    row = selection_replicate(3, **FAST)
    assert row["published"] == 40 and row["planned"] >= 40
    for prefix in ("unadjusted", "selection"):
        assert row[f"{prefix}_lower"] <= row[f"{prefix}_median"] <= row[f"{prefix}_upper"]
        assert row[f"{prefix}_covered"] == (row[f"{prefix}_lower"] <= 0.6 <= row[f"{prefix}_upper"])
        assert row[f"{prefix}_width"] == pytest.approx(
            row[f"{prefix}_upper"] - row[f"{prefix}_lower"]
        )
        assert row[f"{prefix}_problems"] >= 0
    for d in ("case_report", "case_series"):
        assert 0 <= row[f"w_{d}_lower"] <= row[f"w_{d}_median"] <= row[f"w_{d}_upper"] <= 1
    assert row == selection_replicate(3, **FAST)  # the seed fixes everything


@pytest.mark.slow
def test_one_rating_recovery_replicate_runs():
    half = rating_recovery_replicate(3, 0.5, **FAST)
    assert half["rated"] == 20
    assert half["rated_moderate"] + half["rated_high"] <= 20
    for level, truth in (("moderate", 0.5), ("high", 1.0)):
        assert half[f"true_beta_{level}"] == truth
        lower, upper = half[f"beta_{level}_lower"], half[f"beta_{level}_upper"]
        assert half[f"beta_{level}_covered"] == (lower <= truth <= upper)
    full = rating_recovery_replicate(3, 1.0, **FAST)
    assert full["rated"] == 40
    assert full["rated_moderate"] == 19 and full["rated_high"] == 11
