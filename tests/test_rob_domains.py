"""overall_risk_of_bias: RoB 2 and ROBINS-I domain judgements combined into the overall level.

Every expected overall judgement below is worked out by hand from the published rules, not
taken from the function:

- RoB 2 (Sterne et al. 2019, BMJ 366:l4898, Table 3): low if every domain is low; high if any
  domain is high, or if some concerns in multiple domains substantially lower confidence
  (here: at least ``some_concerns_to_high`` domains, default 3); otherwise some concerns.
  This package maps some concerns to ``moderate``.
- ROBINS-I (Sterne et al. 2016, BMJ 355:i4919): the overall is the worst domain
  (low < moderate < serious < critical); "no information" is not a judgement of bias. This
  package maps serious and critical to ``high``.
- A domain not assessed: the overall is known only where the assessed domains decide it.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import bayesreview as br
from bayesreview.data import RISK_OF_BIAS_LEVELS, overall_risk_of_bias, read_studies
from bayesreview.errors import DataError

ROB2 = ["d1", "d2", "d3", "d4", "d5"]
ROBINS = ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]
L, S, H = "low", "some concerns", "high"
M, SE, C, NI = "moderate", "serious", "critical", "no information"


def rob2(*rows: list, **options) -> list:
    table = pd.DataFrame(list(rows), columns=ROB2[: len(rows[0])])
    result = overall_risk_of_bias(table, list(table.columns), **options)
    return [None if pd.isna(v) else v for v in result]


def robins(*rows: list, **options) -> list:
    table = pd.DataFrame(list(rows), columns=ROBINS[: len(rows[0])])
    result = overall_risk_of_bias(table, list(table.columns), tool="robins_i", **options)
    return [None if pd.isna(v) else v for v in result]


# ---- RoB 2 -----------------------------------------------------------------------------------


def test_rob2_all_low_is_low():
    # Table 3: "low risk of bias for all domains" -> low
    assert rob2([L, L, L, L, L]) == ["low"]


def test_rob2_one_some_concerns_is_moderate():
    # Table 3: "some concerns in at least one domain ... but not at high risk for any" ->
    # some concerns, which is "moderate" here
    assert rob2([L, S, L, L, L]) == ["moderate"]


def test_rob2_one_high_is_high():
    # Table 3: "high risk of bias in at least one domain" -> high
    assert rob2([L, L, L, H, L]) == ["high"]
    assert rob2([S, S, L, H, L]) == ["high"]


def test_rob2_two_some_concerns_moderate_three_high_with_default_threshold():
    # Table 3: some concerns in multiple domains that substantially lower confidence -> high;
    # made explicit as >= 3 domains by default, so 2 stay some concerns
    assert rob2([S, S, L, L, L], [S, S, S, L, L], [S, S, S, S, S]) == [
        "moderate",
        "high",
        "high",
    ]


def test_rob2_threshold_is_a_choice():
    assert rob2([S, S, L, L, L], some_concerns_to_high=2) == ["high"]
    assert rob2([S, S, S, L, L], some_concerns_to_high=4) == ["moderate"]


def test_rob2_threshold_none_only_a_high_domain_makes_high():
    assert rob2([S, S, S, S, S], [S, L, L, L, H], some_concerns_to_high=None) == [
        "moderate",
        "high",
    ]


# ---- ROBINS-I --------------------------------------------------------------------------------


def test_robins_i_worst_domain():
    # Sterne 2016: overall = the most severe domain judgement
    rows = [
        [L, L, L, L, L, L, L],  # low
        [L, M, L, L, M, L, M],  # moderate, however many moderate domains
        [L, M, SE, L, L, L, L],  # serious -> high
        [L, L, L, L, L, L, C],  # critical -> high
        [M, SE, C, L, L, L, L],  # critical -> high
    ]
    assert robins(*rows) == ["low", "moderate", "high", "high", "high"]


def test_robins_i_no_information_is_not_assessed():
    # Sterne 2016: overall "no information" when there is no clear indication of serious or
    # critical risk and information is lacking in a domain; serious wins over it
    rows = [
        [L, L, NI, L, L, L, L],  # undecided: missing
        [M, L, L, L, NI, L, L],  # undecided: missing
        [L, NI, SE, L, L, L, L],  # serious despite no information -> high
        [NI, NI, NI, NI, NI, NI, C],  # critical -> high
        [NI, NI, NI, NI, NI, NI, NI],  # nothing assessed: missing
    ]
    assert robins(*rows) == [None, None, "high", "high", None]


def test_robins_i_threshold_left_at_default_or_none():
    rows = [[M, M, M, M, M, M, M]]
    assert robins(*rows) == ["moderate"]
    assert robins(*rows, some_concerns_to_high=None) == ["moderate"]
    with pytest.raises(DataError, match="applies to RoB 2 only"):
        robins(*rows, some_concerns_to_high=2)


# ---- partly observed -------------------------------------------------------------------------


def test_rob2_high_known_despite_a_missing_domain():
    assert rob2([H, None, L, L, L]) == ["high"]
    # three assessed domains with some concerns reach the threshold whatever d4, d5 say
    assert rob2([S, S, S, np.nan, ""]) == ["high"]


def test_rob2_missing_when_undecided():
    rows = [
        [L, L, L, L, None],  # all assessed low, one not assessed: could be high -> missing
        [S, L, L, L, None],  # could be some concerns or high -> missing
        [S, S, L, L, None],  # a third some concerns would make it high -> missing
        [None, None, None, None, None],  # nothing assessed
    ]
    assert rob2(*rows) == [None, None, None, None]
    # with the rule off, two some concerns and a gap are still undecided (the gap may be high)
    assert rob2([S, S, S, L, None], some_concerns_to_high=None) == [None]


# ---- reading the judgements ------------------------------------------------------------------


def test_case_spacing_and_separators_tolerated():
    rows = [
        ["LOW", " low ", "Low", "low", "low"],
        ["some_concerns", "low", "low", "low", "low"],
        ["Some-Concerns ", "  SOME  CONCERNS", "some concerns", "low", "low"],
        ["High", "low", "low", "low", "low"],
    ]
    assert rob2(*rows) == ["low", "moderate", "high", "high"]
    assert robins(
        ["Serious", "LOW", "low", "low", "low", "low", "low"],
        ["No_Information", "Moderate", "low", "low", "low", "low", "low"],
        ["no-information", "CRITICAL", "low", "low", "low", "low", "low"],
    ) == ["high", None, "high"]


def test_tool_name_tolerant():
    table = pd.DataFrame({"a": ["serious"]})
    for tool in ("robins_i", "ROBINS-I", "Robins I"):
        assert overall_risk_of_bias(table, ["a"], tool=tool).tolist() == ["high"]
    table = pd.DataFrame({"a": ["some concerns"]})
    assert overall_risk_of_bias(table, ["a"], tool="RoB 2").tolist() == ["moderate"]


# ---- what comes back, and what is left alone -------------------------------------------------


def test_result_shape_and_input_unchanged():
    table = pd.DataFrame(
        {
            "study": ["A 2020", "B 2021", "C 2022"],
            "d1": ["Low", "some_concerns", None],
            "d2": ["low", "low", "high"],
            "notes": ["x", "y", "z"],
        },
        index=[10, 20, 5],
    )
    before = copy.deepcopy(table)
    result = overall_risk_of_bias(table, ["d1", "d2"])
    pd.testing.assert_frame_equal(table, before)
    assert result.name == "risk_of_bias"
    assert result.index.tolist() == [10, 20, 5]
    assert isinstance(result.dtype, pd.CategoricalDtype)
    assert result.dtype.ordered
    assert list(result.dtype.categories) == list(RISK_OF_BIAS_LEVELS)
    assert result.tolist() == ["low", "moderate", "high"]
    assert result.index is not table.index


def test_same_dtype_as_read_studies_and_accepted_by_it():
    table = pd.DataFrame(
        {
            "study": ["A", "B", "C"],
            "modality": ["m", "m", "m"],
            "n": [10, 12, 8],
            "events": [3, 4, 5],
            "d1": ["low", "some concerns", "low"],
            "d2": ["low", "low", None],
        }
    )
    table["risk_of_bias"] = overall_risk_of_bias(table, ["d1", "d2"])
    studies = read_studies(table)
    assert studies["risk_of_bias"].dtype == table["risk_of_bias"].dtype
    assert [None if pd.isna(v) else v for v in studies["risk_of_bias"]] == [
        "low",
        "moderate",
        None,
    ]


def test_public():
    assert br.overall_risk_of_bias is overall_risk_of_bias
    assert "overall_risk_of_bias" in br.__all__
    assert "overall_risk_of_bias" in br.data.__all__


# ---- bad input -------------------------------------------------------------------------------


def _message(table, domains=("d1", "d2"), **options) -> str:
    with pytest.raises(DataError) as caught:
        overall_risk_of_bias(table, list(domains), **options)
    return str(caught.value)


def test_unknown_rob2_judgement_names_row_column_value_and_allowed():
    table = pd.DataFrame({"study": ["A", "B"], "d1": ["low", "low"], "d2": ["low", "moderate"]})
    message = _message(table)
    assert "row 2 (study 'B')" in message
    assert "column 'd2'" in message
    assert "'moderate'" in message
    for allowed in ("'low'", "'some concerns'", "'high'"):
        assert allowed in message


def test_unknown_robins_judgement_names_row_column_value_and_allowed():
    table = pd.DataFrame({"d1": ["low", "some concerns"], "d2": ["low", "low"]})
    message = _message(table, tool="robins_i")
    assert "row 2" in message
    assert "column 'd1'" in message
    assert "'some concerns'" in message
    for allowed in ("'moderate'", "'serious'", "'critical'", "'no information'"):
        assert allowed in message


def test_rob2_has_no_no_information_judgement():
    message = _message(pd.DataFrame({"d1": ["low"], "d2": ["no information"]}))
    assert "row 1, column 'd2'" in message and "'no information'" in message


def test_non_text_judgement_and_every_problem_listed():
    table = pd.DataFrame({"d1": ["low", 2, "low"], "d2": ["hihg", "low", True]})
    message = _message(table)
    assert "3 problem(s)" in message
    assert "row 1, column 'd2'" in message and "'hihg'" in message
    assert "row 2, column 'd1'" in message and "2 is not a RoB 2 judgement" in message
    assert "row 3, column 'd2'" in message and "True" in message


def test_rows_counted_by_position_not_index():
    table = pd.DataFrame({"d1": ["low", "bad"], "d2": ["low", "low"]}, index=[7, 3])
    assert "row 2, column 'd1'" in _message(table)


def test_missing_domain_column_named():
    table = pd.DataFrame({"d1": ["low"], "d2": ["low"]})
    message = _message(table, domains=("d1", "d2", "d3"))
    assert "no such domain column(s): 'd3'" in message


def test_bad_domains_argument():
    table = pd.DataFrame({"d1": ["low"]})
    with pytest.raises(DataError, match="list of domain column names"):
        overall_risk_of_bias(table, "d1")
    with pytest.raises(DataError, match="domains is empty"):
        overall_risk_of_bias(table, [])
    with pytest.raises(DataError, match="given twice: d1"):
        overall_risk_of_bias(table, ["d1", "d1"])
    with pytest.raises(DataError, match="takes a pandas DataFrame"):
        overall_risk_of_bias([["low"]], ["d1"])


def test_unknown_tool_lists_known_tools():
    message = _message(pd.DataFrame({"d1": ["low"], "d2": ["low"]}), tool="grade")
    assert "'grade'" in message and "'rob2'" in message and "'robins_i'" in message


@pytest.mark.parametrize("value", [1, 0, -2, 2.5, "3", True])
def test_bad_threshold(value):
    message = _message(pd.DataFrame({"d1": ["low"], "d2": ["low"]}), some_concerns_to_high=value)
    assert "some_concerns_to_high" in message
