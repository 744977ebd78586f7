"""The study table: the bundled data against the paper's text, validation, crude table."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayesreview as br
from bayesreview.data import validated

# Table 2 of Nowaczyk et al. (2021), typed from the paper: (group, outcome) -> (events, N).
# The topical none/unknown cells are left out: Table 1 (Ma 2019: 7 NR, 2 UR) disagrees with
# them (3/48, 6/48); test_reconcile_finds_exactly_the_disagreeing_cells covers those.
TABLE_2 = {
    ("topical_sts", "complete"): (9, 48),
    ("topical_sts", "partial"): (30, 48),
    ("intralesional_sts", "complete"): (19, 53),
    ("intralesional_sts", "partial"): (20, 53),
    ("intralesional_sts", "none"): (13, 53),
    ("intralesional_sts", "unknown"): (1, 53),
    ("laser", "complete"): (12, 21),
    ("laser", "partial"): (3, 21),
    ("laser", "unknown"): (6, 21),
    ("eswl", "complete"): (1, 11),
    ("eswl", "partial"): (6, 11),
    ("eswl", "none"): (3, 11),
    ("eswl", "unknown"): (1, 11),
    ("eswl_intralesional_sts", "partial"): (1, 1),
    ("picosecond_topical_sts", "partial"): (2, 2),
}
# The Results text: "Improvement was achieved in 81% (39/48) of cases treated with top-STS and
# 74% (39/53) with IL-STS ... ESWL and laser ... 64% (7/11) and 71% (15/21)".
ANY_RESPONSE_TEXT = {
    "topical_sts": (39, 48),
    "intralesional_sts": (39, 53),
    "eswl": (7, 11),
    "laser": (15, 21),
}


@pytest.fixture(scope="module")
def studies() -> pd.DataFrame:
    return br.load_dataset("calcinosis_cutis")


def test_bundled_data_has_40_studies_and_136_patients(studies):
    # Abstract: "A total of 40 studies including 136 patients were analysed."
    assert len(studies) == 40
    assert studies["n"].sum() == 136
    assert br.list_datasets() == ["calcinosis_cutis", "calcinosis_cutis_adverse_events"]


def test_design_counts_follow_the_quality_assessment_paragraph(studies):
    # "one prospective double-blind placebo-controlled pilot study [22]", case series cited as
    # [4, 5, 10, 13, 17, 18, 21, 31-35] (12 references), 27 case reports, and five conference
    # abstracts [19, 21, 33, 45, 46].
    design = studies.set_index("ref")["design"]
    assert design[22] == "rct"
    assert sorted(design[design == "case_series"].index) == [
        4,
        5,
        10,
        13,
        17,
        18,
        21,
        31,
        32,
        33,
        34,
        35,
    ]
    assert (design == "case_report").sum() == 27
    abstracts = studies.loc[studies["conference_abstract"], "ref"]
    assert sorted(abstracts) == [19, 21, 33, 45, 46]


def test_risk_of_bias_is_never_invented(studies):
    assert studies["risk_of_bias"].isna().all()
    totals = br.dataset_info("calcinosis_cutis")["risk_of_bias_totals"]
    # "The overall risk of bias was ranked as low in 10 studies, moderate in 19, and high in 11"
    assert totals == {"low": 10, "moderate": 19, "high": 11}
    assert studies.attrs["metadata"]["risk_of_bias_totals"] == totals


def test_patients_per_group_match_table_2(studies):
    # Table 2's n column: topical 48, intralesional 53, CO2 18, Er:YAG 1, diode 1,
    # picosecond + CO2 1, ESWL 11, ESWL + IL-STS 1, picosecond + topical STS 2.
    by_modality = studies.groupby("modality")["n"].sum().to_dict()
    assert by_modality == {
        "topical_sts": 48,
        "intralesional_sts": 53,
        "co2_laser": 18,
        "eryag_laser": 1,
        "diode_laser": 1,
        "picosecond_co2_laser": 1,
        "eswl": 11,
        "eswl_intralesional_sts": 1,
        "picosecond_topical_sts": 2,
    }


def test_crude_table_reproduces_table_2(studies):
    crude = br.crude_table(studies, by="group").set_index("group")
    for (group, outcome), (events, n) in TABLE_2.items():
        assert crude.at[group, outcome] == events, (group, outcome)
        assert crude.at[group, "denominator"] == n, (group, outcome)
        if outcome in ("complete", "partial"):
            assert crude.at[group, f"{outcome}_rate"] == pytest.approx(events / n)
    for group, (events, n) in ANY_RESPONSE_TEXT.items():
        assert crude.at[group, "any"] == events
        assert crude.at[group, "any_rate"] == pytest.approx(events / n)


def test_published_table_is_transcribed_consistently():
    # The percentages printed in Table 2 are the counts rounded half up; a typo in our copy of
    # either would break this.
    published = br.load_published("calcinosis_cutis")
    expected = np.floor(100 * published["events"] / published["n"] + 0.5).astype(int)
    assert (published["percent"] == expected).all()
    for (group, outcome), (events, n) in TABLE_2.items():
        row = published[(published["group"] == group) & (published["outcome"] == outcome)]
        assert row[["events", "n"]].values.tolist() == [[events, n]]


def test_reconcile_finds_exactly_the_disagreeing_cells(studies):
    # Table 1 gives Ma 2019 as 7 NR and 2 UR; Table 2 gives topical none 3/48, unknown 6/48.
    found = br.reconcile(studies, br.load_published("calcinosis_cutis"))
    got = {(r.level, r.quantity): (r.from_studies, r.published) for r in found.itertuples()}
    assert got == {("topical_sts", "none"): (7, 3), ("topical_sts", "unknown"): (2, 6)}


def test_reconcile_reports_a_changed_count(studies):
    changed = studies.copy()
    changed.loc[changed["study"] == "Olesen 2020", ["complete", "partial"]] = [12, 14]
    found = br.reconcile(changed, br.load_published("calcinosis_cutis"))
    cells = set(zip(found["level"], found["quantity"], strict=True))
    assert ("intralesional_sts", "complete") in cells
    assert ("intralesional_sts", "partial") in cells


def test_unknown_exclude_drops_unknowns_from_the_denominator(studies):
    crude = br.crude_table(studies, by="group", unknown="exclude").set_index("group")
    # laser: 6 of 21 patients unknown (Bottomley, per-lesion outcomes) -> 12/15 complete
    assert crude.at["laser", "denominator"] == 15
    assert crude.at["laser", "complete_rate"] == pytest.approx(12 / 15)
    assert crude.at["eswl", "any_rate"] == pytest.approx(7 / 10)


def test_clopper_pearson_matches_scipy_binomtest():
    for x, n in [(0, 1), (1, 1), (9, 48), (12, 21), (0, 29), (29, 29), (3, 11)]:
        ci = stats.binomtest(x, n).proportion_ci(confidence_level=0.95, method="exact")
        lower, upper = br.clopper_pearson(x, n)
        assert float(lower) == pytest.approx(ci.low, abs=1e-10)
        assert float(upper) == pytest.approx(ci.high, abs=1e-10)
    # a closed form: for 0/n the upper bound is 1 - (alpha/2)^(1/n)
    assert float(br.clopper_pearson(0, 5)[1]) == pytest.approx(1 - 0.025 ** (1 / 5))


def test_crude_table_by_other_column_and_interval_columns(studies):
    crude = br.crude_table(studies, by="design")
    assert set(crude["design"]) == {"rct", "case_series", "case_report"}
    assert crude["studies"].sum() == 40
    assert (crude["any_lower"] <= crude["any_rate"]).all()
    assert (crude["any_rate"] <= crude["any_upper"]).all()


def test_events_only_table_is_accepted():
    table = pd.DataFrame(
        {"study": ["a", "b"], "modality": ["x", "x"], "n": [10, 5], "events": [3, 5]}
    )
    studies = br.read_studies(table)
    crude = br.crude_table(studies)
    assert crude.loc[0, "events_rate"] == pytest.approx(8 / 15)


def test_read_studies_does_not_modify_its_input(tmp_path, studies):
    source = br.dataset_info("calcinosis_cutis")["studies"]
    path = tmp_path / "copy.csv"
    shutil.copy(br.data.resource_dir("data") / source, path)
    before = path.read_bytes()
    frame = pd.read_csv(path)
    frame_before = frame.copy()
    br.read_studies(path)
    br.read_studies(frame)
    assert path.read_bytes() == before
    pd.testing.assert_frame_equal(frame, frame_before)


# --------------------------------------------------------------------------------------------
# One test per kind of bad input: DataError, naming the row and column.
# --------------------------------------------------------------------------------------------


def _table(**changes) -> pd.DataFrame:
    base = pd.DataFrame(
        {
            "study": ["A 2001", "B 2002", "C 2003"],
            "modality": ["m1", "m1", "m2"],
            "risk_of_bias": ["low", "", "high"],
            "n": [10, 5, 1],
            "complete": [2, 1, 1],
            "partial": [3, 1, 0],
            "none": [4, 3, 0],
            "unknown": [1, 0, 0],
        }
    )
    for column, (row, value) in changes.items():
        base[column] = base[column].astype(object)
        base.loc[row, column] = value
    return base


def _error(table) -> str:
    with pytest.raises(br.DataError) as info:
        br.read_studies(table)
    return str(info.value)


def test_a_table_edited_after_validation_is_checked_again(studies):
    # fit() skips validating a table read_studies returned, but only while it is unchanged:
    # a count typed in afterwards must still be refused, naming its row and column.
    table = br.read_studies(studies)
    assert validated(table) is table
    table.loc[3, "complete"] = -1
    with pytest.raises(br.DataError, match=r"row 4 .*column 'complete'"):
        validated(table)
    with pytest.raises(br.DataError, match=r"row 4 .*column 'complete'"):
        br.fit(table, draws=10, tune=10, chains=1, progressbar=False)
    subset = br.read_studies(studies).iloc[:20]  # attrs survive slicing; the hash does not
    assert validated(subset) is not subset


def test_good_table_is_accepted():
    studies = br.read_studies(_table())
    rating = studies["risk_of_bias"]
    assert rating.cat.ordered and list(rating.cat.categories) == ["low", "moderate", "high"]
    assert rating.isna().tolist() == [False, True, False]
    assert rating[0] == "low" and rating[2] == "high"


def test_missing_required_column():
    message = _error(_table().drop(columns=["partial"]))
    assert "missing required column" in message and "partial" in message


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (2.5, "not a whole number"),
        ("two", "not a number"),
        (-1, "negative"),
        (float("nan"), "missing"),
        (float("inf"), "infinite"),
        (10**12, "implausibly large"),
    ],
)
def test_bad_count(value, words):
    message = _error(_table(none=(1, value)))
    assert words in message
    assert "row 2 (study 'B 2002')" in message and "column 'none'" in message


def test_year_must_be_a_year_not_a_boolean():
    table = _table()
    table["year"] = pd.Series([2001, True, 2003], dtype=object)
    message = _error(table)
    assert "row 2 (study 'B 2002')" in message and "'year'" in message and "True" in message


def test_categories_must_sum_to_n():
    message = _error(_table(n=(0, 11)))
    assert "row 1" in message and "do not sum to n" in message and "11" in message


def test_events_greater_than_n():
    table = pd.DataFrame({"study": ["a"], "modality": ["m"], "n": [3], "events": [4]})
    message = _error(table)
    assert "row 1" in message and "column 'events'" in message and "> n" in message


def test_n_zero():
    table = _table(n=(2, 0), complete=(2, 0))
    message = _error(table)
    assert "row 3 (study 'C 2003'), column 'n'" in message and "is 0" in message


def test_empty_table():
    assert "empty" in _error(_table().iloc[0:0])


def test_duplicate_study_within_modality():
    table = _table(study=(1, "A 2001"))
    message = _error(table)
    assert "row 2" in message and "duplicate of row 1" in message and "m1" in message
    # the same label in another modality is fine (a study reporting two modalities)
    br.read_studies(_table(study=(2, "A 2001")))


def test_unknown_risk_of_bias_level():
    message = _error(_table(risk_of_bias=(0, "very high")))
    assert "row 1" in message and "risk_of_bias" in message and "very high" in message


def test_every_problem_is_reported_at_once():
    message = _error(_table(none=(0, -1), risk_of_bias=(2, "meh")))
    assert "2 problem(s)" in message
    assert "row 1" in message and "row 3" in message


def test_file_that_does_not_exist(tmp_path):
    message = _error(tmp_path / "nope.csv")
    assert "nope.csv" in message and "does not exist" in message


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert "is empty" in _error(path)


def test_file_that_is_not_a_csv(tmp_path):
    path = tmp_path / "picture.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    message = _error(path)
    assert "picture.png" in message and "not" in message


def test_csv_without_the_study_columns(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a;b;c\n1;2;3\n")
    message = _error(path)
    assert "missing required column" in message and "study" in message


def test_duplicated_header(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("study,modality,n,n,complete,partial,none,unknown\na,m,1,1,1,0,0,0\n")
    message = _error(path)
    assert "duplicated column" in message and "n" in message


def test_unknown_dataset_and_rule(studies):
    with pytest.raises(br.DataError, match="calcinosis_cutis"):
        br.load_dataset("nope")
    with pytest.raises(br.DataError, match="unknown='drop'"):
        br.crude_table(studies, unknown="drop")
    with pytest.raises(br.DataError, match="by='nope'"):
        br.crude_table(studies, by="nope")
