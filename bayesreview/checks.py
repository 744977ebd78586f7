"""Model checking: PSIS-LOO with influential studies named, model comparison, and posterior
predictive checks with Bayesian p-values.

Every function reads the fit's ``InferenceData``: ``log_likelihood["events"]`` (one value per
study, the study's random effect integrated out), ``posterior_predictive["events"]`` (and
``"events_cond"``, complete among responders, for ``outcome="response"``), ``observed_data``
and ``constant_data["trials"]``.

Only in-sample studies enter these checks: a study with ``constant_data["weights"] == 0``
(left out of the likelihood, as in a leave-one-study-out refit ``fit(..., weights=...)``) keeps
its row, log-likelihood and replicates in the fit (its out-of-sample predictive density), but
is left out of LOO, of the posterior predictive statistics and of model comparison
(:func:`in_sample`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import arviz as az
import numpy as np
import pandas as pd

from bayesreview.errors import BayesReviewError

if TYPE_CHECKING:
    from bayesreview.fitting import Fit

__all__ = [
    "PARETO_K_THRESHOLD",
    "PPC_STATISTICS",
    "TIE_TOLERANCE",
    "InfluentialStudyWarning",
    "compare_models",
    "in_sample",
    "influential_studies",
    "loo",
    "ppc",
    "ppc_p_value",
    "ppc_stages",
]

#: Pareto k above which PSIS-LOO's estimate for a study is unreliable (Vehtari et al. 2017/2024
#: use 0.7 for the usual S > 2000 draws).
PARETO_K_THRESHOLD = 0.7


class InfluentialStudyWarning(UserWarning):
    """PSIS-LOO found studies whose removal would change the posterior too much to estimate
    their leave-one-out predictive density reliably (Pareto k > 0.7)."""


# --------------------------------------------------------------------------------------------
# PSIS-LOO
# --------------------------------------------------------------------------------------------


def _idata(fit: Fit | az.InferenceData) -> az.InferenceData:
    return fit if isinstance(fit, az.InferenceData) else fit.idata


def in_sample(fit: Fit | az.InferenceData) -> np.ndarray:
    """Which studies are in the likelihood: a boolean mask over the fit's studies.

    A study is in-sample unless its weight is 0 (``constant_data["weights"]``, else
    ``fit.data.weights``; a fit without weights has every study in-sample).

    Parameters
    ----------
    fit
        A fit, or its InferenceData.

    Returns
    -------
    numpy.ndarray
        Boolean, one per study in the order of the fit's ``study`` coordinate.
    """
    idata = _idata(fit)
    if "constant_data" in idata and "weights" in idata.constant_data:
        weights = np.asarray(idata.constant_data["weights"].values)
    elif not isinstance(fit, az.InferenceData) and getattr(fit, "data", None) is not None:
        weights = np.asarray(fit.data.weights)
    else:
        for group in ("observed_data", "log_likelihood", "posterior_predictive"):
            if group in idata and "study" in idata[group].dims:
                return np.ones(idata[group].sizes["study"], dtype=bool)
        raise BayesReviewError("the fit has no study dimension")
    return weights > 0


def _psis_loo(fit: Fit) -> az.ELPDData:
    """az.loo over the in-sample studies, with its own Pareto-k warning silenced (ours names
    the studies)."""
    idata = fit.idata
    if "log_likelihood" not in idata or "events" not in idata.log_likelihood:
        raise BayesReviewError(
            "this fit has no per-study log-likelihood (log_likelihood['events']); it is not "
            "stored above bayesreview.fitting.MAX_STUDIES_FOR_STUDY_DRAWS studies"
        )
    keep = in_sample(fit)
    if not keep.any():
        raise BayesReviewError("every study of this fit has weight 0: nothing to compute LOO on")
    subset = az.InferenceData(
        posterior=idata.posterior,
        log_likelihood=idata.log_likelihood[["events"]].isel(study=np.flatnonzero(keep)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return az.loo(subset, pointwise=True, var_name="events")


def _influential(fit: Fit, elpd: az.ELPDData, threshold: float) -> pd.DataFrame:
    k = np.asarray(elpd.pareto_k.values, dtype=float)
    rows = np.flatnonzero(in_sample(fit))
    studies = [str(s) for s in fit.idata.log_likelihood["events"].study.values[rows]]
    if "group_idx" in fit.idata.constant_data:
        idx = np.asarray(fit.idata.constant_data["group_idx"].values, dtype=int)[rows]
        modality = [fit.groups[i] for i in idx]
    else:  # pragma: no cover - every bayesreview fit stores group_idx
        modality = [None] * len(studies)
    table = pd.DataFrame({"study": studies, "modality": modality, "pareto_k": k})
    table = table[table["pareto_k"] > threshold]
    return table.sort_values("pareto_k", ascending=False, kind="stable").reset_index(drop=True)


def influential_studies(fit: Fit, threshold: float = PARETO_K_THRESHOLD) -> pd.DataFrame:
    """In-sample studies whose PSIS-LOO Pareto k exceeds ``threshold``.

    Parameters
    ----------
    fit
        A fitted model.
    threshold
        Pareto k above which a study is listed; default 0.7.

    Returns
    -------
    pandas.DataFrame
        ``study``, ``modality``, ``pareto_k``, largest k first (empty when none exceeds it).
    """
    return _influential(fit, _psis_loo(fit), threshold)


def loo(fit: Fit, pointwise: bool = False) -> az.ELPDData:
    """PSIS-LOO expected log predictive density, one data point per in-sample study.

    Studies with weight 0 (left out of the likelihood, :func:`in_sample`) are not data points:
    ``n_data_points`` is the number of in-sample studies.

    Parameters
    ----------
    fit
        A fitted model.
    pointwise
        Keep the per-study values (``loo_i``, ``pareto_k``, over dim ``study``: the in-sample
        studies) in the result; default False.

    Returns
    -------
    arviz.ELPDData
        ``elpd_loo``, ``se``, ``p_loo``, ... as :func:`arviz.loo` returns them (log scale).

    Warns
    -----
    InfluentialStudyWarning
        (a ``UserWarning`` subclass defined here) when any study's Pareto k > 0.7, naming the
        studies and their k. With case reports this is expected: leaving out a study that is the
        only one (or one of few) of its modality changes that modality's posterior a lot. The
        beta-binomial likelihood already integrates each study's own rate out; where k stays
        high, use exact leave-one-study-out (:func:`bayesreview.robustness.sensitivity`) or
        K-fold cross-validation rather than PSIS-LOO.
    """
    elpd = _psis_loo(fit)
    bad = _influential(fit, elpd, PARETO_K_THRESHOLD)
    if len(bad):
        listed = ", ".join(
            f"{row.study} ({row.modality}, k = {row.pareto_k:.2f})" for row in bad.itertuples()
        )
        warnings.warn(
            f"PSIS-LOO is unreliable for {len(bad)} of {elpd.n_data_points} studies with Pareto "
            f"k > {PARETO_K_THRESHOLD}: {listed}. Such studies are influential: removing one "
            "changes its modality's posterior too much for importance sampling. This is "
            "expected with case reports and modalities of one or two studies. The per-study "
            "likelihood is already marginal over the study's own rate (beta-binomial exactly, "
            "logit-normal by quadrature), the usual remedy for high k, so refit without each "
            "flagged study instead (exact leave-one-study-out: "
            "bayesreview.robustness.sensitivity) or use K-fold cross-validation, and do not "
            "rank models on elpd_loo alone.",
            InfluentialStudyWarning,
            stacklevel=2,
        )
    if not pointwise:
        elpd = az.ELPDData(elpd.drop(["loo_i", "pareto_k"]))
    return elpd


# --------------------------------------------------------------------------------------------
# Model comparison
# --------------------------------------------------------------------------------------------


def _same_data(first, second) -> str | None:
    """Why two fits' observed data differ, or None when they are the same."""
    a, b = first.idata.observed_data, second.idata.observed_data
    if set(a.data_vars) != set(b.data_vars):
        return (
            f"they model different outcomes (observed variables {sorted(a.data_vars)} vs "
            f"{sorted(b.data_vars)}; a joint outcome='response' fit's likelihood also holds "
            "the complete-given-any stage)"
        )
    sa, sb = list(a["events"].study.values), list(b["events"].study.values)
    if sa != sb:
        only = sorted(set(map(str, sa)) ^ set(map(str, sb)))
        detail = f"studies in one only: {', '.join(only[:5])}" if only else "in another order"
        return f"they were fitted to different studies ({detail})"
    for name in a.data_vars:
        if not np.array_equal(a[name].values, b[name].values):
            rows = np.flatnonzero(a[name].values != b[name].values)
            where = ", ".join(str(sa[r]) for r in rows[:5])
            return f"their observed {name!r} differ (studies {where})"
    ta, tb = first.idata.constant_data["trials"].values, second.idata.constant_data["trials"].values
    if not np.array_equal(ta, tb):
        rows = np.flatnonzero(ta != tb)
        where = ", ".join(str(sa[r]) for r in rows[:5])
        return (
            f"their denominators differ (studies {where}); were they fitted with different "
            "unknown= settings?"
        )
    wa, wb = in_sample(first), in_sample(second)
    if not np.array_equal(wa, wb):
        rows = np.flatnonzero(wa != wb)
        where = ", ".join(str(sa[r]) for r in rows[:5]) + (" ..." if len(rows) > 5 else "")
        return (
            f"they were fitted with different study weights (studies left out of the "
            f"likelihood, weight 0, in one fit only: {where}), so their in-sample data differ"
        )
    return None


def compare_models(fits: dict[str, Fit]) -> pd.DataFrame:
    """Rank models fitted to the same studies and outcome by PSIS-LOO (:func:`arviz.compare`).

    Parameters
    ----------
    fits
        Model name -> fit, at least two. Every fit must have the same observed data: the same
        studies in the same order, outcome, events and denominators, and the same study
        weights (the same studies left out of the likelihood, if any).

    Returns
    -------
    pandas.DataFrame
        One row per model, best first: ``model``, ``rank``, ``elpd_loo``, ``p_loo``,
        ``elpd_diff`` (to the best), ``weight`` (stacking), ``se``, ``dse``, ``warning``
        (True where some Pareto k > 0.7), ``scale`` ("log").

    Raises
    ------
    BayesReviewError
        With fewer than two fits, or when two fits were not fitted to the same data or weights
        (the message says what differs).

    Warns
    -----
    InfluentialStudyWarning
        Per model, as :func:`loo`.
    """
    if not isinstance(fits, dict) or len(fits) < 2:
        raise BayesReviewError("compare_models needs a dict of at least two fits: name -> Fit")
    names = list(fits)
    for name in names:
        if not hasattr(fits[name], "idata"):
            raise BayesReviewError(f"compare_models: fits[{name!r}] is not a bayesreview Fit")
    first = fits[names[0]]
    for name in names[1:]:
        why = _same_data(first, fits[name])
        if why:
            raise BayesReviewError(
                f"cannot compare {names[0]!r} and {name!r} by LOO: {why}. LOO compares models "
                "of the same data only."
            )
    elpds = {}
    for name in names:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InfluentialStudyWarning)
            elpds[name] = loo(fits[name], pointwise=True)
        for w in caught:
            warnings.warn(f"model {name!r}: {w.message}", w.category, stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare(elpds, ic="loo")
    return table.rename_axis("model").reset_index()


# --------------------------------------------------------------------------------------------
# Posterior predictive checks
# --------------------------------------------------------------------------------------------

#: Test statistics of :func:`ppc`, in their order in the table.
PPC_STATISTICS = ("zero_event_studies", "all_event_studies", "rate_sd")


def _statistics(events: np.ndarray, trials: np.ndarray) -> dict[str, np.ndarray]:
    """Test statistics over the last axis (studies); studies with trials == 0 are left out.

    ``rate_sd`` is the SD (divisor = number of studies with trials > 0) of events / trials.
    Every statistic is NaN where no study has trials > 0.
    """
    events = np.asarray(events, dtype=float)
    trials = np.broadcast_to(np.asarray(trials, dtype=float), events.shape)
    has = trials > 0
    count = has.sum(axis=-1)
    rate = np.where(has, events / np.where(has, trials, 1.0), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = rate.sum(axis=-1) / count
        var = np.where(has, (rate - mean[..., None]) ** 2, 0.0).sum(axis=-1) / count
    defined = count > 0
    return {
        "zero_event_studies": np.where(defined, (has & (events == 0)).sum(axis=-1), np.nan),
        "all_event_studies": np.where(defined, (has & (events == trials)).sum(axis=-1), np.nan),
        "rate_sd": np.where(defined, np.sqrt(var), np.nan),
    }


#: Relative and absolute tolerance within which a replicated statistic counts as equal to the
#: observed one in :func:`ppc_p_value` (so that floating-point rounding does not break ties).
TIE_TOLERANCE = 1e-12


def ppc_p_value(t_rep: np.ndarray | Sequence[float], t_obs: float) -> tuple[float, float]:
    """Tie-aware posterior predictive p-value of a statistic: the mid-p value.

    Integer statistics (numbers of zero-event or all-event studies) often take the observed
    value in many replicates. The mid-p value counts a tie as half above and half below
    (Lancaster 1961; the posterior predictive p-value of Gelman, Meng and Stern 1996 with ties
    split evenly):

    ``p = P(T_rep > T_obs) + 0.5 * P(T_rep = T_obs)``, and
    ``p_two_sided = min(1, 2 * min(p, 1 - p))``.

    A statistic that every replicate reproduces exactly has p = 0.5 and two-sided p = 1; p near
    0 says the observed value is larger than the model's replicates, near 1 smaller. For a
    continuous statistic (no ties) this is the usual P(T_rep > T_obs).

    Parameters
    ----------
    t_rep
        The statistic in each posterior predictive replicate; non-finite values (replicates
        where it is undefined) are left out.
    t_obs
        The statistic of the observed data.

    Returns
    -------
    tuple of float
        ``(p, p_two_sided)``; both NaN when ``t_obs`` is not finite or no replicate is.
        Values within :data:`TIE_TOLERANCE` (relative or absolute) of ``t_obs`` are ties.
    """
    t_rep = np.asarray(t_rep, dtype=float).ravel()
    t_rep = t_rep[np.isfinite(t_rep)]
    t_obs = float(t_obs)
    if t_rep.size == 0 or not np.isfinite(t_obs):
        return math.nan, math.nan
    tie = np.isclose(t_rep, t_obs, rtol=TIE_TOLERANCE, atol=TIE_TOLERANCE)
    above = (t_rep > t_obs) & ~tie
    p = float((above.sum() + 0.5 * tie.sum()) / t_rep.size)
    return p, min(1.0, 2.0 * min(p, 1.0 - p))


def ppc_stages(
    fit: Fit | az.InferenceData,
) -> list[tuple[str, str, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """Per likelihood stage: (stage label, posterior predictive variable, observed statistics,
    replicated statistics (one per draw)), over the in-sample studies only.

    The statistics are :data:`PPC_STATISTICS`, each an array (replicated: one value per
    posterior predictive draw). Shared by :func:`ppc` and :func:`bayesreview.plots.ppc_plot`.

    Raises
    ------
    BayesReviewError
        When the fit lacks its posterior predictive, observed or constant data.
    """
    idata = _idata(fit)
    for group in ("posterior_predictive", "observed_data", "constant_data"):
        if group not in idata:
            raise BayesReviewError(f"ppc needs the fit's {group} group, which is missing")
    pp, obs = idata.posterior_predictive, idata.observed_data
    first_stage = "events"
    if not isinstance(fit, az.InferenceData):
        first_stage = fit.data.outcome if fit.data.outcome != "response" else "any"
    keep = np.flatnonzero(in_sample(fit))
    trials_obs = np.asarray(idata.constant_data["trials"].values)[keep]
    rep1 = np.asarray(pp["events"].values)
    rep1 = rep1.reshape(-1, rep1.shape[-1])[:, keep]
    events_obs = np.asarray(obs["events"].values)[keep]
    stages = [(first_stage, "events", events_obs, trials_obs, rep1, trials_obs[None, :])]
    if "events_cond" in pp:
        rep2 = np.asarray(pp["events_cond"].values)
        rep2 = rep2.reshape(-1, rep2.shape[-1])[:, keep]
        cond_obs = np.asarray(obs["events_cond"].values)[keep]
        stages.append(("complete|any", "events_cond", cond_obs, events_obs, rep2, rep1))
    return [
        (stage, variable, _statistics(y, n), _statistics(y_rep, n_rep))
        for stage, variable, y, n, y_rep, n_rep in stages
    ]


def ppc(fit: Fit | az.InferenceData, level: float = 0.95) -> pd.DataFrame:
    """Posterior predictive checks of the study table, with tie-aware Bayesian p-values.

    For each likelihood stage, the statistic T of the observed studies is compared with T of
    each posterior predictive replicate (a new rate per study from the population distribution,
    then new events: the marginal model that was fitted). Statistics: the number of zero-event
    studies, the number of all-event studies (events == trials), and the spread of the study
    rates (SD of events / trials; divisor the number of studies), each over in-sample studies
    (weight > 0, :func:`in_sample`) with trials > 0. For ``outcome="response"`` the second
    stage ``"complete|any"`` is complete response among responders; a replicate's
    denominators are its own replicated responders, so the set of studies with trials > 0
    changes from draw to draw.

    The p-values are mid-p values (:func:`ppc_p_value`): ``p_value`` =
    P(T_rep > T_obs) + 0.5 P(T_rep = T_obs) and ``p_two_sided`` = min(1, 2 min(p, 1 - p)), so a
    statistic the model reproduces exactly in every replicate gets p = 0.5 and two-sided 1.

    Parameters
    ----------
    fit
        A fit, or an InferenceData with ``posterior_predictive["events"]`` (and optionally
        ``"events_cond"``), ``observed_data`` of the same names, ``constant_data["trials"]``
        and optionally ``constant_data["weights"]``.
    level
        Mass of the equal-tailed interval of the replicated statistic; default 0.95.

    Returns
    -------
    pandas.DataFrame
        ``stage`` (the fitted outcome, e.g. ``"any"``, or ``"complete|any"``), ``statistic``,
        ``observed``, ``replicated_mean``, ``replicated_lower``, ``replicated_upper``,
        ``p_value`` and ``p_two_sided`` (mid-p, above). ``p_value`` near 0 says the data have
        more of the statistic than the model's replicates, near 1 less; a small
        ``p_two_sided`` says the model does not reproduce that feature of the data. Draws
        where a statistic is undefined (no study with trials > 0) are left out.
    """
    if not 0 < level < 1:
        raise BayesReviewError(f"level={level!r}: must be between 0 and 1")
    tail = (1 - level) / 2
    rows = []
    for stage, _, observed, replicated in ppc_stages(fit):
        for name in PPC_STATISTICS:
            t_rep = replicated[name]
            t_rep = t_rep[np.isfinite(t_rep)]
            t_obs = float(observed[name])
            p, p_two_sided = ppc_p_value(t_rep, t_obs)
            if np.isfinite(p):
                lower, upper = np.quantile(t_rep, [tail, 1 - tail])
                mean = float(t_rep.mean())
            else:
                lower = upper = mean = np.nan
            rows.append(
                {
                    "stage": stage,
                    "statistic": name,
                    "observed": t_obs,
                    "replicated_mean": mean,
                    "replicated_lower": float(lower),
                    "replicated_upper": float(upper),
                    "p_value": p,
                    "p_two_sided": p_two_sided,
                }
            )
    return pd.DataFrame(rows)
