"""PyMC model builders: one function per likelihood, combined by :func:`build_model`.

Notation (DESIGN §3): study j in group (modality) m[j], events y_j of n_j, bias level b[j].

Beta-binomial (study rate marginalised)::

    y_j ~ BetaBinomial(n_j, mu_j phi_m, (1 - mu_j) phi_m),  logit mu_j = alpha_m + beta_b

Logit-normal (binomial-normal GLMM), each study's effect integrated out::

    y_j ~ Binomial(n_j, p_j),  logit p_j = alpha_m + beta_b + tau_m e_j,  e_j ~ Normal(0, 1)

by adaptive Gauss-Hermite quadrature (:mod:`bayesreview.integrals`), as metafor's ``rma.glmm``
and lme4's ``glmer`` do: the sampler sees alpha, tau and beta only, with no funnel between tau
and the effects whatever the studies' sizes, and the effects are drawn after sampling.

A categorical bias covariate adds ``beta`` for each non-reference level (the reference level's
shift is 0). Where a study's level is missing, its likelihood is the mixture
``sum_k pi_k L_j(k)``, computed with log-sum-exp; ``pi ~ Dirichlet(prior counts)`` and a study
whose level is known contributes ``log pi_b`` as well (its level is data about ``pi``); pi is
sampled on PyMC's simplex scale (:func:`_level_log_probabilities`). Where the number of
studies at each level is known instead (``bias_totals``), the likelihood of all studies
together is the average over every assignment of levels with those totals of
``prod_j L_j(b_j)`` (:mod:`bayesreview.known_totals`).

The joint response model has two stages sharing the bias level: any response of n_j, then
complete response of the y_j responders; the second stage's variables end in ``_cond``.

With publication selection (``spec.selection == "by_response"``) a study with no events is
published with probability w_d relative to one with events, d its selection class (case report
or case series), and each study's likelihood is that of a published study::

    f(y_j | theta) w(y_j) / (w_d f(0 | theta) + 1 - f(0 | theta)),   w(y) = w_d if y = 0 else 1,

exact for either likelihood (the sum over y' of f(y') w(y') has only these two parts).

Every data array is a ``pm.Data`` container whose length is read at run time, so one compiled
model serves every data set with the same number of groups and the same bias structure (a new
data set, new counts, a study left out by setting its weight to 0).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy.special import gammaln

from bayesreview.backend.ops import (
    BetaBinomialRows,
    LogitNormalRows,
    SimplexLogProbabilities,
    TabulatedBetaBinomial,
)
from bayesreview.backend.priors import prior_logp, prior_variable
from bayesreview.errors import SpecError
from bayesreview.known_totals import packed_states
from bayesreview.model_data import (
    LEVEL_PROBABILITY,
    PRIOR_ONLY_GROUP,
    TERM_NAMES,
    ModelData,
    Tabulated,
    cell_covariates,
    pooling_arrays,
    prior_only_groups,
    selection_classes,
)
from bayesreview.spec import LIKELIHOODS, SELECTION_CLASSES, ModelSpec, Prior

#: Parameters sampled on another scale: name -> the name they are reported under.
REPORTED_AS = {f"{LEVEL_PROBABILITY}_simplex": LEVEL_PROBABILITY}


def _bias_coefficients(data: ModelData, spec: ModelSpec, stage: str, suffix: str):
    """The bias coefficients, or None without a covariate.

    A slope for a numeric covariate; one logit shift per non-reference level, a (K - 1,)
    vector, for a categorical one.
    """
    bias = data.bias
    if bias is None:
        return None
    prior = spec.prior("bias", stage)
    if bias.kind == "numeric":
        return prior_variable(prior, f"beta{suffix}")
    return prior_variable(prior, f"beta{suffix}", dims="bias_level")


def _bias_terms(data: ModelData, spec: ModelSpec, stage: str, suffix: str, rows: dict):
    """(level coefficients, row shift) of one stage, as the rows' Ops take them.

    The logit shifts of the non-reference bias levels, a (K - 1,) vector (empty without a
    categorical covariate), and each row's shift, (J,): a numeric covariate's slope times the
    row's value, else the rows' zeros (``zero_row_shift``).
    """
    beta = _bias_coefficients(data, spec, stage, suffix)
    if beta is not None and data.bias.kind == "numeric":
        return pt.zeros(0), beta * rows["bias_value"]
    return (pt.zeros(0) if beta is None else beta), rows["zero_row_shift"]


def _standard_normal_where_prior_only(prior: Prior, variable, prior_only) -> None:
    """Make the entries of ``variable`` where ``prior_only`` is 1 standard normal on the
    sampler's (unconstrained) scale instead of following ``prior``: a ``pm.Potential``.

    Such entries enter no likelihood term and no other parameter's prior (the parameters of a
    padding group; the spread across groups of a single group), so their distribution leaves
    the posterior of the rest unchanged and they are dropped after sampling. Left to their
    prior they would slow the sampler: a half-normal seen on the log scale is skewed enough to
    double the logit-normal model's steps per draw.
    """
    transform = pm.modelcontext(None).rvs_to_transforms.get(variable)
    unconstrained, log_jacobian = variable, 0.0
    if transform is not None:
        inputs = variable.owner.inputs
        unconstrained = transform.forward(variable, *inputs)
        log_jacobian = transform.log_jac_det(unconstrained, *inputs)
    standard_normal = -0.5 * unconstrained**2 - 0.5 * np.log(2.0 * np.pi)
    change = standard_normal - (prior_logp(prior, variable) + log_jacobian)
    pm.Potential(f"{variable.name}_prior_only", pt.sum(prior_only * change))


def group_variable(data: ModelData, prior: Prior, name: str):
    """A parameter per group with ``prior``, standard normal on the sampler's scale in the
    prior-only padding groups (:func:`_standard_normal_where_prior_only`)."""
    model = pm.modelcontext(None)
    if PRIOR_ONLY_GROUP not in model.named_vars:
        pm.Data(PRIOR_ONLY_GROUP, prior_only_groups(data), dims="group")
    variable = prior_variable(prior, name, dims="group")
    _standard_normal_where_prior_only(prior, variable, model[PRIOR_ONLY_GROUP])
    return variable


def _log_scale_per_group(
    data: ModelData,
    spec: ModelSpec,
    stage: str,
    suffix: str,
    name: str,
    keys: tuple[str, str],
):
    """Log of the heterogeneity parameter per group, pooled as the spec says.

    ``keys`` are the spec's prior names for the location of the log scale and its spread
    across groups, e.g. ``("log_concentration", "log_concentration_sd")``.

    Under partial pooling each group's log scale is non-centred, ``{name} + spread z_m``, with
    ``z_m = {name}_raw[m]`` standard normal, except a group that anchors the location
    (:func:`bayesreview.model_data.anchor_groups`): its log scale ``{name}_anchor`` is sampled
    directly and the location is derived, ``{name} = {name}_anchor - spread z_a``, its prior
    kept as a density term (the change of variables has Jacobian 1). With no anchor (all
    zeros) ``{name}_anchor`` is the location itself. Both are data, ``{name}_anchor_group`` and
    ``{name}_pooled`` (1 with two groups or more; 0 with one, where every group has the
    location's log scale and the spread and ``z`` are prior-only), so that one compiled model
    serves every data set with the same number of (padded) groups.
    """
    location_prior = spec.prior(keys[0], stage)
    if spec.heterogeneity != "partial_pooling":
        if spec.heterogeneity == "per_modality":
            return group_variable(data, location_prior, f"{name}{suffix}")
        return prior_variable(location_prior, f"{name}{suffix}") * pt.ones(data.n_groups)
    arrays = pooling_arrays(data, spec)[suffix]
    anchor = pm.Data(f"{name}_anchor_group{suffix}", arrays["anchor_group"], dims="group")
    pooled = pm.Data(f"{name}_pooled{suffix}", arrays["pooled"])
    spread_prior = spec.prior(keys[1], stage)
    spread_value = prior_variable(spread_prior, f"{name}_sd{suffix}")
    _standard_normal_where_prior_only(spread_prior, spread_value, 1.0 - pooled)
    spread = pooled * spread_value
    raw = pm.Normal(f"{name}_raw{suffix}", 0.0, 1.0, dims="group")
    anchor_value = pm.Flat(f"{name}_anchor{suffix}")
    centre = pm.Deterministic(f"{name}{suffix}", anchor_value - spread * pt.sum(anchor * raw))
    pm.Potential(f"{name}_location_prior{suffix}", prior_logp(location_prior, centre))
    return anchor * anchor_value + (1.0 - anchor) * (centre + spread * raw)


def _beta_binomial_parameters(data: ModelData, spec: ModelSpec, stage: str, suffix: str):
    """Intercepts and log concentrations per group, pooled as the spec says."""
    alpha = group_variable(data, spec.prior("intercept", stage), f"alpha{suffix}")
    log_phi = _log_scale_per_group(
        data, spec, stage, suffix, "log_phi", ("log_concentration", "log_concentration_sd")
    )
    pm.Deterministic(f"phi{suffix}", pt.exp(log_phi), dims="group")
    return alpha, log_phi


def beta_binomial_tabulated_stage(
    data: ModelData, spec: ModelSpec, stage: str, suffix: str, cells, covariates, terms
):
    """Beta-binomial log-likelihood of all studies from per-cell sufficient counts.

    sum_k [S_k log(a_c + i_k) + F_k log(b_c + i_k) - T_k log(phi_c + i_k)], c = cell of term k,
    logit mu_c = alpha[group of c] + covariates[c] . beta (see
    :class:`bayesreview.model_data.Tabulated`); exact up to the binomial coefficients. Evaluated
    with its gradient in one pass by :class:`bayesreview.backend.ops.TabulatedBetaBinomial`.
    """
    alpha, log_phi = _beta_binomial_parameters(data, spec, stage, suffix)
    beta = _bias_coefficients(data, spec, stage, suffix)
    beta = pt.zeros(0) if beta is None else pt.atleast_1d(beta)
    return TabulatedBetaBinomial()(alpha, log_phi, beta, cells, covariates, *terms)[0]


def _logit_normal_scale(data: ModelData, spec: ModelSpec, stage: str, suffix: str):
    """tau per group, pooled as the spec says."""
    if spec.heterogeneity == "partial_pooling":
        log_tau = _log_scale_per_group(
            data, spec, stage, suffix, "log_tau", ("log_tau", "log_tau_sd")
        )
        return pm.Deterministic(f"tau{suffix}", pt.exp(log_tau), dims="group")
    if spec.heterogeneity == "per_modality":
        return group_variable(data, spec.prior("tau", stage), f"tau{suffix}")
    tau_shared = prior_variable(spec.prior("tau", stage), f"tau_shared{suffix}")
    return pm.Deterministic(f"tau{suffix}", tau_shared * pt.ones(data.n_groups), dims="group")


def coords_of(data: ModelData, spec: ModelSpec) -> dict[str, list]:
    """Coordinates (dimension labels) of the model's variables."""
    coords: dict[str, list] = {"group": list(data.groups)}
    if data.bias is not None and data.bias.kind == "categorical":
        coords["bias_level"] = list(data.bias.levels[1:])
        coords["level"] = list(data.bias.levels)
    if spec.selection is not None:
        coords["selection_class"] = list(SELECTION_CLASSES)
    return coords


def _row_data(name: str, values: np.ndarray):
    """A ``pm.Data`` container with one value per row (or tabulated cell or term), its length
    read at run time: one compiled model serves data sets of any number of studies."""
    return pm.Data(name, values)


def _missing_levels(data: ModelData):
    """(log pi, totals) where some rows' categorical bias level is missing, else None.

    With known level totals the missing levels are marginalised over the assignments
    consistent with them (``totals``, :func:`known_totals_array`; log pi is 0 and unused);
    otherwise pi ~ Dirichlet(prior counts) and ``totals`` is -1 for every level.
    """
    bias = data.bias
    if bias is None or bias.kind != "categorical" or not bias.n_missing:
        return None
    n_levels = len(bias.levels)
    if bias.known_totals:
        return pt.zeros(n_levels), pm.Data("bias_totals", known_totals_array(data))
    return _level_log_probabilities(bias.prior_counts), _no_totals(n_levels)


def known_totals_array(data: ModelData) -> np.ndarray:
    """The ``bias_totals`` container of a model with known level totals: the totals and the
    states of their recursion, tabulated once per data set rather than at every evaluation
    (:func:`bayesreview.known_totals.packed_states`)."""
    return packed_states(data.bias.totals)


def _level_log_probabilities(prior_counts):
    """log pi, pi ~ Dirichlet(``prior_counts``), sampled on PyMC's simplex scale.

    The sampler's K - 1 coordinates ``z`` (``bias_level_prob_simplex``, reported as
    ``bias_level_prob``) map to ``log pi = log_softmax([z, -sum z])``, the backward map of
    PyMC's ``simplex`` transform. Their density is Dirichlet(pi | a) times the Jacobian
    K prod_k pi_k, that is

        log p(z) = lgamma(sum a) - sum lgamma(a_k) + log K + sum_k a_k log pi_k,

    the same target as ``pm.Dirichlet`` with its default transform, written out (the map
    and its gradient one Op each, :class:`~bayesreview.backend.ops.SimplexLogProbabilities`)
    because PyMC's graph of that density and transform was a third of the missing-level
    model's compiled log-density (107 nodes; 69 with the Ops).
    """
    counts = np.asarray(prior_counts, dtype=float)
    z = pm.Flat(f"{LEVEL_PROBABILITY}_simplex", shape=counts.size - 1)
    log_pi = SimplexLogProbabilities()(z)
    constant = gammaln(counts.sum()) - gammaln(counts).sum() + np.log(counts.size)
    pm.Potential(f"{LEVEL_PROBABILITY}_prior", constant + pt.sum(counts * log_pi))
    pm.Deterministic(LEVEL_PROBABILITY, pt.exp(log_pi), dims="level")
    return log_pi


def _no_totals(n_levels: int):
    """The ``totals`` input of the rows' Ops where no level totals are known: -1 each."""
    return pt.as_tensor_variable(np.full(n_levels, -1, dtype=np.int64))


def _log_selection_weights(data: ModelData, spec: ModelSpec):
    """(log w of each selection class, each row's class) under publication selection: w is
    the class's relative publication probability of a study with no events. Both empty
    without selection."""
    if spec.selection is None:
        return pt.zeros(0), pt.zeros(0, dtype="int64")
    weights = [prior_variable(spec.prior(key), key) for key in SELECTION_CLASSES.values()]
    weight = pm.Deterministic("selection_weight", pt.stack(weights), dims="selection_class")
    return pt.log(weight), _row_data("selection_class", selection_classes(data))


def row_arrays(data: ModelData) -> dict[str, np.ndarray]:
    """Values of the per-row ``pm.Data`` containers of the rows' likelihood, counts apart.

    ``group_idx`` and ``weights``; ``bias_value``, a numeric covariate's values (only with
    one); ``bias_level``, each row's categorical level code (0 where it is missing, and for
    every row without a categorical covariate); ``bias_known``, 1 where the level is given
    (every row without missing levels); and ``zero_row_shift``, a zero per row, the row shift
    of every stage of a model without a numeric covariate. Data rather than constants sized by
    the number of rows: PyTensor compiles each of those into the log density as an array
    allocated at run time.
    """
    n_rows = len(data.group_idx)
    bias = data.bias
    categorical = bias is not None and bias.kind == "categorical"
    arrays = {"group_idx": data.group_idx, "weights": data.weights.astype(float)}
    if bias is not None and not categorical:
        arrays["bias_value"] = np.asarray(bias.codes, dtype=float)
    else:
        arrays["zero_row_shift"] = np.zeros(n_rows)
    codes = bias.codes if categorical else np.zeros(n_rows, dtype=int)
    arrays["bias_level"] = np.maximum(codes, 0)
    arrays["bias_known"] = (codes >= 0).astype(float)
    return arrays


def _rows_likelihood(data: ModelData, spec: ModelSpec, rows: dict, stages):
    """Weighted per-study log-likelihood of the rows, marginal over missing bias levels.

    Beta-binomial (:class:`bayesreview.backend.ops.BetaBinomialRows`) or binomial-normal with each
    study's effect integrated out (:class:`bayesreview.backend.ops.LogitNormalRows`), evaluated with
    its gradient in one pass. ``rows`` are the containers of :func:`row_arrays`.
    """
    bias = data.bias
    parameters, counts = [], []
    for suffix, y, n in stages:
        stage = "conditional" if suffix else "marginal"
        if spec.likelihood == "beta_binomial":
            alpha, scale = _beta_binomial_parameters(data, spec, stage, suffix)
        else:
            alpha = group_variable(data, spec.prior("intercept", stage), f"alpha{suffix}")
            scale = _logit_normal_scale(data, spec, stage, suffix)
        parameters += [alpha, scale, *_bias_terms(data, spec, stage, suffix, rows)]
        counts += [y, n]
    categorical = bias is not None and bias.kind == "categorical"
    n_levels = len(bias.levels) if categorical else 1
    log_pi, totals = _missing_levels(data) or (pt.zeros(n_levels), _no_totals(n_levels))
    log_class_w, classes = _log_selection_weights(data, spec)
    rows_op = BetaBinomialRows if spec.likelihood == "beta_binomial" else LogitNormalRows
    return rows_op(len(stages))(
        *parameters, log_pi, log_class_w, rows["group_idx"], *counts, rows["weights"],
        rows["bias_level"], rows["bias_known"], totals, classes,
    )[0]  # fmt: skip


def build_model(data: ModelData, spec: ModelSpec, tabulated: Tabulated | None = None) -> pm.Model:
    """The PyMC model of ``data`` under ``spec``.

    The model's only likelihood term is the ``pm.Potential`` ``loglik``: the weighted sum of
    per-study log-likelihoods (marginal over missing bias levels). Per-study values for LOO and
    posterior predictive draws are computed after sampling (:mod:`bayesreview.quantities`).
    """
    if spec.likelihood not in LIKELIHOODS:
        raise SpecError(f"likelihood: {spec.likelihood!r} has no model builder")
    if spec.likelihood == "logit_normal" and np.any(data.weights > 1):
        raise SpecError(
            "likelihood: logit_normal gives every study its own random effect, so identical "
            "studies cannot be collapsed; fit it with collapse=False"
        )
    if spec.selection is not None and data.joint:
        raise SpecError(
            f"selection: {spec.name!r} models publication selection on one outcome's events; "
            "fit it with outcome 'any', 'complete' or 'partial', not the joint response model"
        )
    if tabulated is not None:
        return _build_tabulated(data, spec, tabulated)
    with pm.Model(coords=coords_of(data, spec)) as model:
        rows = {name: _row_data(name, values) for name, values in row_arrays(data).items()}
        stages = [
            (suffix, _row_data(f"events{suffix}", y), _row_data(f"trials{suffix}", n))
            for suffix, y, n in data.stage_counts()
        ]
        pm.Potential("loglik", _rows_likelihood(data, spec, rows, stages))
    return model


def _build_tabulated(data: ModelData, spec: ModelSpec, tabulated: Tabulated) -> pm.Model:
    """The beta-binomial model from sufficient counts per cell (no missing bias level)."""
    if spec.likelihood != "beta_binomial" or spec.selection is not None:
        raise SpecError(
            f"model {spec.name!r} cannot be fitted from tabulated counts (only the beta-binomial "
            "without publication selection can)"
        )
    with pm.Model(coords=coords_of(data, spec)) as model:
        cells = _row_data("cell_group", tabulated.cell_group)
        covariates = cell_covariates(data, tabulated)
        if data.bias is not None:
            covariates = pm.Data("cell_covariates", covariates)
        total = 0.0
        for suffix, terms in tabulated.terms.items():
            stage = "conditional" if suffix else "marginal"
            containers = [
                _row_data(f"{name}{suffix}", values)
                for name, values in zip(TERM_NAMES, terms, strict=True)
            ]
            total = total + beta_binomial_tabulated_stage(
                data, spec, stage, suffix, cells, covariates, containers
            )
        pm.Potential("loglik", total)
    return model
