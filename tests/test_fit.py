"""The hierarchical models and the fit API, checked against independent computations."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import integrate, special, stats

import bayesreview as br
from bayesreview.backend.models import build_model
from bayesreview.model_data import model_data
from bayesreview.quantities import study_rates

FAST = {"draws": 300, "tune": 300, "chains": 2, "progressbar": False}


def _single_group_table(events, trials) -> pd.DataFrame:
    events, trials = np.asarray(events), np.asarray(trials)
    return pd.DataFrame(
        {
            "study": [f"s{i}" for i in range(len(events))],
            "modality": "m",
            "n": trials,
            "events": events,
        }
    )


def _shared_spec() -> br.ModelSpec:
    """The default priors with one concentration shared by all groups."""
    return br.ModelSpec.from_dict(
        {
            "name": "shared",
            "likelihood": "beta_binomial",
            "heterogeneity": "shared",
            "priors": {
                "intercept": {"dist": "normal", "mu": 0.0, "sigma": 1.5},
                "bias": {"dist": "normal", "mu": 0.0, "sigma": 1.0},
                "log_concentration": {"dist": "normal", "mu": np.log(10), "sigma": 1.0},
            },
        }
    )


# --------------------------------------------------------------------------------------------
# Log-densities against scipy (the PyMC-tests habit)
# --------------------------------------------------------------------------------------------


def test_beta_binomial_logp_matches_scipy_and_the_binomial_limit():
    from bayesreview.backend.ops import beta_binomial_term

    def logp(y, n, logit_mu, log_phi):
        return [beta_binomial_term(float(y[0]), float(n[0]), logit_mu[0], log_phi[0])[0]]

    for phi in [1e-3, 0.5, 10.0, 1e5, 1e9, 1e12, 1e15]:
        for mu in [0.01, 0.3, 0.9]:
            a, b = mu * phi, (1 - mu) * phi
            for k, size in [(0, 1), (1, 1), (3, 10), (29, 29), (0, 29)]:
                got = logp([k], [size], [special.logit(mu)], [np.log(phi)])[0]
                # the rising-factorial product, term by term (exact for small n at any phi)
                product = (
                    np.log(special.comb(size, k))
                    + np.log(a + np.arange(k)).sum()
                    + np.log(b + np.arange(size - k)).sum()
                    - np.log(phi + np.arange(size)).sum()
                )
                assert got == pytest.approx(product, rel=1e-7, abs=1e-7), (phi, mu, k, size)
                if phi <= 1e5:  # scipy's betabinom loses precision for larger phi
                    expected = stats.betabinom(size, a, b).logpmf(k)
                    assert got == pytest.approx(expected, rel=1e-7, abs=1e-7)
    # as phi -> infinity the beta-binomial becomes the binomial
    got = logp([3], [10], [special.logit(0.3)], [np.log(1e15)])[0]
    assert got == pytest.approx(stats.binom(10, 0.3).logpmf(3), abs=1e-6)


def _simplex_point(z: np.ndarray) -> tuple[np.ndarray, float]:
    """pi = softmax([z, -sum z]) (PyMC's simplex scale) and log |d pi[:-1] / dz|, the Jacobian
    by central differences."""

    def simplex(v):
        w = np.append(v, -v.sum())
        return np.exp(w - special.logsumexp(w))

    step = 1e-6
    columns = [
        (simplex(z + step * unit) - simplex(z - step * unit))[:-1] / (2 * step)
        for unit in np.eye(z.size)
    ]
    return simplex(z), float(np.linalg.slogdet(np.column_stack(columns))[1])


def test_level_probabilities_have_pymcs_dirichlet_density_on_the_simplex_scale():
    # The model writes the Dirichlet of the level probabilities out on PyMC's simplex scale; its
    # log-density must be PyMC's own Dirichlet with its default transform, Jacobian included
    table = pd.DataFrame(
        {
            "study": list("abcd"),
            "modality": ["m"] * 4,
            "design": ["x", "y", "z", None],
            "n": [5, 8, 3, 4],
            "events": [2, 7, 1, 0],
        }
    )
    counts = {"x": 2.0, "y": 3.0, "z": 0.5}
    data = model_data(
        br.read_studies(table), "events", bias="design", bias_reference="x",
        bias_prior_counts=counts,
    )  # fmt: skip
    model = build_model(data, _shared_spec())
    with pm.Model() as dirichlet:
        pm.Dirichlet("pi", a=np.array(list(counts.values())))
    reference = dirichlet.compile_logp(jacobian=True)
    z_value = [model.rvs_to_values[model["bias_level_prob_simplex"]]]
    density, pi_of_z = model.replace_rvs_by_values(
        [model["bias_level_prob_prior"], model["bias_level_prob"]]
    )
    prior = model.compile_fn(density, inputs=z_value)
    probabilities = model.compile_fn(pi_of_z, inputs=z_value)
    for z in ([0.0, 0.0], [0.3, -1.2], [2.5, 0.7]):
        point = {"bias_level_prob_simplex": np.array(z)}
        assert prior(point) == pytest.approx(reference({"pi_simplex__": np.array(z)}), abs=1e-10)
        pi, log_jacobian = _simplex_point(np.array(z))
        np.testing.assert_allclose(probabilities(point), pi, atol=1e-12)
        assert prior(point) == pytest.approx(
            stats.dirichlet(list(counts.values())).logpdf(pi) + log_jacobian, abs=1e-6
        )


def test_missing_bias_mixture_logp_matches_an_independent_computation():
    # Three studies, a two-level covariate, the third study's level missing: the model's joint
    # log-density at an arbitrary point must equal the mixture written out with scipy.
    table = pd.DataFrame(
        {
            "study": ["a", "b", "c"],
            "modality": ["m", "m", "m"],
            "design": ["x", "y", None],
            "n": [5, 8, 3],
            "events": [2, 7, 1],
        }
    )
    data = model_data(
        br.read_studies(table),
        "events",
        bias="design",
        bias_reference="x",
        bias_prior_counts={"x": 2.0, "y": 3.0},
    )
    model = build_model(data, _shared_spec())
    point = {
        "alpha": np.array([0.4]),
        "log_phi": 1.7,
        "beta": np.array([-0.8]),
        "bias_level_prob_simplex": np.array([0.3]),
    }
    logp = model.compile_logp(jacobian=False)(point)
    pi, log_jacobian = _simplex_point(np.array([0.3]))
    phi = np.exp(1.7)

    def lik(k, size, level):
        mu = special.expit(0.4 + (0.0, -0.8)[level])
        return stats.betabinom(size, mu * phi, (1 - mu) * phi).logpmf(k)

    expected = (
        lik(2, 5, 0)
        + np.log(pi[0])
        + lik(7, 8, 1)
        + np.log(pi[1])
        + np.logaddexp(np.log(pi[0]) + lik(1, 3, 0), np.log(pi[1]) + lik(1, 3, 1))
        + stats.norm(0, 1.5).logpdf(0.4)
        + stats.norm(np.log(10), 1).logpdf(1.7)
        + stats.norm(0, 1).logpdf(-0.8)
        + stats.dirichlet([2.0, 3.0]).logpdf(pi)
        + log_jacobian
    )
    assert logp == pytest.approx(expected, abs=1e-6)
    # With every level known the mixture is gone: the plain covariate model, no pi at all
    known = model_data(
        br.read_studies(table.fillna({"design": "y"})), "events", bias="design", bias_reference="x"
    )
    plain = build_model(known, _shared_spec())
    assert "bias_level_prob" not in plain.named_vars
    plain_point = {k: v for k, v in point.items() if k != "bias_level_prob_simplex"}
    assert plain.compile_logp()(plain_point) == pytest.approx(
        lik(2, 5, 0)
        + lik(7, 8, 1)
        + lik(1, 3, 1)
        + stats.norm(0, 1.5).logpdf(0.4)
        + stats.norm(np.log(10), 1).logpdf(1.7)
        + stats.norm(0, 1).logpdf(-0.8),
        abs=1e-6,
    )


# --------------------------------------------------------------------------------------------
# An exact answer: the posterior of the mean rate by numerical integration on a grid
# --------------------------------------------------------------------------------------------


def test_beta_binomial_posterior_matches_grid_integration():
    # The intralesional STS studies (Table 1): any response / patients
    events = [1, 26, 1, 0, 2, 1, 1, 6, 1]
    trials = [1, 29, 5, 7, 2, 1, 1, 6, 1]
    result = br.fit(
        _single_group_table(events, trials),
        outcome="events",
        model=_shared_spec(),
        seed=3,
        draws=2000,
        tune=1000,
        chains=4,
        progressbar=False,
    )
    summary = result.summary().iloc[0]

    # posterior density of (alpha, log phi) on a fine grid, with scipy's beta-binomial
    alpha = np.linspace(-4, 6, 501)
    log_phi = np.linspace(-4, 7, 441)
    a_grid, l_grid = np.meshgrid(alpha, log_phi, indexing="ij")
    mu, phi = special.expit(a_grid), np.exp(l_grid)
    log_post = stats.norm(0, 1.5).logpdf(a_grid) + stats.norm(np.log(10), 1).logpdf(l_grid)
    for k, size in zip(events, trials, strict=True):
        log_post += stats.betabinom(size, mu * phi, (1 - mu) * phi).logpmf(k)
    density = np.exp(log_post - log_post.max())
    marginal = integrate.trapezoid(density, log_phi, axis=1)  # over log phi
    cdf = integrate.cumulative_trapezoid(marginal, alpha, initial=0.0)
    cdf /= cdf[-1]
    exact = special.expit(np.interp([0.025, 0.5, 0.975], cdf, alpha))  # mu is monotone in alpha

    # Monte Carlo error of a quantile with ~4000 draws of ESS >= 1000 is about 0.01 here
    assert summary["mean_rate_lower"] == pytest.approx(exact[0], abs=0.03)
    assert summary["mean_rate"] == pytest.approx(exact[1], abs=0.015)
    assert summary["mean_rate_upper"] == pytest.approx(exact[2], abs=0.015)


# --------------------------------------------------------------------------------------------
# Parameter recovery on simulated data with known truth
# --------------------------------------------------------------------------------------------


def _simulate(likelihood: str, seed: int):
    rng = np.random.default_rng(seed)
    alpha = np.array([-1.2, -0.3, 0.5, 1.3])
    beta_high = -0.9
    rows = []
    for m, a in enumerate(alpha):
        for j in range(30):
            high = j % 2 == 1
            eta = a + beta_high * high
            size = int(rng.integers(5, 31))
            if likelihood == "beta_binomial":
                mu, phi = special.expit(eta), 12.0
                p = rng.beta(mu * phi, (1 - mu) * phi)
            else:
                p = special.expit(eta + 0.6 * rng.standard_normal())
            rows.append(
                {
                    "study": f"m{m}-{j}",
                    "modality": f"m{m}",
                    "risk_of_bias": "high" if high else "low",
                    "n": size,
                    "events": int(rng.binomial(size, p)),
                }
            )
    return pd.DataFrame(rows), alpha, beta_high


@pytest.mark.slow
@pytest.mark.parametrize("likelihood", ["beta_binomial", "logit_normal"])
def test_parameter_recovery(likelihood):
    table, alpha, beta_high = _simulate(likelihood, seed=7)
    result = br.fit(
        table,
        outcome="events",
        model=likelihood,
        bias="risk_of_bias",
        seed=5,
        draws=1000,
        tune=1000,
        chains=2,
        progressbar=False,
    )
    posterior = result.idata.posterior
    draws_alpha = posterior["alpha"].stack(s=("chain", "draw")).values  # (group, sample)
    lower, upper = np.quantile(draws_alpha, [0.005, 0.995], axis=1)
    assert np.all((lower < alpha) & (alpha < upper)), (lower, alpha, upper)
    assert np.abs(draws_alpha.mean(axis=1) - alpha).max() < 0.5
    beta = posterior["beta"].sel(bias_level="high").values.ravel()
    assert np.quantile(beta, 0.005) < beta_high < np.quantile(beta, 0.995)
    assert abs(beta.mean() - beta_high) < 0.35
    if likelihood == "logit_normal":
        tau = posterior["tau"].values.reshape(-1, len(alpha))
        assert np.all(np.quantile(tau, 0.005, axis=0) < 0.6)
        assert np.all(np.quantile(tau, 0.995, axis=0) > 0.6)


# --------------------------------------------------------------------------------------------
# The joint response model
# --------------------------------------------------------------------------------------------


def test_joint_model_never_gives_complete_above_any(response_fit):
    rate = response_fit.idata.posterior["rate"]
    for name in ("rate", "rate_mix", "rate_pred", "rate_pred_mix"):
        values = response_fit.idata.posterior[name]
        assert (values.sel(outcome="complete") <= values.sel(outcome="any")).all()
        both = values.sel(outcome="complete") + values.sel(outcome="partial")
        np.testing.assert_allclose(both, values.sel(outcome="any"), rtol=1e-12)
    assert set(rate.outcome.values) == {"complete", "partial", "any"}
    from bayesreview.quantities import flat_posterior

    rates = study_rates(
        flat_posterior(response_fit.idata.posterior),
        response_fit.data,
        "beta_binomial",
        np.random.default_rng(0),
    )
    assert (rates["complete"] <= rates["any"]).all()


def test_joint_model_summary_has_crude_counts_of_table_2(response_fit):
    summary = response_fit.summary().set_index(["outcome", "modality"])
    # Table 2: intralesional complete 19/53, partial 20/53; Results text: any 39/53
    assert summary.loc[("complete", "intralesional_sts"), ["events", "n"]].tolist() == [19, 53]
    assert summary.loc[("partial", "intralesional_sts"), ["events", "n"]].tolist() == [20, 53]
    assert summary.loc[("any", "laser"), ["events", "n"]].tolist() == [15, 21]
    assert summary.loc[("complete", "laser"), "crude"] == pytest.approx(12 / 21)
    assert (summary["mean_rate_lower"] <= summary["mean_rate"]).all()
    assert (summary["mean_rate"] <= summary["mean_rate_upper"]).all()
    assert (summary["pred_lower"] <= summary["mean_rate_lower"] + 1e-12).all()


# --------------------------------------------------------------------------------------------
# The bias covariate with missing levels
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_hiding_bias_levels_widens_the_intervals():
    table, _, _ = _simulate("beta_binomial", seed=8)
    hidden = table.copy()
    hidden.loc[hidden.index % 3 == 0, "risk_of_bias"] = None
    kwargs = {
        "outcome": "events",
        "bias": "risk_of_bias",
        "seed": 2,
        "draws": 800,
        "tune": 800,
        "chains": 2,
        "progressbar": False,
    }
    known = br.fit(table, **kwargs)
    masked = br.fit(hidden, **kwargs)
    # the simulated studies are low or high risk; "moderate" has no study and stays at its prior
    sd_known = float(known.idata.posterior["beta"].sel(bias_level="high").std())
    sd_masked = float(masked.idata.posterior["beta"].sel(bias_level="high").std())
    assert sd_masked > sd_known
    width = {
        name: (f.summary()["mean_rate_upper"] - f.summary()["mean_rate_lower"]).mean()
        for name, f in (("known", known), ("masked", masked))
    }
    assert width["masked"] > width["known"]
    assert "bias_level_prob" in masked.idata.posterior
    assert "bias_level_prob" not in known.idata.posterior


@pytest.mark.parametrize("hide", [False, True])
def test_pointwise_log_likelihood_equals_scipy_betabinom(studies, fast_fit, hide):
    # The per-study log-likelihood (for LOO) at each draw: scipy's beta-binomial at the study's
    # own design level, or, where the level is hidden, the mixture sum_k pi_k L_j(k).
    table = studies.copy()
    if hide:
        table.loc[table.index % 4 == 0, "design"] = None
    result = fast_fit(table, by="group", bias="design", seed=3, draws=20, tune=100)
    post = result.idata.posterior.isel(chain=0)
    levels = list(result.idata.posterior["beta"].bias_level.values)
    reference = next(lv for lv in table["design"].dropna().unique() if lv not in levels)
    events = (table["complete"] + table["partial"]).to_numpy()
    loglik = result.idata.log_likelihood["events"].isel(chain=0)
    for draw in (0, 7, 19):
        p = post.isel(draw=draw)
        shift = {reference: 0.0, **{lv: float(p["beta"].sel(bias_level=lv)) for lv in levels}}
        for j, row in enumerate(table.itertuples()):
            alpha = float(p["alpha"].sel(group=row.group))
            phi = float(p["phi"].sel(group=row.group))
            mu = {level: special.expit(alpha + value) for level, value in shift.items()}
            density = {
                level: stats.betabinom(row.n, m * phi, (1 - m) * phi).pmf(events[j])
                for level, m in mu.items()
            }
            if isinstance(row.design, str):
                expected = np.log(density[row.design])
            else:
                pi = p["bias_level_prob"]
                expected = np.log(sum(float(pi.sel(level=lv)) * density[lv] for lv in shift))
            assert float(loglik.isel(draw=draw, study=j)) == pytest.approx(expected, rel=1e-9)


def test_risk_of_bias_missing_everywhere_uses_published_totals(studies):
    totals = br.dataset_info("calcinosis_cutis")["risk_of_bias_totals"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        result = br.fit(
            studies, by="group", bias="risk_of_bias", bias_prior_counts=totals, seed=4, **FAST
        )
    prob = result.idata.posterior["bias_level_prob"]
    assert list(prob.level.values) == ["low", "moderate", "high"]
    # no study has a rating, so the level probabilities stay close to Dirichlet(10, 19, 11):
    # prior means 0.25, 0.475, 0.275 with sd about 0.07
    np.testing.assert_allclose(prob.mean(("chain", "draw")), [0.25, 0.475, 0.275], atol=0.06)
    assert result.settings["bias_reference"] == "low"


# --------------------------------------------------------------------------------------------
# The logit-normal reports the population mean, not the median
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_logit_normal_rate_is_the_population_mean(studies):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        result = br.fit(studies, model="logit_normal", by="group", seed=6, **FAST)
    posterior = result.idata.posterior
    for draw in (0, 57, 211):
        alpha = float(posterior["alpha"].isel(chain=0, draw=draw).sel(group="eswl"))
        tau = float(posterior["tau"].isel(chain=0, draw=draw).sel(group="eswl"))
        mean, _ = integrate.quad(
            lambda z, a=alpha, t=tau: special.expit(a + t * z) * stats.norm.pdf(z), -12, 12
        )
        got = float(posterior["rate"].isel(chain=0, draw=draw).sel(outcome="any", group="eswl"))
        assert got == pytest.approx(mean, abs=1e-6)
    assert result.idata.log_likelihood["events"].sizes["study"] == 40


# --------------------------------------------------------------------------------------------
# Reproducibility, warnings, storage, fast paths
# --------------------------------------------------------------------------------------------


def test_same_seed_same_numbers(studies):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        first = br.fit(studies, by="group", seed=21, **FAST)
        second = br.fit(studies, by="group", seed=21, **FAST)
        third = br.fit(studies, by="group", seed=22, **FAST)
    pd.testing.assert_frame_equal(first.summary(), second.summary())
    pd.testing.assert_frame_equal(first.study_estimates(), second.study_estimates())
    assert not first.summary()["mean_rate"].equals(third.summary()["mean_rate"])


def test_one_chain_fits_and_says_that_r_hat_needs_two(studies):
    with pytest.warns(br.ConvergenceWarning, match="R-hat needs two chains or more"):
        fit = br.fit(studies, by="group", seed=1, draws=200, tune=200, chains=1, progressbar=False)
    assert fit.diagnostics()["r_hat"].isna().all()
    assert fit.summary()["mean_rate"].between(0, 1).all()


def test_too_few_draws_warn_with_advice_that_works(studies):
    # the advice names a number of draws; refitting with it must clear the ESS warning. 150
    # draws (ESS about 70-100): from 60 the ESS estimate itself is too noisy to extrapolate
    # (23 to 43 in runs of one seed that differ only in what the process compiled before)
    kwargs = {"by": "group", "seed": 1, "tune": 300, "chains": 2, "progressbar": False}
    with pytest.warns(br.ConvergenceWarning, match="effective sample size") as caught:
        br.fit(studies, draws=150, **kwargs)
    message = next(str(w.message) for w in caught if "effective sample size" in str(w.message))
    advised = int(re.search(r"refit with draws=(\d+)", message).group(1))
    assert advised > 150
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        br.fit(studies, draws=advised, **kwargs)
    assert not [w for w in again if "effective sample size" in str(w.message)]


def test_save_and_load_round_trip(response_fit, tmp_path):
    path = response_fit.save(tmp_path / "fit.nc")
    loaded = br.load_fit(path)
    pd.testing.assert_frame_equal(loaded.summary(), response_fit.summary())
    assert loaded.spec == response_fit.spec
    assert loaded.settings["seed"] == 11
    attrs = loaded.idata.posterior.attrs
    assert attrs["bayesreview_version"] == br.__version__
    assert not list(tmp_path.glob(".*partial"))


def test_study_estimates_are_conjugate_beta_draws(response_fit):
    # E[p_j | y] = E_theta[(a + y) / (phi + n)] for the any-response stage
    estimates = response_fit.study_estimates().query("outcome == 'any'").set_index("study")
    posterior = response_fit.idata.posterior
    g = response_fit.data.group_idx
    alpha = posterior["alpha"].values.reshape(-1, response_fit.data.n_groups)[:, g]
    phi = posterior["phi"].values.reshape(-1, response_fit.data.n_groups)[:, g]
    a = special.expit(alpha) * phi
    expected = ((a + response_fit.data.events) / (phi + response_fit.data.trials)).mean(axis=0)
    np.testing.assert_allclose(estimates["post_mean"].to_numpy(), expected, atol=0.02)


@pytest.mark.slow
def test_collapsing_and_pymc_sampler_give_the_same_posterior():
    rng = np.random.default_rng(3)
    size = rng.integers(1, 6, 600)
    table = pd.DataFrame(
        {
            "study": [f"s{i}" for i in range(600)],
            "modality": np.repeat(["a", "b", "c"], 200),
            "n": size,
            "events": rng.binomial(size, 0.4),
        }
    )
    kwargs = {
        "outcome": "events",
        "seed": 1,
        "draws": 1000,
        "tune": 500,
        "chains": 2,
        "progressbar": False,
    }
    collapsed = br.fit(table, **kwargs)
    plain = br.fit(table, collapse=False, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = br.fit(table, collapse=False, sampler="pymc", **kwargs)
    reference = collapsed.summary()
    for result in (plain, other):
        summary = result.summary()
        # posterior sds are about 0.02: 2000 draws give a Monte Carlo error of about 0.001
        np.testing.assert_allclose(summary["mean_rate"], reference["mean_rate"], atol=0.01)
        np.testing.assert_allclose(
            summary["mean_rate_upper"], reference["mean_rate_upper"], atol=0.02
        )


@pytest.mark.parametrize("bias", [None, "design", "year"])
def test_tabulated_likelihood_equals_the_sum_over_studies(bias):
    # The sufficient-count form must equal the per-study beta-binomial log-likelihood up to the
    # binomial coefficients, with the same gradient, at any parameter value.
    from bayesreview.model_data import tabulate

    studies = br.load_dataset("calcinosis_cutis")
    data = model_data(studies, "response", by="group", bias=bias)
    spec = br.load_spec("response")
    per_study = build_model(data, spec)
    tabulated = build_model(data, spec, tabulate(data))
    logp_rows, logp_cells = per_study.compile_logp(), tabulated.compile_logp()
    dlogp_rows, dlogp_cells = per_study.compile_dlogp(), tabulated.compile_dlogp()
    constant = sum(np.log(special.comb(n, y)).sum() for _, y, n in data.stage_counts())
    rng = np.random.default_rng(0)
    for _ in range(3):
        point = {
            name: rng.normal(0.0, 1.5, np.shape(value))
            for name, value in per_study.initial_point().items()
        }
        assert logp_rows(point) == pytest.approx(logp_cells(point) + constant, rel=1e-8)
        # the gradient: digamma differences of the per-study form against the tabulated Op's
        # sums of 1 / (x + i). Near phi = 1e8 the digamma difference cancels (about 1e-14
        # absolute on each term, times phi), hence the absolute tolerance.
        np.testing.assert_allclose(dlogp_cells(point), dlogp_rows(point), rtol=1e-6, atol=1e-4)


def test_weight_zero_leaves_a_study_out(studies):
    # Leaving out a study by weight must give the posterior of the table without it: compare
    # the crude counts and the posterior at a fixed seed with the same compiled model.
    weights = np.ones(len(studies), dtype=int)
    olesen = int(np.flatnonzero(studies["study"] == "Olesen 2020")[0])
    weights[olesen] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", br.ConvergenceWarning)
        left_out = br.fit(studies, by="group", seed=9, weights=weights, **FAST)
        dropped = br.fit(
            studies.drop(index=olesen).reset_index(drop=True), by="group", seed=9, **FAST
        )
    crude = left_out.crude().set_index("modality")
    # Table 1: intralesional any response 39/53; without Olesen (26/29): 13/24
    assert crude.loc["intralesional_sts", ["events", "n"]].tolist() == [13, 24]
    pd.testing.assert_frame_equal(left_out.summary(), dropped.summary())
    with pytest.raises(br.BayesReviewError, match="weights"):
        br.fit(studies, weights=[1, 0], **FAST)
