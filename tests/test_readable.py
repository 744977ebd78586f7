"""Readable everywhere (issue 18): a fit that shows itself, display labels, quiet progress, ArviZ.

Expected numbers come from the data themselves (the review's Table 2 counts, the bundled
codebook), not from the package's output.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

import arviz as az
import matplotlib
import numpy as np
import pandas as pd
import pytest

import bayesreview as br
from bayesreview.display import readable_summary
from bayesreview.progress import progress

matplotlib.use("Agg")

#: The codebook's display labels of Table 2's rows (data/datasets.toml, from the review).
TABLE_2_LABELS = {
    "topical_sts": "Topical STS",
    "intralesional_sts": "Intralesional STS",
    "eswl": "ESWL",
}


# --------------------------------------------------------------------------------------------
# A fit shows itself
# --------------------------------------------------------------------------------------------


def test_repr_says_what_was_fitted_with_labels_and_crude_next_to_posterior(calcinosis_fit):
    text = repr(calcinosis_fit)
    assert text.startswith("bayesreview Fit")
    assert "40 (136 patients)" in text  # the review: 40 studies, 136 patients
    assert "beta_binomial" in text and "seed 2021" in text
    table = "\n".join(text.splitlines()[:-1])  # the convergence line names parameters
    for code, label in TABLE_2_LABELS.items():
        assert label in table
        assert code not in table
    # Table 2, any response: topical STS 39/48 = 81.25% -> "81"; ESWL 7/11 = 63.6% -> "64"
    topical = next(line for line in text.splitlines() if "Topical STS" in line)
    assert "39 / 48" in topical and " 81 (" in topical
    eswl = next(line for line in text.splitlines() if " ESWL " in f" {line} ")
    assert "7 / 11" in eswl and " 64 (" in eswl
    assert text.splitlines()[-1].startswith("Convergence: ")


class _Cells(HTMLParser):
    """The text of every table cell, row by row, of the last table in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.rows = []
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_notebook_html_holds_the_summary_with_labels(calcinosis_fit):
    page = calcinosis_fit._repr_html_()
    assert page.startswith("<div class='bayesreview-fit'>") and page.endswith("</div>")
    parser = _Cells()
    parser.feed(page)
    header, *rows = parser.rows
    summary = pd.DataFrame(rows, columns=header)
    assert list(summary["Modality"])[:2] == ["Topical STS", "Intralesional STS"]
    assert list(summary["Events / n"])[:2] == ["39 / 48", "39 / 53"]
    assert "Convergence:" in html.unescape(page)


def test_readable_summary_rounds_the_crude_rate_as_the_paper_prints(calcinosis_fit):
    table = readable_summary(calcinosis_fit).set_index("Modality")
    # 39/53 = 73.58% -> 74; the exact 95% interval of 39/53 is 59.7%-84.7% (Clopper-Pearson)
    assert table.loc["Intralesional STS", "Crude % (exact 95% CI)"] == "74 (60–85)"


def test_user_labels_win_and_bad_labels_are_refused(fast_fit):
    table = pd.DataFrame(
        {
            "study": ["s1", "s2", "s3", "s4"],
            "modality": ["a", "a", "b", "b"],
            "n": [5, 6, 7, 8],
            "events": [2, 3, 4, 5],
        }
    )
    result = fast_fit(table, outcome="events", labels={"a": "Therapy A"}, seed=1)
    assert result.label("a") == "Therapy A" and result.label("b") == "b"
    assert "Therapy A" in repr(result)
    # codes stay in the machine-readable output
    assert list(result.summary()["modality"]) == ["a", "b"]
    assert list(result.idata.posterior["rate"].group.values) == ["a", "b"]
    with pytest.raises(br.DataError, match=r"labels\['b'\]"):
        br.fit(table, outcome="events", labels={"b": ""})


def test_saved_fit_keeps_its_labels(calcinosis_fit, tmp_path):
    path = calcinosis_fit.save(tmp_path / "fit.nc")
    assert br.load_fit(path).label("topical_sts") == "Topical STS"


# --------------------------------------------------------------------------------------------
# Progress: quiet unless asked for on a terminal
# --------------------------------------------------------------------------------------------


def _run_progress(enabled: bool) -> None:
    with progress(3, "refits", enabled) as advance:
        for _ in range(3):
            advance()


def test_progress_is_silent_when_not_in_a_terminal(capfd):
    _run_progress(True)  # pytest's captured stderr is not a terminal
    assert capfd.readouterr().err == ""


def test_progress_shows_on_a_terminal_unless_switched_off(monkeypatch, capfd):
    from rich import console

    monkeypatch.setattr(console.Console, "is_terminal", property(lambda self: True))
    _run_progress(False)
    assert capfd.readouterr().err == ""
    _run_progress(True)
    assert "refits" in capfd.readouterr().err


def test_the_sensitivity_function_is_not_shadowed_by_its_module():
    import bayesreview.robustness  # noqa: F401  (importing a submodule sets a package attribute)

    assert callable(br.sensitivity) and br.sensitivity.__name__ == "sensitivity"


def test_sensitivity_prints_nothing_under_progressbar_false(studies, capfd):
    subset = studies[studies["group"].isin(["topical_sts", "eswl"])]
    br.sensitivity(subset, scenarios=["unknown"], draws=100, tune=100, progressbar=False)
    assert capfd.readouterr().err == ""


# --------------------------------------------------------------------------------------------
# ArviZ-native results
# --------------------------------------------------------------------------------------------


def test_idata_works_with_arviz_directly(calcinosis_fit):
    idata = calcinosis_fit.idata
    table = az.summary(idata, var_names=["rate"], kind="stats")
    assert "rate[any, topical_sts]" in table.index
    # az.summary's mean is the posterior mean of the same draws
    np.testing.assert_allclose(
        table.loc["rate[any, topical_sts]", "mean"],
        float(idata.posterior["rate"].sel(outcome="any", group="topical_sts").mean()),
        atol=0.0015,  # az.summary rounds to 3 decimals
    )
    axes = az.plot_forest(idata, var_names=["rate"], combined=True)
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert any("topical_sts" in label for label in labels)
    axes = az.plot_posterior(idata, var_names=["rate"], coords={"group": ["eswl"]})
    assert np.size(axes) == 1
