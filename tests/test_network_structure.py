"""The structure of a network (issue 15): comparisons, multi-arm trials, loops and components
of hand-built networks whose answers are read off their diagrams."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from scipy import special

import bayesreview as br
from bayesreview.errors import DataError
from bayesreview.network import arms_of_shared_studies, network_structure
from bayesreview.spec import load_spec


def _table(arms: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    study, treatment, n, events = zip(*arms, strict=True)
    return pd.DataFrame(
        {"study": study, "modality": treatment, "treatment": treatment, "n": n, "events": events}
    )


#: A-B-C in one three-arm trial, A-C, B-D, C-D: the loop A-B-D-C-A; D also single-arm.
LOOP = [
    ("s1", "A", 20, 5), ("s1", "B", 20, 8), ("s1", "C", 20, 9),
    ("s2", "A", 30, 6), ("s2", "C", 30, 12),
    ("s3", "B", 15, 5), ("s3", "D", 15, 7),
    ("s4", "C", 25, 10), ("s4", "D", 25, 12),
    ("s5", "D", 12, 6),
]  # fmt: skip


def test_comparisons_multi_arm_trials_and_the_loop():
    network = network_structure(_table(LOOP), reference="A")
    assert network.treatments == ("A", "B", "C", "D")
    pairs = network.comparisons.set_index(["treatment_a", "treatment_b"])
    assert pairs["studies"].to_dict() == {
        ("A", "B"): 1, ("A", "C"): 2, ("B", "C"): 1, ("B", "D"): 1, ("C", "D"): 1,
    }  # fmt: skip
    assert pairs.loc[("A", "C"), "patients"] == 40 + 60  # s1's two arms and s2's
    assert network.multi_arm == ("s1",) and network.single_arm == ("s5",)
    assert network.connected and network.has_loop
    assert "close a loop" in network.describe()


def test_a_three_arm_trial_alone_closes_no_loop():
    """A-B-C in one trial plus C-D: the triangle inside s1 is consistent by design."""
    tree = [arm for arm in LOOP if arm[0] != "s3"]
    network = network_structure(_table(tree), reference="A")
    assert len(network.comparisons) == 4  # A-B, A-C, B-C (all from s1 and s2), C-D
    assert not network.has_loop
    assert "no inconsistency check" in network.describe()


def test_default_reference_is_the_treatment_with_most_arms():
    # arms: A 2, B 2, C 3, D 3; C appears before D
    assert network_structure(_table(LOOP)).reference == "C"


def test_parts_joined_only_by_exchangeable_baselines_are_named():
    arms = [*LOOP, ("s6", "E", 10, 4), ("s7", "F", 10, 3), ("s7", "G", 10, 6)]
    network = network_structure(_table(arms), reference="A")
    assert network.components == (("A", "B", "C", "D"), ("E",), ("F", "G"))
    assert not network.connected
    assert network.reached_by_single_arm_studies_only == ("E", "F", "G")
    assert "do not connect 'E', 'F', 'G' to the reference" in network.describe()
    assert "exchangeable" in network.describe()


def test_bad_networks_name_the_rows():
    table = _table(LOOP)
    with pytest.raises(DataError, match=r"reference='Z': not a treatment .* 'A', 'B', 'C', 'D'"):
        network_structure(table, reference="Z")
    twice = table.assign(treatment=table["treatment"].where(table.index != 1, "A"))
    with pytest.raises(DataError, match=r"rows 1, 2: study 's1' has 2 arms of treatment 'A'"):
        network_structure(twice, by="treatment")
    empty = table.assign(treatment=table["treatment"].where(table.index != 3, None))
    with pytest.raises(DataError, match=r"row 4 \(study 's2'\): column 'treatment' is empty"):
        network_structure(empty, by="treatment")


def test_rows_sharing_a_study_across_modalities_are_found():
    shared = arms_of_shared_studies(_table(LOOP))
    assert shared["study"].tolist() == ["s1", "s2", "s3", "s4"]
    assert shared.set_index("study").loc["s1", "treatments"] == ("A", "B", "C")
    single = _table([("a", "X", 3, 1), ("b", "Y", 4, 2)])
    assert arms_of_shared_studies(single).empty


# --------------------------------------------------------------------------------------------
# The network fit
# --------------------------------------------------------------------------------------------


def _fake_fit(d_draws: np.ndarray, better: str = "higher", baseline: float = 0.0):
    """A NetworkFit whose posterior is given draws of d (draws x contrasts), one chain."""
    import arviz as az

    from bayesreview.network import NetworkFit

    treatments = ["A", "B", "C"][: d_draws.shape[1] + 1]
    posterior = xr.Dataset(
        {
            "d": (("chain", "draw", "contrast"), d_draws[None]),
            "baseline_mean": (("chain", "draw"), np.full((1, len(d_draws)), baseline)),
            "tau": (("chain", "draw"), np.full((1, len(d_draws)), 0.3)),
        },
        coords={"contrast": treatments[1:]},
    )
    structure = network_structure(_table(LOOP[:3]), reference="A")
    return NetworkFit(
        az.InferenceData(posterior=posterior),
        structure,
        pd.DataFrame(),
        load_spec("network"),
        {"better": better},
    )


def test_ranks_and_sucra_of_a_known_order():
    # C always best, then B, then A (the reference, log OR 0)
    rng = np.random.default_rng(0)
    draws = np.column_stack([rng.uniform(0.1, 0.4, 500), rng.uniform(0.6, 0.9, 500)])
    ranks = _fake_fit(draws).ranks().set_index("treatment")
    assert ranks["p_best"].to_dict() == {"A": 0.0, "B": 0.0, "C": 1.0}
    assert ranks["sucra"].to_dict() == pytest.approx({"A": 0.0, "B": 0.5, "C": 1.0})
    lower = _fake_fit(draws, better="lower").ranks().set_index("treatment")
    assert lower["p_best"].to_dict() == {"A": 1.0, "B": 0.0, "C": 0.0}


def test_relative_effects_on_every_scale():
    rng = np.random.default_rng(1)
    draws = rng.normal([0.5, -0.2], 0.3, (4001, 2))  # odd: the median is one draw
    fitted = _fake_fit(draws, baseline=-1.0)
    log_or = fitted.relative_effects(measure="log_or").set_index("treatment")
    odds = fitted.relative_effects(measure="or").set_index("treatment")
    # a monotone transform: the median maps through it exactly
    np.testing.assert_allclose(odds["median"], np.exp(log_or["median"]), rtol=1e-12)
    risk_difference = fitted.relative_effects(measure="rd").set_index("treatment")
    b = special.expit(-1.0 + draws[:, 0]) - special.expit(-1.0)
    assert risk_difference.loc["B", "median"] == pytest.approx(np.median(b))
    assert log_or.loc["B", "p_better"] == pytest.approx(np.mean(draws[:, 0] > 0))
    against_b = fitted.relative_effects(reference="B").set_index("treatment")
    assert against_b.loc["C", "median"] == pytest.approx(np.median(draws[:, 1] - draws[:, 0]))
    table = fitted.league_table(measure="log_or")
    assert table.loc["B", "B"] == "B" and table.loc["B", "A"].startswith(
        f"{np.median(draws[:, 0]):.2f}"
    )
    with pytest.raises(br.BayesReviewError, match="measure='hr'"):
        fitted.relative_effects(measure="hr")


def test_comparative_studies_only_refuse_what_they_cannot_estimate():
    from bayesreview.network import fit_network

    alone = [*LOOP, ("s6", "E", 10, 4)]
    with pytest.raises(DataError, match=r"'E' has only single-arm studies"):
        fit_network(_table(alone), reference="A", single_arm=False, draws=10, tune=10)
    apart = [*LOOP, ("s7", "F", 10, 3), ("s7", "G", 10, 6)]
    with pytest.raises(DataError, match=r"do not connect 'F', 'G' to the reference 'A'"):
        fit_network(_table(apart), reference="A", single_arm=False, draws=10, tune=10)


@pytest.mark.slow
def test_homogeneous_network_of_large_trials_equals_weighted_least_squares():
    """Two-arm trials of 4,000 patients per arm with one odds ratio each, no heterogeneity:
    the posterior medians of d equal the generalised least-squares estimate of the contrasts
    (each trial's log odds ratio weighted by its inverse variance), within its SE."""
    from bayesreview.network import fit_network

    rng = np.random.default_rng(3)
    truth = {"A": 0.0, "B": 0.5, "C": 1.0}
    design = [("A", "B")] * 5 + [("A", "C")] * 5 + [("B", "C")] * 3
    arms, rows, ys, weights = [], [], [], []
    for i, (a, b) in enumerate(design):
        base = rng.normal(-1.0, 0.5)
        counts = {t: rng.binomial(4000, special.expit(base + truth[t])) for t in (a, b)}
        arms += [(f"t{i}", t, 4000, counts[t]) for t in (a, b)]
        log_odds = {t: np.log(counts[t] / (4000 - counts[t])) for t in (a, b)}
        variance = sum(1 / counts[t] + 1 / (4000 - counts[t]) for t in (a, b))
        rows.append([(b == "B") - (a == "B"), (b == "C") - (a == "C")])
        ys.append(log_odds[b] - log_odds[a])
        weights.append(1 / variance)
    x, w, y = np.asarray(rows, float), np.diag(weights), np.asarray(ys)
    gls = np.linalg.solve(x.T @ w @ x, x.T @ w @ y)
    se = np.sqrt(np.diag(np.linalg.inv(x.T @ w @ x)))
    fitted = fit_network(_table(arms), reference="A", seed=5, progressbar=False)
    effects = fitted.relative_effects().set_index("treatment")["median"]
    np.testing.assert_allclose(effects[["B", "C"]], gls, atol=2 * se.max() + 0.01)
    assert fitted.heterogeneity()["median"] < 0.1


def test_network_graph_sizes_nodes_by_patients_and_edges_by_studies():
    import matplotlib

    matplotlib.use("Agg")
    from bayesreview.plots import network_graph
    from bayesreview.plots.network import LARGEST_NODE, WIDTH_PER_STUDY

    network = network_structure(_table(LOOP), reference="A")
    assert network.patients == (50, 35, 75, 52)  # A: 20 + 30, B: 20 + 15, C, D
    assert network.single_arm_counts == (0, 0, 0, 1)
    fig = network_graph(network)
    artists = {a.get_gid(): a for a in fig.axes[0].get_children() if a.get_gid()}
    sizes = {t: float(artists[f"node:{t}"].get_sizes()[0]) for t in network.treatments}
    assert sizes["C"] == pytest.approx(LARGEST_NODE)
    assert sizes["A"] == pytest.approx(LARGEST_NODE * 50 / 75)
    assert artists["edge:A:C"].get_linewidth() == pytest.approx(2 * WIDTH_PER_STUDY)
    assert artists["edge:B:D"].get_linewidth() == pytest.approx(WIDTH_PER_STUDY)
    assert artists["text:edge:A:C"].get_text() == "2"
    assert "1 single-arm" in artists["text:node:D"].get_text()


def test_relative_effects_plot_draws_the_table():
    import matplotlib

    matplotlib.use("Agg")
    from bayesreview.plots import relative_effects_plot

    rng = np.random.default_rng(2)
    fitted = _fake_fit(rng.normal([0.5, -0.2], 0.3, (2001, 2)))
    table = fitted.relative_effects(measure="or").set_index("treatment")
    fig = relative_effects_plot(fitted, measure="or")
    ax = fig.axes[0]
    artists = {a.get_gid(): a for a in ax.get_children() if a.get_gid()}
    for treatment in ("B", "C"):
        x = artists[f"effect_ci:{treatment}"].get_xdata()
        np.testing.assert_allclose(x, table.loc[treatment, ["lower", "upper"]].to_numpy(float))
        assert artists[f"effect:{treatment}"].get_xdata()[0] == table.loc[treatment, "median"]
    assert artists["null"].get_xdata()[0] == 1.0 and ax.get_xscale() == "log"


def test_single_arm_sensitivity_sets_both_analyses_side_by_side():
    """LOOP plus a treatment E with single-arm studies only: with them E is estimated (by the
    exchangeable baselines), without them it is not, and the note says why."""
    from bayesreview.network import single_arm_sensitivity

    arms = [*LOOP, ("s6", "E", 30, 20), ("s8", "E", 25, 15)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        table = single_arm_sensitivity(
            _table(arms), reference="A", draws=300, tune=300, chains=2, seed=3, progressbar=False
        ).set_index("treatment")
    assert list(table.index) == ["B", "C", "D", "E"]
    assert np.isnan(table.loc["E", "median_without"]) and not np.isnan(table.loc["E", "median"])
    assert table.loc["E", "note"] == "no comparative study connects it to the reference"
    assert table.loc[["B", "C", "D"], "median_without"].notna().all()
    assert (table.loc[["B", "C", "D"], "note"] == "").all()
    assert "3 single-arm studies" in table.attrs["assumption"]


def test_network_likelihood_is_the_binomial_log_likelihood_less_its_constant():
    # the sampler's target: scipy's binomial log-pmf less the log binomial coefficients at
    # arms of 0, 1, some and all events (and a padding arm of no patients), at moderate log
    # odds; at extreme ones (|logit p| up to about 40, where p rounds to 0 or 1 and the pmf's
    # log to -inf) y log p + (n - y) log(1 - p) with scipy's log_expit
    from scipy import stats

    from bayesreview.backend.network import network_arrays, network_model

    priors = load_spec("network").priors
    model = network_model(5, 3, ["B", "C"], priors)
    design = np.array([[0, 0], [1, 0], [0, 0], [0, 1], [0, 0]], dtype=float)
    arrays = network_arrays(
        np.array([0, 0, 1, 1, 2]), design, np.array([0, 1, 7, 30, 0]), np.array([12, 40, 20, 30, 0])
    )
    with model:
        pm.set_data(arrays)
    graphs = model.replace_rvs_by_values([model.potentials[0], model["logit_p"]])
    potential, logit_p = (model.compile_fn(g, inputs=model.value_vars) for g in graphs)
    n, y = arrays["trials"], arrays["events"]
    rng = np.random.default_rng(4)
    shapes = {name: value.shape for name, value in model.initial_point().items()}
    for scale in (0.5, 8.0):
        point = {name: rng.normal(0, scale, shape) for name, shape in shapes.items()}
        x = logit_p(point)
        if scale < 1:
            expected = np.sum(
                stats.binom.logpmf(y, n, special.expit(x)) - np.log(special.comb(n, y))
            )
        else:
            assert np.abs(x).max() > 30
            expected = np.sum(y * special.log_expit(x) + (n - y) * special.log_expit(-x))
        np.testing.assert_allclose(potential(point), expected, rtol=1e-10)
