"""The arm-based network model of binary outcomes, and its sampling.

Arm k of study i (treatment t_ik, y_ik events of n_ik patients)::

    y_ik ~ Binomial(n_ik, p_ik),   logit p_ik = mu_i + d[t_ik] + u_ik,   d[reference] = 0,
    u_ik ~ Normal(0, tau^2 / 2),   mu_i ~ Normal(m, sigma_mu^2).

d are the log odds ratios against the reference treatment. The arm effects u make each
contrast u_ik - u_ib of two arms of one study vary with SD tau between studies, and two
contrasts of one multi-arm study correlate 0.5: the usual random-effects network model with a
common heterogeneity, consistency assumed. The study baselines mu_i are exchangeable, which is
what lets a single-arm study in: its arm informs m + d[t], the rate of its treatment in a
typical study. Both u and mu are sampled non-centred.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayesreview.backend.priors import prior_variable
from bayesreview.backend.sampling import TARGET_ACCEPT
from bayesreview.spec import Prior

__all__ = ["network_model", "sample_network"]


def network_model(
    study: np.ndarray,
    treatment: np.ndarray,
    events: np.ndarray,
    trials: np.ndarray,
    studies: list[str],
    treatments: list[str],
    priors: dict[str, Prior],
) -> pm.Model:
    """The PyMC model above; ``treatment`` indexes ``treatments``, the reference first.

    ``priors``: ``effect`` (each log odds ratio against the reference), ``baseline_mean``
    (m), ``baseline_sd`` (sigma_mu) and ``tau``.
    """
    coords = {
        "study": studies,
        "treatment": treatments,
        "contrast": treatments[1:],
        "arm": list(range(len(events))),
    }
    with pm.Model(coords=coords) as model:
        study_idx = pm.Data("study_idx", study, dims="arm")
        treatment_idx = pm.Data("treatment_idx", treatment, dims="arm")
        n = pm.Data("trials", trials, dims="arm")
        y = pm.Data("events", events, dims="arm")
        d = prior_variable(priors["effect"], "d", dims="contrast")
        m = prior_variable(priors["baseline_mean"], "baseline_mean")
        sigma_mu = prior_variable(priors["baseline_sd"], "baseline_sd")
        tau = prior_variable(priors["tau"], "tau")
        mu = m + sigma_mu * pm.Normal("baseline_raw", 0.0, 1.0, dims="study")
        u = tau / np.sqrt(2.0) * pm.Normal("arm_raw", 0.0, 1.0, dims="arm")
        effect = pt.concatenate([pt.zeros(1), d])
        pm.Deterministic("mu", mu, dims="study")
        logit_p = mu[study_idx] + effect[treatment_idx] + u
        pm.Potential("loglik", pm.logp(pm.Binomial.dist(n=n, logit_p=logit_p), y).sum())
    return model


def sample_network(
    model: pm.Model, draws: int, tune: int, chains: int, seed: int, progressbar: bool
) -> Any:
    """Sample the network model with nutpie (its compiled code cached on disk)."""
    import warnings

    import nutpie

    from bayesreview.backend.nutpie_cache import compile_model

    compiled = compile_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress_bar=progressbar,
            cores=chains,
            save_warmup=False,
            target_accept=TARGET_ACCEPT,
        )
