"""What a fit reports, computed from posterior draws with numpy: rates, predictions,
heterogeneity, shrunken study estimates, per-study log-likelihoods and replicated data.

Every function takes the posterior as plain arrays shaped ``(S, ...)`` (S = chains x draws,
flattened) and the :class:`~bayesreview.model_data.ModelData` of the fit.

Two estimands of a group's pooled rate at linear predictor ``eta``:

- the population mean rate E[p]: ``invlogit(eta)`` for the beta-binomial (mu is the mean of the
  Beta distribution of study rates), ``E[invlogit(eta + tau z)]``, z ~ Normal(0, 1), for the
  logit-normal (:mod:`bayesreview.integrals`);
- the median-study rate, the median of the distribution of true study rates: ``invlogit(eta)``
  for the logit-normal (what metafor's ``rma.glmm``, meta and brms report as the pooled
  proportion) and the median of Beta(mu phi, (1 - mu) phi) for the beta-binomial.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import special

from bayesreview.backend.ops import logit_normal_loglik_compiled
from bayesreview.integrals import (
    logit_normal_moment,
    sample_logit_normal_effects,
)
from bayesreview.model_data import LEVEL_PROBABILITY, ModelData, selection_classes, take_rows

#: Inner draws per posterior draw for the median-study rate of the joint model's complete and
#: partial response (the median of a product of two stages' rates has no closed form).
MEDIAN_INNER_DRAWS = 1000

#: Posterior draws per block of that Monte Carlo (bounds each thread's memory: 16 MB a block).
MEDIAN_BLOCK_DRAWS = 500

#: Where the bias-adjusted rates are reported: the reference bias level (index 0), or the centre
#: of a numeric covariate (its codes are centred, so the centre is 0).
REFERENCE_LEVEL = 0


def flat_posterior(posterior: xr.Dataset) -> dict[str, np.ndarray]:
    """Posterior variables as arrays shaped (chains x draws, ...)."""
    out = {}
    for name, array in posterior.data_vars.items():
        values = array.values
        out[name] = values.reshape((-1, *values.shape[2:]))
    return out


def beta_shapes(eta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta shapes (mu phi, (1 - mu) phi) at logit mu = eta, kept > 0 in floating point."""
    tiny = np.finfo(float).tiny
    return (
        np.maximum(phi * special.expit(eta), tiny),
        np.maximum(phi * special.expit(-eta), tiny),
    )


@dataclass(frozen=True)
class Stage:
    """Posterior draws of one likelihood stage. ``scale`` is phi (beta-binomial) or tau."""

    likelihood: str
    alpha: np.ndarray  # (S, G)
    scale: np.ndarray  # (S, G)
    shift: np.ndarray | None  # (S, K) level shifts (reference 0), or (S,) numeric slope
    #: log relative publication probability of each row had it no events (S, J), under
    #: publication selection (first stage only); None without selection
    log_selection: np.ndarray | None = None

    def eta(self, level_or_x, group: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Linear predictor (S, G) at one bias level index (categorical) or value (numeric)."""
        alpha = self.alpha[:, group]
        if self.shift is None:
            return alpha
        if self.shift.ndim == 1:
            return alpha + self.shift[:, None] * level_or_x
        return alpha + self.shift[:, [level_or_x]]

    def mean_rate(self, eta: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Population mean rate at ``eta``; ``scale`` broadcasts against it."""
        if self.likelihood == "beta_binomial":
            return special.expit(eta)
        return logit_normal_moment(eta, scale, 1)

    def second_moment(self, eta: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """E[p^2] of a new study's rate at ``eta``."""
        if self.likelihood == "beta_binomial":
            mu = special.expit(eta)
            return mu * (mu * scale + 1.0) / (scale + 1.0)
        return logit_normal_moment(eta, scale, 2)

    def median_rate(self, eta: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Median of the distribution of true study rates at ``eta``."""
        if self.likelihood == "beta_binomial":
            a, b = beta_shapes(eta, scale)
            return special.betaincinv(a, b, 0.5)
        return special.expit(eta)

    def new_rate(
        self,
        eta: np.ndarray,
        scale: np.ndarray,
        rng: np.random.Generator,
        size: tuple[int, ...] | None = None,
    ):
        """Draws of a new study's rate: one per entry of ``eta`` and ``scale`` broadcast
        together, or an array of ``size`` they broadcast to (several per posterior draw)."""
        if self.likelihood == "beta_binomial":
            a, b = beta_shapes(eta, scale)
            return rng.beta(a, b, size=size)
        shape = np.broadcast_shapes(np.shape(eta), np.shape(scale)) if size is None else size
        return special.expit(eta + scale * rng.standard_normal(shape))


def stages_from_posterior(posterior: dict[str, np.ndarray], data: ModelData, likelihood: str):
    """The stages of a fit from flattened posterior arrays keyed by variable name."""
    stages = []
    log_selection = None
    if "selection_weight" in posterior:
        log_selection = np.log(posterior["selection_weight"])[:, selection_classes(data)]
    for suffix, _, _ in data.stage_counts():
        scale_name = "phi" if likelihood == "beta_binomial" else "tau"
        stages.append(
            Stage(
                likelihood=likelihood,
                alpha=posterior[f"alpha{suffix}"],
                scale=posterior[f"{scale_name}{suffix}"],
                shift=_shift(posterior.get(f"beta{suffix}"), data),
                log_selection=log_selection if not suffix else None,
            )
        )
    return stages


def _shift(beta: np.ndarray | None, data: ModelData) -> np.ndarray | None:
    if beta is None:
        return None
    if data.bias.kind == "numeric":
        return beta
    return np.concatenate([np.zeros((beta.shape[0], 1)), beta], axis=1)


# --------------------------------------------------------------------------------------------
# Pooled rates per group
# --------------------------------------------------------------------------------------------


def level_probabilities(
    posterior: dict[str, np.ndarray], stages, data: ModelData
) -> np.ndarray | None:
    """Each study's bias level probabilities per draw, (S, J, K); None without a categorical one.

    A known level has probability 1. A missing one has its posterior probability given the
    study's data and the draw's parameters (:func:`missing_level_probabilities`).
    """
    bias = data.bias
    if bias is None or bias.kind != "categorical":
        return None
    n_draws, n_levels = stages[0].alpha.shape[0], len(bias.levels)
    known = bias.codes >= 0
    prob = np.zeros((n_draws, data.n_rows, n_levels))
    prob[:, np.flatnonzero(known), bias.codes[known]] = 1.0
    if not known.all():
        prob[:, ~known, :] = missing_level_probabilities(posterior, stages, data)
    return prob


def missing_level_probabilities(posterior: dict[str, np.ndarray], stages, data: ModelData):
    """Level probabilities (S, M, K) of the M studies whose categorical bias level is missing.

    pi_k L_j(k) / sum_k' pi_k' L_j(k'), with L_j(k) the study's likelihood at level k, marginal
    over its random effect; with known totals, the marginals over the consistent assignments
    (:func:`_levels_given_totals`).
    """
    missing = np.flatnonzero(data.bias.codes < 0)
    if data.bias.known_totals:
        return _levels_given_totals(stages, data)[:, missing, :]
    loglik = _levels_loglik(stages, take_rows(data, missing))
    log_post = loglik + np.log(posterior[LEVEL_PROBABILITY])[:, None, :]
    return np.exp(log_post - special.logsumexp(log_post, -1, keepdims=True))


def _levels_given_totals(stages, data: ModelData) -> np.ndarray:
    """Every study's level probabilities (S, J, K) given the data, the draw and the totals.

    The marginals of the forward-backward recursion
    (:func:`bayesreview.known_totals.forward_backward_packed`) of each draw, on the states
    tabulated once; a rated study's level is certain, and a study left out (weight 0) enters
    with a flat likelihood.
    """
    from bayesreview.backend.models import known_totals_array
    from bayesreview.known_totals import forward_backward_packed

    bias = data.bias
    loglik = _levels_loglik(stages, data) * data.weights[None, :, None]
    rated = np.flatnonzero(bias.codes >= 0)
    impossible = np.zeros((data.n_rows, len(bias.levels)), dtype=bool)
    impossible[rated] = True
    impossible[rated, bias.codes[rated]] = False
    loglik = np.where(impossible[None], -np.inf, loglik)
    states = known_totals_array(data)
    return np.stack([forward_backward_packed(draw, states)[1] for draw in loglik])


def _in_sample_members(data: ModelData) -> list[np.ndarray]:
    """Per group, the rows whose mix of levels its rates average over.

    The group's studies in the likelihood (weight > 0); where a refit left all of a group's
    studies out, all of them.
    """
    members = []
    for g in range(data.n_groups):
        rows = np.flatnonzero((data.group_idx == g) & (data.weights > 0))
        members.append(rows if rows.size else np.flatnonzero(data.group_idx == g))
    return members


def group_mix(posterior: dict[str, np.ndarray], stages, data: ModelData) -> tuple[list, np.ndarray]:
    """Each group's own mix of bias levels: (levels or values, weights (S, G, L)).

    Categorical: the average over the group's studies of their level probabilities
    (:func:`level_probabilities`: known levels as given, missing ones by their posterior
    probabilities), weighted by how many studies a row stands for. Numeric: the distinct values
    of the covariate, weighted by how often the group's studies have them.
    """
    bias = data.bias
    n_draws = stages[0].alpha.shape[0]
    members = _in_sample_members(data)
    if bias is None:
        return [None], np.ones((n_draws, data.n_groups, 1))
    if bias.kind == "numeric":
        values, where = np.unique(bias.codes, return_inverse=True)
        weights = np.zeros((data.n_groups, len(values)))
        for g, rows in enumerate(members):
            np.add.at(weights[g], where.reshape(-1)[rows], np.maximum(data.weights[rows], 1))
        weights /= weights.sum(axis=1, keepdims=True)
        return list(values), np.broadcast_to(weights, (n_draws, *weights.shape))
    n_levels = len(bias.levels)
    missing = np.flatnonzero(bias.codes < 0)
    if missing.size:
        missing_prob = missing_level_probabilities(posterior, stages, data)
        position = np.full(data.n_rows, -1)
        position[missing] = np.arange(missing.size)
    weights = np.zeros((n_draws, data.n_groups, n_levels))
    for g, rows in enumerate(members):
        w = np.maximum(data.weights[rows], 1).astype(float)
        w /= w.sum()
        codes = bias.codes[rows]
        known = codes >= 0
        # known levels count as given (the same in every draw); missing ones by probability
        weights[:, g, :] += np.bincount(codes[known], w[known], minlength=n_levels)
        if not known.all():
            at = position[rows[~known]]
            weights[:, g, :] += np.tensordot(missing_prob[:, at, :], w[~known], axes=([1], [0]))
    return list(range(n_levels)), weights


def _by_outcome(first, second=None) -> dict[str, np.ndarray]:
    """Each outcome's rate from the stages' rates (of a study, or their means): one stage's
    ``outcome``; the joint model's complete (p1 p2), partial (p1 (1 - p2)) and any (p1)
    response. The means of independent stages multiply alike."""
    if second is None:
        return {"outcome": first}
    return {"complete": first * second, "partial": first * (1 - second), "any": first}


def _outcome_moments(stages, levels, rng):
    """Per level: dict outcome -> (mean (S,G), second moment (S,G), new-study draw (S,G))."""
    per_level = []
    for level in levels:
        first = stages[0]
        eta1 = first.eta(level)
        m1 = first.mean_rate(eta1, first.scale)
        s1 = first.second_moment(eta1, first.scale)
        p1 = first.new_rate(eta1, first.scale, rng)
        if len(stages) == 1:
            per_level.append({"outcome": (m1, s1, p1)})
            continue
        second = stages[1]
        eta2 = second.eta(level)
        m2 = second.mean_rate(eta2, second.scale)
        s2 = second.second_moment(eta2, second.scale)
        p2 = second.new_rate(eta2, second.scale, rng)
        means, draws = _by_outcome(m1, m2), _by_outcome(p1, p2)
        seconds = {"complete": s1 * s2, "partial": s1 * (1 - 2 * m2 + s2), "any": s1}
        per_level.append({o: (means[o], seconds[o], draws[o]) for o in means})
    return per_level


def _outcome_key(outcome: str, stages) -> str:
    """The key of ``outcome`` in :func:`_by_outcome`'s dict: ``"outcome"`` for one stage."""
    return "outcome" if len(stages) == 1 else outcome


def reference_rates(
    posterior: dict[str, np.ndarray], data: ModelData, likelihood: str
) -> np.ndarray:
    """The population mean rate at the reference bias level per draw, outcome and group,
    (S, O, G): ``rate`` of :func:`pooled_rates` (the bias-adjusted rate) alone.

    A refit that reports no other pooled quantity (those of
    :func:`bayesreview.robustness.sensitivity`) need not pay for the others: the joint model's
    median-study rates are a Monte Carlo of :data:`MEDIAN_INNER_DRAWS` inner draws per
    posterior draw. No random draws.
    """
    stages = stages_from_posterior(posterior, data, likelihood)
    means = _by_outcome(*(s.mean_rate(s.eta(REFERENCE_LEVEL), s.scale) for s in stages))
    return np.stack([means[_outcome_key(o, stages)] for o in data.reported_outcomes], axis=1)


def _median_rates(stages, level, rng) -> dict[str, np.ndarray]:
    """Median-study rate (S, G) at one level per outcome, keyed as :func:`_by_outcome`.

    One stage: the median of its distribution of study rates, exactly. The joint model's
    complete (p1 p2) and partial (p1 (1 - p2)) response: the median of
    :data:`MEDIAN_INNER_DRAWS` draws of the two stages' independent study rates per posterior
    draw (Monte Carlo SE about 1.25 sd / sqrt(1000) of the study rates' spread), computed in
    blocks of :data:`MEDIAN_BLOCK_DRAWS` posterior draws of one group, each with its own
    random stream (spawned from ``rng``), on as many threads as there are CPUs: the values do
    not depend on the number of threads.
    """
    first = stages[0]
    eta1 = first.eta(level)
    median1 = first.median_rate(eta1, first.scale)
    if len(stages) == 1:
        return _by_outcome(median1)
    second = stages[1]
    eta2 = second.eta(level)
    n_draws, n_groups = eta1.shape
    blocks = [
        (g, slice(start, min(start + MEDIAN_BLOCK_DRAWS, n_draws)))
        for g in range(n_groups)
        for start in range(0, n_draws, MEDIAN_BLOCK_DRAWS)
    ]
    streams = rng.spawn(len(blocks))

    def block_medians(block: tuple[int, slice], stream: np.random.Generator):
        g, draws = block
        inner = (draws.stop - draws.start, MEDIAN_INNER_DRAWS)
        p1 = first.new_rate(eta1[draws, g, None], first.scale[draws, g, None], stream, inner)
        p2 = second.new_rate(eta2[draws, g, None], second.scale[draws, g, None], stream, inner)
        return np.median(p1 * p2, axis=1), np.median(p1 * (1 - p2), axis=1)

    complete, partial = np.empty(eta1.shape), np.empty(eta1.shape)
    # numpy's random draws and median release the GIL: the blocks run in parallel
    with ThreadPoolExecutor(max_workers=min(len(blocks), os.cpu_count() or 1)) as pool:
        medians = pool.map(block_medians, blocks, streams)
        for (g, draws), (block_complete, block_partial) in zip(blocks, medians, strict=True):
            complete[draws, g], partial[draws, g] = block_complete, block_partial
    return {"complete": complete, "partial": partial, "any": median1}


def pooled_rates(
    posterior: dict[str, np.ndarray], data: ModelData, likelihood: str, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Pooled quantities per draw, outcome and group, each shaped (S, O, G).

    Keys: ``rate`` (population mean rate at the reference bias level: the bias-adjusted rate),
    ``rate_median`` (median-study rate at the reference level), ``rate_mix`` (the population
    mean rate averaged over the group's own studies at their levels: known levels as given,
    missing ones by their posterior probabilities), ``rate_pred`` and ``rate_pred_mix`` (a new
    study's rate at the reference level and at a level drawn from the group's own mix: draws of
    the predictive distribution), ``rate_sd`` (between-study standard deviation of the true
    rates at the reference level).
    """
    stages = stages_from_posterior(posterior, data, likelihood)
    outcomes = data.reported_outcomes
    levels, weights = group_mix(posterior, stages, data)
    per_level = _outcome_moments(stages, levels, rng)
    at_reference = _outcome_moments(stages, [REFERENCE_LEVEL], rng)[0]
    medians = _median_rates(stages, REFERENCE_LEVEL, rng)

    def stack(values):
        return np.stack(values, axis=1)

    def key(outcome):
        return _outcome_key(outcome, stages)

    rate = stack([at_reference[key(o)][0] for o in outcomes])
    second = stack([at_reference[key(o)][1] for o in outcomes])
    rate_pred = stack([at_reference[key(o)][2] for o in outcomes])
    rate_mix = stack(
        [sum(weights[:, :, i] * lv[key(o)][0] for i, lv in enumerate(per_level)) for o in outcomes]
    )
    # predictive draw over each group's mix: pick each draw's level with the mix probabilities
    flat = weights.reshape(-1, weights.shape[-1])
    choice = _choose(flat, rng).reshape(weights.shape[:2])
    rate_pred_mix = stack(
        [
            np.select(
                [choice == i for i in range(len(levels))], [lv[key(o)][2] for lv in per_level]
            )
            for o in outcomes
        ]
    )
    return {
        "rate": rate,
        "rate_median": stack([medians[key(o)] for o in outcomes]),
        "rate_mix": rate_mix,
        "rate_pred": rate_pred,
        "rate_pred_mix": rate_pred_mix,
        "rate_sd": np.sqrt(np.clip(second - rate**2, 0.0, None)),
    }


def _choose(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per row of an (S, L) matrix of probabilities."""
    cumulative = np.cumsum(probabilities, axis=1)
    u = rng.random(probabilities.shape[0]) * cumulative[:, -1]
    return (u[:, None] > cumulative).sum(axis=1)


# --------------------------------------------------------------------------------------------
# Per-study quantities
# --------------------------------------------------------------------------------------------


def _log_binom(n, y):
    return special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)


def _stage_row_loglik(stage: Stage, eta: np.ndarray, y: np.ndarray, n: np.ndarray, g):
    """Marginal log-likelihood of each study in one stage at linear predictor eta (S, J).

    Under publication selection, the likelihood given publication: log f(y) + [y = 0] log w
    - log(w f(0) + 1 - f(0)) (as :func:`bayesreview.backend.ops._published` computes it).
    """
    scale = stage.scale[:, g]
    value = _unselected_row_loglik(stage.likelihood, eta, scale, y, n)
    if stage.log_selection is None:
        return value
    log_w = stage.log_selection
    zero = _unselected_row_loglik(stage.likelihood, eta, scale, 0, n)
    log_z = np.logaddexp(log_w + zero, log1mexp(zero))
    return value + np.where(y == 0, log_w, 0.0) - log_z


def log1mexp(x: np.ndarray) -> np.ndarray:
    """log(1 - exp(x)) for x <= 0, accurate near 0 and for very negative x."""
    x = np.asarray(x, dtype=float)
    near = x > -np.log(2.0)
    with np.errstate(divide="ignore"):
        return np.where(near, np.log(-np.expm1(np.minimum(x, 0.0))), np.log1p(-np.exp(x)))


def _unselected_row_loglik(likelihood: str, eta, scale, y, n) -> np.ndarray:
    """Marginal log-likelihood of y events in n at linear predictor eta and scale (S, J)."""
    if likelihood == "beta_binomial":
        a, b = beta_shapes(eta, scale)
        return _log_binom(n, y) + special.betaln(y + a, n - y + b) - special.betaln(a, b)
    return logit_normal_loglik_compiled(y, n, eta, scale)


def _levels_loglik(stages, data: ModelData) -> np.ndarray | None:
    """Log-likelihood of each study at each bias level, summed over stages: (S, J, K).

    Marginal over the study effects.
    """
    if data.bias is None or data.bias.kind != "categorical":
        return None
    out = []
    for level in range(len(data.bias.levels)):
        total = 0.0
        for stage, (_, y, n) in zip(stages, data.stage_counts(), strict=True):
            levels = np.full((stage.alpha.shape[0], data.n_rows), level)
            eta = _eta_at(stage, data, levels)
            total = total + _stage_row_loglik(stage, eta, y, n, data.group_idx)
        out.append(total)
    return np.stack(out, axis=-1)


def study_levels(
    posterior: dict[str, np.ndarray], stages, data: ModelData, rng: np.random.Generator
) -> np.ndarray | None:
    """Each study's bias level per draw (S, J): known levels as given, missing ones drawn from
    their posterior probabilities (:func:`missing_level_probabilities`)."""
    if data.bias is None or data.bias.kind != "categorical":
        return None
    codes = np.broadcast_to(data.bias.codes, (stages[0].alpha.shape[0], data.n_rows)).copy()
    missing = data.bias.codes < 0
    if missing.any():
        prob = missing_level_probabilities(posterior, stages, data)
        flat = prob.reshape(-1, prob.shape[-1])
        codes[:, missing] = _choose(flat, rng).reshape(prob.shape[:2])
    return codes


def _eta_at(stage: Stage, data: ModelData, levels: np.ndarray | None) -> np.ndarray:
    eta = stage.alpha[:, data.group_idx]
    if stage.shift is None:
        return eta
    if stage.shift.ndim == 1:
        return eta + stage.shift[:, None] * data.bias.codes[None, :]
    return eta + np.take_along_axis(stage.shift, levels, axis=1)


def log_likelihood(posterior: dict[str, np.ndarray], data: ModelData, likelihood: str):
    """Pointwise log-likelihood of each study's outcome (S, J), for PSIS-LOO.

    The study effect is integrated out (beta-binomial exactly, logit-normal by adaptive
    quadrature), and a missing bias level is marginalised over the posterior level
    probabilities; for the joint model the two stages' terms are added.
    """
    stages = stages_from_posterior(posterior, data, likelihood)
    categorical = data.bias is not None and data.bias.kind == "categorical"
    if not categorical or data.bias.n_missing == 0:  # each study at its own level
        levels = None
        if categorical:
            levels = np.broadcast_to(data.bias.codes, (stages[0].alpha.shape[0], data.n_rows))
        total = 0.0
        for stage, (_, y, n) in zip(stages, data.stage_counts(), strict=True):
            total = total + _stage_row_loglik(
                stage, _eta_at(stage, data, levels), y, n, data.group_idx
            )
        return total
    by_level = _levels_loglik(stages, data)
    codes = data.bias.codes
    known = codes >= 0
    out = np.empty(by_level.shape[:2])
    out[:, known] = np.take_along_axis(
        by_level[:, known, :],
        np.broadcast_to(codes[known], (*by_level.shape[:1], known.sum()))[..., None],
        axis=-1,
    )[..., 0]
    if (~known).any():
        log_pi = np.log(_unrated_level_prior(posterior, data))
        out[:, ~known] = special.logsumexp(by_level[:, ~known, :] + log_pi, axis=-1)
    return out


def _unrated_level_prior(posterior: dict[str, np.ndarray], data: ModelData) -> np.ndarray:
    """The prior probability of each level for a study whose level is missing: (S, 1, K).

    pi per draw (Dirichlet form); with known totals, the share of the unrated studies that
    each level's total leaves, (T_k - rated at k) / unrated, the same in every draw. The
    totals tie the unrated studies together; each study's term for LOO takes this marginal.
    """
    bias = data.bias
    if not bias.known_totals:
        return posterior[LEVEL_PROBABILITY][:, None, :]
    rated = np.bincount(bias.codes[bias.codes >= 0], minlength=len(bias.levels))
    left = np.asarray(bias.totals, dtype=float) - rated
    return (left / left.sum())[None, None, :]


def study_rates(
    posterior: dict[str, np.ndarray], data: ModelData, likelihood: str, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Shrunken study rates per draw (S, J) for each reported outcome.

    One draw per posterior draw from the exact joint p(b_j, p_j | y_j, theta): a missing bias
    level first, from p(b | y_j, theta) (the study's likelihood marginal over its rate), then
    the rate at that level. Beta-binomial: p_j ~ Beta(mu_j phi + y_j, (1 - mu_j) phi + n_j -
    y_j). Logit-normal: p_j = invlogit(eta_j + tau e_j), e_j drawn from its posterior given
    y_j (:func:`bayesreview.integrals.sample_logit_normal_effects`).
    """
    stages = stages_from_posterior(posterior, data, likelihood)
    levels = study_levels(posterior, stages, data, rng)
    rates = []
    for stage, (_suffix, y, n) in zip(stages, data.stage_counts(), strict=True):
        eta = _eta_at(stage, data, levels)
        scale = stage.scale[:, data.group_idx]
        if likelihood == "beta_binomial":
            a, b = beta_shapes(eta, scale)
            rates.append(rng.beta(a + y, b + n - y))
        else:
            effects = sample_logit_normal_effects(y, n, eta, scale, rng)
            rates.append(special.expit(eta + scale * effects))
    if len(rates) == 1:
        return {data.outcome: rates[0]}
    return {"complete": rates[0] * rates[1], "partial": rates[0] * (1 - rates[1]), "any": rates[0]}


def replicate_events(
    posterior: dict[str, np.ndarray], data: ModelData, likelihood: str, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Posterior predictive replicates of each study's events (S, J), by stage name.

    Each replicate draws a new study rate from the population distribution (the marginal
    likelihood the model was fitted with), then the events; for the joint model the complete
    responses are drawn among the replicated responders.
    """
    stages = stages_from_posterior(posterior, data, likelihood)
    levels = study_levels(posterior, stages, data, rng)
    out = {}
    trials = np.broadcast_to(data.trials, (stages[0].alpha.shape[0], data.n_rows))
    for stage, (suffix, _, _) in zip(stages, data.stage_counts(), strict=True):
        eta = _eta_at(stage, data, levels)
        scale = stage.scale[:, data.group_idx]
        events = rng.binomial(trials, stage.new_rate(eta, scale, rng))
        if stage.log_selection is not None:
            events = _published_replicates(stage, eta, scale, trials, events, rng)
        out["events" + suffix] = events
        trials = events
    return out


#: Rounds of rejection sampling of published replicates before the rest are drawn directly.
_PUBLICATION_ROUNDS = 50
#: Most rounds of drawing a replicate given it has events (each succeeds with P(y > 0)).
_POSITIVE_ROUNDS = 10_000


def _published_replicates(stage: Stage, eta, scale, trials, events, rng: np.random.Generator):
    """Replicates of published studies: a replicate with no events is kept with probability w
    (its publication probability relative to one with events) and redrawn otherwise. Where
    rounds of redrawing do not settle a replicate (w tiny and no events likely), the
    remainder is 0 with its exact probability w f(0) / (w f(0) + 1 - f(0)), else drawn
    given y > 0 by rejection (left at 0 only where even 10,000 draws have no event)."""
    weight = np.exp(stage.log_selection)
    events = events.copy()
    pending = np.ones(events.shape, dtype=bool)  # not yet published
    for _ in range(_PUBLICATION_ROUNDS):
        pending &= (events == 0) & (rng.random(events.shape) >= weight)
        if not pending.any():
            return events
        p = stage.new_rate(eta[pending], scale[pending], rng)
        events[pending] = rng.binomial(trials[pending], p)
    pending &= events == 0
    zero = np.exp(_unselected_row_loglik(stage.likelihood, eta, scale, 0, trials))
    keep_zero = rng.random(events.shape) < weight * zero / (weight * zero + 1.0 - zero)
    positive = pending & ~keep_zero
    for _ in range(_POSITIVE_ROUNDS):
        if not positive.any():
            break
        p = stage.new_rate(eta[positive], scale[positive], rng)
        events[positive] = rng.binomial(trials[positive], p)
        positive &= events == 0
    return events
