"""Robustness checks: how much the headline results move when studies, the handling of
unknown responses, the model or the priors change; and power-scaling prior sensitivity.

(The module is not called ``sensitivity``: ``bayesreview.sensitivity`` is the function.)

:func:`sensitivity` refits the model under each scenario and tabulates the pooled response rate
per modality. Refits of one model structure reuse one compiled model
(:mod:`bayesreview.backend.sampling`): a study is left out by giving it weight 0 (its row
stays, so the data keep their shape), and identical studies are *not* collapsed into weighted
rows (collapsing would change the shape from one leave-one-out refit to the next). Per-study
draws (log-likelihood, replicates) are not computed for refits; only the pooled rates are.

:func:`prior_sensitivity` needs no refit: it power-scales the prior and the likelihood by
importance sampling (Kallioinen et al. 2023, :func:`arviz.psens`).

:func:`bias_analyses` refits an analysis with each bias covariate the study table allows (the
study design; risk of bias, with the published totals where a bundled data set gives them) and
sets the rates side by side, with the notes on what the data cannot identify.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayesreview.data import display_labels, published_totals, validated
from bayesreview.display import selection_note
from bayesreview.errors import BayesReviewError, ConvergenceWarning, WeakIdentificationWarning
from bayesreview.model_data import LEVEL_PROBABILITY, ModelData, model_data
from bayesreview.progress import progress
from bayesreview.spec import ModelSpec, Prior, load_spec, shipped_models

if TYPE_CHECKING:
    from bayesreview.fitting import Fit

__all__ = ["BIAS_ANALYSIS_COLUMNS", "KINDS", "bias_analyses", "prior_sensitivity", "sensitivity"]

#: Kinds of scenario :func:`sensitivity` runs, in table order.
KINDS = ("main", "leave_one_out", "design", "risk_of_bias", "unknown", "model", "prior_scale")

_FIT_KWARGS = ("bias_reference", "bias_prior_counts", "bias_totals", "sampler", "labels")
_COLUMNS = [
    "scenario",
    "kind",
    "outcome",
    "modality",
    "studies",
    "mean_rate",
    "mean_rate_lower",
    "mean_rate_upper",
    "p_best",
]

#: R-hat above which a refit is reported as a problem. Looser than the 1.01 of a main fit:
#: refits run short chains (default 2 x 500 draws) and are read for shifts, not decimals.
RHAT_REFIT_MAX = 1.05

#: Threshold of the power-scaling sensitivity diagnostic (Kallioinen et al. 2023).
PSENS_THRESHOLD = 0.05


# --------------------------------------------------------------------------------------------
# Refitting with weights on a fixed structure
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Scenario:
    name: str
    kind: str
    spec: ModelSpec
    data: ModelData  # uncollapsed, weights set (0 = left out)


def _refit_rates(
    scenario: _Scenario,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
) -> tuple[np.ndarray, list[str]]:
    """Pooled rate draws (S, O, G) at the reference bias level, and convergence problems.

    Calls the backend directly: :func:`bayesreview.backend.sampling.sample` reuses the
    compiled model of this structure and spec, and ``reference_rates`` computes the reported
    rates; nothing per study, and none of the other pooled quantities.
    """
    from bayesreview.backend.sampling import SamplerSettings, sample
    from bayesreview.model_data import tabulated_counts
    from bayesreview.quantities import flat_posterior, reference_rates

    # the model reads the numbers of rows, cells and terms at run time: one compiled model
    tabulated = tabulated_counts(scenario.data, scenario.spec)
    run = SamplerSettings(sampler, draws, tune, chains, seed)
    idata, free = sample(scenario.data, scenario.spec, run, tabulated)
    rates = reference_rates(
        flat_posterior(idata.posterior), scenario.data, scenario.spec.likelihood
    )
    problems = []
    stats_ = idata.sample_stats
    divergent = int(stats_["diverging"].sum()) if "diverging" in stats_ else 0
    if divergent:
        problems.append(f"{divergent} divergent transition(s)")
    if chains > 1:
        names = list(free)
        rhat = az.rhat(idata.posterior[names])
        worst = max(float(np.nanmax(rhat[v].values)) for v in names)
        if not worst <= RHAT_REFIT_MAX:
            problems.append(f"R-hat {worst:.3f}")
    return rates, problems


def _contributing(data: ModelData) -> np.ndarray:
    """Rows that carry data in a refit: weight > 0 and a non-empty denominator."""
    return (data.weights > 0) & (data.trials > 0)


def _rows(scenario: _Scenario, rates: np.ndarray, level: float) -> list[dict[str, Any]]:
    data = scenario.data
    used = _contributing(data)
    counts = np.bincount(data.group_idx[used], minlength=data.n_groups)
    present = np.flatnonzero(counts > 0)
    tail = (1 - level) / 2
    rows = []
    for o, outcome in enumerate(data.reported_outcomes):
        draws = rates[:, o, present]  # (S, G present)
        best = np.bincount(draws.argmax(axis=1), minlength=len(present)) / draws.shape[0]
        lower, median, upper = np.quantile(draws, [tail, 0.5, 1 - tail], axis=0)
        for i, g in enumerate(present):
            rows.append(
                {
                    "scenario": scenario.name,
                    "kind": scenario.kind,
                    "outcome": outcome,
                    "modality": data.groups[g],
                    "studies": int(counts[g]),
                    "mean_rate": float(median[i]),
                    "mean_rate_lower": float(lower[i]),
                    "mean_rate_upper": float(upper[i]),
                    "p_best": float(best[i]),
                }
            )
    return rows


def _weighted(data: ModelData, keep: np.ndarray) -> ModelData:
    return dataclasses.replace(data, weights=np.where(keep, data.weights, 0).astype(np.int64))


def _why_unusable(data: ModelData) -> str | None:
    """Why a scenario's data cannot be fitted meaningfully, or None."""
    used = _contributing(data)
    if not used.any():
        return "no study is left"
    bias = data.bias
    if bias is not None and bias.kind == "categorical" and not (used & (bias.codes == 0)).any():
        return (
            f"no study is left at the reference level {bias.levels[0]!r} of the bias covariate "
            f"{bias.column!r}, so the bias-adjusted rate would rest on the prior alone"
        )
    return None


def _same_model(a: ModelSpec, b: ModelSpec) -> bool:
    return (a.likelihood, a.heterogeneity, dict(a.priors), dict(a.conditional_priors)) == (
        b.likelihood,
        b.heterogeneity,
        dict(b.priors),
        dict(b.conditional_priors),
    )


def _scenarios(
    studies: pd.DataFrame,
    base: ModelData,
    other_unknown: ModelData,
    spec: ModelSpec,
    outcome: str,
    kinds: set[str],
    prior_scales: Iterable[float],
    leave_out: Iterable[str] | None = None,
) -> tuple[list[_Scenario], dict[str, str]]:
    """The scenarios to fit, and those skipped with the reason."""
    scenarios = [_Scenario("main", "main", spec, base)]
    skipped: dict[str, str] = {}

    def add(name: str, kind: str, spec_: ModelSpec, data: ModelData) -> None:
        why = _why_unusable(data)
        if why:
            skipped[name] = why
        else:
            scenarios.append(_Scenario(name, kind, spec_, data))

    if "leave_one_out" in kinds:
        labels = list(base.study)
        modality = [base.groups[g] for g in base.group_idx]
        chosen = set(labels) if leave_out is None else set(leave_out)
        missing = sorted(chosen - set(labels))
        if missing:
            raise BayesReviewError(
                f"leave_out: no study {', '.join(map(repr, missing))} in the study table"
            )
        for j, label in enumerate(labels):
            if label not in chosen:
                continue
            name = f"leave out {label}"
            if labels.count(label) > 1:
                name += f" ({modality[j]})"
            keep = np.ones(base.n_rows, dtype=bool)
            keep[j] = False
            add(name, "leave_one_out", spec, _weighted(base, keep))

    if "design" in kinds:
        name = "exclude case reports and conference abstracts"
        if "design" not in studies and "conference_abstract" not in studies:
            skipped[name] = "the study table has neither a design nor a conference_abstract column"
        else:
            keep = np.ones(base.n_rows, dtype=bool)
            if "design" in studies:
                keep &= (
                    (studies["design"].astype("string") != "case_report")
                    .fillna(True)
                    .to_numpy(dtype=bool)
                )
            if "conference_abstract" in studies:
                abstract = studies["conference_abstract"].astype("boolean").fillna(False)
                keep &= ~abstract.to_numpy(dtype=bool)
            add(name, "design", spec, _weighted(base, keep))

    if "risk_of_bias" in kinds:
        name = "exclude high risk of bias"
        rating = (
            studies["risk_of_bias"].astype("string")
            if "risk_of_bias" in studies
            else pd.Series(pd.NA, index=studies.index, dtype="string")
        )
        if rating.isna().all():
            skipped[name] = (
                "no study has a risk-of-bias rating (per-study ratings are not published for "
                "this review)"
            )
        elif not (rating == "high").any():
            skipped[name] = "no study is rated at high risk of bias"
        else:
            keep = (rating != "high").fillna(True).to_numpy(dtype=bool)
            add(name, "risk_of_bias", spec, _weighted(base, keep))

    if "unknown" in kinds:
        words = {"exclude": "excluded from denominators", "failure": "counted as failures"}
        add(f"unknown responses {words[other_unknown.unknown]}", "unknown", spec, other_unknown)

    if "model" in kinds:
        for model in shipped_models():
            other = load_spec(model)
            if other.structure != spec.structure:
                continue  # the network model reads rows as arms, not as studies
            if other.outcome not in (None, outcome) or _same_model(other, spec):
                continue
            if other.selection is not None and outcome == "response":
                continue  # selection acts on one outcome's events
            words = " (publication selection by response)" if other.selection else ""
            add(f"model {model}{words}", "model", other, base)

    if "prior_scale" in kinds:
        for factor in prior_scales:
            add(f"prior scales x{factor:g}", "prior_scale", spec.scaled_priors(factor), base)

    return scenarios, skipped


def sensitivity(
    studies: pd.DataFrame,
    outcome: str = "any",
    model: str | ModelSpec = "beta_binomial",
    by: str = "modality",
    bias: str | None = None,
    scenarios: Iterable[str] | None = None,
    prior_scales: Iterable[float] = (0.5, 2.0),
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
    seed: int = 0,
    progressbar: bool = True,
    unknown: str = "failure",
    level: float = 0.95,
    leave_out: Iterable[str] | None = None,
    **fit_kwargs: Any,
) -> pd.DataFrame:
    """Headline results under alternative analyses: a tidy table, one row per scenario x outcome
    x modality.

    Scenarios (``kind`` in parentheses):

    - ``main`` (main): the analysis as specified (fitted like every refit: uncollapsed rows, same
      draws and seed, so it can differ from :func:`bayesreview.fit` by Monte Carlo error);
    - ``leave out <study>`` (leave_one_out): each study left out in turn (weight 0);
    - ``exclude case reports and conference abstracts`` (design): only studies whose ``design``
      is not ``case_report`` and that are not conference abstracts;
    - ``exclude high risk of bias`` (risk_of_bias): only where some study is rated;
    - ``unknown responses excluded from denominators`` / ``... counted as failures`` (unknown):
      the other handling of unknown responses;
    - ``model <name>`` (model): each other shipped model usable for ``outcome``
      (``beta_binomial``, ``logit_normal``; ``response`` only for ``outcome="response"``);
    - ``prior scales x<factor>`` (prior_scale): every prior's scale multiplied by each factor
      (:meth:`ModelSpec.scaled_priors`).

    Every refit uses the same seed (common random numbers), so differences between scenarios
    are not inflated by Monte Carlo noise more than necessary.

    Parameters
    ----------
    studies
        Study table (validated with :func:`bayesreview.read_studies` unless it already is).
    outcome, model, by, bias, unknown
        As for :func:`bayesreview.fit`; defaults ``"any"``, ``"beta_binomial"``,
        ``"modality"``, None, ``"failure"``.
    scenarios
        Kinds to run, from :data:`KINDS`; default None runs all. ``main`` always runs.
    prior_scales
        Factors of the prior grid; default (0.5, 2.0).
    draws, tune, chains
        Per refit; defaults 500, 500, 2.
    seed
        Seed of every refit; default 0.
    progressbar
        Show a progress bar of the refits (on a terminal only; the sampler's own bar is never
        shown for refits); default True.
    level
        Mass of the equal-tailed credible intervals; default 0.95.
    leave_out
        Study labels to leave out one at a time; default None: every study.
    **fit_kwargs
        ``bias_reference``, ``bias_prior_counts``, ``bias_totals``, ``sampler`` as for
        :func:`bayesreview.fit`.

    Returns
    -------
    pandas.DataFrame
        Columns ``scenario``, ``kind``, ``outcome``, ``modality``, ``studies`` (studies that
        carry data: not left out and with a non-empty denominator), ``mean_rate``,
        ``mean_rate_lower``, ``mean_rate_upper`` (the population mean rate at the reference bias
        level, 0-1 scale) and ``p_best`` (probability that the modality's rate is the highest among
        the modalities present in that scenario). A modality left without studies in a
        scenario has no row there. ``.attrs["skipped"]`` maps each scenario not run to the
        reason; ``.attrs["problems"]`` maps scenarios with sampling problems to them.

    Warns
    -----
    ConvergenceWarning
        When some refit had divergences or R-hat > 1.05 (:data:`RHAT_REFIT_MAX`; the
        scenarios are named).
    """
    from bayesreview.backend.sampling import default_sampler

    unexpected = sorted(set(fit_kwargs) - set(_FIT_KWARGS))
    if unexpected:
        raise BayesReviewError(
            f"sensitivity: unexpected argument(s) {', '.join(unexpected)}; "
            f"it passes on {', '.join(_FIT_KWARGS)}"
        )
    kinds = set(KINDS) if scenarios is None else {"main", *scenarios}
    wrong = sorted(kinds - set(KINDS))
    if wrong:
        raise BayesReviewError(
            f"scenarios: unknown kind(s) {', '.join(wrong)}; choose from {', '.join(KINDS)}"
        )
    if unknown not in ("failure", "exclude"):
        raise BayesReviewError(f"unknown={unknown!r}: must be 'failure' or 'exclude'")
    for name, value, least in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if not isinstance(value, int | np.integer) or value < least:
            raise BayesReviewError(f"{name}={value!r}: must be a whole number >= {least}")
    if not 0 < level < 1:
        raise BayesReviewError(f"level={level!r}: must be between 0 and 1")
    prior_scales = tuple(prior_scales)
    labels = display_labels(studies, fit_kwargs.pop("labels", None))
    studies = validated(studies)
    spec = load_spec(model)
    sampler = fit_kwargs.get("sampler") or default_sampler()
    common = (
        by,
        bias,
        fit_kwargs.get("bias_reference"),
        fit_kwargs.get("bias_prior_counts"),
    )
    totals = fit_kwargs.get("bias_totals")
    if totals == "dataset":
        totals = published_totals(studies, bias)
    base = model_data(studies, outcome, *common, unknown, bias_totals=totals)
    other = model_data(
        studies,
        outcome,
        *common,
        "exclude" if unknown == "failure" else "failure",
        bias_totals=totals,
    )
    todo, skipped = _scenarios(studies, base, other, spec, outcome, kinds, prior_scales, leave_out)

    rows: list[dict[str, Any]] = []
    problems: dict[str, list[str]] = {}
    with progress(len(todo), "sensitivity refits", progressbar) as advance:
        for scenario in todo:
            rates, trouble = _refit_rates(scenario, sampler, draws, tune, chains, int(seed))
            if trouble:
                problems[scenario.name] = trouble
            rows.extend(_rows(scenario, rates, level))
            advance()
    table = pd.DataFrame(rows, columns=_COLUMNS)
    table.attrs["labels"] = labels
    table.attrs["skipped"] = skipped
    table.attrs["problems"] = problems
    if problems:
        listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in list(problems.items())[:5])
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        warnings.warn(
            f"sampling problems in {len(problems)} sensitivity refit(s) ({listed}{more}). "
            "Increase draws and tune, or look at those scenarios with bayesreview.fit.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return table


# --------------------------------------------------------------------------------------------
# Power-scaling prior sensitivity
# --------------------------------------------------------------------------------------------

_PRIOR_KEY = {
    "alpha": "intercept",
    "beta": "bias",
    "log_phi": "log_concentration",
    "log_phi_sd": "log_concentration_sd",
    "log_tau": "log_tau",
    "log_tau_sd": "log_tau_sd",
    "tau": "tau",
    "tau_shared": "tau",
}
#: The partial-pooling values of each group's log scale: standard normal deviations (see
#: :func:`bayesreview.model_data.anchor_groups`).
_POOLED_RAW = ("log_phi_raw", "log_tau_raw")
#: Where a data-dominated group anchors the pooled location (its log scale sampled directly),
#: the prior density is the location's prior at the derived location.
_ANCHORS = {"log_phi_anchor": "log_phi"}


def _split(name: str) -> tuple[str, str]:
    if name.endswith("_cond"):
        return name[: -len("_cond")], "conditional"
    return name, "marginal"


def log_prior(fit: Fit) -> xr.Dataset:
    """Log prior density of each posterior draw, per free parameter (summed over its elements).

    Densities are those of the model specification on the parameters' own scale (e.g. the
    half-normal of ``log_phi_sd``), the partial-pooling values ``log_phi_raw``/``log_tau_raw``
    (standard normal), the anchored location's prior at its derived value, and the
    Dirichlet of ``bias_level_prob``. The logit-normal model's study effects are integrated
    out of its likelihood, so they are no parameters here.

    Returns
    -------
    xarray.Dataset
        One variable per parameter, dims (chain, draw).
    """
    posterior = fit.idata.posterior
    out = {}
    for name in fit.settings["free_vars"]:
        base, stage = _split(name)
        values = posterior[name]
        sample_dims = ("chain", "draw")
        if base in _POOLED_RAW:
            logpdf = stats.norm.logpdf(values.values)
        elif base in _ANCHORS:
            location = posterior[name.replace(base, _ANCHORS[base])].values
            logpdf = fit.spec.prior(_PRIOR_KEY[_ANCHORS[base]], stage).logpdf(location)
        elif base in _PRIOR_KEY:
            prior: Prior = fit.spec.prior(_PRIOR_KEY[base], stage)
            logpdf = prior.logpdf(values.values)
        elif base == LEVEL_PROBABILITY:
            alpha = np.asarray(fit.data.bias.prior_counts, dtype=float)
            x = values.values.reshape(-1, len(alpha))
            flat = np.array([stats.dirichlet.logpdf(row / row.sum(), alpha) for row in x])
            logpdf = flat.reshape(values.shape[:2])
        else:
            raise BayesReviewError(f"prior_sensitivity: no prior known for parameter {name!r}")
        logpdf = np.asarray(logpdf, dtype=float)
        extra = tuple(range(2, logpdf.ndim))
        total = logpdf.sum(axis=extra) if extra else logpdf
        out[name] = xr.DataArray(
            total, dims=sample_dims, coords={d: posterior[d].values for d in sample_dims}
        )
    return xr.Dataset(out)


def _element_label(name: str, array: xr.DataArray, index: tuple) -> str:
    if not index:
        return name
    parts = [str(array[d].values[i]) for d, i in zip(array.dims, index, strict=True)]
    return f"{name}[{', '.join(parts)}]"


def prior_sensitivity(fit: Fit, var_names: list[str] | None = None) -> pd.DataFrame:
    """Power-scaling sensitivity of the posterior to the prior and to the likelihood.

    Following Kallioinen et al. (2023), the prior (all priors jointly) and the likelihood (the
    per-study marginal log-likelihood in ``log_likelihood``, summed over the in-sample studies:
    those with weight 0 are not in the likelihood) are each raised to a power near 1
    by Pareto-smoothed importance weighting, and the change in each parameter's posterior is
    measured (cumulative Jensen-Shannon distance per unit log power; :func:`arviz.psens`).

    Parameters
    ----------
    fit
        A fitted model.
    var_names
        Posterior variables to report; default the model parameters (without the
        partial-pooling values ``*_raw`` and anchors) and the pooled rate ``rate``.

    Returns
    -------
    pandas.DataFrame
        One row per scalar element: ``parameter`` (e.g. ``alpha[topical_sts]``), ``prior``
        and ``likelihood`` (the sensitivities) and ``diagnosis``: ``"prior-data conflict"``
        when both exceed 0.05, ``"strong prior / weak likelihood"`` when the prior's does and
        the likelihood's does not, else ``"-"``.
    """
    from bayesreview.checks import in_sample

    if "log_likelihood" not in fit.idata:
        raise BayesReviewError(
            "prior_sensitivity: this fit has no per-study log-likelihood (it is not stored "
            "above bayesreview.fitting.MAX_STUDIES_FOR_STUDY_DRAWS studies)"
        )
    keep = np.flatnonzero(in_sample(fit))
    if keep.size == 0:
        raise BayesReviewError("prior_sensitivity: every study of this fit has weight 0")
    idata = az.InferenceData(
        posterior=fit.idata.posterior,
        # studies with weight 0 are not in the likelihood: their stored log-likelihood is an
        # out-of-sample predictive density, which power-scaling the likelihood must not scale
        log_likelihood=fit.idata.log_likelihood.isel(study=keep),
        log_prior=log_prior(fit),
    )
    if var_names is None:
        var_names = []
        for name in fit.idata.posterior.data_vars:
            base, _ = _split(name)
            if name.endswith("__") or base in (*_POOLED_RAW, *_ANCHORS):
                continue
            if name in fit.settings["free_vars"] or base in ("phi", "tau"):
                var_names.append(name)
        var_names.append("rate")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sens = {
            component: az.psens(idata, component=component, var_names=var_names)
            for component in ("prior", "likelihood")
        }
    rows = []
    for name in var_names:
        prior_values = sens["prior"][name]
        like_values = sens["likelihood"][name]
        for index in np.ndindex(prior_values.shape):
            p, lk = float(prior_values.values[index]), float(like_values.values[index])
            if p > PSENS_THRESHOLD and lk > PSENS_THRESHOLD:
                diagnosis = "prior-data conflict"
            elif p > PSENS_THRESHOLD:
                diagnosis = "strong prior / weak likelihood"
            else:
                diagnosis = "-"
            rows.append(
                {
                    "parameter": _element_label(name, prior_values, index),
                    "prior": p,
                    "likelihood": lk,
                    "diagnosis": diagnosis,
                }
            )
    return pd.DataFrame(rows, columns=["parameter", "prior", "likelihood", "diagnosis"])


# --------------------------------------------------------------------------------------------
# The bias analyses: the same fit with the study design, and with risk of bias
# --------------------------------------------------------------------------------------------

#: Columns of :func:`bias_analyses`.
BIAS_ANALYSIS_COLUMNS = (
    "analysis outcome modality adjusted_to mean_rate mean_rate_lower mean_rate_upper "
    "mix_rate mix_rate_lower mix_rate_upper note sampling"
).split()


#: Name of the publication-selection analysis in :func:`bias_analyses`.
SELECTION_ANALYSIS = "publication selection"


def _bias_variants(fit: Fit) -> list[tuple[str, dict[str, Any]]]:
    """(name, fit arguments) of each covariate analysis the study table allows, then the
    publication-selection analysis: the same model with selection by response (for the joint
    response model, its first stage fitted to any response alone)."""
    studies = fit.studies
    variants = []
    if "design" in studies and studies["design"].dropna().nunique() > 1:
        variants.append(("design", {"bias": "design"}))
    if "risk_of_bias" in studies:
        totals = studies.attrs.get("metadata", {}).get("risk_of_bias_totals")
        arguments: dict[str, Any] = {"bias": "risk_of_bias"}
        if totals is not None:
            arguments["bias_totals"] = "dataset"
        name = "risk_of_bias (known totals)" if totals is not None else "risk_of_bias"
        if studies["risk_of_bias"].notna().any() or totals is not None:
            variants.append((name, arguments))
    if fit.data.joint:  # selection acts on one outcome's events: that of any response
        single = dataclasses.replace(fit.spec, outcome=None, conditional_priors={})
        variants.append((SELECTION_ANALYSIS, {"model": single.with_selection(), "outcome": "any"}))
    else:
        variants.append((SELECTION_ANALYSIS, {"model": fit.spec.with_selection()}))
    return variants


def _rate_rows(name: str, result: Fit, note: str, sampling: str) -> list[dict[str, Any]]:
    reference = result.summary(adjusted=True)
    own = result.summary(adjusted=False).set_index(["outcome", "modality"])
    rows = []
    for row in reference.itertuples():
        mix = own.loc[(row.outcome, row.modality)]
        rows.append(
            {
                "analysis": name,
                "outcome": row.outcome,
                "modality": row.modality,
                "adjusted_to": row.adjusted_to,
                "mean_rate": row.mean_rate,
                "mean_rate_lower": row.mean_rate_lower,
                "mean_rate_upper": row.mean_rate_upper,
                "mix_rate": mix["mean_rate"],
                "mix_rate_lower": mix["mean_rate_lower"],
                "mix_rate_upper": mix["mean_rate_upper"],
                "note": note,
                "sampling": sampling,
            }
        )
    return rows


def bias_analyses(fit: Fit, progressbar: bool = False) -> pd.DataFrame:
    """The pooled rates of ``fit`` next to the same analysis with each bias covariate.

    ``fit`` is the analysis without a covariate; it is refitted (same model, settings and seed)
    with the study design (where the table has a ``design`` column with two or more levels),
    with ``risk_of_bias`` (where the table has the column; with the published totals,
    exactly, where a bundled data set gives them, :func:`bayesreview.fit`'s ``bias_totals``)
    and with publication selection by response (:meth:`bayesreview.ModelSpec.with_selection`;
    analysis ``"publication selection"``, whose ``note`` gives the selection weights,
    :func:`bayesreview.display.selection_note`; for the joint response model, any response
    only, so that analysis has no rows for complete and partial response).

    Returns
    -------
    pandas.DataFrame
        :data:`BIAS_ANALYSIS_COLUMNS`: per analysis (``"none"`` first), outcome and modality,
        the mean rate at the reference level (``mean_rate``, with its 95% interval) and
        averaged over the modality's own studies (``mix_rate``), what the rates are adjusted
        to, ``note``: why the reference-level rates rest on the prior where they do
        (:meth:`bayesreview.Fit.weak_identification`), else empty, and ``sampling``: the
        refit's convergence problems (:meth:`~bayesreview.Fit.convergence_problems`), else
        empty; neither is warned about.
        ``.attrs["identification"]`` maps each covariate analysis to
        :meth:`~bayesreview.Fit.bias_identification` (the selection analysis to
        :meth:`~bayesreview.Fit.selection_identification`).
    """
    from bayesreview.fitting import fit as refit
    from bayesreview.living import fit_arguments

    if fit.data.bias is not None:
        raise BayesReviewError("bias_analyses: give the fit without a bias covariate")
    rows = _rate_rows("none", fit, "", "; ".join(fit.convergence_problems()))
    identification = {}
    arguments = fit_arguments(fit)
    for name, extra in _bias_variants(fit):
        with warnings.catch_warnings():  # both are reported in the table instead
            warnings.simplefilter("ignore", WeakIdentificationWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = refit(fit.studies, progressbar=progressbar, **{**arguments, **extra})
        sampling = "; ".join(result.convergence_problems())
        if name == SELECTION_ANALYSIS:
            note = selection_note(result)
            identification[name] = result.selection_identification()
        else:
            note = result.weak_identification() or ""
            identification[name] = result.bias_identification()
        rows.extend(_rate_rows(name, result, note, sampling))
    table = pd.DataFrame(rows, columns=BIAS_ANALYSIS_COLUMNS)
    table.attrs["identification"] = identification
    return table
