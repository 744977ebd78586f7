"""Tests of model specifications: loading, validation, round trips and prior densities."""

import copy
import dataclasses
import math
import pickle
import re
import shutil
import tomllib

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayesreview._resources import resource_dir
from bayesreview.backend.priors import prior_variable
from bayesreview.errors import SpecError
from bayesreview.spec import ModelSpec, Prior, load_spec, shipped_models

SHIPPED = ["beta_binomial", "logit_normal", "network", "response", "selection"]


def _spec_dict(model: str = "beta_binomial") -> dict:
    """Return a fresh, mutable dict of a shipped specification."""
    return copy.deepcopy(load_spec(model).to_dict())


def _raises(fragment: str):
    """Expect a SpecError whose message contains ``fragment`` literally."""
    return pytest.raises(SpecError, match=re.escape(fragment))


# --- shipped specifications -------------------------------------------------------------------


def test_shipped_models_lists_the_toml_files():
    assert shipped_models() == SHIPPED


@pytest.mark.parametrize("model", SHIPPED)
def test_shipped_spec_round_trips(model):
    spec = load_spec(model)
    assert spec.name == model
    assert spec.source == f"shipped:{model}"
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert ModelSpec.from_dict(tomllib.loads(spec.to_toml())) == spec
    assert ModelSpec.from_dict(tomllib.loads(spec.to_toml())).to_dict() == spec.to_dict()


@pytest.mark.parametrize("model", SHIPPED)
def test_describe_mentions_every_prior(model):
    spec = load_spec(model)
    text = spec.describe()
    for key, prior in [*spec.priors.items(), *spec.conditional_priors.items()]:
        assert f"{key} ~ {prior.describe()}" in text
    assert spec.likelihood.replace("_", "-") in text


def test_default_model_priors_are_the_documented_ones():
    spec = load_spec("beta_binomial")
    assert (spec.likelihood, spec.heterogeneity, spec.outcome) == (
        "beta_binomial",
        "partial_pooling",
        None,
    )
    assert spec.priors["intercept"] == Prior("normal", {"mu": 0.0, "sigma": 1.5})
    assert spec.priors["bias"] == Prior("normal", {"mu": 0.0, "sigma": 1.0})
    assert spec.priors["log_concentration"].param("mu") == pytest.approx(math.log(10), abs=1e-6)
    assert spec.priors["log_concentration_sd"] == Prior("halfnormal", {"sigma": 0.5})
    # 95% of the intercept's prior mass is on rates 0.05 to 0.95, as the file's comment says.
    low, high = 1 / (1 + np.exp(-spec.priors["intercept"].quantile([0.025, 0.975])))
    assert low == pytest.approx(0.05, abs=1e-3)
    assert high == pytest.approx(0.95, abs=1e-3)


def test_logit_normal_spec():
    spec = load_spec("logit_normal")
    assert (spec.likelihood, spec.heterogeneity) == ("logit_normal", "per_modality")
    assert list(spec.priors) == ["intercept", "bias", "tau"]
    assert spec.priors["tau"] == Prior("halfnormal", {"sigma": 1.0})


def test_response_spec_conditional_priors_fall_back_to_priors():
    spec = load_spec("response")
    assert spec.outcome == "response"
    assert list(spec.conditional_priors) == ["intercept"]
    assert spec.prior("intercept", "conditional") is spec.conditional_priors["intercept"]
    assert spec.prior("bias", "conditional") is spec.priors["bias"]
    assert spec.prior("bias") is spec.priors["bias"]


def test_load_spec_returns_a_spec_as_is():
    spec = load_spec("beta_binomial")
    assert load_spec(spec) is spec


def test_specs_are_hashable_picklable_and_immutable():
    spec = load_spec("response")
    assert hash(spec) == hash(load_spec("response"))
    assert pickle.loads(pickle.dumps(spec)) == spec
    with pytest.raises(AttributeError):
        spec.name = "other"
    with pytest.raises(TypeError):
        spec.priors["tau"] = Prior("halfnormal", {"sigma": 1.0})


def test_user_copy_edited_in_tmp_path(tmp_path):
    path = tmp_path / "my_protocol.toml"
    shutil.copy(resource_dir("models") / "beta_binomial.toml", path)
    text = path.read_text()
    old = 'intercept = { dist = "normal", mu = 0.0, sigma = 1.5 }'
    assert old in text
    path.write_text(
        text.replace(old, 'intercept = { dist = "student_t", nu = 3, mu = 0, sigma = 2.5 }')
    )
    spec = load_spec(path)
    assert spec.name == "my_protocol"
    assert spec.source == str(path)
    assert spec.priors["intercept"] == Prior("student_t", {"nu": 3.0, "mu": 0.0, "sigma": 2.5})
    assert spec.priors["bias"] == load_spec("beta_binomial").priors["bias"]
    assert load_spec(str(path)) == spec


def test_to_toml_escapes_strings():
    spec = load_spec("beta_binomial")
    odd = dataclasses.replace(spec, description='quote " backslash \\ tab \t newline \n bell \x07')
    assert ModelSpec.from_dict(tomllib.loads(odd.to_toml())) == odd


# --- validation errors: each names the offending key or path ------------------------------------


def test_unknown_top_level_key():
    d = _spec_dict()
    d["sampler"] = "nuts"
    with _raises("sampler: unknown top-level key; allowed keys are name, description"):
        ModelSpec.from_dict(d)


def test_unknown_prior_key():
    d = _spec_dict()
    d["priors"]["slope"] = {"dist": "normal", "mu": 0.0, "sigma": 1.0}
    with _raises("priors.slope: unknown prior key"):
        ModelSpec.from_dict(d)


def test_unused_prior_key():
    d = _spec_dict()
    d["priors"]["tau"] = {"dist": "halfnormal", "sigma": 1.0}
    with _raises("priors.tau: not used by a beta_binomial model with partial_pooling"):
        ModelSpec.from_dict(d)


def test_unused_conditional_prior_key():
    d = _spec_dict("logit_normal")
    d["conditional_priors"] = {"log_tau": {"dist": "normal", "mu": 0.0, "sigma": 1.0}}
    with _raises("conditional_priors.log_tau: not used by a logit_normal model"):
        ModelSpec.from_dict(d)


def test_key_used_only_under_partial_pooling_is_unused_otherwise():
    d = _spec_dict()
    d["heterogeneity"] = "shared"
    with _raises("priors.log_concentration_sd: not used by a beta_binomial model with shared"):
        ModelSpec.from_dict(d)


def test_missing_required_prior():
    d = _spec_dict()
    del d["priors"]["log_concentration_sd"]
    with _raises("priors.log_concentration_sd: missing"):
        ModelSpec.from_dict(d)


def test_logit_normal_partial_pooling_needs_log_tau():
    d = _spec_dict("logit_normal")
    d["heterogeneity"] = "partial_pooling"
    del d["priors"]["tau"]
    with _raises("priors.log_tau: missing"):
        ModelSpec.from_dict(d)


def test_unknown_dist():
    d = _spec_dict()
    d["priors"]["intercept"]["dist"] = "cauchy"
    with _raises("priors.intercept.dist: unknown distribution 'cauchy'"):
        ModelSpec.from_dict(d)


def test_scale_dist_for_a_location_parameter():
    d = _spec_dict("logit_normal")
    d["priors"]["tau"] = {"dist": "normal", "mu": 0.0, "sigma": 1.0}
    with _raises("priors.tau.dist: normal cannot be the prior of a scale parameter"):
        ModelSpec.from_dict(d)


def test_negative_sigma():
    d = _spec_dict()
    d["priors"]["intercept"]["sigma"] = -1
    with _raises("priors.intercept.sigma: must be > 0, got -1"):
        ModelSpec.from_dict(d)


def test_non_numeric_param():
    d = _spec_dict()
    d["priors"]["bias"]["mu"] = "0.0"
    with _raises("priors.bias.mu: must be a finite number, got '0.0'"):
        ModelSpec.from_dict(d)


def test_bool_param():
    d = _spec_dict()
    d["priors"]["log_concentration_sd"]["sigma"] = True
    with _raises("priors.log_concentration_sd.sigma: must be a finite number, got True"):
        ModelSpec.from_dict(d)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_param(value):
    d = _spec_dict()
    d["priors"]["intercept"]["mu"] = value
    with _raises("priors.intercept.mu: must be a finite number"):
        ModelSpec.from_dict(d)


def test_missing_and_unknown_params():
    d = _spec_dict("logit_normal")
    d["priors"]["tau"] = {"dist": "halfnormal"}
    with _raises("priors.tau.sigma: missing"):
        ModelSpec.from_dict(d)
    d["priors"]["tau"] = {"dist": "halfnormal", "sigma": 1.0, "scale": 2.0}
    with _raises("priors.tau.scale: not a parameter of halfnormal"):
        ModelSpec.from_dict(d)


def test_prior_that_is_not_a_table():
    d = _spec_dict()
    d["priors"]["intercept"] = 1.5
    with _raises("priors.intercept: must be a table"):
        ModelSpec.from_dict(d)


def test_unknown_likelihood():
    d = _spec_dict()
    d["likelihood"] = "poisson"
    with _raises("likelihood: must be one of beta_binomial, logit_normal, got 'poisson'"):
        ModelSpec.from_dict(d)


@pytest.mark.parametrize(
    ("key", "value"),
    [("heterogeneity", "none"), ("outcome", "remission"), ("name", ""), ("description", 3)],
)
def test_other_invalid_top_level_values(key, value):
    d = _spec_dict()
    d[key] = value
    with _raises(f"{key}: must be"):
        ModelSpec.from_dict(d)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "model.toml"
    with _raises(f"model specification file not found: {path}"):
        load_spec(path)


def test_invalid_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('likelihood = "beta_binomial"\nheterogeneity = \n')
    with _raises(f"{path}: invalid TOML:") as info:
        load_spec(path)
    assert "line 2" in str(info.value)


def test_invalid_spec_in_a_file_names_file_and_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        (resource_dir("models") / "logit_normal.toml").read_text().replace(", sigma = 1.0 }", " }")
    )
    with _raises(f"{path}: priors.bias.sigma: missing"):
        load_spec(path)


def test_unknown_shipped_name():
    with _raises("unknown model 'beta_binomal'; the shipped models are beta_binomial, logit_"):
        load_spec("beta_binomal")


def test_name_defaults_to_file_stem_only_when_there_is_a_file():
    d = _spec_dict()
    del d["name"]
    assert ModelSpec.from_dict(d, source="/x/my_model.toml").name == "my_model"
    with _raises("name: missing"):
        ModelSpec.from_dict(d)


# --- priors: densities against scipy, scaling, replacing ---------------------------------------

X = np.array([0.0, 0.3, 1.0, 2.7])

# Each prior with its log density computed independently of Prior's own scipy calls.
DENSITIES = [
    (
        Prior("normal", {"mu": 0.5, "sigma": 1.5}),
        -0.5 * np.log(2 * np.pi * 1.5**2) - (X - 0.5) ** 2 / (2 * 1.5**2),
    ),
    (Prior("student_t", {"nu": 3, "mu": -1, "sigma": 2.5}), stats.t(3, -1, 2.5).logpdf(X)),
    (Prior("halfnormal", {"sigma": 0.5}), np.log(2) + stats.norm(0, 0.5).logpdf(X)),
    (Prior("halfstudent_t", {"nu": 4, "sigma": 2}), np.log(2) + stats.t(4, 0, 2).logpdf(X)),
    (Prior("exponential", {"lam": 2.0}), np.log(2.0) - 2.0 * X),
]


@pytest.mark.parametrize(("prior", "expected"), DENSITIES, ids=lambda p: getattr(p, "dist", ""))
def test_logpdf_agrees_with_independent_computation(prior, expected):
    np.testing.assert_allclose(prior.logpdf(X), expected, rtol=1e-12)


@pytest.mark.parametrize(("prior", "expected"), DENSITIES, ids=lambda p: getattr(p, "dist", ""))
def test_prior_variable_logp_agrees_with_independent_computation(prior, expected):
    with pm.Model():
        var = prior_variable(prior, "theta")
        logp = np.array([pm.logp(var, x).eval() for x in X])
    np.testing.assert_allclose(logp, expected, rtol=1e-6)


@pytest.mark.parametrize(("prior", "expected"), DENSITIES[2:], ids=lambda p: getattr(p, "dist", ""))
def test_scale_priors_have_no_mass_below_zero(prior, expected):
    assert prior.logpdf(-0.1) == -np.inf


def test_quantile_inverts_the_cdf():
    half_t = Prior("halfstudent_t", {"nu": 3, "sigma": 2})
    # P(|T| <= q) = 0.9 for the folded t: q is the t's 95% quantile.
    assert half_t.quantile(0.9) == pytest.approx(stats.t(3, 0, 2).ppf(0.95))
    assert Prior("exponential", {"lam": 2}).quantile(0.5) == pytest.approx(math.log(2) / 2)


def test_prior_variable_passes_dims():
    with pm.Model(coords={"modality": ["a", "b", "c"]}):
        var = prior_variable(Prior("normal", {"mu": 0, "sigma": 1.5}), "intercept", dims="modality")
        assert var.eval().shape == (3,)


def test_prior_params_are_sorted_pairs_and_describe_is_plain():
    prior = Prior("normal", {"sigma": 1.5, "mu": 0})
    assert prior.params == (("mu", 0.0), ("sigma", 1.5))
    assert prior.param("sigma") == 1.5
    assert prior.describe() == "Normal(mean 0, sd 1.5)"
    assert Prior.from_dict(prior.to_dict()) == prior
    with pytest.raises(KeyError, match="lam"):
        prior.param("lam")
    with _raises("prior.sigma: must be > 0, got 0"):
        Prior("normal", {"mu": 0, "sigma": 0})


def test_scaled():
    assert Prior("normal", {"mu": 1, "sigma": 1.5}).scaled(2.0) == Prior(
        "normal", {"mu": 1, "sigma": 3.0}
    )
    assert Prior("exponential", {"lam": 3.0}).scaled(2.0) == Prior("exponential", {"lam": 1.5})
    assert Prior("halfstudent_t", {"nu": 3, "sigma": 1}).scaled(0.5) == Prior(
        "halfstudent_t", {"nu": 3, "sigma": 0.5}
    )
    with _raises("factor: must be a finite number > 0, got 0"):
        Prior("normal", {"mu": 0, "sigma": 1}).scaled(0)


def test_scaled_priors_scales_every_prior_of_both_stages():
    spec = load_spec("response")
    wide = spec.scaled_priors(2.0)
    for section in ("priors", "conditional_priors"):
        for key, prior in getattr(spec, section).items():
            assert getattr(wide, section)[key] == prior.scaled(2.0)
    assert wide.priors["intercept"].param("sigma") == 3.0


def test_with_prior_returns_a_new_spec_and_leaves_the_original():
    spec = load_spec("beta_binomial")
    before = spec.to_dict()
    wider = spec.with_prior("intercept", {"dist": "normal", "mu": 0, "sigma": 2.5})
    assert wider.priors["intercept"] == Prior("normal", {"mu": 0, "sigma": 2.5})
    assert wider.priors["bias"] == spec.priors["bias"]
    assert spec.to_dict() == before
    assert list(wider.priors) == list(spec.priors)
    conditional = spec.with_prior("bias", Prior("normal", {"mu": 0, "sigma": 0.5}), "conditional")
    assert conditional.prior("bias", "conditional").param("sigma") == 0.5
    assert conditional.prior("bias").param("sigma") == 1.0


@pytest.mark.parametrize(
    ("key", "prior", "fragment"),
    [
        ("intercept", {"dist": "normal", "mu": 0, "sigma": -1}, "priors.intercept.sigma: must be"),
        ("tau", {"dist": "halfnormal", "sigma": 1}, "priors.tau: not used"),
        ("log_concentration_sd", Prior("normal", {"mu": 0, "sigma": 1}), "cannot be the prior"),
    ],
)
def test_with_prior_rejects_invalid_values(key, prior, fragment):
    spec = load_spec("beta_binomial")
    with _raises(fragment):
        spec.with_prior(key, prior)


def test_prior_lookup_errors():
    spec = load_spec("beta_binomial")
    with _raises("priors.tau: not used by model 'beta_binomial'"):
        spec.prior("tau")
    with _raises("stage: must be one of marginal, conditional"):
        spec.prior("intercept", "posterior")
