"""The ``bayesreview`` command: analyze end to end, report from a saved fit, and refusals."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesreview as br
from bayesreview.cli import main

ROOT = Path(__file__).resolve().parents[1]

# Table 2 of Nowaczyk et al. (2021), typed from the paper: group -> (complete, partial, N).
TABLE_2 = {
    "topical_sts": (9, 30, 48),
    "intralesional_sts": (19, 20, 53),
    "laser": (12, 3, 21),
    "eswl": (1, 6, 11),
    "eswl_intralesional_sts": (0, 1, 1),
    "picosecond_topical_sts": (0, 2, 2),
}

# The documented columns (Fit.summary's docstring), typed here independently of the code.
SUMMARY_COLUMNS = (
    "outcome modality studies n events crude crude_lower crude_upper "
    "mean_rate mean_rate_lower mean_rate_upper median_rate median_rate_lower median_rate_upper "
    "rate_sd rate_sd_lower rate_sd_upper phi phi_lower phi_upper icc icc_lower icc_upper "
    "pred_lower pred_upper adjusted_to"
).split()
RANKS_COLUMNS = ["outcome", "modality", "p_best", "mean_rank", "sucra"]
OUTCOMES = ("complete", "partial", "any")
FAST = ["--draws", "200", "--tune", "200", "--chains", "2", "--seed", "11", "--no-progress"]
#: FAST without the refits of the bias analyses (tests of other things)
QUICK = [*FAST, "--no-bias-analyses"]


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory) -> tuple[Path, str]:
    """``bayesreview analyze`` on the bundled data, once for the module."""
    out = tmp_path_factory.mktemp("cli") / "results"
    code, stdout, stderr = _run(["analyze", "--out", str(out), *FAST])
    assert code == 0, stderr
    return out, stdout


def test_analyze_writes_every_file(analyzed):
    out, _ = analyzed
    expected = {
        "summary.csv",
        "comparison.csv",
        "ranks.csv",
        "crude.csv",
        "studies.csv",
        "diagnostics.csv",
        "bias.csv",
        "fit.nc",
        "report.html",
    } | {f"forest_{o}.{ext}" for o in OUTCOMES for ext in ("png", "svg", "pdf")}
    assert {p.name for p in out.iterdir()} == expected
    assert (out / "forest_any.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "forest_any.pdf").read_bytes().startswith(b"%PDF")
    assert b"<svg" in (out / "forest_any.svg").read_bytes()[:2000]
    # no staging folder left next to the results
    assert [p.name for p in out.parent.iterdir()] == ["results"]


def test_analyze_tables_have_their_columns(analyzed, comparison_columns):
    out, _ = analyzed
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns[: len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    assert set(summary["outcome"]) == set(OUTCOMES)
    assert list(summary["modality"].unique()) == list(TABLE_2)
    comparison = pd.read_csv(out / "comparison.csv")
    assert list(comparison.columns) == comparison_columns
    k = len(TABLE_2)
    assert len(comparison) == len(OUTCOMES) * k * (k - 1)  # ordered pairs
    ranks = pd.read_csv(out / "ranks.csv")
    assert list(ranks.columns[:5]) == RANKS_COLUMNS
    assert [f"p_rank_{r}" for r in range(1, k + 1)] == list(ranks.columns[5:])
    crude = pd.read_csv(out / "crude.csv")
    assert {"group", "studies", "n", "complete", "partial", "any", "denominator"} <= set(crude)
    studies = pd.read_csv(out / "studies.csv")
    assert len(studies) == 40 * len(OUTCOMES)
    diagnostics = pd.read_csv(out / "diagnostics.csv")
    assert {"parameter", "r_hat", "ess_bulk", "ess_tail", "divergences"} <= set(diagnostics)


def test_analyze_sets_the_bias_analyses_beside_the_main_one(analyzed):
    out, _ = analyzed
    bias = pd.read_csv(out / "bias.csv", keep_default_na=False)
    assert list(dict.fromkeys(bias["analysis"])) == [
        "none",
        "design",
        "risk_of_bias (known totals)",
        "publication selection",
    ]
    # selection acts on one outcome's events: the joint model's is any response
    selection = bias[bias["analysis"] == "publication selection"]
    assert set(selection["outcome"]) == {"any"}
    assert len(selection) == len(TABLE_2)
    assert selection["note"].str.contains("case reports .* case series", regex=True).all()
    summary = pd.read_csv(out / "summary.csv")
    plain = bias[bias["analysis"] == "none"]
    np.testing.assert_allclose(plain["mean_rate"], summary["mean_rate"])  # the same fit
    np.testing.assert_allclose(plain["mix_rate"], plain["mean_rate"])  # no covariate
    # the review publishes no study's rating (only the totals): the note says so
    rob = bias[bias["analysis"] == "risk_of_bias (known totals)"]
    assert rob["note"].str.startswith("no study's level is known").all()
    assert set(rob["adjusted_to"]) == {"risk_of_bias = low"}
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Bias</h2>" in report and "No study&#x27;s level is known" in report
    assert "publication selection: adjusted" in report


def test_analyze_crude_columns_are_table_2_and_crude_table(analyzed):
    out, _ = analyzed
    summary = pd.read_csv(out / "summary.csv").set_index(["outcome", "modality"])
    table = br.crude_table(br.load_dataset(), by="group").set_index("group")
    for group, (complete, partial, n) in TABLE_2.items():
        for outcome, events in (
            ("complete", complete),
            ("partial", partial),
            ("any", complete + partial),
        ):
            row = summary.loc[(outcome, group)]
            assert (row["events"], row["n"]) == (events, n)  # the paper's Table 2
            assert row["crude"] == pytest.approx(events / n, abs=1e-6)
            assert row["crude_lower"] == pytest.approx(table.at[group, f"{outcome}_lower"], 1e-5)
            assert row["crude_upper"] == pytest.approx(table.at[group, f"{outcome}_upper"], 1e-5)
            assert row["mean_rate_lower"] <= row["mean_rate"] <= row["mean_rate_upper"]


def test_analyze_prints_crude_next_to_posterior(analyzed):
    out, stdout = analyzed
    summary = pd.read_csv(out / "summary.csv")
    row = summary[(summary["outcome"] == "complete") & (summary["modality"] == "laser")].iloc[0]
    # 12/21 = 57.14% -> "57"; the paper prints 57 too
    # printed under the codebook's label of the group, not its code
    line = next(li for li in stdout.splitlines() if "Laser (CO2" in li and "12/21" in li)
    assert "laser " not in line
    assert "57 (" in line
    assert br.formatting.percent(row["mean_rate"]) in line
    assert "report.html" in stdout


def test_fit_file_reloads(analyzed):
    out, _ = analyzed
    fit = br.load_fit(out / "fit.nc")
    assert fit.outcomes == OUTCOMES
    assert fit.groups == tuple(TABLE_2)
    assert fit.settings["seed"] == 11 and fit.settings["draws"] == 200
    assert fit.settings["by"] == "group" and fit.settings["outcome"] == "response"
    saved = pd.read_csv(out / "summary.csv")
    np.testing.assert_allclose(fit.summary()["mean_rate"], saved["mean_rate"], rtol=1e-5)


def test_report_command_from_saved_fit(analyzed, tmp_path):
    out, _ = analyzed
    target = tmp_path / "again"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    (target / "forest_events.png").write_bytes(b"from an earlier run of another outcome")
    code, stdout, stderr = _run(["report", str(out / "fit.nc"), "--out", str(target), "--force"])
    assert code == 0, stderr
    assert (target / "keep.txt").read_text() == "mine"  # --force replaces only our files
    assert not (target / "forest_events.png").exists()  # a stale forest plot would mislead
    for name in ("summary.csv", "comparison.csv", "ranks.csv", "crude.csv", "report.html"):
        assert (target / name).is_file()
    assert not (target / "fit.nc").exists()
    pd.testing.assert_frame_equal(
        pd.read_csv(target / "summary.csv"), pd.read_csv(out / "summary.csv")
    )
    assert "Topical STS" in stdout  # the codebook label, kept in the saved fit


def test_failure_mid_run_leaves_nothing_behind(analyzed, tmp_path, monkeypatch):
    out, _ = analyzed

    def broken(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr("bayesreview.report.write_report", broken)
    target = tmp_path / "results"
    code, _, stderr = _run(["report", str(out / "fit.nc"), "--out", str(target)])
    assert code == 1
    assert stderr.strip().splitlines() == ["bayesreview report: error: No space left on device"]
    assert list(tmp_path.iterdir()) == []  # neither DIR nor a staging folder


def test_interrupt_leaves_nothing_behind(analyzed, tmp_path, monkeypatch):
    out, _ = analyzed

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("bayesreview.report.write_report", interrupted)
    code, _, stderr = _run(["report", str(out / "fit.nc"), "--out", str(tmp_path / "r")])
    assert code == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_a_failed_figure_leaves_nothing_written(analyzed, tmp_path, monkeypatch):
    # Figures are drawn in this process (no fork): a failure there is reported and no partial
    # results folder is left behind.
    from bayesreview import cli

    def fails(*args, **kwargs):
        raise OSError("disk full while writing forest_any.pdf")

    monkeypatch.setattr(cli, "_draw_forest_plots", fails)
    out, _ = analyzed
    target = tmp_path / "again"
    code, _, stderr = _run(["report", str(out / "fit.nc"), "--out", str(target)])
    assert code == 1
    assert "disk full" in stderr and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


# ---- refusals: exit code 2, one line, no traceback ----------------------------------------


def _assert_refused(capsys, argv: list[str], *fragments: str) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"bayesreview {argv[0]}: error: ")
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_refuses_non_empty_out_without_force(tmp_path, capsys):
    (tmp_path / "old.csv").write_text("precious")
    _assert_refused(capsys, ["analyze", "--out", str(tmp_path), *FAST], "not empty", "--force")
    assert [p.name for p in tmp_path.iterdir()] == ["old.csv"]


def test_refuses_a_threshold_that_is_not_a_rate_before_fitting(tmp_path, capsys):
    argv = ["analyze", "--out", str(tmp_path / "out"), "--threshold", "50", *QUICK]
    _assert_refused(capsys, argv, "--threshold 50", "between 0 and 1")
    assert list(tmp_path.iterdir()) == []


def test_refuses_out_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    _assert_refused(capsys, ["report", "fit.nc", "--out", str(target)], "not a folder")


def test_bad_data_names_row_and_column(tmp_path, capsys):
    studies = br.load_dataset().head(3).copy()
    studies.loc[1, "complete"] = -1
    studies.loc[1, "none"] += 1  # still sums to n: the only problem is the negative count
    path = tmp_path / "bad.csv"
    studies.to_csv(path, index=False)
    line = _assert_refused(
        capsys, ["analyze", str(path), "--out", str(tmp_path / "out"), *FAST], "row 2"
    )
    assert "'complete'" in line
    assert not (tmp_path / "out").exists()


def test_bad_spec_names_the_key(tmp_path, capsys):
    spec = tmp_path / "mine.toml"
    text = (ROOT / "models" / "beta_binomial.toml").read_text()
    spec.write_text('colour = "red"\n' + text)
    _assert_refused(
        capsys,
        ["analyze", "--model", str(spec), "--out", str(tmp_path / "out"), *QUICK],
        "colour",
    )


def test_missing_data_file(tmp_path, capsys):
    missing = tmp_path / "nope.csv"
    _assert_refused(capsys, ["analyze", str(missing), "--out", str(tmp_path / "o")], "nope.csv")


def test_missing_fit_file(tmp_path, capsys):
    _assert_refused(capsys, ["report", str(tmp_path / "fit.nc"), "--out", str(tmp_path / "o")])


def test_outcome_the_table_cannot_give(tmp_path, capsys):
    path = tmp_path / "events.csv"
    table = {"study": ["a", "b"], "modality": ["x", "x"], "n": [3, 4], "events": [1, 2]}
    pd.DataFrame(table).to_csv(path, index=False)
    _assert_refused(
        capsys,
        ["analyze", str(path), "--outcome", "complete", "--out", str(tmp_path / "o")],
        "events",
    )


def test_validate_lists_every_problem(tmp_path, capsys):
    studies = br.load_dataset().head(4).copy()
    studies.loc[0, "n"] = -2
    studies.loc[3, "modality"] = None
    path = tmp_path / "two.csv"
    studies.to_csv(path, index=False)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "row 1" in err and "row 4" in err and "'modality'" in err
    assert "Traceback" not in err


def test_real_exit_code_in_a_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bayesreview", "analyze", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bayesreview-results").exists()


def test_help_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from bayesreview.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert "analyze" in done.stdout and "report" in done.stdout
    modules = done.stdout.split("MODULES", 1)[1].split()
    assert "bayesreview.cli" in modules
    heavy = [m for m in modules if m.split(".")[0] in ("pymc", "arviz", "matplotlib", "pytensor")]
    assert heavy == []


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"bayesreview {br.__version__}"
