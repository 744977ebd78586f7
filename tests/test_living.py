"""Living reviews (issue 17): an update equals a fresh fit of the combined table, the old fit is
untouched, and bad new rows are refused before anything is fitted or written."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import bayesreview as br

FAST = {"draws": 300, "tune": 300, "chains": 2, "progressbar": False}
pytestmark = pytest.mark.filterwarnings("ignore::bayesreview.ConvergenceWarning")


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": ["a1", "a2", "a3", "b1", "b2"],
            "modality": ["a", "a", "a", "b", "b"],
            "n": [5, 8, 6, 4, 9],
            "events": [2, 5, 3, 1, 6],
        }
    )


NEW = pd.DataFrame(
    {
        "study": ["a2", "b3"],  # a2 corrected (longer follow-up), b3 a new study
        "modality": ["a", "b"],
        "n": [10, 7],
        "events": [7, 2],
    }
)


@pytest.fixture(scope="module")
def old_fit():
    return br.fit(_table(), outcome="events", seed=8, labels={"a": "Therapy A"}, **FAST)


@pytest.fixture(scope="module")
def updated(old_fit):
    return br.update(old_fit, NEW)


def test_the_combined_table_replaces_and_appends(updated):
    studies = updated.studies.set_index("study")
    assert list(studies.index) == ["a1", "a2", "a3", "b1", "b2", "b3"]
    assert (studies.loc["a2", "n"], studies.loc["a2", "events"]) == (10, 7)
    assert updated.settings["update"]["added"] == ["b3"]
    assert updated.settings["update"]["replaced"] == ["a2"]


def test_an_update_equals_a_fresh_fit_of_the_combined_table(updated):
    combined = pd.DataFrame(
        {
            "study": ["a1", "a2", "a3", "b1", "b2", "b3"],
            "modality": ["a", "a", "a", "b", "b", "b"],
            "n": [5, 10, 6, 4, 9, 7],
            "events": [2, 7, 3, 1, 6, 2],
        }
    )
    fresh = br.fit(combined, outcome="events", seed=8, **FAST)
    # same data, model, settings and seed: the same numbers (Monte Carlo error allowed for)
    np.testing.assert_allclose(
        updated.summary()["mean_rate"], fresh.summary()["mean_rate"], atol=0.02
    )
    assert updated.label("a") == "Therapy A"  # the labels come along


def test_changes_report_before_and_after(old_fit, updated):
    table = br.changes(updated).set_index("modality")
    before = old_fit.summary().set_index("modality")
    after = updated.summary().set_index("modality")
    assert table.loc["a", "replaced"] == "a2" and table.loc["a", "added"] == ""
    assert table.loc["b", "added"] == "b3"
    np.testing.assert_allclose(table["mean_rate_before"], before["mean_rate"])
    np.testing.assert_allclose(table["mean_rate_after"], after["mean_rate"])
    np.testing.assert_allclose(table["change"], after["mean_rate"] - before["mean_rate"])
    # a2 went from 5/8 to 7/10 and b3 adds 2/7 to modality b (6/13 before): a's crude rate
    # rises, b's falls, and the pooled rates follow
    assert table.loc["a", "change"] > 0 > table.loc["b", "change"]


def test_bad_new_rows_are_refused(old_fit):
    with pytest.raises(br.DataError, match=r"row 1.*events"):
        br.update(old_fit, NEW.assign(events=[12, 2]))  # 12 of 10
    clash = NEW.assign(modality=["b", "b"])  # a2 is a study of modality a
    with pytest.raises(br.DataError, match=r"new row 1, column 'modality': study 'a2'"):
        br.update(old_fit, clash)
    with pytest.raises(br.DataError, match="not the result of an update"):
        br.changes(old_fit)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_update_keeps_the_old_fit_and_writes_what_changed(old_fit, tmp_path):
    fit_path = old_fit.save(tmp_path / "fit.nc")
    new_path = tmp_path / "new.csv"
    NEW.to_csv(new_path, index=False)
    before = _digest(fit_path)
    out = tmp_path / "updated"
    run = [sys.executable, "-m", "bayesreview", "update", str(fit_path), str(new_path)]
    done = subprocess.run([*run, "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _digest(fit_path) == before
    assert "Added 1 and replaced 1 studies." in done.stdout
    assert (out / "changes.csv").exists() and (out / "fit.nc").exists()
    assert "<h2>What changed</h2>" in (out / "report.html").read_text(encoding="utf-8")
    # a bad new table: a clear error, nothing written
    NEW.assign(events=[12, 2]).to_csv(new_path, index=False)
    refused = tmp_path / "refused"
    done = subprocess.run([*run, "--out", str(refused)], capture_output=True, text=True)
    assert done.returncode == 2 and "events" in done.stderr and "Traceback" not in done.stderr
    assert not refused.exists()
    assert _digest(fit_path) == before
