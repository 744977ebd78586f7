"""Every path beside the default one, each checked against an independent computation.

Issue 13: the logit-normal's integral over the study effect, its shrunken estimates with a
missing bias level, its parameterisation, repeated study labels, restoring the levels of a saved
fit, mix-averaged rates per modality, and both estimands with the heterogeneity on the model's
own scale.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

import bayesreview as br
from bayesreview.backend.models import build_model
from bayesreview.integrals import logit_normal_loglik, logit_normal_moment
from bayesreview.model_data import model_data
from bayesreview.quantities import (
    level_probabilities,
    log_likelihood,
    pooled_rates,
    reference_rates,
    stages_from_posterior,
    study_rates,
)

FAST = {"draws": 300, "tune": 300, "chains": 2, "progressbar": False}


def _quad_loglik(y: int, n: int, eta: float, tau: float) -> float:
    """log of the binomial-normal marginal likelihood by scipy's adaptive quadrature.

    The integrand is scaled by its maximum, found on a fine grid, and integrated over
    z in peak +- 15 (the standard normal factor bounds it), with the peak as a break point.
    """
    z = np.linspace(-40, 40, 400_001)
    log_f = stats.binom.logpmf(y, n, special.expit(eta + tau * z)) + stats.norm.logpdf(z)
    peak, top = z[np.argmax(log_f)], log_f.max()

    def f(x):
        return np.exp(
            stats.binom.logpmf(y, n, special.expit(eta + tau * x)) + stats.norm.logpdf(x) - top
        )

    value, _ = integrate.quad(f, peak - 15, peak + 15, points=[peak], limit=500, epsrel=1e-13)
    return float(np.log(value) + top)


# --------------------------------------------------------------------------------------------
# 1. The logit-normal's integral over the study effect
# --------------------------------------------------------------------------------------------

# Narrow peaks (many patients), where fixed Gauss-Hermite nodes fail, and skewed integrands.
PEAKED = [(50, 100, 0.3, 1.0), (700, 1000, -0.5, 1.5), (1200, 2500, 1.0, 3.0), (7000, 7178, 2.0, 3)]
SKEWED = [(0, 1, 0.0, 1.0), (3, 10, -1.0, 0.5), (0, 5000, -2.0, 2.0), (1, 3, 4.0, 5.0)]


@pytest.mark.parametrize(("y", "n", "eta", "tau"), PEAKED)
def test_logit_normal_likelihood_is_exact_for_large_studies(y, n, eta, tau):
    assert float(logit_normal_loglik(y, n, eta, tau)) == pytest.approx(
        _quad_loglik(y, n, eta, tau), abs=1e-8
    )


@pytest.mark.parametrize(("y", "n", "eta", "tau"), SKEWED)
def test_logit_normal_likelihood_where_the_integrand_is_skewed(y, n, eta, tau):
    assert float(logit_normal_loglik(y, n, eta, tau)) == pytest.approx(
        _quad_loglik(y, n, eta, tau), abs=1e-4
    )


def test_logit_normal_likelihood_limits():
    # tau = 0: the binomial at eta; a vector call equals elementwise calls
    assert float(logit_normal_loglik(3, 10, 0.2, 0.0)) == pytest.approx(
        stats.binom.logpmf(3, 10, special.expit(0.2)), abs=1e-12
    )
    y, n = np.array([0, 5, 90]), np.array([4, 20, 100])
    eta, tau = np.array([[-1.0], [0.5]]), np.array([[0.7], [2.0]])
    together = logit_normal_loglik(y, n, eta, tau)
    assert together.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert together[i, j] == pytest.approx(_quad_loglik(y[j], n[j], eta[i, 0], tau[i, 0]))


@pytest.mark.parametrize(
    ("eta", "tau", "rel"), [(0.5, 2.0, 1e-9), (-3.0, 0.3, 1e-9), (2.5, 3.0, 2e-7), (5.0, 6.0, 2e-4)]
)
def test_logit_normal_moments_against_quadrature(eta, tau, rel):
    for power in (1, 2):
        exact, _ = integrate.quad(
            lambda z, p=power: special.expit(eta + tau * z) ** p * stats.norm.pdf(z),
            -40,
            40,
            epsrel=1e-13,
            limit=400,
        )
        assert float(logit_normal_moment(eta, tau, power)) == pytest.approx(exact, rel=rel)


def _one_group_table(events, trials, **columns) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": [f"s{i}" for i in range(len(events))],
            "modality": columns.pop("modality", "m"),
            "n": trials,
            "events": events,
            **columns,
        }
    )


def test_pointwise_log_likelihood_of_large_logit_normal_studies_is_exact():
    # the stored per-study log-likelihood (what loo and compare_models read) at a few draws
    events, trials = np.array([2, 61, 900, 1900]), np.array([5, 100, 1000, 2500])
    data = model_data(br.read_studies(_one_group_table(events, trials)), "events")
    posterior = {"alpha": np.array([[0.8], [1.9]]), "tau": np.array([[1.0], [2.5]])}
    got = log_likelihood(posterior, data, "logit_normal")
    for s in range(2):
        for j in range(4):
            expected = _quad_loglik(
                events[j], trials[j], posterior["alpha"][s, 0], posterior["tau"][s, 0]
            )
            assert got[s, j] == pytest.approx(expected, abs=1e-7)


# --------------------------------------------------------------------------------------------
# 2. Logit-normal shrunken estimates with a missing bias level
# --------------------------------------------------------------------------------------------


def _two_level_data(events, trials, levels, groups=None):
    """A covariate ``grade`` with levels x (reference) and y, some possibly missing (None)."""
    table = _one_group_table(events, trials, grade=pd.Categorical(levels, categories=["x", "y"]))
    if groups is not None:
        table["modality"] = groups
    return model_data(br.read_studies(table), "events", bias="grade", bias_reference="x")


def test_level_probabilities_match_scipy():
    # p(b | y, theta) of a study with a missing level: pi_b times its marginal likelihood
    data = _two_level_data([18, 3], [20, 10], ["x", None])
    draws = 3
    alpha, tau = np.array([0.2, -0.4, 1.0]), np.array([1.3, 0.5, 2.0])
    posterior = {
        "alpha": alpha[:, None],
        "tau": tau[:, None],
        "beta": np.full((draws, 1), 1.5),
        "bias_level_prob": np.tile([0.6, 0.4], (draws, 1)),
    }
    stages = stages_from_posterior(posterior, data, "logit_normal")
    prob = level_probabilities(posterior, stages, data)
    for s in range(draws):
        lik = [np.exp(_quad_loglik(3, 10, alpha[s] + shift, tau[s])) for shift in (0.0, 1.5)]
        weights = np.array([0.6, 0.4]) * np.array(lik)
        np.testing.assert_allclose(prob[s, 1], weights / weights.sum(), rtol=1e-8)
        np.testing.assert_allclose(prob[s, 0], [1.0, 0.0])


def test_logit_normal_shrunken_estimate_with_a_missing_level():
    # The worked case of issue 13: a study of 20 with 19 events whose level is missing, a
    # level effect of -3. Its rate's posterior given theta is the mixture over levels of the
    # rate's posterior at each level; the truth here is importance sampling from the prior
    # of (b, e) with weights Binomial(19 | 20, p), independent of the package's sampler.
    data = _two_level_data([19, 5], [20, 10], [None, "x"])
    draws = 20_000
    posterior = {
        "alpha": np.full((draws, 1), 1.0),
        "tau": np.full((draws, 1), 1.0),
        "beta": np.full((draws, 1), -3.0),
        "bias_level_prob": np.tile([0.5, 0.5], (draws, 1)),
    }
    rates = study_rates(posterior, data, "logit_normal", np.random.default_rng(2))["events"]
    rng = np.random.default_rng(3)
    e = rng.standard_normal(2_000_000)
    level = rng.integers(0, 2, e.size)
    p = special.expit(1.0 + np.where(level == 1, -3.0, 0.0) + e)
    weight = stats.binom.pmf(19, 20, p)
    order = np.argsort(p)
    cdf = np.cumsum(weight[order]) / weight.sum()
    exact = np.interp([0.025, 0.5, 0.975], cdf, p[order])
    np.testing.assert_allclose(np.quantile(rates[:, 0], [0.025, 0.5, 0.975]), exact, atol=0.01)
    assert rates[:, 0].mean() == pytest.approx(np.sum(weight * p) / weight.sum(), abs=0.003)


# --------------------------------------------------------------------------------------------
# 5. Repeated study labels; 6. the logit-normal's parameterisation
# --------------------------------------------------------------------------------------------


def test_a_study_in_two_modalities_is_refused_as_arms_of_one_trial(fast_fit):
    # study A has rows under x and y: two arms of one trial, which a single-arm model would
    # pool as unrelated studies; the fit refuses, naming the study, its rows and the network
    # model, and the same rows with their own labels fit as separate series
    table = pd.DataFrame(
        {
            "study": ["A", "A", "B", "C", "D"],
            "modality": ["x", "y", "x", "y", "x"],
            "n": [5, 6, 7, 3, 4],
            "events": [2, 3, 4, 1, 2],
        }
    )
    with pytest.raises(br.BayesReviewError) as refused:
        fast_fit(table, outcome="events", model="logit_normal", seed=3)
    message = str(refused.value)
    assert "'A' (rows 1, 2: x, y)" in message and 'model="network"' in message
    assert "'B'" not in message
    separate = table.assign(study=["A1", "A2", "B", "C", "D"])
    result = fast_fit(separate, outcome="events", model="logit_normal", seed=3)
    assert list(result.idata.log_likelihood["events"].study.values) == ["A1", "A2", "B", "C", "D"]
    assert len(result.summary()) == 2


def test_repeated_study_labels_get_unique_coordinates():
    # model_data's per-row labels stay unique where a label repeats (within or across groups)
    table = pd.DataFrame(
        {
            "study": ["A", "A", "B"],
            "modality": ["x", "y", "x"],
            "n": [5, 6, 7],
            "events": [2, 3, 4],
        }
    )
    data = model_data(br.read_studies(table), "events")
    assert data.study_labels == ("A [x]", "A [y]", "B")


def test_logit_normal_logp_integrates_the_study_effects_out():
    # PyMC's joint log-density at a point against scipy: priors plus each study's binomial
    # likelihood integrated over its effect by scipy's quadrature, one study's level missing
    table = _one_group_table(
        [1, 60, 7], [2, 100, 12], grade=pd.Categorical(["x", "y", None], categories=["x", "y"])
    )
    data = model_data(br.read_studies(table), "events", bias="grade", bias_reference="x")
    model = build_model(data, br.load_spec("logit_normal"))
    assert {rv.name for rv in model.free_RVs} == {"alpha", "beta", "tau", "bias_level_prob_simplex"}
    alpha, beta, tau = 0.3, -0.4, 0.8
    point = {
        "alpha": np.array([alpha]),
        "beta": np.array([beta]),
        "tau_log__": np.log([tau]),
        "bias_level_prob_simplex": np.array([0.2]),
    }
    logp = model.compile_logp(jacobian=False)(point)
    # pi on PyMC's simplex scale, softmax([z, -z]), whose density includes the Jacobian
    pi = special.softmax([0.2, -0.2])
    log_jacobian = np.log(2 * pi[0] * pi[1])
    expected = (
        stats.norm(0, 1.5).logpdf(alpha)
        + stats.norm(0, 1).logpdf(beta)
        + stats.halfnorm(scale=1.0).logpdf(tau)
        + stats.dirichlet([1.0, 1.0]).logpdf(pi)
        + log_jacobian
        + _quad_loglik(1, 2, alpha, tau)
        + np.log(pi[0])
        + _quad_loglik(60, 100, alpha + beta, tau)
        + np.log(pi[1])
        + np.logaddexp(
            np.log(pi[0]) + _quad_loglik(7, 12, alpha, tau),
            np.log(pi[1]) + _quad_loglik(7, 12, alpha + beta, tau),
        )
    )
    assert logp == pytest.approx(expected, abs=1e-7)
    # the gradient against central differences of the log-density
    dlogp = model.compile_dlogp(jacobian=False)(point)
    flat, unravel = _ravel(point)
    step = 1e-6
    numeric = [
        (
            model.compile_logp(jacobian=False)(unravel(flat + step * unit))
            - model.compile_logp(jacobian=False)(unravel(flat - step * unit))
        )
        / (2 * step)
        for unit in np.eye(flat.size)
    ]
    np.testing.assert_allclose(dlogp, numeric, rtol=1e-5, atol=1e-6)


def _ravel(point: dict[str, np.ndarray]):
    """A point as one vector (in the order PyMC's dlogp uses for these variables) and back."""
    names = ["alpha", "tau_log__", "beta", "bias_level_prob_simplex"]
    sizes = [np.size(point[n]) for n in names]

    def unravel(vector):
        parts = np.split(vector, np.cumsum(sizes)[:-1])
        return {
            n: np.asarray(v).reshape(np.shape(point[n])) for n, v in zip(names, parts, strict=True)
        }

    return np.concatenate([np.ravel(point[n]) for n in names]), unravel


def test_one_group_has_no_pooling_of_heterogeneity(fast_fit):
    table = _one_group_table([1, 3, 5, 2], [4, 6, 9, 8])
    result = fast_fit(table, outcome="events", seed=5)
    assert "log_phi_sd" not in result.settings["free_vars"]
    assert "log_phi_raw" not in result.settings["free_vars"]
    assert result.settings["heterogeneity"].startswith("shared")
    # phi is exp(log_phi), with the location prior of log phi
    np.testing.assert_allclose(
        result.idata.posterior["phi"].values[..., 0], np.exp(result.idata.posterior["log_phi"])
    )


def _beta_binomial_series(phi: float, n_studies: int, seed: int, rate: float = 0.4):
    rng = np.random.default_rng(seed)
    n = rng.integers(50, 200, n_studies)
    p = rng.beta(rate * phi, (1 - rate) * phi, n_studies) if np.isfinite(phi) else rate
    return rng.binomial(n, p), n


def test_log_phi_interval_half_width_against_scipy():
    from bayesreview.model_data import log_phi_interval_half_width

    events, trials = _beta_binomial_series(15.0, 60, seed=4)
    rate = np.full(len(trials), events.sum() / trials.sum())
    # the same interval from scipy's beta-binomial on a finer grid
    grid = np.linspace(-4, 12, 3201)
    loglik = np.array(
        [
            stats.betabinom.logpmf(events, trials, rate * np.exp(g), (1 - rate) * np.exp(g)).sum()
            for g in grid
        ]
    )
    inside = grid[loglik >= loglik.max() - 0.5]
    expected = (inside.max() - inside.min()) / 2
    got = log_phi_interval_half_width(events, trials, np.ones(len(trials)), rate)
    assert abs(got - expected) < 0.06  # one step of the package's grid
    # open intervals: homogeneous studies (phi unbounded above) and case reports (no information)
    events, trials = _beta_binomial_series(np.inf, 200, seed=5)
    rate = np.full(len(trials), 0.4)
    assert log_phi_interval_half_width(events, trials, np.ones(len(trials)), rate) == np.inf
    ones = np.ones(40)
    assert log_phi_interval_half_width(ones * (np.arange(40) % 2), ones, ones, ones / 2) == np.inf


def _anchor_table() -> pd.DataFrame:
    rows = []
    for group, (phi, n_studies) in {"a": (8.0, 80), "b": (30.0, 5), "c": (10.0, 3)}.items():
        events, trials = _beta_binomial_series(phi, n_studies, seed=len(rows) + 1)
        rows += [
            {"study": f"{group}{j}", "modality": group, "n": n, "events": y}
            for j, (y, n) in enumerate(zip(events, trials, strict=True))
        ]
    return pd.DataFrame(rows)


def test_anchored_log_phi_is_the_same_model():
    # A group of 80 series of 50-200 patients pins its log phi down: it anchors the pooled
    # location. The anchored model's log density at (log phi_a, w) must equal the non-centred
    # model's (no anchor: log_phi_anchor is the location) at log_phi = log phi_a - sd w,
    # raw_a = w (a change of variables with Jacobian 1). The anchor is data: one compiled model.
    import pymc as pm

    from bayesreview.model_data import anchor_groups

    data = model_data(_anchor_table(), "events", by="modality")
    spec = br.load_spec("beta_binomial")
    np.testing.assert_array_equal(anchor_groups(data, spec)[""], [1.0, 0.0, 0.0])
    model = build_model(data, spec)
    logp = model.compile_logp()
    rng = np.random.default_rng(0)
    points = [
        {
            "alpha": rng.normal(-0.4, 0.3, 3),
            "log_phi_sd_log__": rng.normal(-1.0, 0.5),
            "log_phi_raw": rng.normal(size=3),
            "log_phi_anchor": rng.normal(2.0, 0.5),
        }
        for _ in range(3)
    ]
    anchored = [logp(point) for point in points]
    with model:
        pm.set_data({"log_phi_anchor_group": np.zeros(3)})
    for point, expected in zip(points, anchored, strict=True):
        sd = np.exp(point["log_phi_sd_log__"])
        location = point["log_phi_anchor"] - sd * point["log_phi_raw"][0]
        np.testing.assert_allclose(
            logp({**point, "log_phi_anchor": location}), expected, rtol=1e-10
        )
    # a data set of case reports and small series anchors nothing
    assert not anchor_groups(model_data(br.load_dataset("calcinosis_cutis"), "any"), spec)[""].any()


def test_one_group_has_one_log_phi_whatever_the_padding():
    # One group, padded with prior-only groups as fit() samples it: the density is the prior
    # of its alpha and of the location log_phi, the beta-binomial likelihood at log phi = the
    # location (checked against scipy), and, for what enters nothing else (the padding
    # groups' alphas, the spread and the deviations), standard normals on the sampler's scale.
    from bayesreview.model_data import pad_groups

    table = _anchor_table().query("modality == 'b'")
    data = pad_groups(model_data(table, "events", by="modality"), 4)
    spec = br.load_spec("beta_binomial")
    model = build_model(data, spec)
    logp = model.compile_logp()
    y, n = table["events"].to_numpy(), table["n"].to_numpy()
    rng = np.random.default_rng(5)
    for _ in range(3):
        point = {
            "alpha": rng.normal(0.0, 1.0, 4),
            "log_phi_sd_log__": np.array(rng.normal(-1.0, 0.5)),
            "log_phi_raw": rng.normal(size=4),
            "log_phi_anchor": np.array(rng.normal(2.0, 0.5)),
        }
        mu, phi = special.expit(point["alpha"][0]), np.exp(point["log_phi_anchor"])
        standard = stats.norm(0, 1).logpdf
        expected = (
            stats.betabinom(n, mu * phi, (1 - mu) * phi).logpmf(y).sum()
            + stats.norm(0, 1.5).logpdf(point["alpha"][0])
            + spec.prior("log_concentration").logpdf(point["log_phi_anchor"])
            + standard(point["alpha"][1:]).sum()
            + standard(point["log_phi_sd_log__"])
            + standard(point["log_phi_raw"]).sum()
        )
        assert logp(point) == pytest.approx(expected, abs=1e-6)


# --------------------------------------------------------------------------------------------
# 7. A saved fit keeps its levels
# --------------------------------------------------------------------------------------------


def _unsorted_levels_table() -> pd.DataFrame:
    # categories in an order that sorting would change; the reference is the first category
    rng = np.random.default_rng(3)
    levels = ["moderate", "high", "low"]
    return pd.DataFrame(
        {
            "study": [f"s{i}" for i in range(9)],
            "modality": ["a", "b", "c"] * 3,
            "rob": pd.Categorical(np.repeat(levels, 3), categories=levels, ordered=True),
            "n": rng.integers(3, 9, 9),
            "events": [1, 2, 1, 3, 2, 2, 2, 1, 3],
        }
    )


def test_saved_fit_restores_the_levels_in_their_fitted_order(fast_fit, tmp_path):
    result = fast_fit(_unsorted_levels_table(), outcome="events", bias="rob", seed=8)
    assert result.data.bias.levels == ("moderate", "high", "low")
    path = result.save(tmp_path / "fit.nc")
    loaded = br.load_fit(path)
    assert loaded.data.bias.levels == ("moderate", "high", "low")
    np.testing.assert_array_equal(loaded.data.bias.codes, result.data.bias.codes)
    pd.testing.assert_frame_equal(loaded.summary(), result.summary())


def test_saved_fit_whose_levels_disagree_with_its_posterior_is_refused(fast_fit, tmp_path):
    # a file edited by hand: written whole (with its checksum line) but inconsistent
    from bayesreview._io import save_fit_file

    result = fast_fit(_unsorted_levels_table(), outcome="events", bias="rob", seed=8)
    path = save_fit_file(
        result.idata,
        tmp_path / "fit.nc",
        result.spec.to_toml(),
        result.studies.to_csv(index=False),
        {**result.settings, "bias_levels": ["moderate", "low", "high"]},
    )
    with pytest.raises(br.BayesReviewError, match="bias levels"):
        br.load_fit(path)


# --------------------------------------------------------------------------------------------
# 8. Mix-averaged rates per modality; 9. both estimands and the heterogeneity scales
# --------------------------------------------------------------------------------------------


def test_mix_averaged_rate_averages_each_modality_over_its_own_studies():
    # modality a: studies at x, x, missing; modality b: one study at y
    data = _two_level_data(
        [2, 3, 4, 1], [5, 6, 9, 4], ["x", "x", None, "y"], groups=["a", "a", "a", "b"]
    )
    draws = 3
    alpha = np.array([[0.1, -0.5], [0.4, 0.0], [-0.2, 0.3]])
    log_phi = np.array([[1.0, 2.0], [0.5, 1.5], [2.2, 0.7]])
    beta = np.array([[-1.0], [0.6], [0.2]])
    pi = np.array([[0.3, 0.7], [0.5, 0.5], [0.9, 0.1]])
    posterior = {"alpha": alpha, "phi": np.exp(log_phi), "beta": beta, "bias_level_prob": pi}
    rates = pooled_rates(posterior, data, "beta_binomial", np.random.default_rng(0))
    for s in range(draws):
        phi_a = np.exp(log_phi[s, 0])

        def lik(level, s=s, phi_a=phi_a):
            mu = special.expit(alpha[s, 0] + (0.0, beta[s, 0])[level])
            return stats.betabinom(9, mu * phi_a, (1 - mu) * phi_a).pmf(4)

        post_x = pi[s, 0] * lik(0) / (pi[s, 0] * lik(0) + pi[s, 1] * lik(1))
        at = [special.expit(alpha[s, 0]), special.expit(alpha[s, 0] + beta[s, 0])]
        expected_a = (2 * at[0] + post_x * at[0] + (1 - post_x) * at[1]) / 3
        assert rates["rate_mix"][s, 0, 0] == pytest.approx(expected_a, rel=1e-10)
        # b's only study is at level y: its mix is level y alone, not the review's mix
        expected_b = special.expit(alpha[s, 1] + beta[s, 0])
        assert rates["rate_mix"][s, 0, 1] == pytest.approx(expected_b, rel=1e-10)
        assert rates["rate"][s, 0, 1] == pytest.approx(special.expit(alpha[s, 1]), rel=1e-12)


def test_median_study_rate_of_each_likelihood():
    data = model_data(br.read_studies(_one_group_table([1, 2], [3, 4])), "events")
    alpha, scale = np.array([[0.7], [-1.2]]), np.array([[3.0], [0.4]])
    bb = pooled_rates(
        {"alpha": alpha, "phi": scale}, data, "beta_binomial", np.random.default_rng(0)
    )
    ln = pooled_rates(
        {"alpha": alpha, "tau": scale}, data, "logit_normal", np.random.default_rng(0)
    )
    for s in range(2):
        mu = special.expit(alpha[s, 0])
        beta_dist = stats.beta(mu * scale[s, 0], (1 - mu) * scale[s, 0])
        assert bb["rate_median"][s, 0, 0] == pytest.approx(beta_dist.median(), rel=1e-9)
        assert bb["rate"][s, 0, 0] == pytest.approx(beta_dist.mean(), rel=1e-12)
        assert bb["rate_sd"][s, 0, 0] == pytest.approx(beta_dist.std(), rel=1e-9)
        assert ln["rate_median"][s, 0, 0] == pytest.approx(mu, rel=1e-12)
        mean, _ = integrate.quad(
            lambda z, s=s: special.expit(alpha[s, 0] + scale[s, 0] * z) * stats.norm.pdf(z),
            -30,
            30,
        )
        assert ln["rate"][s, 0, 0] == pytest.approx(mean, rel=1e-8)


def test_joint_model_median_rates_by_simulation():
    # complete = p1 p2 with independent stage rates: its median by brute-force simulation
    table = pd.DataFrame(
        {
            "study": ["a", "b"],
            "modality": "m",
            "n": [4, 6],
            "complete": [1, 2],
            "partial": [1, 1],
            "none": [2, 3],
            "unknown": [0, 0],
        }
    )
    data = model_data(br.read_studies(table), "response")
    posterior = {
        "alpha": np.array([[0.4]]),
        "phi": np.array([[5.0]]),
        "alpha_cond": np.array([[-0.3]]),
        "phi_cond": np.array([[2.0]]),
    }
    rates = pooled_rates(posterior, data, "beta_binomial", np.random.default_rng(0))
    rng = np.random.default_rng(9)
    mu1, mu2 = special.expit(0.4), special.expit(-0.3)
    p1 = rng.beta(mu1 * 5.0, (1 - mu1) * 5.0, 400_000)
    p2 = rng.beta(mu2 * 2.0, (1 - mu2) * 2.0, 400_000)
    outcomes = list(data.reported_outcomes)
    # 1000 inner draws: Monte Carlo SE of a median about 1.25 * sd / sqrt(1000) ~ 0.008
    assert rates["rate_median"][0, outcomes.index("complete"), 0] == pytest.approx(
        np.median(p1 * p2), abs=0.03
    )
    assert rates["rate_median"][0, outcomes.index("partial"), 0] == pytest.approx(
        np.median(p1 * (1 - p2)), abs=0.03
    )
    assert rates["rate_median"][0, outcomes.index("any"), 0] == pytest.approx(
        stats.beta(mu1 * 5.0, (1 - mu1) * 5.0).median(), rel=1e-9
    )


def test_reference_rates_of_the_joint_and_the_logit_normal_model():
    # the mean rates at the reference level in closed form: E[p1 p2] = E[p1] E[p2] for the
    # joint model's independent stages (beta means expit(alpha)), and the logit-normal mean
    # by quadrature; the bias shift of the other level must not enter
    table = pd.DataFrame(
        {
            "study": ["a", "b", "c"],
            "modality": ["m", "m", "k"],
            "n": [4, 6, 5],
            "complete": [1, 2, 0],
            "partial": [1, 1, 2],
            "none": [2, 3, 3],
            "unknown": [0, 0, 0],
            "risk_of_bias": ["low", "high", "low"],
        }
    )
    data = model_data(br.read_studies(table), "response", bias="risk_of_bias")
    alpha, alpha_cond = np.array([[0.4, -1.1], [1.3, 0.2]]), np.array([[-0.3, 0.9], [0.1, -2.0]])
    posterior = {
        "alpha": alpha,
        "phi": np.full((2, 2), 5.0),
        "beta": np.array([[2.5], [-1.5]]),
        "alpha_cond": alpha_cond,
        "phi_cond": np.full((2, 2), 0.7),
        "beta_cond": np.array([[-3.0], [1.0]]),
    }
    rates = reference_rates(posterior, data, "beta_binomial")
    outcomes = list(data.reported_outcomes)
    p1, p2 = special.expit(alpha), special.expit(alpha_cond)
    expected = {"complete": p1 * p2, "partial": p1 * (1 - p2), "any": p1}
    for outcome, values in expected.items():
        np.testing.assert_allclose(rates[:, outcomes.index(outcome), :], values, rtol=1e-12)

    one = model_data(br.read_studies(_one_group_table([1, 2], [3, 4])), "events")
    eta, tau = np.array([[0.7], [-1.2]]), np.array([[1.5], [0.4]])
    ln = reference_rates({"alpha": eta, "tau": tau}, one, "logit_normal")
    for s in range(2):
        mean, _ = integrate.quad(
            lambda z, s=s: special.expit(eta[s, 0] + tau[s, 0] * z) * stats.norm.pdf(z), -30, 30
        )
        assert ln[s, 0, 0] == pytest.approx(mean, rel=1e-8)


def test_summary_reports_both_estimands_and_the_model_scale(calcinosis_fit, fast_fit, studies):
    summary = calcinosis_fit.summary()
    phi = calcinosis_fit.idata.posterior["phi"].stack(sample=("chain", "draw"))
    rate = calcinosis_fit.draws("rate", "any")
    median = calcinosis_fit.draws("rate_median", "any")
    for row in summary.itertuples():
        draws = phi.sel(group=row.modality).values
        assert row.phi == pytest.approx(np.median(draws))
        assert row.icc == pytest.approx(np.median(1 / (1 + draws)))
        assert row.mean_rate == pytest.approx(float(rate.sel(group=row.modality).median()))
        assert row.median_rate == pytest.approx(float(median.sel(group=row.modality).median()))
    assert summary["adjusted_to"].isna().all()
    logit = fast_fit(studies, model="logit_normal", by="group", seed=4)
    table = logit.summary()
    tau = logit.idata.posterior["tau"].stack(sample=("chain", "draw"))
    for row in table.itertuples():
        draws = tau.sel(group=row.modality).values
        assert row.tau == pytest.approx(np.median(draws))
        assert row.tau2 == pytest.approx(np.median(draws**2))
    # in every draw the population mean lies between the median-study rate and one half
    mean = logit.draws("rate", "any").values
    median = logit.draws("rate_median", "any").values
    assert np.all((mean - median) * (median - 0.5) <= 1e-12)
    assert "phi" not in table


def test_adjusted_rows_name_their_reference_level(studies, fast_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fast_fit(studies, by="group", bias="design", seed=2)
    assert set(result.summary()["adjusted_to"]) == {"design = case_report"}
    assert set(result.summary(adjusted=False)["adjusted_to"]) == {
        "design: each group's own studies"
    }
    assert result.summary(adjusted=False)["median_rate"].isna().all()


def test_joint_model_median_rates_do_not_depend_on_the_number_of_threads(monkeypatch):
    # each block of posterior draws has its own random stream: one thread or several, the
    # same values; and the blocks cover every draw of every group
    from bayesreview.quantities import MEDIAN_BLOCK_DRAWS, Stage, _median_rates

    rng = np.random.default_rng(3)
    n_draws = MEDIAN_BLOCK_DRAWS + 7  # a last, shorter block
    stages = [
        Stage("beta_binomial", rng.normal(0, 1, (n_draws, 3)), rng.gamma(5, 1, (n_draws, 3)), None)
        for _ in range(2)
    ]
    outcomes = ("complete", "partial", "any")
    threaded = _median_rates(stages, 0, np.random.default_rng(1))
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    single = _median_rates(stages, 0, np.random.default_rng(1))
    for outcome in outcomes:
        np.testing.assert_array_equal(threaded[outcome], single[outcome])
        assert threaded[outcome].shape == (n_draws, 3)
        assert np.all((threaded[outcome] > 0) & (threaded[outcome] < 1))
    # the last (shorter) block's values belong to its own draws: the median of p1 p2 there by
    # direct simulation
    s, g = n_draws - 1, 2
    mu1, mu2 = special.expit(stages[0].alpha[s, g]), special.expit(stages[1].alpha[s, g])
    phi1, phi2 = stages[0].scale[s, g], stages[1].scale[s, g]
    direct = np.random.default_rng(9)
    p1 = direct.beta(mu1 * phi1, (1 - mu1) * phi1, 400_000)
    p2 = direct.beta(mu2 * phi2, (1 - mu2) * phi2, 400_000)
    assert threaded["complete"][s, g] == pytest.approx(np.median(p1 * p2), abs=0.03)
