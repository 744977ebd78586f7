"""The sentence helpers of docs/_prose.py: every branch of every helper, on inputs whose reading
follows from the documented thresholds (worked out by hand here, not taken from the helpers)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from bayesreview.checks import ppc_p_value

_PATH = Path(__file__).resolve().parents[1] / "docs" / "_prose.py"
_SPEC = importlib.util.spec_from_file_location("_prose", _PATH)
prose = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(prose)


# ---- formatting ----------------------------------------------------------------------------


def test_pct_rounds_half_up():
    assert prose.pct(0.625) == "63%"
    assert prose.pct(0.624) == "62%"
    assert prose.pct(1.0) == "100%"


def test_points_plain_and_signed():
    assert prose.points(0.103) == "10.3 points"
    assert prose.points(-0.062) == "6.2 points"
    assert prose.points(-0.062, signed=True) == "-6.2 points"
    assert prose.points(0.05, digits=0, signed=True) == "+5 points"


def test_legend_states_every_threshold():
    text = prose.legend()
    for value in ("0.95", "0.80", "0.20", "0.05", "2 percentage points", "5 points"):
        assert value in text


# ---- probabilities ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "word"),
    [
        (0.99, "very likely"),
        (0.956, "very likely"),  # printed 0.96
        (0.951, "likely"),  # printed 0.95: not above 0.95
        (0.95, "likely"),
        (0.80, "likely"),
        (0.794, "uncertain"),  # printed 0.79
        (0.5, "uncertain"),
        (0.21, "uncertain"),
        (0.20, "unlikely"),
        (0.05, "unlikely"),
        (0.049, "unlikely"),  # printed 0.05
        (0.044, "very unlikely"),  # printed 0.04
        (0.0, "very unlikely"),
        (1.0, "very likely"),
        (math.nan, "unknown"),
    ],
)
def test_probability_word(p, word):
    assert prose.probability_word(p) == word


def test_probability_word_is_symmetric():
    for p in np.linspace(0.0, 1.0, 101):
        p = round(float(p), 2)
        word = prose.probability_word(p)
        mirror = {
            "very likely": "very unlikely",
            "likely": "unlikely",
            "uncertain": "uncertain",
            "unlikely": "likely",
            "very unlikely": "very likely",
        }[word]
        assert prose.probability_word(round(1 - p, 2)) == mirror


def test_probability_word_rejects_non_probabilities():
    with pytest.raises(ValueError, match="between 0 and 1"):
        prose.probability_word(1.2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        prose.probability_word(-0.1)


@pytest.mark.parametrize(
    ("p", "sentence"),
    [
        (0.97, "A is very likely better than B (P = 0.97)"),
        (0.90, "A is likely better than B (P = 0.90)"),
        (0.63, "whether A is better than B is uncertain (P = 0.63)"),
        (0.17, "A is unlikely to be better than B (P = 0.17)"),
        (0.01, "A is very unlikely to be better than B (P = 0.01)"),
        (math.nan, "whether A is better than B is unknown (no probability)"),
    ],
)
def test_better_sentence(p, sentence):
    assert prose.better_sentence("A", "B", p) == sentence


def test_probability_sentence_other_claims():
    assert (
        prose.probability_sentence("X", "the best of the 6 groups", 0.45)
        == "whether X is the best of the 6 groups is uncertain (P = 0.45)"
    )


def test_decisive_sentence_branches():
    assert prose.decisive_sentence([0.6, 0.7], "the 2 probabilities") == (
        "None of the 2 probabilities is above 0.95 or below 0.05: they range from 0.60 to 0.70."
    )
    assert prose.decisive_sentence([0.99, 0.01], "the 2 probabilities") == (
        "All of the 2 probabilities are above 0.95 or below 0.05: they range from 0.01 to 0.99."
    )
    assert prose.decisive_sentence([0.96, 0.5, 0.3], "the 3 probabilities") == (
        "1 of the 3 probabilities is above 0.95 or below 0.05; they range from 0.30 to 0.96."
    )
    assert prose.decisive_sentence([0.96, 0.02, 0.3], "the 3 probabilities").startswith(
        "2 of the 3 probabilities are above"
    )
    assert prose.decisive_sentence([math.nan], "probabilities") == (
        "There are no probabilities to read."
    )


# ---- posterior predictive checks ------------------------------------------------------------


def test_ppc_misfit_threshold():
    assert prose.ppc_misfit(0.049)
    assert not prose.ppc_misfit(0.05)
    assert not prose.ppc_misfit(0.24)
    assert not prose.ppc_misfit(math.nan)


def test_ppc_sentence_no_misfit():
    text = prose.ppc_sentence("any", "zero_event_studies", 3, 3.4, 0.62, 0.76)
    assert text == (
        "any response, zero-event studies: no sign of misfit (3 observed, 3.4 in the replicates "
        "on average; two-sided p = 0.76)."
    )


def test_ppc_sentence_misfit_direction_follows_mid_p_convention():
    # Data with FEWER zero-event studies than every replicate: P(T_rep > T_obs) = 1.
    p, p_two = ppc_p_value(np.full(400, 7.0), 3.0)
    assert (p, p_two) == (1.0, 0.0)
    text = prose.ppc_sentence("any", "zero_event_studies", 3, 7.0, p, p_two)
    assert "misfit, the data have fewer zero-event studies than the model reproduces" in text
    # Data with MORE all-event studies than every replicate: p = 0.
    p, p_two = ppc_p_value(np.full(400, 20.0), 30.0)
    text = prose.ppc_sentence("any", "all_event_studies", 30, 20.0, p, p_two)
    assert "the data have more all-event studies" in text
    # A continuous statistic, larger in the data; second stage named in words.
    text = prose.ppc_sentence("complete|any", "rate_sd", 0.5, 0.3, 0.01, 0.02)
    assert text.startswith("complete response among responders, spread of the study rates (SD)")
    assert "the data have a larger spread" in text
    text = prose.ppc_sentence("any", "rate_sd", 0.2, 0.4, 0.99, 0.02)
    assert "the data have a smaller spread" in text


def test_ppc_sentence_tie_reads_as_fit():
    # Every replicate reproduces the observed count: mid-p 0.5, two-sided 1 -> no misfit.
    p, p_two = ppc_p_value(np.zeros(100), 0.0)
    assert "no sign of misfit" in prose.ppc_sentence("any", "zero_event_studies", 0, 0, p, p_two)


def test_ppc_sentence_undefined_and_unknown_statistic():
    text = prose.ppc_sentence("any", "rate_sd", math.nan, math.nan, math.nan, math.nan)
    assert "the check is undefined" in text
    text = prose.ppc_sentence("other", "max_rate", 1, 2, 0.99, 0.02)
    assert text.startswith("other, max rate: misfit, the data have less max rate")


def test_ppc_overall_sentence():
    assert prose.ppc_overall_sentence([0.17, 0.3, math.nan]) == (
        "None of the 2 posterior predictive checks shows misfit (two-sided p < 0.05); the "
        "smallest two-sided p is 0.17."
    )
    assert prose.ppc_overall_sentence([0.01, 0.3]) == (
        "1 of the 2 posterior predictive checks shows misfit (two-sided p < 0.05)."
    )
    assert prose.ppc_overall_sentence([0.01, 0.03, 0.3]).startswith(
        "2 of the 3 posterior predictive checks show misfit"
    )
    assert prose.ppc_overall_sentence([math.nan]) == (
        "No posterior predictive check could be computed."
    )


# ---- changes, shifts, widths ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "word"),
    [
        (0.0, "barely"),
        (-0.019, "barely"),
        (0.02, "a little"),
        (-0.049, "a little"),
        (0.05, "substantially"),
        (-0.3, "substantially"),
    ],
)
def test_change_word(change, word):
    assert prose.change_word(change) == word


def test_change_sentence_reports_the_largest_change():
    text = prose.change_sentence("X", [0.60, 0.70], [0.61, 0.69], ["a", "b"])
    assert text == "X barely moves the rates: by up to 1.0 points (a, 60% to 61%)"
    text = prose.change_sentence("X", [0.60, 0.70], [0.61, 0.58], ["a", "b"])
    assert text == "X substantially moves the rates: by up to 12.0 points (b, 70% to 58%)"
    text = prose.change_sentence("X", [0.60], [0.63], ["a"])
    assert text.startswith("X a little moves")
    with pytest.raises(ValueError, match="equally long"):
        prose.change_sentence("X", [0.1, 0.2], [0.1], ["a", "b"])


def test_shift_sentence_branches():
    text = prose.shift_sentence([0.01, -0.031], ["a", "b"])
    assert text == (
        "None of the 2 leave-one-out refits moves a mean rate by 5 points or more; the largest "
        "shift is -3.1 points (b)."
    )
    text = prose.shift_sentence([0.103, -0.062, 0.01], ["a", "b", "c"], what="rows")
    assert text == (
        "2 of the 3 rows move a mean rate by 5 points or more; the largest shift is +10.3 "
        "points (a)."
    )
    assert prose.shift_sentence([0.05, 0.0], ["a", "b"]).startswith("1 of the 2 leave-one-out")
    with pytest.raises(ValueError, match="not empty"):
        prose.shift_sentence([], [])


def test_width_sentence_branches():
    text = prose.width_sentence("A intervals", [0.8, 1.0], "B intervals", [0.4, 0.5])
    assert text == (
        "The A intervals (80 to 100 points wide) are wider than the B intervals (40 to 50 "
        "points) in all 2 rows, 2.0 times as wide at the median"
    )
    text = prose.width_sentence("A", [0.2, 0.25], "B", [0.4, 0.5])
    assert "are narrower than the B" in text and "in all 2 rows, 0.5 times" in text
    text = prose.width_sentence("A", [0.5, 0.3], "B", [0.4, 0.4])
    assert "are wider than the B (40 to 40 points) in 1 of 2 rows" in text
    text = prose.width_sentence("A", [0.5], "B", [0.4])
    assert "in the 1 row" in text
    with pytest.raises(ValueError, match="equally long"):
        prose.width_sentence("A", [0.5], "B", [0.4, 0.3])


def test_size_comparison():
    assert prose.size_comparison(0.30, 0.10) == "more than"
    assert prose.size_comparison(0.10, 0.30) == "less than"
    assert prose.size_comparison(0.100, 0.104) == "as much as"


# ---- estimands, pooling, reconciliation ----------------------------------------------------


def test_estimand_sentence_branches():
    text = prose.estimand_sentence([0.90, 0.50], [0.99, 0.49], ["a", "b"])
    assert text == (
        "The median-study rate is above the mean rate in 1 of 2 rows; the largest gap is +9 "
        "points (a: mean rate 90%, median-study rate 99%)."
    )
    text = prose.estimand_sentence([0.50, 0.30], [0.503, math.nan], ["a", "b"])
    assert text == "The median-study rate and the mean rate agree to within 1 points in every row."
    text = prose.estimand_sentence([0.5], [math.nan], ["a"])
    assert text == "The median-study rate is not available for these rows."
    with pytest.raises(ValueError, match="equally long"):
        prose.estimand_sentence([0.5], [0.5, 0.4], ["a"])


def test_pull_sentence_branches():
    text = prose.pull_sentence("g", 1.0, 0.68, 0.76)
    assert text == (
        "g (crude 100%, posterior mean rate 68%, -32 points; the other groups' mean rates "
        "average 76%) is pulled toward the other groups"
    )
    assert prose.pull_sentence("g", 0.7, 0.6, 0.75).endswith(
        "is not pulled toward the other groups"
    )
    assert (
        prose.pull_sentence("g", math.nan, 0.6, 0.75) == "g: no crude or posterior rate to compare."
    )


def test_agreement_sentence_branches():
    assert prose.agreement_sentence([]) == "Every cell agrees with the paper."
    text = prose.agreement_sentence([("t", "none"), ("t", "unknown")])
    assert text == (
        "Every response cell (complete, partial) agrees with the paper; the 2 cells marked "
        "**no**: t none; t unknown."
    )
    text = prose.agreement_sentence([("t", "complete")])
    assert (
        text == "1 response cell(s) disagree with the paper; the 1 cell marked **no**: t complete."
    )


def test_same_cells_sentence_branches():
    cells = [("t", "none"), ("t", "unknown")]
    assert prose.same_cells_sentence(cells, list(reversed(cells))) == (
        "`reconcile` finds exactly those cells"
    )
    assert prose.same_cells_sentence(cells, [("t", "none"), ("e", "partial")]) == (
        "`reconcile` misses t unknown and also finds e partial"
    )
    assert prose.same_cells_sentence(cells, cells[:1]) == "`reconcile` misses t unknown"


def test_split_sentence_branches():
    text = prose.split_sentence(["none", "unknown"], [7, 2], [3, 6])
    assert text.startswith("Both versions put 9 patients in these cells")
    assert "neither changes a response rate" in text
    text = prose.split_sentence(["none", "unknown"], [7, 2], [3, 5])
    assert text.startswith("The two versions put 9 and 8 patients")
    text = prose.split_sentence(["partial", "none"], [5, 2], [4, 3])
    assert "the response rates differ" in text
