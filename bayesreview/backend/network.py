"""The arm-based network model of binary outcomes, and its sampling.

Arm k of study i (y_ik events of n_ik patients)::

    y_ik ~ Binomial(n_ik, p_ik),   logit p_ik = mu_i + x_ik . d + u_ik,
    u_ik ~ Normal(0, tau^2 / 2),   mu_i ~ Normal(m, sigma_mu^2).

Under consistency (the network model) x_ik picks the log odds ratio d[t_ik] of the arm's
treatment against the reference (a row of zeros for a reference arm): logit p_ik = mu_i +
d[t_ik] + u_ik. The arm effects u make each contrast u_ik - u_ib of two arms of one study vary
with SD tau between studies, and two contrasts of one multi-arm study correlate 0.5: the usual
random-effects network model with a common heterogeneity. The study baselines mu_i are
exchangeable, which is what lets a single-arm study in: its arm informs m + d[t], the rate of
its treatment in a typical study. Both u and mu are sampled non-centred. The sampler's
target holds the binomial log-likelihood without its constant, the log binomial coefficients:
sum y_ik logit p_ik - n_ik log(1 + exp(logit p_ik)), the same posterior at a fraction of the
cost of evaluating log Gamma at every step (the fit's log-likelihoods for PSIS-LOO and the
deviance are the full ones, computed from the draws).

The same model with another design ``x`` is the unrelated-mean-effects model of the
inconsistency check (:func:`bayesreview.network.inconsistency`): one free parameter per pair
of treatments compared directly, nothing tying them together.

A model is built and compiled once per padded size and specification and kept with the
package's other compiled models (:func:`bayesreview.backend.sampling.cached_model`): the arms,
studies and log odds ratios are padded to powers of two (:data:`SMALLEST_PADDING`) with
entries that carry no data (an arm of 0 patients, a study without arms, a column of zeros in
the design), whose parameters are then standard normal or follow their prior and are dropped
after sampling, so that data sets of other sizes, and refits, only change the values of its
``pm.Data`` containers.
"""

from __future__ import annotations

from collections.abc import Mapping

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesreview.backend.priors import prior_variable
from bayesreview.backend.sampling import SamplerSettings, cached_model, run_nuts
from bayesreview.model_data import padded_size
from bayesreview.spec import Prior

__all__ = ["network_arrays", "network_model", "sample_network"]


def network_model(
    n_arms: int,
    n_studies: int,
    parameters: list[str],
    priors: Mapping[str, Prior],
) -> pm.Model:
    """The PyMC model above for ``n_arms`` arms of ``n_studies`` studies, with one log odds
    ratio ``d`` per name in ``parameters``; its data are the ``pm.Data`` containers of
    :func:`network_arrays`.

    ``priors``: ``effect`` (each element of d), ``baseline_mean`` (m), ``baseline_sd``
    (sigma_mu) and ``effect_sd`` (tau).
    """
    coords = {"study": range(n_studies), "contrast": parameters, "arm": range(n_arms)}
    with pm.Model(coords=coords) as model:
        study_idx = pm.Data("study_idx", np.zeros(n_arms, dtype=np.int64), dims="arm")
        design = pm.Data("design", np.zeros((n_arms, len(parameters))), dims=("arm", "contrast"))
        n = pm.Data("trials", np.ones(n_arms, dtype=np.int64), dims="arm")
        y = pm.Data("events", np.zeros(n_arms, dtype=np.int64), dims="arm")
        d = prior_variable(priors["effect"], "d", dims="contrast")
        m = prior_variable(priors["baseline_mean"], "baseline_mean")
        sigma_mu = prior_variable(priors["baseline_sd"], "baseline_sd")
        tau = prior_variable(priors["effect_sd"], "tau")
        mu = m + sigma_mu * pm.Normal("baseline_raw", 0.0, 1.0, dims="study")
        u = tau / np.sqrt(2.0) * pm.Normal("arm_raw", 0.0, 1.0, dims="arm")
        pm.Deterministic("mu", mu, dims="study")
        logit_p = mu[study_idx] + design @ d + u
        pm.Deterministic("logit_p", logit_p, dims="arm")
        pm.Potential("loglik", (y * logit_p - n * pt.softplus(logit_p)).sum())
    return model


def network_arrays(
    study: np.ndarray, design: np.ndarray, events: np.ndarray, trials: np.ndarray
) -> dict[str, np.ndarray]:
    """Values of the network model's ``pm.Data`` containers: each arm's study (index),
    design row, events and patients."""
    return {
        "study_idx": np.asarray(study, dtype=np.int64),
        "design": np.asarray(design, dtype=float),
        "events": np.asarray(events, dtype=np.int64),
        "trials": np.asarray(trials, dtype=np.int64),
    }


#: Smallest padded number of arms (and studies) and of log odds ratios (then the next power
#: of two).
SMALLEST_PADDING = {"arm": 16, "contrast": 4}


def _padded_arrays(arrays: dict[str, np.ndarray], n_arms: int, n_contrasts: int):
    """``arrays`` (:func:`network_arrays`) with arms of no patients added up to ``n_arms``
    (study 0, no treatment) and columns of zeros in the design up to ``n_contrasts``."""
    extra = n_arms - len(arrays["events"])
    design = np.zeros((n_arms, n_contrasts))
    design[: len(arrays["events"]), : arrays["design"].shape[1]] = arrays["design"]
    padded = {
        name: np.concatenate([values, np.zeros(extra, values.dtype)])
        for name, values in arrays.items()
        if name != "design"
    }
    return {**padded, "design": design}


def sample_network(
    arrays: dict[str, np.ndarray],
    n_studies: int,
    parameters: list[str],
    priors: Mapping[str, Prior],
    run: SamplerSettings,
) -> az.InferenceData:
    """Sample the network model of ``arrays`` (:func:`network_arrays`); the compiled model
    of this padded size and these priors is reused where one is kept. Returns the posterior
    of the data's own arms, studies and log odds ratios (``parameters``) and the sampler's
    statistics."""
    n_arms = len(arrays["events"])
    arms = padded_size(n_arms, SMALLEST_PADDING["arm"])
    # as many studies as arms: a study has an arm at least, so one size bucket serves both
    size = {
        "arm": arms,
        "study": arms,
        "contrast": padded_size(len(parameters), SMALLEST_PADDING["contrast"]),
    }
    names = [f"contrast {k}" for k in range(size["contrast"])]
    key = ("network", run.sampler, *size.values(), tuple(priors.items()))
    model, compiled = cached_model(
        key, lambda: network_model(size["arm"], size["study"], names, priors), run.sampler
    )
    padded = _padded_arrays(arrays, size["arm"], size["contrast"])
    idata = run_nuts(model, compiled, padded, run)
    own = {"arm": n_arms, "study": n_studies, "contrast": len(parameters)}
    posterior = idata.posterior.isel({dim: slice(0, n) for dim, n in own.items()})
    posterior = posterior.assign_coords(contrast=list(parameters))
    # as the single-arm families': PyMC's sampler would also return the padded data containers
    return az.InferenceData(posterior=posterior, sample_stats=idata.sample_stats)
