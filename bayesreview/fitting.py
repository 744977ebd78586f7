"""Fitting: sampling, diagnostics, the :class:`Fit` result, saving and loading.

``fit(studies)`` prepares the arrays (:mod:`bayesreview.model_data`), builds the PyMC model
(:mod:`bayesreview.backend.models`), samples it, and computes what a reviewer reads
(:mod:`bayesreview.quantities`) into an ArviZ ``InferenceData``. A compiled model is kept for
the rest of the session and reused for data of the same shape, so refits (leave-one-out,
prior grids, simulations) skip compilation.
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesreview._io import fit_file_damage, save_fit_file
from bayesreview.backend.sampling import SamplerSettings, checked_sampling, sample
from bayesreview.compare import check_better, check_level
from bayesreview.data import (
    clopper_pearson,
    display_labels,
    groups_of_pooled_totals,
    published_totals,
    read_studies,
    validated,
)
from bayesreview.errors import BayesReviewError, ConvergenceWarning, WeakIdentificationWarning
from bayesreview.model_data import (
    ModelData,
    Tabulated,
    collapse_identical,
    model_data,
    tabulated_counts,
)
from bayesreview.network import (
    NetworkFit,
    arms_of_shared_studies,
    fit_network,
    restored_network_fit,
)
from bayesreview.quantities import (
    flat_posterior,
    log_likelihood,
    pooled_rates,
    replicate_events,
    study_rates,
)
from bayesreview.spec import SELECTION_CLASSES, ModelSpec, Prior, load_spec

#: Above this many studies, per-study draws (log-likelihood, replicates) are not stored.
MAX_STUDIES_FOR_STUDY_DRAWS = 5000

#: Above this posterior SD / prior SD of every bias effect, the data are said to barely inform
#: them (:meth:`Fit.bias_identification`, :class:`~bayesreview.WeakIdentificationWarning`).
WEAK_SD_RATIO = 0.9

#: Columns of :func:`moved_from_prior` (:meth:`Fit.bias_identification`,
#: :meth:`Fit.selection_identification`).
IDENTIFICATION_COLUMNS = (
    "parameter level prior_mean prior_sd posterior_mean posterior_sd sd_ratio shift".split()
)


def moved_from_prior(
    parameter: str, level: str | None, prior: Prior, draws: np.ndarray
) -> dict[str, Any]:
    """How far the posterior ``draws`` of one parameter moved from its ``prior``.

    Returns :data:`IDENTIFICATION_COLUMNS`: the prior's and the posterior's mean and SD,
    ``sd_ratio`` (posterior SD / prior SD: near 1, the data say little; near 0, they pin the
    parameter down) and ``shift`` ((posterior mean - prior mean) / prior SD).
    """
    prior_mean, prior_sd = prior.mean_sd()
    mean, sd = float(np.mean(draws)), float(np.std(draws))
    return {
        "parameter": parameter,
        "level": level,
        "prior_mean": prior_mean,
        "prior_sd": prior_sd,
        "posterior_mean": mean,
        "posterior_sd": sd,
        "sd_ratio": sd / prior_sd,
        "shift": (mean - prior_mean) / prior_sd,
    }


#: Convergence thresholds of :meth:`Fit.convergence_problems`: largest R-hat, smallest bulk and
#: tail ESS.
RHAT_MAX = 1.01
ESS_MIN = 400


# --------------------------------------------------------------------------------------------
# The result object
# --------------------------------------------------------------------------------------------


@dataclass
class Fit:
    """A fitted meta-analysis: the posterior and what it says.

    Attributes
    ----------
    idata
        ArviZ InferenceData: ``posterior`` (model parameters and the derived ``rate``,
        ``rate_mix``, ``rate_pred``, ``rate_pred_mix``, ``rate_sd`` over outcome x group),
        ``log_likelihood`` (one value per study), ``posterior_predictive``, ``observed_data``,
        ``constant_data`` and ``sample_stats``.
    studies
        The validated study table that was fitted.
    spec
        The model specification.
    data
        The arrays the model saw (uncollapsed).
    settings
        The arguments of :func:`fit` (outcome, by, bias, unknown, draws, seed, ...).
    """

    idata: az.InferenceData
    studies: pd.DataFrame
    spec: ModelSpec
    data: ModelData
    settings: dict[str, Any]
    #: :meth:`diagnostics`, computed on its first call (ArviZ's summary of every parameter)
    _diagnostics: pd.DataFrame | None = field(default=None, init=False, repr=False, compare=False)

    # ---- basic facts ----------------------------------------------------------------------

    @property
    def outcomes(self) -> tuple[str, ...]:
        """Outcomes this fit reports (all three for ``outcome="response"``)."""
        return self.data.reported_outcomes

    @property
    def groups(self) -> tuple[str, ...]:
        """The pooled units (levels of ``by``), in order of first appearance."""
        return self.data.groups

    @property
    def labels(self) -> dict[str, str]:
        """Display labels of codes (see :func:`fit`'s ``labels``); empty when none were given."""
        return dict(self.settings.get("labels") or {})

    def label(self, code: str) -> str:
        """The display label of ``code`` (a level of ``by``, a bias level), else the code."""
        return self.labels.get(code, code)

    @property
    def better(self) -> str:
        """``"higher"`` (a higher rate is better: response) or ``"lower"`` (harms), as fitted.

        Ranks, comparisons, thresholds, figures and the report follow it.
        """
        return str(self.settings.get("better", "higher"))

    @property
    def heterogeneity_from_prior(self) -> tuple[str, ...]:
        """Groups whose rows are all patients of totals pooled over studies.

        Such a total says nothing about how the studies it pools differ, so the group's
        heterogeneity is its prior's (see :func:`bayesreview.harms.harm_studies`).
        """
        return tuple(self.settings.get("heterogeneity_from_prior") or ())

    def __repr__(self) -> str:
        from bayesreview.display import fit_text

        return fit_text(self)

    def _repr_html_(self) -> str:
        from bayesreview.display import fit_html

        return fit_html(self)

    def draws(self, name: str, outcome: str | None = None) -> xr.DataArray:
        """Posterior draws of a derived quantity (e.g. ``"rate"``), stacked over chains."""
        array = self.idata.posterior[name]
        if outcome is not None:
            array = array.sel(outcome=outcome)
        return array.stack(sample=("chain", "draw"))

    def _rng(self, purpose: int) -> np.random.Generator:
        return np.random.default_rng([int(self.settings["seed"]), purpose])

    # ---- tables ---------------------------------------------------------------------------

    def crude(self, level: float = 0.95) -> pd.DataFrame:
        """Crude counts per outcome and group, with the same denominators as the model."""
        rows = []
        for outcome in self.outcomes:
            events, trials = _outcome_events(self.data, outcome)
            for g, group in enumerate(self.groups):
                mask = (self.data.group_idx == g) & (self.data.weights > 0)
                x, n = int(events[mask].sum()), int(trials[mask].sum())
                lower, upper = clopper_pearson(x, n, level)
                rows.append(
                    {
                        "outcome": outcome,
                        "modality": group,
                        "studies": int(mask.sum()),
                        "n": n,
                        "events": x,
                        "crude": x / n if n else np.nan,
                        "crude_lower": float(lower),
                        "crude_upper": float(upper),
                    }
                )
        return pd.DataFrame(rows)

    def adjusted_to(self, adjusted: bool = True) -> str | None:
        """What the pooled rates are adjusted to, in words; None without a bias covariate.

        ``adjusted=True``: the reference level (``"risk_of_bias = low"``) or the reference value
        of a numeric covariate; ``False``: each group's (level of ``by``) own mix of studies.
        """
        bias = self.data.bias
        if bias is None:
            return None
        if not adjusted:
            return f"{bias.column}: each {self.data.by}'s own studies"
        if bias.kind == "numeric":
            return f"{bias.column} = {bias.centre:g}"
        return f"{bias.column} = {bias.levels[0]}"

    def summary(
        self,
        level: float = 0.95,
        adjusted: bool | None = None,
        threshold: float | Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        """Crude and posterior side by side: one row per outcome x modality.

        Parameters
        ----------
        level
            Probability mass of the intervals; default 0.95 (equal-tailed).
        adjusted
            With a bias covariate: ``True`` reports rates at the reference level (the
            bias-adjusted rate); ``False`` the population mean rate averaged over each
            modality's own studies at their levels (missing levels by their posterior
            probabilities). Default None: the reference level where the data inform the bias
            effects, the own studies' mix where the reference-level rates rest on the prior
            (:meth:`headline_adjusted`, :meth:`weak_identification`); ``adjusted_to`` says
            which. The two are identical without a covariate.
        threshold
            Optional clinical threshold on the 0-1 scale (or one per outcome): adds
            ``threshold``, ``p_beyond`` (P(mean rate beyond it)) and ``share_new_beyond``
            (the expected share of new studies beyond it), beyond meaning above for a benefit
            and below for a harm (:meth:`exceedance`). Default None: no such columns.

        Returns
        -------
        pandas.DataFrame
            ``outcome``, ``modality``, ``studies``, ``n`` (patients in the denominator),
            ``events``, ``crude`` with its exact ``crude_lower``/``crude_upper``; then
            posterior medians with equal-tailed ``_lower``/``_upper`` of

            - ``mean_rate``: the population mean rate E[p] of the modality's studies;
            - ``median_rate``: the median-study rate (the median of the true study rates;
              invlogit(mu) for the logit-normal, the pooled proportion of metafor's
              ``rma.glmm``, meta and brms); NaN with ``adjusted=False`` and a covariate;
            - ``rate_sd``: the between-study SD of the true rates (at the reference level);
            - the heterogeneity on the model's own scale: ``tau`` and ``tau2`` (SD and
              variance of the study logits; logit-normal) or ``phi`` and ``icc`` (beta
              concentration and intra-class correlation 1 / (1 + phi); beta-binomial). For the
              joint response model these are the first stage's (any response) and are given on
              the ``any`` rows; the second stage's are ``tau_cond``/``phi_cond`` in the
              posterior.

            ``pred_lower``/``pred_upper``: prediction interval of a new study's rate;
            ``adjusted_to``: what the rates are adjusted to (:meth:`adjusted_to`). Rates on the
            0-1 scale.
        """
        check_level(level)
        if adjusted is None:
            adjusted = self.headline_adjusted()
        tail = (1 - level) / 2
        q = [tail, 0.5, 1 - tail]
        with_bias = self.data.bias is not None
        names = {
            "mean_rate": "rate" if adjusted else "rate_mix",
            "median_rate": "rate_median" if adjusted or not with_bias else None,
            "rate_sd": "rate_sd",
        }
        quantiles = {
            column: self.draws(name).quantile(q, dim="sample")
            for column, name in names.items()
            if name is not None
        }
        pred = self.draws("rate_pred" if adjusted else "rate_pred_mix")
        pred_q = pred.quantile([tail, 1 - tail], dim="sample")
        scales = self._scale_quantiles(q)
        table = self.crude(level)
        columns: dict[str, list[float]] = {}

        def put(name: str, values) -> None:
            for suffix, value in zip(("_lower", "", "_upper"), values, strict=True):
                columns.setdefault(name + suffix, []).append(float(value))

        for row in table.itertuples():
            where = {"outcome": row.outcome, "group": row.modality}
            for column in names:
                values = (
                    quantiles[column].sel(where).values if column in quantiles else [np.nan] * 3
                )
                put(column, values)
            lower, upper = pred_q.sel(where).values
            columns.setdefault("pred_lower", []).append(float(lower))
            columns.setdefault("pred_upper", []).append(float(upper))
            first_stage = not self.data.joint or row.outcome == "any"
            for name, values in scales.items():
                put(
                    name,
                    values[:, self.groups.index(row.modality)] if first_stage else [np.nan] * 3,
                )
        order = ["mean_rate", "median_rate", "rate_sd", *scales]
        for name in order:
            for suffix in ("", "_lower", "_upper"):
                table[name + suffix] = np.asarray(columns[name + suffix], dtype=float)
        table["pred_lower"] = np.asarray(columns["pred_lower"], dtype=float)
        table["pred_upper"] = np.asarray(columns["pred_upper"], dtype=float)
        table["adjusted_to"] = self.adjusted_to(adjusted)
        if threshold is not None:
            beyond = self.exceedance(threshold, adjusted=adjusted)
            beyond = beyond.rename(
                columns={"p_pooled": "p_beyond", "share_new": "share_new_beyond"}
            ).drop(columns="direction")
            table = table.merge(beyond, on=["outcome", "modality"], how="left")
        return table

    def bias_levels(self) -> pd.DataFrame:
        """Each study's probability of each level of the categorical bias covariate.

        A rated study has its level with probability 1; an unrated one its posterior
        probability, averaged over the draws: given the data and each draw's parameters, under
        the Dirichlet form or, with known totals, over the assignments consistent with them
        (whose probabilities then sum over the studies to each level's total exactly).

        Returns
        -------
        pandas.DataFrame
            One row per study and level: ``study``, ``modality`` (the level of ``by``),
            ``level``, ``probability`` and ``rated`` (True where the study's level was given).

        Raises
        ------
        BayesReviewError
            When the fit has no categorical bias covariate.
        """
        bias = self.data.bias
        if bias is None or bias.kind != "categorical":
            raise BayesReviewError("bias_levels: this fit has no categorical bias covariate")
        from bayesreview.quantities import level_probabilities, stages_from_posterior

        flat = flat_posterior(self.idata.posterior)
        stages = stages_from_posterior(flat, self.data, self.spec.likelihood)
        probabilities = level_probabilities(flat, stages, self.data).mean(axis=0)
        n_levels = len(bias.levels)
        return pd.DataFrame(
            {
                "study": np.repeat(self.data.study_labels, n_levels),
                "modality": np.repeat([self.groups[g] for g in self.data.group_idx], n_levels),
                "level": np.tile(bias.levels, self.data.n_rows),
                "probability": probabilities.reshape(-1),
                "rated": np.repeat(bias.codes >= 0, n_levels),
            }
        )

    def bias_identification(self) -> pd.DataFrame:
        """How far the data moved each bias effect from its prior.

        Returns
        -------
        pandas.DataFrame
            One row per bias coefficient (``beta`` per non-reference level, or the numeric
            slope; the joint model's second stage as ``beta_cond``):
            :data:`IDENTIFICATION_COLUMNS` (:func:`moved_from_prior`). Empty without a bias
            covariate.
        """
        rows = []
        posterior = self.idata.posterior
        for name, stage in (("beta", "marginal"), ("beta_cond", "conditional")):
            if name not in posterior:
                continue
            prior = self.spec.prior("bias", stage)
            draws = posterior[name].stack(sample=("chain", "draw"))
            levels = list(draws["bias_level"].values) if "bias_level" in draws.dims else [None]
            for level in levels:
                values = draws.sel(bias_level=level) if level is not None else draws
                rows.append(moved_from_prior(name, level, prior, values.values))
        return pd.DataFrame(rows, columns=IDENTIFICATION_COLUMNS)

    def selection_identification(self) -> pd.DataFrame:
        """How far the data moved each publication-selection weight from its prior.

        Returns
        -------
        pandas.DataFrame
            One row per selection class (``case_report``, ``case_series``):
            :data:`IDENTIFICATION_COLUMNS` of ``selection_weight``, the probability that a
            study with no responders is published relative to one with responders, plus its
            posterior ``median``, ``lower`` and ``upper`` (95%). Empty without selection.
        """
        rows = []
        if self.spec.selection is not None:
            draws = self.draws("selection_weight")
            for code, key in SELECTION_CLASSES.items():
                values = draws.sel(selection_class=code).values
                row = moved_from_prior("selection_weight", code, self.spec.prior(key), values)
                lower, median, upper = np.quantile(values, [0.025, 0.5, 0.975])
                rows.append({**row, "median": median, "lower": lower, "upper": upper})
        return pd.DataFrame(rows, columns=[*IDENTIFICATION_COLUMNS, "median", "lower", "upper"])

    def headline_adjusted(self) -> bool:
        """Whether :meth:`summary` reports rates at the reference level by default.

        True with a bias covariate the data inform; False where the reference-level rates rest
        on the prior (:meth:`weak_identification`), when the rates averaged over each
        modality's own studies are the headline instead. True without a covariate (the two
        are then the same).
        """
        return self.data.bias is None or self.weak_identification() is None

    def weak_identification(self) -> str | None:
        """Why the bias-adjusted rates rest on the prior, in words; None when they do not.

        They do when no study's level of a categorical covariate is known, or when every bias
        effect's posterior SD is above :data:`WEAK_SD_RATIO` of its prior SD.
        """
        bias = self.data.bias
        if bias is None:
            return None
        table = self.bias_identification()
        unrated = bias.kind == "categorical" and bias.n_missing == self.data.n_rows
        if not unrated and not (table["sd_ratio"] > WEAK_SD_RATIO).all():
            return None
        ratios = ", ".join(
            f"{self.label(str(row.level)) if row.level is not None else row.parameter} "
            f"{row.sd_ratio:.2f}"
            for row in table.itertuples()
        )
        why = "no study's level is known, and " if unrated else ""
        return (
            f"{why}the data barely inform the bias effects (posterior SD / prior SD: "
            f"{ratios}): the rates at the reference level ({self.adjusted_to()}) rest on the "
            "prior's bias effects, so the headline rates are those averaged over each "
            "modality's own studies, which is what the data say (summary(adjusted=True) "
            "gives the reference-level rates, prior-driven)"
        )

    def _scale_quantiles(self, q: list[float]) -> dict[str, np.ndarray]:
        """Quantiles (3, G) of the first stage's heterogeneity on the model's own scale."""
        posterior = self.idata.posterior
        if self.spec.likelihood == "logit_normal":
            tau = posterior["tau"].stack(sample=("chain", "draw")).transpose("group", "sample")
            values = {"tau": tau.values, "tau2": tau.values**2}
        else:
            phi = posterior["phi"].stack(sample=("chain", "draw")).transpose("group", "sample")
            values = {"phi": phi.values, "icc": 1.0 / (1.0 + phi.values)}
        return {name: np.quantile(v, q, axis=1) for name, v in values.items()}

    def study_estimates(self, level: float = 0.95) -> pd.DataFrame:
        """Shrunken per-study rates next to the crude ones, one row per outcome x study.

        Beta-binomial: exact conjugate draws p_j | y, theta ~ Beta(mu_j phi + y_j,
        (1 - mu_j) phi + n_j - y_j), one per posterior draw; logit-normal: the posterior of
        invlogit(alpha + beta + tau e_j). Columns: ``outcome``, ``study``, ``modality``,
        ``events``, ``n``, ``crude``, ``crude_lower``, ``crude_upper``, ``post_mean``,
        ``post_median``, ``post_lower``, ``post_upper``.
        """
        posterior = flat_posterior(self.idata.posterior)
        rates = study_rates(posterior, self.data, self.spec.likelihood, self._rng(2))
        tail = (1 - level) / 2
        rows = []
        for outcome in self.outcomes:
            events, trials = _outcome_events(self.data, outcome)
            lower, upper = clopper_pearson(events, trials, level)
            draws = rates[outcome]
            quantiles = np.quantile(draws, [tail, 0.5, 1 - tail], axis=0)
            frame = pd.DataFrame(
                {
                    "outcome": outcome,
                    "study": list(self.data.study),
                    "modality": [self.groups[g] for g in self.data.group_idx],
                    "events": events,
                    "n": trials,
                    "crude": np.where(trials > 0, events / np.maximum(trials, 1), np.nan),
                    "crude_lower": lower,
                    "crude_upper": upper,
                    "post_mean": draws.mean(axis=0),
                    "post_median": quantiles[1],
                    "post_lower": quantiles[0],
                    "post_upper": quantiles[2],
                }
            )
            if "year" in self.studies:
                frame.insert(2, "year", self.studies["year"].to_numpy())
            rows.append(frame)
        return pd.concat(rows, ignore_index=True)

    def diagnostics(self) -> pd.DataFrame:
        """R-hat, bulk and tail ESS per model parameter, and the number of divergences.

        One row per scalar free parameter; ``divergences`` is the fit's total, repeated on
        every row. Computed once per fit (a copy is returned).
        """
        if self._diagnostics is None:
            names = [v for v in self.idata.posterior.data_vars if v in self.settings["free_vars"]]
            summary = az.summary(self.idata, var_names=names, kind="diagnostics", round_to="none")
            summary = summary[["r_hat", "ess_bulk", "ess_tail"]].rename_axis("parameter")
            summary["divergences"] = self.divergences
            self._diagnostics = summary.reset_index()
        return self._diagnostics.copy()

    @property
    def divergences(self) -> int:
        """Number of divergent transitions after tuning."""
        stats = self.idata.sample_stats
        name = "diverging" if "diverging" in stats else None
        return int(stats[name].sum()) if name else 0

    def convergence_problems(self) -> list[str]:
        """What the diagnostics say is wrong, each with what to do, in plain words.

        Empty when all is well. Low ESS: twice the number of draws that would reach the
        threshold if the ESS grew in proportion to the draws (an ESS estimated from few draws is
        noisy and tends to be optimistic). R-hat: more tuning and draws. Divergences:
        more draws do not help; they point at the model's geometry.
        """
        table = self.diagnostics()
        problems = []
        draws, tune = int(self.settings["draws"]), int(self.settings["tune"])
        worst_rhat = table["r_hat"].max()
        if table["r_hat"].isna().all():
            problems.append(
                f"R-hat needs two chains or more (this fit has {self.settings['chains']}): "
                "refit with chains=4 to check that the chains agree"
            )
        elif not worst_rhat <= RHAT_MAX:
            bad = table.loc[table["r_hat"].idxmax(), "parameter"]
            problems.append(
                f"R-hat up to {worst_rhat:.3f} (> {RHAT_MAX}) for {bad}: the chains disagree; "
                f"refit with more tuning and draws (tune={max(2 * tune, 2000)}, "
                f"draws={max(2 * draws, 2000)})"
            )
        low_ess = min(table["ess_bulk"].min(), table["ess_tail"].min())
        if not low_ess >= ESS_MIN:
            needed = int(math.ceil(2 * draws * ESS_MIN / max(low_ess, 1.0) / 100.0) * 100)
            problems.append(
                f"effective sample size down to {low_ess:.0f} (< {ESS_MIN}): refit with "
                f"draws={needed} (the ESS grows in proportion to the draws)"
            )
        if self.divergences:
            problems.append(
                f"{self.divergences} divergent transition(s): the sampler could not follow "
                "the posterior's shape, usually a funnel between a heterogeneity parameter and "
                "what it scales, which more draws do not remove; see fit.diagnostics() for the "
                'parameter concerned, and with few groups consider heterogeneity = "shared" '
                "in a copy of the model specification"
            )
        return problems

    # ---- comparisons, figures and checks (computed in their own modules) -------------------

    def compare(
        self,
        outcome: str | None = None,
        threshold: float = 0.0,
        adjusted: bool = True,
        better: str | None = None,
    ) -> pd.DataFrame:
        """Pairwise posterior probabilities; see :func:`bayesreview.compare.pairwise`.

        ``better`` is ``"higher"`` (e.g. response) or ``"lower"`` (harms, recurrence); default
        the fit's own direction (:attr:`better`).
        """
        from bayesreview.compare import pairwise

        return pairwise(
            self, outcome=outcome, threshold=threshold, adjusted=adjusted, better=better
        )

    def ranks(
        self, outcome: str | None = None, adjusted: bool = True, better: str | None = None
    ) -> pd.DataFrame:
        """P(best), mean rank, SUCRA, rank probabilities: :func:`bayesreview.compare.ranks`.

        ``better`` is ``"higher"`` or ``"lower"``: which rate ranks first; default the fit's
        own direction (:attr:`better`).
        """
        from bayesreview.compare import ranks

        return ranks(self, outcome=outcome, adjusted=adjusted, better=better)

    def exceedance(
        self,
        threshold: float | Mapping[str, float],
        outcome: str | None = None,
        estimand: str = "mean_rate",
        adjusted: bool = True,
    ) -> pd.DataFrame:
        """P(pooled rate beyond ``threshold``) and the share of new studies beyond it.

        Beyond means above for a benefit, below for a harm (:attr:`better`); see
        :func:`bayesreview.thresholds.exceedance`.
        """
        from bayesreview.thresholds import exceedance

        return exceedance(self, threshold, outcome=outcome, estimand=estimand, adjusted=adjusted)

    def update(self, new: pd.DataFrame | str | os.PathLike, progressbar: bool = False) -> Fit:
        """Refit with new or corrected studies; see :func:`bayesreview.living.update`.

        Returns a new :class:`Fit`; this one is left as it is.
        """
        from bayesreview.living import update

        return update(self, new, progressbar=progressbar)

    def changes(self) -> pd.DataFrame:
        """What an update changed, per outcome and modality: :func:`bayesreview.living.changes`."""
        from bayesreview.living import changes

        return changes(self)

    def forest_plot(self, outcome: str | None = None, **kwargs: Any):
        """Forest plot of studies and pooled rates; see :func:`bayesreview.plots.forest_plot`."""
        from bayesreview.plots import forest_plot

        return forest_plot(self, outcome=outcome, **kwargs)

    def loo(self, **kwargs: Any):
        """PSIS-LOO with Pareto-k warnings naming studies; see :func:`bayesreview.checks.loo`."""
        from bayesreview.checks import loo

        return loo(self, **kwargs)

    def ppc(self, **kwargs: Any) -> pd.DataFrame:
        """Posterior predictive checks, Bayesian p-values: :func:`bayesreview.checks.ppc`."""
        from bayesreview.checks import ppc

        return ppc(self, **kwargs)

    # ---- storage --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fit to a netCDF file, whole or not at all.

        The spec (TOML), the study table (CSV), the fit settings (JSON) and the package
        version are stored as attributes, so :func:`load_fit` needs nothing else.
        """
        return save_fit_file(
            self.idata, path, self.spec.to_toml(), self.studies.to_csv(index=False), self.settings
        )


def _outcome_events(data: ModelData, outcome: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-study events and denominators of one reported outcome."""
    if data.joint:
        complete = data.complete
        events = {"any": data.events, "complete": complete, "partial": data.events - complete}
        return events[outcome], data.trials
    return data.events, data.trials


# --------------------------------------------------------------------------------------------
# fit() and load_fit()
# --------------------------------------------------------------------------------------------


def fit(
    studies: pd.DataFrame | str | os.PathLike,
    outcome: str = "any",
    model: str | os.PathLike | ModelSpec = "beta_binomial",
    by: str = "modality",
    bias: str | None = None,
    bias_reference: str | float | None = None,
    bias_prior_counts: dict[str, float] | list[float] | None = None,
    bias_totals: Mapping[str, int] | str | None = None,
    unknown: str = "failure",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progressbar: bool = True,
    sampler: str | None = None,
    collapse: bool = True,
    weights: np.ndarray | list[int] | None = None,
    labels: Mapping[str, str] | None = None,
    better: str = "higher",
    reference: str | None = None,
) -> Fit | NetworkFit:
    """Fit a Bayesian random-effects meta-analysis of response rates.

    Parameters
    ----------
    studies
        A study table (DataFrame or CSV path); validated with :func:`read_studies` unless it
        is a table ``read_studies`` returned, unchanged since.
    outcome
        ``"any"`` (default: complete or partial response), ``"complete"``, ``"partial"``, or
        ``"response"``: the joint sequential model (any response, then complete given any)
        reporting all three, coherent in every draw (complete <= any).
    model
        A shipped specification name (``"beta_binomial"``, the default; ``"logit_normal"``;
        ``"response"``; ``"selection"``: publication selection by response, rates of all
        studies, published or not), a ``.toml`` path, or a :class:`ModelSpec`
        (``spec.with_selection()`` adds selection to any one-outcome specification).
        ``"network"``: the arm-based network model (:func:`bayesreview.fit_network`), where
        rows sharing ``study`` are arms of one trial and ``by`` names the treatment; it
        returns a :class:`~bayesreview.NetworkFit` and takes no bias covariate, collapse or
        weights.
    by
        Column whose levels are pooled separately; default ``"modality"``.
    bias
        Covariate column (default None): categorical (``"risk_of_bias"``, ``"design"``: a logit
        shift per non-reference level, missing levels marginalised) or numeric (a slope).
    bias_reference
        Reference level; default the first level of an ordered categorical (``low`` for
        risk_of_bias), else the most common level. For a numeric covariate, the value at which
        the adjusted rate is reported (the covariate is centred there); default its mean.
    bias_prior_counts
        Dirichlet prior counts of the level probabilities used for studies whose level is
        missing, as a dict level -> count; default 1 per level. For proportions that come
        from elsewhere (other studies, a similar review); not with ``bias_totals``.
    bias_totals
        The number of these studies at each level where a review reports only the totals
        (``{"low": 10, "moderate": 19, "high": 11}``), or ``"dataset"`` for the totals a
        bundled data set's metadata gives (``risk_of_bias_totals``). The missing levels are
        then marginalised exactly over every assignment of levels consistent with the totals
        (and with the rated studies), each equally likely (:mod:`bayesreview.known_totals`).
        Default None: the Dirichlet form above.
    unknown
        ``"failure"`` (default) counts unknown responses as non-responders; ``"exclude"``
        removes them from the denominators.
    draws, tune, chains
        Posterior draws per chain (default 1000), tuning steps (1000), chains (4).
    seed
        Random seed (default: drawn at random, recorded in ``settings``). The same seed and data
        give the same draws on a processor of the same kind (``backend.compiled_for``) once the
        model is in the compile cache (its first compile can differ in the last bit).
    progressbar
        Show the sampler's progress; default True.
    sampler
        ``"nutpie"`` (default where installed) or ``"pymc"``.
    collapse
        Evaluate the beta-binomial likelihood from sufficient statistics (default True): the
        numbers of studies per (group, bias value) cell with more than i events, failures and
        patients, so that the cost depends on the cells and the largest n, not on the number
        of studies (used when no bias level is missing and no n exceeds 1024); otherwise
        identical studies are merged into one weighted term. Exact either way; ignored for the
        logit-normal, whose studies each have their own random effect. Per-study outputs are
        unaffected.
    weights
        Optional 0/1 per study (default None: all 1). A study with weight 0 stays in the table
        but leaves the likelihood and the crude counts: leave-one-study-out refits then share
        one compiled model. Its log-likelihood and replicates are still reported (its
        out-of-sample predictive density).
    labels
        Display labels of codes (levels of ``by``, bias levels), e.g.
        ``{"topical_sts": "Topical STS"}``, used by every table, figure and report people read
        (:meth:`Fit.label`); codes stay in machine-readable output. Default: the codebook's
        labels of a bundled data set (:func:`bayesreview.load_dataset`), none otherwise; the
        given ones win.
    better
        ``"higher"`` (default: a higher rate is better, e.g. response) or ``"lower"`` (a harm,
        e.g. adverse events, recurrence). Ranks, comparisons, thresholds, figures and the
        report follow it (:attr:`Fit.better`).
    reference
        The network model's reference treatment (default: most arms); network model only.

    Returns
    -------
    Fit
        Or a :class:`~bayesreview.NetworkFit` for a network specification.

    Raises
    ------
    BayesReviewError
        When rows share a study label across levels of ``by`` (arms of one trial, which a
        single-arm model would pool as unrelated studies): the message names the studies and
        the network model. Bad input raises :class:`~bayesreview.DataError` naming the row.

    Warns
    -----
    ConvergenceWarning
        When R-hat > 1.01, ESS < 400 or any transition diverged; the message says what to try.
    WeakIdentificationWarning
        When the data barely inform the bias effects (:meth:`Fit.weak_identification`).
    """
    spec = load_spec(model)
    if spec.structure == "network":
        _check_network_arguments(bias, bias_totals, weights, outcome)
        return fit_network(
            studies, by, outcome, reference, better=better, unknown=unknown, model=spec,
            labels=labels, sampler=sampler, draws=draws, tune=tune, chains=chains, seed=seed,
            progressbar=progressbar,
        )  # fmt: skip
    if reference is not None:
        raise BayesReviewError('reference: only model="network" has a reference treatment')
    codebook = display_labels(studies if isinstance(studies, pd.DataFrame) else None, labels)
    check_better(better)
    studies = validated(studies)
    _refuse_shared_studies(studies, by)
    run = checked_sampling(sampler, draws, tune, chains, seed, progressbar)
    totals = published_totals(studies, bias) if bias_totals == "dataset" else bias_totals
    data = model_data(
        studies, outcome, by, bias, bias_reference, bias_prior_counts, unknown, bias_totals=totals
    )
    settings = {
        **{"outcome": outcome, "model": spec.name, "by": by, "bias": bias},
        **_bias_settings(data),
        "groups": list(data.groups),
        "heterogeneity": _heterogeneity_words(spec, data),
        "unknown": unknown,
        **{"draws": run.draws, "tune": run.tune, "chains": run.chains, "seed": run.seed},
        **{"sampler": run.sampler, "labels": codebook, "better": better},
        "heterogeneity_from_prior": groups_of_pooled_totals(studies, by),
    }
    return _fit_studies(studies, data, spec, run, settings, collapse, weights)


def _fit_studies(
    studies: pd.DataFrame,
    data: ModelData,
    spec: ModelSpec,
    run: SamplerSettings,
    settings: dict[str, Any],
    collapse: bool,
    weights: np.ndarray | list[int] | None,
) -> Fit:
    """Sample the single-arm model of ``data`` (studies weighted by ``weights``) and assemble
    the Fit, warning of convergence problems and weakly identified bias effects."""
    if weights is not None:
        data = _weighted(data, weights)
        settings = {**settings, "weights": [int(w) for w in data.weights]}
    fitted_data, tabulated, settings["likelihood_terms"] = _likelihood_data(data, spec, collapse)
    idata, free = sample(fitted_data, spec, run, tabulated)
    result = _assemble(idata, studies, spec, data, {**settings, "free_vars": free})
    problems = result.convergence_problems()
    if problems:
        warnings.warn(
            "The sampler may not have converged: " + "; ".join(problems) + ".",
            ConvergenceWarning,
            stacklevel=3,
        )
    weak = result.weak_identification()
    if weak:
        warnings.warn(weak[:1].upper() + weak[1:] + ".", WeakIdentificationWarning, stacklevel=3)
    return result


def _heterogeneity_words(spec: ModelSpec, data: ModelData) -> str:
    """The spec's heterogeneity, or why it falls back to one shared value (one group)."""
    if spec.pools_heterogeneity(data.n_groups) or spec.heterogeneity != "partial_pooling":
        return spec.heterogeneity
    return "shared (one group: partial pooling needs two or more)"


def _check_network_arguments(bias, bias_totals, weights, outcome: str) -> None:
    """BayesReviewError naming an argument that the network model does not take."""
    for name, value in (("bias", bias), ("bias_totals", bias_totals), ("weights", weights)):
        if value is not None:
            raise BayesReviewError(f'{name}: the network model (model="network") takes none')
    if outcome == "response":
        raise BayesReviewError(
            'outcome="response": the network model fits one outcome (events, any, complete '
            "or partial)"
        )


def _refuse_shared_studies(studies: pd.DataFrame, by: str) -> None:
    """BayesReviewError where rows share a study label across levels of ``by``: arms of one
    trial, which this model would fit as unrelated studies, breaking the randomisation."""
    if by not in studies:
        return  # model_data names the missing column
    shared = arms_of_shared_studies(studies, by)
    if shared.empty:
        return
    listed = "; ".join(
        f"{study!r} (rows {', '.join(map(str, rows))}: {', '.join(map(str, levels))})"
        for study, levels, rows in shared.head(5).itertuples(index=False)
    )
    more = f" and {len(shared) - 5} more" if len(shared) > 5 else ""
    raise BayesReviewError(
        f"{len(shared)} studies have rows under two or more levels of {by!r}: {listed}{more}. "
        "They look like arms of the same trials, which this model would pool as unrelated "
        "studies, breaking the randomisation within each trial. Fit them with the network "
        f'model (bayesreview.fit(studies, model="network", by={by!r}), or bayesreview '
        "analyze --model network), or, if they are separate series, give each its own study "
        "label."
    )


def _bias_settings(data: ModelData) -> dict[str, Any]:
    """The bias covariate's reference, prior counts or totals and levels, for ``settings``."""
    bias = data.bias
    categorical = bias is not None and bias.kind == "categorical"
    reference = None
    if bias is not None:
        reference = bias.levels[0] if categorical else bias.centre
    totals = bias is not None and bias.totals is not None
    return {
        "bias_reference": reference,
        "bias_prior_counts": dict(zip(bias.levels, bias.prior_counts, strict=True))
        if categorical and not totals
        else None,
        "bias_totals": dict(zip(bias.levels, bias.totals, strict=True)) if totals else None,
        "bias_levels": list(bias.levels) if categorical else None,
    }


def _weighted(data: ModelData, weights: np.ndarray | list[int]) -> ModelData:
    """``data`` with 0/1 study weights; BayesReviewError unless one 0 or 1 per study."""
    given = np.asarray(weights)
    if given.shape != (data.n_rows,) or not np.isin(given, (0, 1)).all():
        raise BayesReviewError(
            f"weights: need one 0 or 1 per study ({data.n_rows} studies), got {weights!r}"
        )
    return replace(data, weights=given.astype(np.int64))


def _likelihood_data(
    data: ModelData, spec: ModelSpec, collapse: bool
) -> tuple[ModelData, Tabulated | None, str]:
    """What the likelihood is evaluated on: (rows, sufficient counts or None, description).

    The beta-binomial's sufficient counts where they apply (``collapse``); otherwise the rows,
    identical studies merged for the beta-binomial.
    """
    collapsible = collapse and spec.likelihood == "beta_binomial"
    tabulated = tabulated_counts(data, spec) if collapsible else None
    if tabulated is not None:
        return (
            data,
            tabulated,
            f"tabulated: {tabulated.n_cells} cells, {sum(tabulated.n_terms)} terms",
        )
    rows = collapse_identical(data) if collapsible else data
    description = f"{rows.n_rows} rows"
    return rows, None, description


def _assemble(
    idata: az.InferenceData,
    studies: pd.DataFrame,
    spec: ModelSpec,
    data: ModelData,
    settings: dict[str, Any],
) -> Fit:
    """Add the derived quantities and the per-study groups to a sampled InferenceData."""
    posterior = idata.posterior
    flat = flat_posterior(posterior)
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    rng = np.random.default_rng([settings["seed"], 1])
    coords = {"chain": posterior.chain.values, "draw": posterior.draw.values}
    outcome_group = {"outcome": list(data.reported_outcomes), "group": list(data.groups)}
    derived = pooled_rates(flat, data, spec.likelihood, rng)
    variables = {
        name: xr.DataArray(
            values.reshape(chains, draws, *values.shape[1:]),
            dims=("chain", "draw", "outcome", "group"),
            coords={**coords, **outcome_group},
        )
        for name, values in derived.items()
    }
    new_posterior = posterior.assign(variables)
    groups = {"posterior": new_posterior, "sample_stats": idata.sample_stats}

    study_coords = {**coords, "study": list(data.study_labels)}
    observed = {"events": ("study", data.events)}
    constant = {
        "trials": ("study", data.trials),
        "group_idx": ("study", data.group_idx),
        "weights": ("study", data.weights),
    }
    if data.joint:
        observed["events_cond"] = ("study", data.complete)
    if data.bias is not None:
        constant["bias_code"] = ("study", data.bias.codes)
    groups["observed_data"] = xr.Dataset(observed, coords={"study": list(data.study_labels)})
    groups["constant_data"] = xr.Dataset(constant, coords={"study": list(data.study_labels)})
    if data.n_rows <= MAX_STUDIES_FOR_STUDY_DRAWS:
        loglik = log_likelihood(flat, data, spec.likelihood)
        groups["log_likelihood"] = xr.Dataset(
            {"events": (("chain", "draw", "study"), loglik.reshape(chains, draws, -1))},
            coords=study_coords,
        )
        replicates = replicate_events(flat, data, spec.likelihood, rng)
        groups["posterior_predictive"] = xr.Dataset(
            {
                k: (("chain", "draw", "study"), v.reshape(chains, draws, -1))
                for k, v in replicates.items()
            },
            coords=study_coords,
        )
    new = az.InferenceData(**groups)
    return Fit(idata=new, studies=studies, spec=spec, data=data, settings=settings)


def load_fit(path: str | os.PathLike) -> Fit | NetworkFit:
    """Load a fit written by :meth:`Fit.save` (or :meth:`NetworkFit.save`, which gives a
    :class:`~bayesreview.NetworkFit`), without refitting and without unpickling.

    Raises
    ------
    BayesReviewError
        When the file is missing, damaged or cut short (its checksum line does not match), is
        not a netCDF file, or was not written by bayesreview.
    """
    path = Path(path)
    if not path.is_file():
        raise BayesReviewError(f"{path}: no such file")
    damage = fit_file_damage(path)
    if damage:
        raise BayesReviewError(f"{path}: not a readable bayesreview fit file ({damage})")
    try:
        idata = az.from_netcdf(str(path), engine="h5netcdf")
        idata.load()
    except Exception as exc:  # netCDF/HDF5 raise many kinds
        raise BayesReviewError(f"{path}: not a readable netCDF fit file ({exc})") from None
    attrs = idata.posterior.attrs if "posterior" in idata else {}
    needed = ("bayesreview_spec", "bayesreview_studies", "bayesreview_settings")
    if not all(k in attrs for k in needed):
        raise BayesReviewError(f"{path}: not a bayesreview fit (its attributes are missing)")
    import tomllib

    try:
        spec = ModelSpec.from_dict(tomllib.loads(attrs["bayesreview_spec"]), source=str(path))
        settings = json.loads(attrs["bayesreview_settings"])
        studies = read_studies(pd.read_csv(io.StringIO(attrs["bayesreview_studies"])))
        if attrs.get("bayesreview_structure") == "network":
            return restored_network_fit(idata, spec, settings, studies)
        studies = _restore_levels(studies, settings)
        data = model_data(
            studies,
            settings["outcome"],
            settings["by"],
            settings["bias"],
            settings["bias_reference"],
            settings["bias_prior_counts"],
            settings["unknown"],
            bias_totals=settings.get("bias_totals"),
        )
        if settings.get("weights") is not None:
            data = replace(data, weights=np.asarray(settings["weights"], dtype=np.int64))
    except Exception as exc:  # a damaged attribute fails in many ways
        raise BayesReviewError(f"{path}: damaged bayesreview fit attributes ({exc})") from None
    why = _coordinates_mismatch(idata, data)
    if why:
        raise BayesReviewError(f"{path}: the saved study table does not match its posterior: {why}")
    return Fit(idata=idata, studies=studies, spec=spec, data=data, settings=settings)


def _restore_levels(studies: pd.DataFrame, settings: dict[str, Any]) -> pd.DataFrame:
    """The study table with the fitted categorical levels in their fitted order.

    A CSV keeps a categorical column as text, whose levels would come back sorted; the fit's
    bias coefficients belong to the levels in the order they were fitted (``bias_levels``).
    """
    levels = settings.get("bias_levels")
    column = settings.get("bias")
    if not levels or column is None:
        return studies
    values = studies[column].astype("string")
    unknown = sorted(set(values.dropna()) - set(levels))
    if unknown:
        raise BayesReviewError(
            f"column {column!r} holds levels {unknown} not in the fit's {levels}"
        )
    studies = studies.copy()
    studies[column] = pd.Categorical(values, categories=levels)
    return studies


def _coordinates_mismatch(idata: az.InferenceData, data: ModelData) -> str | None:
    """Why the posterior's group and level coordinates differ from ``data``'s, or None."""
    posterior = idata.posterior
    if "group" in posterior.coords and list(posterior["group"].values) != list(data.groups):
        return f"groups {list(posterior['group'].values)} vs {list(data.groups)}"
    if "bias_level" in posterior.coords:
        saved = [str(v) for v in posterior["bias_level"].values]
        rebuilt = [] if data.bias is None else list(data.bias.levels[1:])
        if saved != rebuilt:
            return f"bias levels {saved} vs {rebuilt}"
    return None
