"""Publication selection on the exact likelihood (issue 14): the published study's likelihood
f(y) w(y) / sum over y' of f(y') w(y') written out with scipy, term by term, against the
kernels, the model, the per-study log-likelihood and the replicates; and a whole fit against a
two-dimensional exact posterior."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from conftest import rows_op_inputs
from pytensor.gradient import verify_grad
from scipy import integrate, special, stats

import bayesreview as br
from bayesreview.backend.models import build_model
from bayesreview.backend.ops import BetaBinomialRows, beta_binomial_rows, logit_normal_rows
from bayesreview.errors import SpecError
from bayesreview.formatting import percent
from bayesreview.model_data import model_data
from bayesreview.quantities import log_likelihood, replicate_events
from bayesreview.spec import SELECTION_CLASSES, load_spec

#: Eight studies in two groups: case reports (n = 1) with and without a response, and case
#: series with and without responders.
STUDIES = pd.DataFrame(
    {
        "study": [f"s{i}" for i in range(8)],
        "modality": ["a", "a", "a", "a", "b", "b", "b", "b"],
        "n": [1, 1, 5, 4, 1, 3, 8, 1],
        "events": [1, 0, 2, 0, 1, 0, 5, 1],
    }
)


def _published_loglik(pmf, n: int, y: int, w: float) -> float:
    """log f(y) w(y) / sum_{y'=0..n} f(y') w(y'), w(0) = w and w(y) = 1 otherwise, the sum
    written out over every y'."""
    weight = [w if k == 0 else 1.0 for k in range(n + 1)]
    total = sum(pmf(k) * weight[k] for k in range(n + 1))
    return float(np.log(pmf(y) * weight[y] / total))


def _beta_binomial_pmf(n, eta, log_phi):
    mu, phi = special.expit(eta), np.exp(log_phi)
    return lambda k: stats.betabinom.pmf(k, n, mu * phi, (1 - mu) * phi)


def _logit_normal_pmf(n, eta, tau):
    def pmf(k):
        value, _ = integrate.quad(
            lambda z: stats.binom.pmf(k, n, special.expit(eta + tau * z)) * stats.norm.pdf(z),
            -12,
            12,
            limit=200,
            epsabs=0,
        )
        return value

    return pmf


def _kernel_inputs(seed: int, levels: int = 1, known: bool = True):
    rng = np.random.default_rng(seed)
    y = STUDIES["events"].to_numpy(float)
    n = STUDIES["n"].to_numpy(float)
    group = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    parameters = [
        rng.normal(0.0, 1.0, (1, 2)),  # alpha
        rng.normal(1.0, 0.5, (1, 2)),  # log phi (or tau)
        np.column_stack([np.zeros(1), rng.normal(0.0, 0.7, (1, levels - 1))]),
        rng.normal(0.0, 0.3, (1, 8)),  # row shift
        np.log(rng.dirichlet(np.ones(levels))),
        np.log(rng.uniform(0.05, 0.95, 8)),  # log w per row
    ]
    level = rng.integers(0, levels, 8)
    known_rows = np.ones(8) if known else (rng.uniform(size=8) < 0.5).astype(float)
    data = [
        group,
        y[None],
        n[None],
        np.array([1.0, 2.0, 1.0, 1.0, 0.0, 1.0, 1.0, 3.0]),  # weights, one study left out
        level,
        known_rows,
        np.full(levels, -1, dtype=np.int64),
    ]
    return parameters, data


@pytest.mark.parametrize("likelihood", ["beta_binomial", "logit_normal"])
def test_rows_kernel_equals_the_published_likelihood_written_out(likelihood):
    parameters, data = _kernel_inputs(0, levels=2, known=False)
    alpha, scale, level_shift, row_shift, log_pi, log_w = parameters
    group, y, n, weights, level, known, _ = data
    if likelihood == "logit_normal":
        scale = np.exp(scale)  # tau > 0
    pmf_of = _beta_binomial_pmf if likelihood == "beta_binomial" else _logit_normal_pmf
    expected = 0.0
    for j in range(8):
        at_level = []
        for k in range(2):
            eta = alpha[0, group[j]] + level_shift[0, k] + row_shift[0, j]
            pmf = pmf_of(n[0, j], eta, scale[0, group[j]])
            at_level.append(_published_loglik(pmf, int(n[0, j]), int(y[0, j]), np.exp(log_w[j])))
        row = log_pi + np.array(at_level)
        expected += weights[j] * (row[level[j]] if known[j] else special.logsumexp(row))
    kernel = beta_binomial_rows if likelihood == "beta_binomial" else logit_normal_rows
    got = kernel(alpha, scale, level_shift, row_shift, log_pi, log_w, *data)[0]
    assert got == pytest.approx(expected, rel=1e-7)


def test_rows_gradient_with_selection_equals_finite_differences():
    # the Op takes each selection class's log w (two classes) and each row's class
    parameters, data = _kernel_inputs(1, levels=2, known=False)
    classes = np.array([0, 1, 1, 0, 0, 1, 0, 1])
    log_class_w = np.log([0.3, 0.8])
    op_parameters, op_data = rows_op_inputs([*parameters[:5], log_class_w], data, classes)
    constants = [pt.as_tensor(x) for x in op_data]

    def loglik(*p):
        return BetaBinomialRows(1)(*p, *constants)[0]

    rng = np.random.default_rng(2)
    verify_grad(loglik, op_parameters, rng=rng, abs_tol=1e-4, rel_tol=1e-4)


def test_weight_one_is_no_selection():
    parameters, data = _kernel_inputs(3)
    plain = beta_binomial_rows(*parameters[:5], np.zeros(0), *data)[0]
    unselected = beta_binomial_rows(*parameters[:5], np.zeros(8), *data)[0]
    assert unselected == pytest.approx(plain, rel=1e-12)


def _model_and_point(seed: int):
    studies = br.read_studies(STUDIES)
    data = model_data(studies, "events", "modality", None, None, None, "failure")
    model = build_model(data, load_spec("selection"))
    rng = np.random.default_rng(seed)
    point = {k: rng.normal(0.0, 0.8, np.shape(v)) for k, v in model.initial_point().items()}
    names = ["alpha", "phi", "selection_weight", "loglik"]
    values = model.replace_rvs_by_values([model[name] for name in names])
    compiled = model.compile_fn(values, inputs=model.value_vars, on_unused_input="ignore")
    alpha, phi, weight, loglik = compiled(point)
    return data, float(loglik), alpha, phi, weight


@pytest.mark.parametrize("seed", [0, 1])
def test_model_likelihood_equals_scipy_with_each_study_in_its_class(seed):
    data, got, alpha, phi, weight = _model_and_point(seed)
    expected = 0.0
    for j in range(data.n_rows):
        g, n, y = data.group_idx[j], int(data.trials[j]), int(data.events[j])
        w = weight[0] if n == 1 else weight[1]  # case report, case series
        pmf = _beta_binomial_pmf(n, special.logit(special.expit(alpha[g])), np.log(phi[g]))
        expected += _published_loglik(pmf, n, y, w)
    assert got == pytest.approx(expected, rel=1e-9)


def test_pointwise_log_likelihood_equals_scipy():
    studies = br.read_studies(STUDIES)
    data = model_data(studies, "events", "modality", None, None, None, "failure")
    rng = np.random.default_rng(4)
    posterior = {
        "alpha": rng.normal(0.0, 1.0, (3, 2)),
        "phi": np.exp(rng.normal(1.5, 0.5, (3, 2))),
        "selection_weight": rng.uniform(0.05, 0.95, (3, 2)),
    }
    got = log_likelihood(posterior, data, "beta_binomial")
    for s in range(3):
        for j in range(data.n_rows):
            g, n, y = data.group_idx[j], int(data.trials[j]), int(data.events[j])
            w = posterior["selection_weight"][s, 0 if n == 1 else 1]
            pmf = _beta_binomial_pmf(n, posterior["alpha"][s, g], np.log(posterior["phi"][s, g]))
            assert got[s, j] == pytest.approx(_published_loglik(pmf, n, y, w), rel=1e-9)


def test_replicates_are_those_of_published_studies():
    """A case report with mean rate mu is published without a response with probability
    w (1 - mu) / (w (1 - mu) + mu); a case series of 3 with no responders with
    w f(0) / (w f(0) + 1 - f(0))."""
    studies = br.read_studies(STUDIES.iloc[[0, 5]])
    data = model_data(studies, "events", "modality", None, None, None, "failure")
    draws = 40_000
    mu, phi, w = 0.4, 3.0, (0.25, 0.5)
    posterior = {
        "alpha": np.full((draws, 2), special.logit(mu)),
        "phi": np.full((draws, 2), phi),
        "selection_weight": np.tile(w, (draws, 1)),
    }
    events = replicate_events(posterior, data, "beta_binomial", np.random.default_rng(0))["events"]
    zero_report = w[0] * (1 - mu) / (w[0] * (1 - mu) + mu)
    f0 = stats.betabinom.pmf(0, 3, mu * phi, (1 - mu) * phi)
    zero_series = w[1] * f0 / (w[1] * f0 + 1 - f0)
    for j, expected in ((0, zero_report), (1, zero_series)):
        share = np.mean(events[:, j] == 0)
        assert share == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / draws))


def test_selection_spec_round_trips_and_refuses_the_joint_model():
    spec = load_spec("selection")
    assert spec.selection == "by_response"
    assert br.ModelSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="joint response model"):
        dataclasses.replace(spec, outcome="response")
    added = load_spec("logit_normal").with_selection()
    assert added.selection == "by_response" and added.likelihood == "logit_normal"
    assert all(key in added.priors for key in SELECTION_CLASSES.values())
    table = spec.to_dict()
    del table["priors"]["selection_case_series"]
    with pytest.raises(SpecError, match=r"priors\.selection_case_series: missing"):
        br.ModelSpec.from_dict(table)


def _case_report_posterior(responders: int, non_responders: int):
    """Posterior medians of mu and of the case-report weight w of case reports only, by a
    two-dimensional integral: prior logit mu ~ Normal(0, 1.5), w ~ Beta(1, 1); a published
    case report responds with probability mu / (mu + w (1 - mu))."""
    alpha = np.linspace(-9.0, 9.0, 1201)
    w = (np.arange(800) + 0.5) / 800
    a, ww = np.meshgrid(alpha, w, indexing="ij")
    mu = special.expit(a)
    log_post = stats.norm.logpdf(a, 0.0, 1.5)
    log_post += responders * np.log(mu) + non_responders * np.log(ww * (1 - mu))
    log_post -= (responders + non_responders) * np.log(mu + ww * (1 - mu))
    post = np.exp(log_post - log_post.max())
    post /= post.sum()

    def median(values, marginal):
        order = np.argsort(values)
        cumulative = np.cumsum(marginal[order])
        return float(np.interp(0.5, cumulative, values[order]))

    mu_values = special.expit(alpha)
    return median(mu_values, post.sum(axis=1)), median(w, post.sum(axis=0))


@pytest.mark.slow
def test_fit_of_case_reports_equals_the_exact_posterior():
    """Nine case reports, seven responders: the fitted mean rate and case-report weight equal
    the exact two-dimensional posterior (the series weight and phi keep their priors: no case
    series, and one patient's beta-binomial is Bernoulli(mu))."""
    studies = pd.DataFrame(
        {
            "study": [f"r{i}" for i in range(9)],
            "modality": "only",
            "n": 1,
            "events": [1, 1, 1, 1, 1, 1, 1, 0, 0],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = br.fit(
            studies, outcome="events", model="selection", seed=11, progressbar=False, draws=2000
        )
    mu_median, w_median = _case_report_posterior(7, 2)
    rate = float(result.draws("rate").median())
    weight = float(result.draws("selection_weight").sel(selection_class="case_report").median())
    assert rate == pytest.approx(mu_median, abs=0.015)
    assert weight == pytest.approx(w_median, abs=0.02)
    series = result.selection_identification().set_index("level").loc["case_series"]
    assert series["sd_ratio"] == pytest.approx(1.0, abs=0.06)  # no case series: the prior
    shown = repr(result)
    assert "Publication selection" in shown and f"case reports {percent(weight)}%" in shown


def test_sbc_simulation_publishes_as_the_model_says():
    """The SBC's simulator (rejection, written apart from the replicates' code): over many
    literatures drawn from the prior, the case reports without a response number what the
    published likelihood says, sum over reports of w (1 - mu) / (w (1 - mu) + mu)."""
    from bayesreview.validation import sbc_design, simulate_from_prior

    design = sbc_design(bias=None, outcome="any")
    spec = load_spec("selection")
    reports = design.trials == 1
    rng = np.random.default_rng(8)
    observed, expected, variance = 0.0, 0.0, 0.0
    for _ in range(400):
        truth, events = simulate_from_prior(spec, design, rng)
        mu = special.expit(truth["alpha"][design.group_idx[reports]])
        w = truth["selection_weight"][0]
        p_zero = w * (1 - mu) / (w * (1 - mu) + mu)
        observed += np.sum(events[reports] == 0)
        expected += p_zero.sum()
        variance += np.sum(p_zero * (1 - p_zero))
    assert reports.sum() > 10
    assert abs(observed - expected) < 4 * np.sqrt(variance)
