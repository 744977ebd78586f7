"""Tests of bayesreview.robustness: scenario tables, leave-one-out refits, prior sensitivity."""

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

matplotlib.use("Agg")

import bayesreview as br
from bayesreview.backend import models, sampling
from bayesreview.errors import BayesReviewError
from bayesreview.model_data import collapse_identical, model_data
from bayesreview.plots import sensitivity_plot
from bayesreview.robustness import (
    _rows,
    _Scenario,
    _scenarios,
    log_prior,
    prior_sensitivity,
    sensitivity,
)
from bayesreview.spec import ModelSpec, load_spec


@pytest.fixture(scope="module")
def calcinosis():
    return br.load_dataset("calcinosis_cutis")


def _all_scenarios(studies, outcome="any"):
    base = model_data(studies, outcome)
    other = model_data(studies, outcome, unknown="exclude")
    kinds = {"main", "leave_one_out", "design", "risk_of_bias", "unknown", "model", "prior_scale"}
    return _scenarios(studies, base, other, load_spec("beta_binomial"), outcome, kinds, (0.5, 2))


# --------------------------------------------------------------------------------------------
# Scenario construction (no sampling)
# --------------------------------------------------------------------------------------------


def test_scenarios_of_calcinosis(calcinosis):
    todo, skipped = _all_scenarios(calcinosis)
    names = [s.name for s in todo]
    assert names[0] == "main"
    loo = [s for s in todo if s.kind == "leave_one_out"]
    assert len(loo) == 40
    assert "leave out Olesen 2020" in names
    # each leave-one-out zeroes exactly one weight, that of the named study
    for s in loo:
        (zero,) = np.flatnonzero(s.data.weights == 0)
        assert s.name == f"leave out {s.data.study[zero]}"
        assert s.data.n_rows == 40  # the shape, hence the compiled model, is kept
    (design,) = [s for s in todo if s.kind == "design"]
    # the review's Quality assessment: 1 trial + 12 case series are not case reports; two of
    # those (Tonial [21], Urretavizcaya [33]) are conference abstracts -> 11 studies remain
    assert int(design.data.weights.sum()) == 11
    kept = {design.data.study[j] for j in np.flatnonzero(design.data.weights)}
    assert "Winter 2020" in kept and "Tonial 2018" not in kept and "Abbott 2020" not in kept
    (unknown,) = [s for s in todo if s.kind == "unknown"]
    assert unknown.data.unknown == "exclude"
    assert unknown.name == "unknown responses excluded from denominators"
    assert [s.name for s in todo if s.kind == "model"] == [
        "model logit_normal",
        "model selection (publication selection by response)",
    ]
    priors = [s for s in todo if s.kind == "prior_scale"]
    assert [s.name for s in priors] == ["prior scales x0.5", "prior scales x2"]
    assert priors[0].spec.prior("intercept").param("sigma") == pytest.approx(0.75)
    # no per-study ratings in the published review
    assert set(skipped) == {"exclude high risk of bias"}
    assert "rating" in skipped["exclude high risk of bias"]


def test_response_outcome_includes_response_model(calcinosis):
    todo, _ = _all_scenarios(calcinosis, outcome="response")
    assert [s.name for s in todo if s.kind == "model"] == ["model logit_normal", "model response"]


def test_risk_of_bias_scenario_when_rated(calcinosis):
    studies = calcinosis.copy()
    ratings = np.array(["low", "moderate", "high", None] * 10, dtype=object)
    studies["risk_of_bias"] = pd.Categorical(ratings, categories=["low", "moderate", "high"])
    todo, skipped = _all_scenarios(studies)
    (rob,) = [s for s in todo if s.kind == "risk_of_bias"]
    assert "exclude high risk of bias" not in skipped
    # high -> weight 0; unrated studies are kept
    np.testing.assert_array_equal(rob.data.weights == 0, ratings == "high")


def test_bad_arguments(calcinosis):
    with pytest.raises(BayesReviewError, match=r"unknown kind.*loo"):
        sensitivity(calcinosis, scenarios=["loo"])
    with pytest.raises(BayesReviewError, match="Nobody 1999"):
        sensitivity(calcinosis, scenarios=["leave_one_out"], leave_out=["Nobody 1999"])
    with pytest.raises(BayesReviewError, match=r"unexpected argument.*chain"):
        sensitivity(calcinosis, chain=2)
    with pytest.raises(BayesReviewError, match="draws"):
        sensitivity(calcinosis, draws=0)


def test_rows_p_best_and_vanishing_modality():
    studies = br.read_studies(
        pd.DataFrame(
            {
                "study": ["a1", "a2", "b1", "c1"],
                "modality": ["a", "a", "b", "c"],
                "events": [1, 2, 3, 1],
                "n": [2, 4, 5, 3],
            }
        )
    )
    data = model_data(studies, "events")
    data = data.__class__(**{**data.__dict__, "weights": np.array([1, 1, 0, 1])})
    scenario = _Scenario("leave out b1", "leave_one_out", load_spec("beta_binomial"), data)
    # draws (S=4, O=1, G=3): b would always win, but it has no study left
    rates = np.array([[0.2, 0.9, 0.1], [0.3, 0.9, 0.4], [0.5, 0.9, 0.4], [0.6, 0.9, 0.7]])
    rows = pd.DataFrame(_rows(scenario, rates[:, None, :], level=0.5))
    assert list(rows.modality) == ["a", "c"]
    assert list(rows.studies) == [2, 1]
    # a beats c in draws 1, 3 -> P(best) 0.5 each
    assert list(rows.p_best) == [0.5, 0.5]
    assert rows.mean_rate.iloc[0] == pytest.approx(np.median([0.2, 0.3, 0.5, 0.6]))
    assert rows.mean_rate_lower.iloc[0] == pytest.approx(np.quantile([0.2, 0.3, 0.5, 0.6], 0.25))


def test_sensitivity_plot_returns_figure():
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    rows = []
    for scenario, kind, shift in [
        ("main", "main", 0.0),
        ("leave out x", "leave_one_out", 0.05),
        ("leave out y", "leave_one_out", -0.05),
        ("model logit_normal", "model", 0.02),
    ]:
        for modality, centre in (("a", 0.4), ("b", 0.7)):
            rows.append(
                {
                    "scenario": scenario,
                    "kind": kind,
                    "outcome": "any",
                    "modality": modality,
                    "studies": 3,
                    "mean_rate": centre + shift,
                    "mean_rate_lower": centre + shift - 0.2,
                    "mean_rate_upper": centre + shift + 0.2,
                    "p_best": 0.5,
                }
            )
    table = pd.DataFrame(rows)
    fig = sensitivity_plot(table)
    assert isinstance(fig, Figure)
    _, ax = plt.subplots()
    assert sensitivity_plot(table, ax=ax) is ax.figure
    plt.close("all")
    with pytest.raises(BayesReviewError, match="outcome"):
        sensitivity_plot(table, outcome="complete")


# --------------------------------------------------------------------------------------------
# Refits
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_table(calcinosis):
    """Every scenario on the calcinosis data, counting model builds (compilations)."""
    builds = []
    original = sampling.build_model

    def counting(data, spec, tabulated=None):
        shape = None if tabulated is None else (tabulated.n_cells, tabulated.n_terms)
        builds.append((spec, data.structure(), shape))
        return original(data, spec, tabulated)

    sampling.build_model = counting
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = sensitivity(calcinosis, draws=150, tune=150, chains=2, seed=1)
    finally:
        sampling.build_model = original
    return table, builds


@pytest.mark.slow
def test_full_table_has_every_scenario(full_table, calcinosis):
    table, _ = full_table
    kinds = table.drop_duplicates("scenario").kind.value_counts()
    assert kinds.to_dict() == {
        "leave_one_out": 40,
        "prior_scale": 2,
        "main": 1,
        "design": 1,
        "unknown": 1,
        "model": 2,  # logit_normal, selection
    }
    assert table.attrs["skipped"].keys() == {"exclude high risk of bias"}
    main = table[table.kind == "main"]
    assert list(main.modality) == list(pd.unique(calcinosis.modality))
    assert main.p_best.sum() == pytest.approx(1.0)
    # leaving out the only study of a modality removes that modality's row
    gone = table[table.scenario == "leave out Abrouk 2020"]
    assert "picosecond_co2_laser" not in set(gone.modality)
    assert len(gone) == 8
    # every interval contains its median, rates on 0-1
    assert (table.mean_rate_lower <= table.mean_rate).all()
    assert (table.mean_rate <= table.mean_rate_upper).all()
    assert table[["mean_rate_lower", "mean_rate_upper"]].stack().between(0, 1).all()


@pytest.mark.slow
def test_leave_one_out_reuses_the_compiled_model(full_table):
    _, builds = full_table
    # one build per distinct model (spec, priors included) and padded shape, however many
    # refits: the 40
    # leave-one-out refits add at most the one or two shapes of their padded terms (leaving
    # out the largest study can halve them), never one build per refit
    assert len(builds) == len(set(builds))
    assert len(builds) <= 7
    assert [b[0].name for b in builds].count("logit_normal") <= 1
    assert [b[0].name for b in builds].count("selection") <= 1


@pytest.mark.slow
def test_dropping_olesen_lowers_intralesional_rate_as_exact_quadrature_says(calcinosis):
    studies = calcinosis
    intra = studies[studies.modality == "intralesional_sts"]
    events = (intra.complete + intra.partial).to_numpy()
    n = intra.n.to_numpy()
    olesen = (intra.study == "Olesen 2020").to_numpy()
    assert (events[olesen].item(), n[olesen].item()) == (26, 29)
    rest_pooled = events[~olesen].sum() / n[~olesen].sum()
    rest_rates = events[~olesen] / n[~olesen]
    assert (events[~olesen].sum(), n[~olesen].sum()) == (13, 24)
    # Random-effects weights lie between patient-proportional (the pooled 13/24 = 0.54) and
    # equal per study (mean of the rates, 0.775); Olesen's 26/29 = 0.90 is above both, so with
    # the heterogeneity held fixed, removing it lowers the pooled rate.
    assert 26 / 29 > max(rest_pooled, rest_rates.mean())

    # Per-modality heterogeneity makes the intralesional posterior depend on its own studies
    # only, so the exact answer is a 2-d integral over (alpha, log phi) on a grid.
    spec = ModelSpec(
        name="bb_per_modality",
        likelihood="beta_binomial",
        heterogeneity="per_modality",
        priors={
            "intercept": {"dist": "normal", "mu": 0.0, "sigma": 1.5},
            "bias": {"dist": "normal", "mu": 0.0, "sigma": 1.0},
            "log_concentration": {"dist": "normal", "mu": float(np.log(10)), "sigma": 1.0},
        },
    )
    a = np.linspace(-6, 8, 1401)[:, None]
    lphi = np.linspace(-5, 10, 1201)[None, :]

    def exact_median(y, m):
        mu, phi = special.expit(a), np.exp(lphi)
        ll = sum(
            special.betaln(yj + mu * phi, mj - yj + (1 - mu) * phi)
            - special.betaln(mu * phi, (1 - mu) * phi)
            for yj, mj in zip(y, m, strict=True)
        )
        log_post = ll + stats.norm.logpdf(a, 0, 1.5) + stats.norm.logpdf(lphi, np.log(10), 1)
        weight = np.exp(log_post - log_post.max()).sum(axis=1)
        cdf = np.cumsum(weight) / weight.sum()
        return special.expit(np.interp(0.5, cdf, a[:, 0]))

    exact_main = exact_median(events, n)
    exact_loo = exact_median(events[~olesen], n[~olesen])
    assert exact_loo < exact_main - 0.01

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = sensitivity(
            studies,
            model=spec,
            scenarios=["leave_one_out"],
            leave_out=["Olesen 2020"],
            draws=1500,
            tune=1000,
            seed=4,
        )
    rows = table[table.modality == "intralesional_sts"].set_index("scenario")
    main = rows.loc["main", "mean_rate"]
    loo = rows.loc["leave out Olesen 2020", "mean_rate"]
    assert rows.loc["leave out Olesen 2020", "studies"] == 8
    assert main == pytest.approx(exact_main, abs=0.02)
    assert loo == pytest.approx(exact_loo, abs=0.02)
    assert loo < main


# --------------------------------------------------------------------------------------------
# Power-scaling prior sensitivity
# --------------------------------------------------------------------------------------------


# modality_fit (tests/conftest.py): the default model, any response by modality, 2 x 200 draws


def test_log_prior_matches_pymc(modality_fit):
    """Our log prior per draw equals PyMC's log density of the free variables (no Jacobian)."""
    fit = modality_fit
    lp = log_prior(fit)
    total = sum(lp[v] for v in lp.data_vars).values.reshape(-1)
    model = models.build_model(collapse_identical(fit.data), fit.spec)
    # the location's prior is a density term (pm.Potential) on its value log_phi_anchor, which
    # the posterior holds as log_phi where no group anchors it
    priors = [*model.free_RVs, *(p for p in model.potentials if p.name != "loglik")]
    logp = model.compile_fn(model.logp(vars=priors, jacobian=False, sum=True), point_fn=True)
    post = fit.idata.posterior
    for s in (0, 57, 311):
        c, d = divmod(s, post.sizes["draw"])
        point = {}
        for rv in model.free_RVs:
            value_var = model.rvs_to_values[rv]
            x = post[rv.name if rv.name in post else rv.name.removesuffix("_anchor")].values[c, d]
            point[value_var.name] = np.log(x) if value_var.name.endswith("_log__") else x
        assert logp(point) == pytest.approx(total[s], rel=1e-8)


def test_prior_sensitivity_rows_finite(modality_fit):
    table = prior_sensitivity(modality_fit)
    groups = list(modality_fit.groups)
    expected = (
        [f"alpha[{g}]" for g in groups]
        + ["log_phi", "log_phi_sd"]
        + [f"phi[{g}]" for g in groups]
        + [f"rate[any, {g}]" for g in groups]
    )
    assert sorted(table.parameter) == sorted(expected)
    assert np.isfinite(table[["prior", "likelihood"]].to_numpy()).all()
    assert (table[["prior", "likelihood"]] >= 0).all().all()
    both = (table.prior > 0.05) & (table.likelihood > 0.05)
    assert (table.diagnosis[both] == "prior-data conflict").all()
    weak = (table.prior > 0.05) & (table.likelihood <= 0.05)
    assert (table.diagnosis[weak] == "strong prior / weak likelihood").all()
    assert (table.diagnosis[table.prior <= 0.05] == "-").all()
