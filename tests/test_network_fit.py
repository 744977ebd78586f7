"""The network model as a fit (issue 15): its specification, the arguments it refuses, a
disconnected treatment, the inconsistency check on a loop built to be inconsistent, and
agreement with R's multinma on published data (metadat's hasselblad1998)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from scipy import special

import bayesreview as br
from bayesreview.cli import main
from bayesreview.errors import DataError, SpecError
from bayesreview.report import write_report

DATA = Path(__file__).parent / "data"
FAST = {"draws": 300, "tune": 300, "chains": 2, "progressbar": False}


def _network_spec(**changes) -> dict:
    return {**br.load_spec("network").to_dict(), **changes}


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"likelihood": "beta_binomial"}, "logit_normal"),
        ({"heterogeneity": "per_modality"}, "shared"),
        ({"selection": "by_response"}, "selection"),
        ({"outcome": "response"}, "response"),
    ],
)
def test_a_network_spec_refuses_what_the_arm_model_cannot_be(changes, words):
    with pytest.raises(SpecError, match=words):
        br.ModelSpec.from_dict(_network_spec(**changes))


def _two_trials() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": ["T1", "T1", "T2", "T2", "S1"],
            "modality": ["a", "b", "a", "b", "c"],
            "n": [30, 30, 40, 40, 20],
            "events": [10, 15, 12, 20, 8],
        }
    )


@pytest.mark.parametrize(
    "arguments, words",
    [
        ({"bias": "design"}, "bias: the network model"),
        ({"weights": [1, 1, 1, 1, 1]}, "weights: the network model"),
        ({"outcome": "response"}, "fits one outcome"),
    ],
)
def test_fit_refuses_arguments_the_network_model_does_not_take(arguments, words):
    with pytest.raises(br.BayesReviewError, match=words):
        br.fit(_two_trials(), **{"model": "network", "outcome": "events", **arguments})


def test_a_reference_is_only_for_the_network_model():
    table = _two_trials().assign(study=["T1", "T1b", "T2", "T2b", "S1"])
    with pytest.raises(br.BayesReviewError, match='only model="network" has a reference'):
        br.fit(table, outcome="events", reference="a")


def test_a_reference_that_is_not_a_treatment_is_named():
    with pytest.raises(DataError, match="'z'"):
        br.fit(_two_trials(), model="network", outcome="events", reference="z", **FAST)


def test_a_treatment_only_single_arm_studies_reach_is_refused_or_warned():
    # c has one single-arm study and no comparative one: without single-arm studies it cannot
    # be compared; with them it is, through exchangeable baselines, and the fit says so
    table = _two_trials()
    with pytest.raises(DataError, match="'c' has only single-arm studies"):
        br.fit_network(table, outcome="events", single_arm=False, **FAST)
    with pytest.warns(br.AssumptionWarning, match="'c'"), warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        fitted = br.fit(table, model="network", outcome="events", reference="a", seed=1, **FAST)
    assumptions = " ".join(fitted.assumptions())
    assert "exchangeable" in assumptions and "c" in assumptions
    assert set(fitted.relative_effects()["treatment"]) == {"b", "c"}


def _inconsistent_loop() -> tuple[pd.DataFrame, dict[tuple[str, str], float]]:
    """Three treatments, three trials of each pair, 400 patients an arm, events at their
    expected counts: A-B and A-C trials show no effect, B-C trials a log odds ratio of 1.5,
    which no consistent set of effects can give (the loop's indirect B-C estimate is 0)."""
    truth = {("A", "B"): 0.0, ("A", "C"): 0.0, ("B", "C"): 1.5}
    rows = []
    for (first, second), log_or in truth.items():
        for k, baseline in enumerate((-1.0, -0.5, 0.0)):
            study = f"{first}{second}{k}"
            for treatment, logit in ((first, baseline), (second, baseline + log_or)):
                n = 400
                rows.append((study, treatment, n, round(n * special.expit(logit))))
    return pd.DataFrame(rows, columns=["study", "modality", "n", "events"]), truth


@pytest.mark.slow
def test_inconsistency_check_finds_a_loop_built_inconsistent():
    table, truth = _inconsistent_loop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        check = br.inconsistency(
            table, outcome="events", reference="A", draws=1000, tune=1000, chains=2, seed=5
        )
    # DIC favours the unrelated-mean-effects model well beyond Dias et al.'s 3-5
    assert check.dic_difference > 5
    pairs = check.pairs.set_index(["versus", "treatment"])
    direct = pairs.loc[("B", "C")]
    assert abs(direct["direct_median"] - truth[("B", "C")]) < 0.3
    # the network estimate of B vs C is pulled towards the indirect 0, away from the direct 1.5
    assert direct["network_median"] < direct["direct_median"] - 0.3


def test_inconsistency_refuses_a_network_without_a_loop():
    table, _ = _inconsistent_loop()
    star = table[~table["study"].str.startswith("BC")]
    with pytest.raises(br.BayesReviewError, match="close no loop"):
        br.inconsistency(star, outcome="events", reference="A", **FAST)


@pytest.mark.slow
def test_hasselblad1998_agrees_with_multinma():
    # multinma's random-effects NMA of the same data (its vignette's smk_fit_RE, as its
    # reference pages print it) with vague priors, N(0, 100^2) on d and half-N(5^2) on tau;
    # ours shrinks d with N(0, 2^2) and tau with half-N(1): medians within 0.15, tau within
    # 0.15; the residual deviance summed over the 50 arms near 50, as where a model fits
    # (Dias et al. 2013, NICE DSU TSD 2)
    published = pd.read_csv(DATA / "hasselblad1998_multinma.csv")
    studies = br.read_studies(DATA / "hasselblad1998.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        fitted = br.fit(
            studies, model="network", outcome="events", reference="no_contact",
            draws=1500, tune=1500, chains=4, seed=2, progressbar=False,
        )  # fmt: skip
    ours = fitted.relative_effects().set_index("treatment")
    network = published[published["quantity"] == "d_net"].set_index("treatment")
    for treatment, row in network.iterrows():
        assert abs(ours.loc[treatment, "median"] - row["median"]) < 0.15, treatment
    published_tau = published.loc[published["quantity"] == "tau_consistency", "median"].item()
    assert abs(fitted.heterogeneity()["median"] - published_tau) < 0.15
    deviance = fitted.fit_statistics()["residual_deviance"]
    assert 51 < deviance < 57


def test_analyze_writes_the_network_tables_figures_and_report(tmp_path):
    # a loop of three large trials: the command fits, checks inconsistency, writes every file
    table, _ = _inconsistent_loop()
    csv = tmp_path / "loop.csv"
    table.to_csv(csv, index=False)
    out = tmp_path / "out"
    argv = ["analyze", str(csv), "--model", "network", "--out", str(out)]
    argv += ["--draws", "150", "--chains", "2", "--seed", "3", "--no-progress"]
    assert main(argv) == 0
    written = {p.name for p in out.iterdir()}
    tables = ["summary", "relative_effects", "rates", "league", "ranks", "diagnostics"]
    assert {f"{name}.csv" for name in [*tables, "inconsistency"]} <= written
    for figure in ("network", "relative_effects", "league"):
        assert {f"{figure}.{fmt}" for fmt in ("png", "svg", "pdf")} <= written
    effects = pd.read_csv(out / "relative_effects.csv")
    assert set(effects["treatment"]) == {"B", "C"}
    pairs = pd.read_csv(out / "inconsistency.csv")
    assert len(pairs) == 3
    report = (out / "report.html").read_text()
    for heading in ("Results", "Odds ratios against the reference", "Inconsistency", "Ranks"):
        assert f">{heading}</h" in report
    assert report.count("<svg") >= 3 and "<script" not in report
    # the saved fit comes back whole, and `report` writes the same tables from it
    restored = br.load_fit(out / "fit.nc")
    assert isinstance(restored, br.NetworkFit)
    pd.testing.assert_frame_equal(
        restored.relative_effects(), pd.read_csv(out / "relative_effects.csv"), rtol=1e-5
    )
    again = tmp_path / "again"
    assert main(["report", str(out / "fit.nc"), "--out", str(again)]) == 0
    pd.testing.assert_frame_equal(
        pd.read_csv(again / "league.csv"), pd.read_csv(out / "league.csv")
    )
    # a network fit is refitted, not updated: a clear error (exit code 2), nothing written
    assert main(["update", str(out / "fit.nc"), str(csv), "--out", str(tmp_path / "u")]) == 2
    assert not (tmp_path / "u").exists()


@pytest.mark.slow
def test_hasselblad1998_shows_no_inconsistency():
    # multinma's dic() example on the same network: the unrelated-mean-effects model against
    # the random-effects NMA, "no difference in fit"; Dias et al. read 3 or more as meaningful
    studies = br.read_studies(DATA / "hasselblad1998.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        check = br.inconsistency(
            studies, outcome="events", reference="no_contact", draws=1000, tune=1000,
            chains=4, seed=4,
        )  # fmt: skip
    assert abs(check.dic_difference) < 3
    assert len(check.pairs) == 6
    inside = (check.pairs["network_median"] > check.pairs["direct_lower"]) & (
        check.pairs["network_median"] < check.pairs["direct_upper"]
    )
    assert inside.all()


def test_the_network_report_names_treatments_by_their_labels(tmp_path):
    table, _ = _inconsistent_loop()
    labels = {"A": "Placebo cream", "B": "Bisphosphonate", "C": "Curettage"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        fitted = br.fit(
            table, model="network", outcome="events", reference="A", labels=labels, seed=2,
            draws=150, tune=150, chains=2, progressbar=False,
        )  # fmt: skip
    path = write_report(fitted, tmp_path / "report.html")
    text = path.read_text()
    body = text.split("<body>")[1].split("Settings and versions")[0]
    assert "Placebo cream" in body and "Curettage" in body
    # every table cell naming a treatment shows its label, not its code (the settings, for
    # reproducing the fit, keep the codes)
    for code in labels:
        assert f"<td>{code}</td>" not in body
    assert "Not checked" not in body  # a loop: without a check given, the section is left out


def test_a_network_of_single_arm_studies_says_tau_rests_on_its_prior():
    # no comparative study: the arm effects and the baselines vary together, so the data
    # cannot tell tau from the baselines' spread; the warning names treatments by label
    table = pd.DataFrame(
        {
            "study": ["s1", "s2", "s3", "s4"],
            "modality": ["a", "a", "b", "b"],
            "n": [20, 25, 30, 20],
            "events": [5, 8, 12, 9],
        }
    )
    labels = {"a": "Drug A", "b": "Drug B"}
    with pytest.warns(br.AssumptionWarning, match="'Drug B' to the reference 'Drug A'"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", br.ConvergenceWarning)
            fitted = br.fit(
                table, model="network", outcome="events", reference="a", labels=labels,
                seed=1, **FAST,
            )  # fmt: skip
    assert any("tau's posterior is about its prior" in said for said in fitted.assumptions())
