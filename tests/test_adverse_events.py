"""The bundled adverse-event table against the review's printed text; its reader; reconcile.

Every expected value below is typed from the review (Nowaczyk et al. 2021) as a literal quote,
and each quote is looked up in our copy of the text, so a count in the CSV that the paper does
not print fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import bayesreview as br
from bayesreview.data import read_adverse_events, reconcile_adverse_events

SEED = Path(__file__).parents[1].parent / "shared" / "seed" / "calcinosis_cutis_review_2021.txt"
NAME = "calcinosis_cutis_adverse_events"

# Table 2, "Adverse events (number of patients)": row_id -> (Table 2 row label, the entry as
# printed, events, n of that row). The laser cell is printed on the "CO ₂" row.
TABLE_2_ROWS = {
    "ae01": ("Topical", "Transient pruritus (1)", 1, 48),
    "ae02": ("Topical", "recurrence (1)", 1, 48),
    "ae03": ("Topical", "skin irritation (2)", 2, 48),
    "ae04": ("Topical", "zinc ointment allergy (1)", 1, 48),
    "ae05": ("Intralesional", "Infection (5)", 5, 53),
    "ae06": ("Intralesional", "injection pain (6 ^b)", 6, 53),
    "ae07": ("Intralesional", "blistering (1)", 1, 53),
    "ae08": ("Intralesional", "skin discoloration (N/R)", None, 53),
    "ae09": ("CO ₂", "Infection (2)", 2, 18),
    "ae10": ("CO ₂", "recurrence (2)", 2, 18),
    "ae11": ("CO ₂", "scarring or hyperkeratosis (10)", 10, 18),
    "ae12": ("CO ₂", "hypopigmentation (2)", 2, 18),
    "ae13": ("CO ₂", "itching or burning (2)", 2, 18),
    "ae14": ("ESWL", "Transient fever (1)", 1, 11),
    "ae15": ("ESWL + intralesional STs", "Crater-like defects (N/R)", None, 1),
    "ae16": ("Picosecond + topical STs", "None", 0, 2),
}

# The text: row_id -> (a passage quoted from the text, events, n, reported_as).
TEXT_ROWS = {
    "ae17": ("Infection was recognised in 9% (5/53) of patients after IL-STS", 5, 53, "9% (5/53)"),
    "ae18": ("occurred in over 11% of patients receiving IL-STS", None, 53, "over 11%"),
    "ae19": ("in 11% (2/18) of cases managed with CO₂ laser", 2, 18, "11% (2/18)"),
    "ae20": (
        "Either scarring or hyperkeratosis was noticed in 56% (10/18) of patients after CO₂ laser",
        10,
        18,
        "56% (10/18)",
    ),
    "ae21": (
        "Infections and recurrences were also noted in several cases (11% for both events)",
        2,
        18,
        "11%",
    ),
    "ae22": ("Recurrences within the follow-up were rare (2%; 3/136)", 3, 136, "2%; 3/136"),
    "ae23": (
        "No recurrences were observed within the follow-up",
        0,
        None,
        "No recurrences were observed within the follow-up",
    ),
    "ae24": (
        "One case of transient fever was the only adverse reaction observed after ESWL [56]",
        1,
        None,
        "One case of transient fever",
    ),
}

# Rows of one study: row_id -> (passage attributing the events, events, Table 1's first cell
# of the study, its "No of cases").
STUDY_ROWS = {
    "ae25": (
        "In one such case, the calcifications recurred after a trauma [18]",
        1,
        "Jost [18] ^b",
        3,
    ),
    "ae26": (
        "(no infectious complications were reported for other types of lasers) [13]",
        2,
        "Bottomley [13]",
        6,
    ),
    "ae27": ("after top-STS and CO₂ laser therapies [13, 18]", 2, "Bottomley [13]", 6),
    "ae28": ("the only adverse reaction observed after ESWL [56]", 1, "Chan [56]", 1),
    "ae29": (
        "no infectious complications were reported for other types of lasers",
        0,
        "Meissner [53]",
        1,
    ),
    "ae30": (
        "no infectious complications were reported for other types of lasers",
        0,
        "Wollina [54]",
        1,
    ),
    "ae31": (
        "no infectious complications were reported for other types of lasers",
        0,
        "Abrouk [55]",
        1,
    ),
    "ae32": (
        "Olesen et al. [17] also reported injection pain, however, without an exact number",
        None,
        "Olesen [17]",
        29,
    ),
}


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def paper() -> str:
    if not SEED.is_file():
        pytest.skip(f"the review's text is not here ({SEED}); the transcription checks need it")
    return SEED.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def text(paper) -> str:
    return _squash(paper)


@pytest.fixture(scope="module")
def table_lines(paper) -> dict[str, list[str]]:
    """Tab-separated rows of Tables 1 and 2, by their first cell."""
    rows: dict[str, list[str]] = {}
    for line in paper.splitlines():
        cells = line.split("\t")
        if len(cells) >= 2:
            rows.setdefault(cells[0].strip(), cells)
    return rows


@pytest.fixture(scope="module")
def table_2(paper) -> dict[str, list[str]]:
    """Table 2's rows only (Table 1 also has an "ESWL" heading line)."""
    start = paper.index("Table 2 Summary")
    body = paper[start : paper.index("Er:YAG erbium-doped", start)]
    return {line.split("\t")[0].strip(): line.split("\t") for line in body.splitlines() if line}


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return br.load_dataset(NAME)


def _row(events: pd.DataFrame, row_id: str) -> pd.Series:
    rows = events[events["row_id"] == row_id]
    assert len(rows) == 1, row_id
    return rows.iloc[0]


def _same(value, expected) -> bool:
    return pd.isna(value) if expected is None else int(value) == expected


def test_load_dataset_returns_the_validated_table_with_its_metadata(events):
    assert NAME in br.list_datasets()
    assert events.attrs["metadata"]["kind"] == "adverse_events"
    assert events.attrs["metadata"]["citation"] == br.dataset_info("calcinosis_cutis")["citation"]
    assert str(events["events"].dtype) == "Int64" and str(events["n"].dtype) == "Int64"
    assert events["pooled"].dtype == bool
    assert set(events["row_id"]) == set(TABLE_2_ROWS) | set(TEXT_ROWS) | set(STUDY_ROWS)
    # the response data still loads with its own schema
    assert "complete" in br.load_dataset("calcinosis_cutis")


@pytest.mark.parametrize("row_id", sorted(TABLE_2_ROWS))
def test_table_2_rows_are_the_printed_entries(row_id, events, table_2):
    label, entry, count, n = TABLE_2_ROWS[row_id]
    cells = table_2[label]
    assert int(cells[1]) == n  # Table 2's n column
    assert entry in [item.strip() for item in cells[-1].split(", ")]  # the adverse-events cell
    printed = re.search(r"\((\d+)", entry)
    assert (int(printed.group(1)) if printed else {"None": 0}.get(entry)) == count
    row = _row(events, row_id)
    assert row["reported_as"] == entry
    assert row["source"].startswith("Table 2") and pd.isna(row["study"]) and row["pooled"]
    assert _same(row["events"], count) and _same(row["n"], n)


def test_every_table_2_entry_has_a_row(events, table_2):
    # Topical 4 entries, intralesional 4, CO2 (all lasers' cell) 5, ESWL 1, the combined 1 + 1.
    cells = [table_2[label][-1] for label in ("Topical", "Intralesional", "CO ₂", "ESWL")]
    cells += [table_2["ESWL + intralesional STs"][-1], table_2["Picosecond + topical STs"][-1]]
    printed = [item.strip() for cell in cells for item in cell.split(", ")]
    assert len(printed) == 16
    from_table_2 = events[events["source"].str.startswith("Table 2") & events["study"].isna()]
    assert sorted(from_table_2["reported_as"]) == sorted(printed)


@pytest.mark.parametrize("row_id", sorted(TEXT_ROWS))
def test_text_rows_are_the_printed_statements(row_id, events, text):
    passage, count, n, reported_as = TEXT_ROWS[row_id]
    assert passage in text and reported_as in text
    row = _row(events, row_id)
    assert row["reported_as"] == reported_as and pd.isna(row["study"]) and row["pooled"]
    assert _squash(passage) in _squash(row["source"]) or reported_as in row["source"]
    assert not row["source"].startswith("Table 2")
    assert _same(row["events"], count) and _same(row["n"], n)


def test_percentages_turned_into_counts_or_left_as_bounds():
    # "over 11%" of 53: 6/53 = 11.3% is the smallest count above 11% (Table 2: 6), a bound only.
    assert 5 / 53 < 0.11 < 6 / 53
    # "11% for both events" over 18 CO2 patients: only 2 rounds to 11% (not over 21 lasers).
    assert [k for k in range(19) if round(100 * k / 18) == 11] == [2]
    assert round(100 * 2 / 21) != 11
    # The printed percentages of the counts kept: 9% (5/53), 11% (2/18), 56% (10/18), 2% (3/136)
    assert [round(100 * a / b) for a, b in [(5, 53), (2, 18), (10, 18), (3, 136)]] == [9, 11, 56, 2]


@pytest.mark.parametrize("row_id", sorted(STUDY_ROWS))
def test_study_rows_follow_the_citations_and_table_1(row_id, events, text, table_lines):
    passage, count, table_1_cell, n = STUDY_ROWS[row_id]
    assert passage in text
    assert int(table_lines[table_1_cell][1]) == n  # Table 1, "No of cases"
    row = _row(events, row_id)
    assert not row["pooled"] and _same(row["events"], count) and _same(row["n"], n)
    # the study label is the response data's label of the same reference and modality
    ref = int(re.search(r"\[(\d+)\]", table_1_cell).group(1))
    studies = br.load_dataset("calcinosis_cutis").set_index("ref")
    assert (studies.at[ref, "study"], studies.at[ref, "modality"]) == (
        row["study"],
        row["modality"],
    )


def test_every_quote_in_source_is_in_the_text(events, text):
    for row in events.itertuples():
        assert row.reported_as in text, row.row_id
        for quote in re.findall(r"'([^']+)'", row.source):
            for piece in quote.split(" ... "):
                assert _squash(piece) in text, (row.row_id, piece)


def test_every_event_code_has_a_display_label(events):
    labels = br.data.display_labels(events)
    assert set(events["event"]) <= set(labels)
    assert "all" in labels


def test_reconcile_lists_the_one_disagreement(events, text):
    # The Discussion: "No recurrences were observed within the follow-up" (lasers); Table 2's
    # CO2 row: "recurrence (2)". Every other count of the text agrees with Table 2.
    assert "No recurrences were observed within the follow-up" in text
    found = reconcile_adverse_events()
    assert found[["modality", "event", "quantity", "text", "summary"]].values.tolist() == [
        ["laser", "recurrence", "events", 0, 2]
    ]
    assert found.loc[0, "text_row"] == "ae23" and found.loc[0, "summary_rows"] == "ae10"


def _edited(table: pd.DataFrame, row_id: str, **values) -> pd.DataFrame:
    edited = table.copy()
    edited.attrs = dict(table.attrs)
    for column, value in values.items():
        edited.loc[edited["row_id"] == row_id, column] = value
    return edited


@pytest.mark.parametrize(
    ("row_id", "change", "expected"),
    [
        ("ae17", {"events": 4}, ["intralesional_sts", "infection", "events", 4, 5]),
        ("ae19", {"n": 21}, ["co2_laser", "infection", "n", 21, 18]),
        ("ae02", {"events": 2}, ["all", "recurrence", "events", 3, 4]),  # 3/136 vs 2 + 2
    ],
)
def test_reconcile_finds_a_changed_count(row_id, change, expected, events):
    found = reconcile_adverse_events(_edited(events, row_id, **change))
    rows = found[["modality", "event", "quantity", "text", "summary"]].values.tolist()
    assert expected in rows and ["laser", "recurrence", "events", 0, 2] in rows


# --------------------------------------------------------------------------------------------
# The reader: DataError naming the row and the column.
# --------------------------------------------------------------------------------------------


def _csv(tmp_path, text: str) -> Path:
    path = tmp_path / "ae.csv"
    path.write_text(text)
    return path


HEADER = "row_id,modality,study,pooled,event,events,n,reported_as,source\n"


def test_events_above_n_names_row_and_column(tmp_path):
    path = _csv(tmp_path, HEADER + "a1,x,,true,infection,1,4,1/4,p\na2,x,,true,fever,5,3,5/3,p\n")
    with pytest.raises(
        br.DataError, match=r"row 2 \(row_id 'a2'\), column 'events': events 5 > n 3"
    ):
        read_adverse_events(path)


def test_missing_column_is_named(tmp_path):
    path = _csv(tmp_path, "row_id,modality,study,event,events,n,reported_as,source\n")
    with pytest.raises(br.DataError, match=r"missing required column.*pooled"):
        read_adverse_events(path)


def test_non_boolean_pooled_names_row_and_column(tmp_path):
    path = _csv(tmp_path, HEADER + "a1,x,,yes,infection,1,4,1/4,p\n")
    with pytest.raises(br.DataError, match=r"row 1 \(row_id 'a1'\), column 'pooled'.*'yes'"):
        read_adverse_events(path)


@pytest.mark.parametrize(
    ("cells", "column", "message"),
    [
        ("a1,x,,true,infection,1.5,4,r,p", "events", "not a whole number"),
        ("a1,x,,true,infection,-1,4,r,p", "events", "negative"),
        ("a1,x,,true,infection,0,0,r,p", "n", "is 0"),
        ("a1,x,,false,infection,1,4,r,p", "study", "pooled is false"),
        ("a1,x,,true,Infection Rate,1,4,r,p", "event", "snake_case"),
        ("a1,x,,true,infection,1,4,,p", "reported_as", "is empty"),
        ("a1,x,,true,infection,1,4,r,", "source", "is empty"),
    ],
)
def test_bad_cells_name_row_and_column(tmp_path, cells, column, message):
    path = _csv(tmp_path, HEADER + cells + "\n")
    with pytest.raises(br.DataError, match=rf"row 1 \(row_id 'a1'\), column '{column}'.*{message}"):
        read_adverse_events(path)


def test_duplicate_row_id_and_dataframe_input():
    frame = pd.DataFrame(
        {
            "row_id": ["a", "a"],
            "modality": ["x", "x"],
            "study": [None, "S 2020"],
            "pooled": [True, False],
            "event": ["infection", "infection"],
            "events": [1, None],
            "n": [4, 2],
            "reported_as": ["1/4", "N/R"],
            "source": ["p", "q"],
        }
    )
    with pytest.raises(br.DataError, match=r"row 2 \(row_id 'a'\), column 'row_id'"):
        read_adverse_events(frame)
    frame.loc[1, "row_id"] = "b"
    table = read_adverse_events(frame)
    assert table["events"].tolist()[0] == 1 and pd.isna(table["events"].tolist()[1])
    assert table["pooled"].tolist() == [True, False]
