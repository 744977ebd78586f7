"""The structure of a network of studies: the treatments each study compares and how they connect.

Rows that share a ``study`` label are the arms of one trial, one treatment each (the column
``by``). A study with two arms or more is *comparative*: it compares its treatments directly,
within one randomised population. A study with one arm is *single-arm*: it says how often
patients on that treatment respond, and it speaks to a comparison only through an assumption
about how the studies' baselines relate (exchangeable baselines, in the network model).

:func:`network_structure` reads this from a study table before anything is fitted: the
treatments, the direct comparisons (trials and patients per pair), the multi-arm trials, the
connected components of the comparisons, whether the network has a closed loop, and which
treatments are reached only through single-arm studies. :func:`arms_of_shared_studies` finds
rows that look like arms of one trial, which a single-arm model must not pool as unrelated
studies.

:func:`fit_network` fits the arm-based random-effects network model
(:mod:`bayesreview.backend.network`) and returns a :class:`NetworkFit`: relative effects
against the reference on the odds-ratio, risk-ratio or risk-difference scale, the league table,
ranks with P(best) and SUCRA, and the heterogeneity tau; its priors are those of the shipped
specification ``models/network.toml``. :func:`inconsistency` sets the network model against
the unrelated-mean-effects model where the comparisons close a loop.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy import special, stats

from bayesreview._io import save_fit_file
from bayesreview.backend.sampling import SamplerSettings, checked_sampling
from bayesreview.compare import check_better, check_level
from bayesreview.data import display_labels, outcome_counts, validated
from bayesreview.errors import (
    AssumptionWarning,
    BayesReviewError,
    ConvergenceWarning,
    DataError,
    SpecError,
)
from bayesreview.spec import ModelSpec, load_spec

__all__ = [
    "EXCHANGEABLE_BASELINES",
    "MEASURES",
    "InconsistencyCheck",
    "NetworkFit",
    "NetworkStructure",
    "arms_of_shared_studies",
    "fit_network",
    "inconsistency",
    "network_spec",
    "network_structure",
    "residual_deviance",
    "single_arm_sensitivity",
]

#: Scales of :meth:`NetworkFit.relative_effects`: log odds ratio, odds ratio, risk ratio and
#: risk difference (the last two at the typical study's baseline).
MEASURES = ("log_or", "or", "rr", "rd")


@dataclass(frozen=True)
class NetworkStructure:
    """What a study table's network looks like (:func:`network_structure`).

    Attributes
    ----------
    treatments
        Every treatment with at least one arm, the reference first, then in order of first
        appearance.
    reference
        The treatment relative effects are reported against.
    comparisons
        One row per pair of treatments compared directly: ``treatment_a``, ``treatment_b``
        (in the order of :attr:`treatments`), ``studies`` (comparative studies with both
        arms) and ``patients`` (in those two arms).
    components
        The treatments connected through comparative studies, one tuple per connected
        component, the reference's first; a treatment with single-arm studies only is a
        component of its own.
    multi_arm
        Studies with three arms or more.
    single_arm
        Studies with one arm.
    basic_pairs
        Each comparative study's first arm (in the order of :attr:`treatments`) paired with
        each of its other arms: the independent comparisons of the network.
    patients
        Patients in each treatment's arms, in the order of :attr:`treatments`.
    single_arm_counts
        Single-arm studies of each treatment, in the order of :attr:`treatments`.
    """

    treatments: tuple[str, ...]
    reference: str
    comparisons: pd.DataFrame
    components: tuple[tuple[str, ...], ...]
    multi_arm: tuple[str, ...]
    single_arm: tuple[str, ...]
    basic_pairs: tuple[tuple[str, str], ...]
    patients: tuple[int, ...]
    single_arm_counts: tuple[int, ...]

    @property
    def connected(self) -> bool:
        """Whether comparative studies connect every treatment to the reference."""
        return len(self.components) == 1

    @property
    def has_loop(self) -> bool:
        """Whether the comparisons close a loop, so that direct and indirect evidence on a pair
        can be set against each other. A loop within one multi-arm trial does not count (its
        arms are consistent by design): each study joins its first arm (in the order of
        :attr:`treatments`) to each other arm, and the graph of those pairs has a cycle when
        it has more edges than a spanning forest, treatments minus components."""
        edges = set(self.basic_pairs)
        nodes = {t for pair in edges for t in pair}
        components = sum(1 for c in self.components if set(c) & nodes)
        return len(edges) > len(nodes) - components

    @property
    def reached_by_single_arm_studies_only(self) -> tuple[str, ...]:
        """Treatments outside the reference's component: compared with it, if at all, only
        through single-arm studies and the exchangeable baselines of the studies."""
        return tuple(t for component in self.components[1:] for t in component)

    def describe(self) -> str:
        """The network in words: treatments, comparisons, loops, what joins it."""
        lines = [
            f"{len(self.treatments)} treatments (reference {self.reference!r}); "
            f"{len(self.comparisons)} pairs compared directly in comparative studies; "
            f"{len(self.multi_arm)} multi-arm trials; {len(self.single_arm)} single-arm studies."
        ]
        lines.append(
            "The comparisons close a loop, so direct and indirect evidence can be compared."
            if self.has_loop
            else "The comparisons close no loop: no inconsistency check is possible."
        )
        if self.connected:
            lines.append("Comparative studies connect every treatment to the reference.")
        else:
            outside = ", ".join(repr(t) for t in self.reached_by_single_arm_studies_only)
            lines.append(
                f"Comparative studies do not connect {outside} to the reference: such a "
                "treatment is compared with it only by assuming the studies' baselines "
                "exchangeable (single-arm studies and separate parts of the network then "
                "inform one another through the distribution of baselines)."
            )
        return "\n".join(lines)


def _arms(studies: pd.DataFrame, by: str) -> pd.DataFrame:
    """The study and treatment of each row; DataError naming the rows that are not arms."""
    if by not in studies:
        raise DataError(f"by={by!r}: no such column; columns are {', '.join(studies)}")
    treatment = studies[by]
    problems = [
        f"row {row + 1} (study {studies['study'].iloc[row]!r}): column {by!r} is empty, so the "
        "row is an arm of no treatment"
        for row in range(len(studies))
        if pd.isna(treatment.iloc[row]) or not str(treatment.iloc[row]).strip()
    ]
    arms = pd.DataFrame({"study": studies["study"].astype(str), "treatment": treatment.astype(str)})
    repeated = arms.duplicated(["study", "treatment"], keep=False)
    for (study, name), rows in arms[repeated].groupby(["study", "treatment"], sort=False):
        numbers = ", ".join(str(r + 1) for r in rows.index)
        problems.append(
            f"rows {numbers}: study {study!r} has {len(rows)} arms of treatment {name!r}; "
            "give one row per arm (add up the patients of arms of the same treatment)"
        )
    if problems:
        raise DataError("network: " + "; ".join(problems))
    return arms


def network_structure(
    studies: pd.DataFrame | str, by: str = "modality", reference: str | None = None
) -> NetworkStructure:
    """The network of ``studies``: treatments, direct comparisons and how they connect.

    Parameters
    ----------
    studies
        A study table (DataFrame or CSV path, validated with :func:`bayesreview.read_studies`);
        rows sharing ``study`` are the arms of one trial.
    by
        The treatment column; default ``"modality"``.
    reference
        The treatment effects are reported against; default the treatment with the most
        arms (ties: the first to appear).

    Raises
    ------
    DataError
        Naming the rows: a row with no treatment, or a study with two arms of one treatment;
        or a ``reference`` that is not a treatment (the message lists them).
    """
    table = validated(studies)
    arms = _arms(table, by)
    arms["n"] = table["n"].to_numpy()
    names = list(dict.fromkeys(arms["treatment"]))
    if reference is None:
        counts = arms["treatment"].value_counts()
        reference = max(names, key=lambda t: (counts[t], -names.index(t)))
    elif reference not in names:
        raise DataError(
            f"reference={reference!r}: not a treatment of column {by!r}; the treatments are "
            + ", ".join(repr(t) for t in names)
        )
    treatments = (reference, *(t for t in names if t != reference))
    order = {t: i for i, t in enumerate(treatments)}
    per_study = arms.groupby("study", sort=False)
    pairs: dict[tuple[str, str], list[int]] = {}
    basic = set()
    for _, rows in per_study:
        ranked = sorted(zip(rows["treatment"], rows["n"], strict=True), key=lambda r: order[r[0]])
        basic |= {(ranked[0][0], other) for other, _ in ranked[1:]}
        for i, (a, n_a) in enumerate(ranked):
            for b, n_b in ranked[i + 1 :]:
                entry = pairs.setdefault((a, b), [0, 0])
                entry[0] += 1
                entry[1] += int(n_a + n_b)
    comparisons = pd.DataFrame(
        [(a, b, s, p) for (a, b), (s, p) in pairs.items()],
        columns=["treatment_a", "treatment_b", "studies", "patients"],
    )
    sizes = per_study.size()
    return NetworkStructure(
        treatments=treatments,
        reference=reference,
        comparisons=comparisons.sort_values(
            ["treatment_a", "treatment_b"], key=lambda c: c.map(order)
        ).reset_index(drop=True),
        components=_components(treatments, pairs),
        multi_arm=tuple(sizes.index[sizes >= 3]),
        single_arm=tuple(sizes.index[sizes == 1]),
        basic_pairs=tuple(sorted(basic, key=lambda pair: (order[pair[0]], order[pair[1]]))),
        patients=tuple(int(arms.loc[arms["treatment"] == t, "n"].sum()) for t in treatments),
        single_arm_counts=tuple(
            int(arms.loc[arms["study"].isin(sizes.index[sizes == 1]), "treatment"].eq(t).sum())
            for t in treatments
        ),
    )


def _components(treatments: tuple[str, ...], pairs) -> tuple[tuple[str, ...], ...]:
    """Connected components of the comparison graph, the first treatment's component first."""
    neighbours: dict[str, set[str]] = {t: set() for t in treatments}
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    components, seen = [], set()
    for start in treatments:
        if start in seen:
            continue
        found, frontier = {start}, [start]
        while frontier:
            for other in neighbours[frontier.pop()] - found:
                found.add(other)
                frontier.append(other)
        seen |= found
        components.append(tuple(t for t in treatments if t in found))
    return tuple(components)


def arms_of_shared_studies(studies: pd.DataFrame, by: str = "modality") -> pd.DataFrame:
    """Rows whose study label appears under two levels of ``by`` or more: arms of one trial.

    A single-arm model would fit them as unrelated studies, breaking the randomisation
    within each trial; the network model fits them as arms.

    Returns
    -------
    pandas.DataFrame
        ``study``, ``treatments`` (the levels of ``by`` it has rows under, in order) and
        ``rows`` (its row numbers, from 1), one row per such study; empty where there are
        none.
    """
    arms = pd.DataFrame(
        {
            "study": studies["study"].astype(str).to_numpy(),
            "treatment": studies[by].to_numpy(),
            "row": np.arange(1, len(studies) + 1),
        }
    ).dropna()
    per_study = arms.groupby("study", sort=False)
    levels = per_study["treatment"].agg(lambda t: tuple(dict.fromkeys(t)))
    rows = per_study["row"].agg(tuple)
    shared = levels.map(len) > 1
    return pd.DataFrame(
        {
            "study": levels.index[shared],
            "treatments": levels[shared].to_numpy(),
            "rows": rows[shared].to_numpy(),
        }
    )


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------

#: The assumption single-arm studies (and parts of the network that no comparative study
#: joins) enter through, as :meth:`NetworkFit.assumptions` states it.
EXCHANGEABLE_BASELINES = (
    "the studies' baselines (the reference treatment's logit in each study) are exchangeable: "
    "a single-arm study's patients are taken to respond as a typical study's would on that "
    "treatment"
)


@dataclass
class NetworkFit:
    """A fitted network meta-analysis (:func:`fit_network`, or :func:`bayesreview.fit` with
    ``model="network"``).

    Attributes
    ----------
    idata
        ArviZ InferenceData; ``posterior`` holds ``d`` (log odds ratios against the
        reference, dim ``contrast``), ``tau``, ``baseline_mean``, ``baseline_sd``, ``mu``
        (the studies' baselines, dim ``study``), ``logit_p`` (each arm's logit, dim ``arm``)
        and ``rate`` (each treatment's rate at the typical study's baseline,
        invlogit(baseline_mean + d), dim ``treatment``).
    structure
        The network fitted (:class:`NetworkStructure`).
    arms
        The arms fitted: ``study``, ``treatment``, ``events``, ``trials``.
    spec
        The model specification (``models/network.toml`` unless another was given).
    settings
        The arguments of :func:`fit_network`, the seed drawn and the display labels.
    """

    idata: az.InferenceData
    structure: NetworkStructure
    arms: pd.DataFrame
    spec: ModelSpec
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def treatments(self) -> tuple[str, ...]:
        return self.structure.treatments

    @property
    def reference(self) -> str:
        return self.structure.reference

    @property
    def better(self) -> str:
        """``"higher"`` or ``"lower"``: which direction of the rate is better."""
        return self.settings["better"]

    def label(self, code: str) -> str:
        """What people read for a treatment code (the fit's labels; the code where none)."""
        return self.settings.get("labels", {}).get(code, code)

    def assumptions(self) -> list[str]:
        """What the estimates rest on besides the data, in words: consistency, the common
        tau, and, where single-arm studies or separate parts of the network are joined
        through them, the exchangeable baselines."""
        said = [
            "consistency: every comparison's direct and indirect evidence estimate one effect",
            "one between-study SD tau for every comparison",
        ]
        if self.structure.single_arm:
            count = len(self.structure.single_arm)
            said.append(f"{count} single-arm studies: {EXCHANGEABLE_BASELINES}")
        outside = self.structure.reached_by_single_arm_studies_only
        if outside:
            names = ", ".join(self.label(t) for t in outside)
            said.append(
                f"{names}: no comparative study connects it to {self.label(self.reference)}, "
                "so its comparison with it rests on the exchangeable baselines alone"
            )
        if self.structure.comparisons.empty:
            said.append(
                "no comparative study: the spread of the arm effects (tau) and that of the "
                "baselines are not told apart by the data, so tau's posterior is about its prior"
            )
        return said

    def _draws(self, name: str) -> xr.DataArray:
        return self.idata.posterior[name].stack(sample=("chain", "draw"))

    def _effects(self) -> xr.DataArray:
        """Log odds ratios of every treatment against the reference (0 for it), per draw."""
        d = self._draws("d")
        zero = xr.zeros_like(d.isel(contrast=0)).expand_dims(contrast=[self.reference])
        return xr.concat([zero, d], dim="contrast").rename(contrast="treatment")

    def _on_scale(
        self, measure: str, a: xr.DataArray, b: xr.DataArray, baseline: float | None = None
    ) -> xr.DataArray:
        """Treatment a against b (log odds ratios against the reference) on ``measure``."""
        if measure not in MEASURES:
            raise BayesReviewError(f"measure={measure!r}: must be one of {', '.join(MEASURES)}")
        if measure in ("log_or", "or"):
            difference = a - b
            return np.exp(difference) if measure == "or" else difference
        m = self._baseline_logit(baseline)
        rate_a, rate_b = special.expit(m + a), special.expit(m + b)
        return rate_a / rate_b if measure == "rr" else rate_a - rate_b

    def _baseline_logit(self, baseline: float | None) -> Any:
        """The reference treatment's logit: the typical study's (per draw) or a stated rate."""
        if baseline is None:
            return self._draws("baseline_mean")
        if not 0 < baseline < 1:
            raise BayesReviewError(f"baseline={baseline!r}: must be a rate between 0 and 1")
        return special.logit(baseline)

    def _check_treatment(self, name: str, what: str) -> None:
        if name not in self.treatments:
            raise BayesReviewError(
                f"{what}={name!r}: not a treatment; the treatments are "
                + ", ".join(repr(t) for t in self.treatments)
            )

    def relative_effects(
        self,
        reference: str | None = None,
        measure: str = "log_or",
        level: float = 0.95,
        baseline: float | None = None,
    ) -> pd.DataFrame:
        """Each treatment against ``reference`` (default the fit's), one row per treatment.

        Parameters
        ----------
        reference
            A treatment; default the fit's reference.
        measure
            ``"log_or"`` (default), ``"or"``, ``"rr"`` or ``"rd"``: the risk ratio and risk
            difference at ``baseline``.
        level
            Mass of the equal-tailed intervals; default 0.95.
        baseline
            The fit's reference treatment's rate (0-1) at which ``"rr"`` and ``"rd"`` are
            computed; default None: the typical study's (``baseline_mean``, per draw).

        Returns
        -------
        pandas.DataFrame
            ``treatment``, ``reference``, ``measure``, ``median``, ``lower``, ``upper`` and
            ``p_better``: the posterior probability that the treatment's rate is better than
            the reference's (higher, or lower with ``better="lower"``).
        """
        check_level(level)
        reference = self.reference if reference is None else reference
        self._check_treatment(reference, "reference")
        effects = self._effects()
        base = effects.sel(treatment=reference)
        tail = (1 - level) / 2
        rows = []
        for treatment in self.treatments:
            if treatment == reference:
                continue
            values = self._on_scale(measure, effects.sel(treatment=treatment), base, baseline)
            lower, median, upper = np.quantile(np.asarray(values), [tail, 0.5, 1 - tail])
            ahead = effects.sel(treatment=treatment).values - base.values
            better = ahead > 0 if self.better == "higher" else ahead < 0
            rows.append(
                {
                    "treatment": treatment,
                    "reference": reference,
                    "measure": measure,
                    "median": median,
                    "lower": lower,
                    "upper": upper,
                    "p_better": float(np.mean(better)),
                }
            )
        return pd.DataFrame(rows)

    def rates(self, level: float = 0.95, baseline: float | None = None) -> pd.DataFrame:
        """Each treatment's absolute rate (0-1): invlogit(baseline logit + d[t]).

        Parameters
        ----------
        level
            Mass of the equal-tailed intervals; default 0.95.
        baseline
            The reference treatment's rate the others are read at; default None: the
            typical study's baseline (``baseline_mean``, with its uncertainty).

        Returns
        -------
        pandas.DataFrame
            ``treatment``, ``arms``, ``patients``, ``crude`` (events / patients over its arms),
            ``median``, ``lower``, ``upper``. ``.attrs["baseline"]`` says which baseline.
        """
        check_level(level)
        tail = (1 - level) / 2
        logit = self._baseline_logit(baseline) + self._effects()
        draws = special.expit(logit.transpose("treatment", ...).values)
        counts = self.arms.groupby("treatment")[["events", "trials"]].sum()
        arms = self.arms["treatment"].value_counts()
        lower, median, upper = np.quantile(draws, [tail, 0.5, 1 - tail], axis=-1)
        out = pd.DataFrame(
            {
                "treatment": list(self.treatments),
                "arms": [int(arms[t]) for t in self.treatments],
                "patients": [int(counts.loc[t, "trials"]) for t in self.treatments],
                "crude": [
                    counts.loc[t, "events"] / counts.loc[t, "trials"] for t in self.treatments
                ],
                "median": np.atleast_1d(median),
                "lower": np.atleast_1d(lower),
                "upper": np.atleast_1d(upper),
            }
        )
        out.attrs["baseline"] = (
            "the typical study's baseline"
            if baseline is None
            else f"a baseline rate of {100 * baseline:.3g}% on {self.label(self.reference)}"
        )
        return out

    def league_table(self, measure: str = "or", level: float = 0.95) -> pd.DataFrame:
        """Every ordered pair: row treatment against column treatment, posterior median and
        interval in words (e.g. ``"1.52 (1.10–2.11)"``); the diagonal names the treatment."""
        check_level(level)
        effects = self._effects()
        tail = (1 - level) / 2
        table = pd.DataFrame(
            index=list(self.treatments), columns=list(self.treatments), dtype=object
        )
        for a in self.treatments:
            for b in self.treatments:
                if a == b:
                    table.loc[a, b] = a
                    continue
                values = self._on_scale(measure, effects.sel(treatment=a), effects.sel(treatment=b))
                lower, median, upper = np.quantile(values.values, [tail, 0.5, 1 - tail])
                table.loc[a, b] = f"{median:.2f} ({lower:.2f}–{upper:.2f})"
        return table

    def better_probabilities(self) -> pd.DataFrame:
        """P(row treatment better than column treatment) for every pair (NaN on the
        diagonal), better as the fit's ``better`` says."""
        effects = self._effects().transpose("treatment", "sample").values
        ahead = effects[:, None, :] - effects[None, :, :]
        better = ahead > 0 if self.better == "higher" else ahead < 0
        matrix = better.mean(axis=2)
        np.fill_diagonal(matrix, np.nan)
        return pd.DataFrame(matrix, index=list(self.treatments), columns=list(self.treatments))

    def ranks(self) -> pd.DataFrame:
        """Per treatment: ``mean_rank`` (1 = best), ``p_best`` and ``sucra`` (the surface under
        the cumulative ranking curve: 1 for a treatment certainly best, 0 certainly worst)."""
        effects = self._effects().transpose("sample", "treatment").values
        order = -effects if self.better == "higher" else effects
        rank = order.argsort(axis=1).argsort(axis=1) + 1  # 1 = best
        k = len(self.treatments)
        probabilities = np.stack([(rank == r).mean(axis=0) for r in range(1, k + 1)], axis=1)
        cumulative = np.cumsum(probabilities, axis=1)[:, :-1]
        return pd.DataFrame(
            {
                "treatment": list(self.treatments),
                "mean_rank": rank.mean(axis=0),
                "p_best": probabilities[:, 0],
                "sucra": cumulative.sum(axis=1) / (k - 1),
            }
        )

    def heterogeneity(self, level: float = 0.95) -> dict[str, float]:
        """tau, the between-study SD of the log odds ratios: median, lower, upper."""
        check_level(level)
        tail = (1 - level) / 2
        tau = self.idata.posterior["tau"].values.reshape(-1)
        lower, median, upper = np.quantile(tau, [tail, 0.5, 1 - tail])
        return {"median": float(median), "lower": float(lower), "upper": float(upper)}

    def fit_statistics(self) -> dict[str, float]:
        """How well the model fits its arms (Dias et al. 2013, NICE DSU TSD 2): ``arms``,
        ``residual_deviance`` (posterior mean, summed over arms: about the number of arms
        where the model fits), ``p_d``, ``dic``, ``elpd_loo`` and ``elpd_loo_se`` (PSIS-LOO
        leaving out one study at a time) and ``high_pareto_k`` (studies with k > 0.7)."""
        return _arm_fit_statistics(self.idata, self.arms)[0]

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """One row per treatment for people to read: label, arms, patients, the crude and the
        pooled rate (percent, at the typical study's baseline), the odds ratio against the
        reference with its interval, P(better than the reference) and SUCRA."""
        rates = self.rates(level)
        effects = self.relative_effects(measure="or", level=level).set_index("treatment")
        sucra = self.ranks().set_index("treatment")["sucra"]
        percent = level * 100
        rows = []
        for _, row in rates.iterrows():
            t = row["treatment"]
            odds = (
                "reference"
                if t == self.reference
                else f"{effects.loc[t, 'median']:.2f} "
                f"({effects.loc[t, 'lower']:.2f}–{effects.loc[t, 'upper']:.2f})"
            )
            rows.append(
                {
                    "treatment": self.label(t),
                    "arms": row["arms"],
                    "patients": row["patients"],
                    "crude %": round(100 * row["crude"], 1),
                    "rate %": round(100 * row["median"], 1),
                    f"{percent:g}% CrI": f"{100 * row['lower']:.1f}–{100 * row['upper']:.1f}",
                    f"OR vs {self.label(self.reference)} ({percent:g}% CrI)": odds,
                    "P(better)": (
                        np.nan if t == self.reference else round(effects.loc[t, "p_better"], 3)
                    ),
                    "SUCRA": round(float(sucra[t]), 3),
                }
            )
        return pd.DataFrame(rows)

    def diagnostics(self) -> pd.DataFrame:
        """R-hat, bulk and tail ESS of d, tau, baseline_mean and baseline_sd, and the number
        of divergences (repeated on every row)."""
        summary = az.summary(
            self.idata,
            var_names=["d", "tau", "baseline_mean", "baseline_sd"],
            kind="diagnostics",
            round_to="none",
        )
        summary = summary[["r_hat", "ess_bulk", "ess_tail"]].rename_axis("parameter")
        summary["divergences"] = self.divergences
        return summary.reset_index()

    @property
    def divergences(self) -> int:
        """Number of divergent transitions after tuning."""
        return int(self.idata.sample_stats["diverging"].sum())

    def inconsistency(self, **fit_arguments: Any) -> InconsistencyCheck:
        """The inconsistency check of this network (:func:`inconsistency`), with this fit's
        data and settings; ``fit_arguments`` override the sampler settings."""
        kept = ("by", "outcome", "reference", "unknown", "sampler", "draws", "tune", "chains")
        settings = {k: self.settings[k] for k in kept}
        return inconsistency(
            self.settings["studies"],
            model=self.spec,
            **{**settings, "seed": self.settings["seed"], **fit_arguments},
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fit to a netCDF file, whole or not at all, as :meth:`Fit.save` does;
        :func:`bayesreview.load_fit` reads it back as a NetworkFit."""
        settings = {k: v for k, v in self.settings.items() if k != "studies"}
        studies = self.settings["studies"].to_csv(index=False)
        return save_fit_file(
            self.idata, path, self.spec.to_toml(), studies, settings, structure="network"
        )

    def __repr__(self) -> str:
        tau = self.heterogeneity()
        lines = [
            f"NetworkFit: {len(self.treatments)} treatments, {len(self.arms)} arms of "
            f"{self.arms['study'].nunique()} studies; reference {self.label(self.reference)}; "
            f"{self.settings['outcome']} ({'higher' if self.better == 'higher' else 'lower'} "
            "is better)",
            f"tau {tau['median']:.2f} (95% CrI {tau['lower']:.2f}–{tau['upper']:.2f})",
            "Assumes: " + "; ".join(self.assumptions()) + ".",
        ]
        return "\n".join(lines)


def _comparative_only(table: pd.DataFrame, by: str, structure: NetworkStructure) -> pd.DataFrame:
    """The comparative studies' rows; DataError naming treatments with single-arm studies only."""
    comparative = ~table["study"].astype(str).isin(structure.single_arm).to_numpy()
    left = set(table.loc[comparative, by].astype(str))
    alone = [t for t in structure.treatments if t not in left]
    if alone:
        raise DataError(
            "single_arm=False: "
            + ", ".join(repr(t) for t in alone)
            + (" has" if len(alone) == 1 else " have")
            + " only single-arm studies, so the comparative studies alone say nothing about "
            "it; fit with single_arm=True (assuming the studies' baselines exchangeable) or "
            "drop it"
        )
    return table[comparative].reset_index(drop=True)


def _network_arms(table: pd.DataFrame, by: str, outcome: str, unknown: str) -> pd.DataFrame:
    events, trials = outcome_counts(table, outcome, unknown)
    return pd.DataFrame(
        {
            "study": table["study"].astype(str).to_numpy(),
            "treatment": table[by].astype(str).to_numpy(),
            "events": events,
            "trials": trials,
        }
    )


def network_spec(model: str | os.PathLike | ModelSpec) -> ModelSpec:
    """``model`` loaded (:func:`bayesreview.load_spec`); SpecError unless it is a network
    specification (``structure = "network"``)."""
    spec = load_spec(model)
    if spec.structure != "network":
        raise SpecError(
            f"model {spec.name!r} is not a network model (its structure is "
            f'{spec.structure!r}); use model="network" or a copy of models/network.toml'
        )
    return spec


def _consistency_design(arms: pd.DataFrame, treatments: tuple[str, ...]) -> np.ndarray:
    """Arms x non-reference treatments: 1 where the arm is of that treatment."""
    columns = np.asarray(treatments[1:])
    return (arms["treatment"].to_numpy()[:, None] == columns[None, :]).astype(float)


def _sample_arms(
    arms: pd.DataFrame,
    design: np.ndarray,
    parameters: list[str],
    spec: ModelSpec,
    run: SamplerSettings,
) -> az.InferenceData:
    """Sample the arm-based model with ``design``; the posterior labelled by study and arm."""
    from bayesreview.backend.network import network_arrays, sample_network

    studies = list(dict.fromkeys(arms["study"]))
    study = arms["study"].map({s: i for i, s in enumerate(studies)}).to_numpy()
    arrays = network_arrays(study, design, arms["events"], arms["trials"])
    idata = sample_network(arrays, len(studies), parameters, spec.priors, run)
    labels = [f"{s}: {t}" for s, t in zip(arms["study"], arms["treatment"], strict=True)]
    idata.posterior = idata.posterior.assign_coords(study=studies, arm=labels)
    return idata


def fit_network(
    studies: pd.DataFrame | str | os.PathLike,
    by: str = "modality",
    outcome: str = "events",
    reference: str | None = None,
    single_arm: bool = True,
    better: str = "higher",
    unknown: str = "failure",
    model: str | os.PathLike | ModelSpec = "network",
    labels: Mapping[str, str] | None = None,
    sampler: str | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progressbar: bool = True,
) -> NetworkFit:
    """Fit the arm-based random-effects network model (:mod:`bayesreview.backend.network`).

    Rows sharing ``study`` are arms of one trial (one treatment each, column ``by``);
    relative effects are log odds ratios against ``reference``, random across studies with a
    common SD tau, consistency assumed. Studies' baselines are exchangeable, so single-arm
    studies inform the rates of their treatments; a treatment that comparative studies do not
    connect to the reference is compared with it through that assumption alone
    (:meth:`NetworkFit.assumptions` says so, and an :class:`~bayesreview.AssumptionWarning`
    names it).

    Parameters
    ----------
    studies
        A study table (DataFrame or CSV path).
    by
        The treatment column; default ``"modality"``.
    outcome
        ``"events"`` (default), ``"any"``, ``"complete"`` or ``"partial"``.
    reference
        Default: the treatment with the most arms.
    single_arm
        Include single-arm studies (default True); False fits the comparative studies only
        (the sensitivity analysis without them), which needs them to connect every
        treatment.
    better
        ``"higher"`` (default) or ``"lower"``: the direction of ``p_better`` and the ranks.
    unknown
        ``"failure"`` (default) or ``"exclude"``: unknown responses, as in
        :func:`bayesreview.fit`.
    model
        A network specification: ``"network"`` (default, ``models/network.toml``), a
        ``.toml`` path or a :class:`~bayesreview.ModelSpec` with ``structure = "network"``.
    labels
        Display labels of treatment codes, as in :func:`bayesreview.fit`.
    sampler, draws, tune, chains, seed, progressbar
        Sampler settings, as in :func:`bayesreview.fit` (default nutpie, 1000, 1000, 4,
        random, True).

    Raises
    ------
    DataError
        For bad arms (:func:`network_structure`), a network of one treatment, or with
        ``single_arm=False`` where the comparative studies leave a treatment unconnected (the
        message names it).
    SpecError
        If ``model`` is not a network specification.
    """
    check_better(better)
    spec = network_spec(model)
    codebook = display_labels(studies if isinstance(studies, pd.DataFrame) else None, labels)
    run = checked_sampling(sampler, draws, tune, chains, seed, progressbar)
    table = validated(studies)
    structure = network_structure(table, by, reference)
    if len(structure.treatments) < 2:
        raise DataError(
            f"column {by!r} has one treatment, {structure.treatments[0]!r}: a network needs two "
            "or more (for one treatment's rate, fit it with bayesreview.fit)"
        )
    if not single_arm:
        table = _comparative_only(table, by, structure)
        structure = network_structure(table, by, structure.reference)
    if not structure.connected:
        outside = ", ".join(
            repr(codebook.get(t, t)) for t in structure.reached_by_single_arm_studies_only
        )
        reference_name = codebook.get(structure.reference, structure.reference)
        if not single_arm:
            raise DataError(
                f"single_arm=False: the comparative studies do not connect {outside} to the "
                f"reference {reference_name!r}; fit with single_arm=True (the single-arm "
                "studies then connect them, assuming the studies' baselines exchangeable) or "
                "drop those treatments"
            )
        warnings.warn(
            f"No comparative study connects {outside} to the reference "
            f"{reference_name!r}: the comparison rests on the assumption that "
            f"{EXCHANGEABLE_BASELINES}.",
            AssumptionWarning,
            stacklevel=2,
        )
    arms = _network_arms(table, by, outcome, unknown)
    idata = _sample_arms(
        arms, _consistency_design(arms, structure.treatments), list(structure.treatments[1:]),
        spec, run,
    )  # fmt: skip
    posterior = idata.posterior
    effects = (
        xr.concat([xr.zeros_like(posterior["d"].isel(contrast=0)), posterior["d"]], dim="contrast")
        .rename(contrast="treatment")
        .assign_coords(treatment=list(structure.treatments))
    )
    idata.posterior["rate"] = special.expit(posterior["baseline_mean"] + effects)
    settings = {
        "by": by, "outcome": outcome, "reference": structure.reference, "single_arm": single_arm,
        "better": better, "unknown": unknown, "model": spec.name, "sampler": run.sampler,
        "draws": run.draws, "tune": run.tune, "chains": run.chains, "seed": run.seed,
        "labels": codebook,
        "studies": table,
    }  # fmt: skip
    result = NetworkFit(idata=idata, structure=structure, arms=arms, spec=spec, settings=settings)
    _warn_unconverged(result)
    return result


def restored_network_fit(
    idata: az.InferenceData, spec: ModelSpec, settings: dict[str, Any], studies: pd.DataFrame
) -> NetworkFit:
    """The NetworkFit of a saved posterior (:meth:`NetworkFit.save`), its network and arms
    rebuilt from the saved study table and settings; BayesReviewError where the arms do not
    match the posterior's."""
    structure = network_structure(studies, settings["by"], settings["reference"])
    arms = _network_arms(studies, settings["by"], settings["outcome"], settings["unknown"])
    labels = [f"{s}: {t}" for s, t in zip(arms["study"], arms["treatment"], strict=True)]
    if list(idata.posterior["arm"].values) != labels:
        raise BayesReviewError("the saved study table's arms differ from the posterior's")
    restored = {**settings, "studies": studies}
    return NetworkFit(idata=idata, structure=structure, arms=arms, spec=spec, settings=restored)


def _warn_unconverged(result: NetworkFit) -> None:
    table = result.diagnostics()
    if table["r_hat"].max() > 1.01 or result.divergences:
        warnings.warn(
            f"The sampler may not have converged: R-hat up to {table['r_hat'].max():.3f}, "
            f"{result.divergences} divergent transitions; try more tune and draws.",
            ConvergenceWarning,
            stacklevel=3,
        )


def single_arm_sensitivity(
    studies: pd.DataFrame | str,
    by: str = "modality",
    reference: str | None = None,
    measure: str = "log_or",
    level: float = 0.95,
    **fit_arguments: Any,
) -> pd.DataFrame:
    """The relative effects with and without the single-arm studies, side by side.

    With them, every treatment is estimated, those that comparative studies do not reach
    through the exchangeable baselines alone; without them, only the treatments the
    comparative studies connect to the reference are (the others get NaN and the reason).

    Parameters
    ----------
    studies, by, reference
        As in :func:`fit_network`.
    measure, level
        As in :meth:`NetworkFit.relative_effects`; default log odds ratios, 95%.
    **fit_arguments
        Passed to both :func:`fit_network` calls (``outcome``, ``draws``, ``seed``, ...).

    Returns
    -------
    pandas.DataFrame
        ``treatment``, ``reference``, ``measure``, ``median``/``lower``/``upper`` with the
        single-arm studies and ``median_without``/``lower_without``/``upper_without``
        without them, and ``note`` (empty, or why a treatment has no estimate without them).
        ``.attrs["assumption"]`` states what the single-arm studies add.
    """
    table = validated(studies)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AssumptionWarning)  # the table's note says it
        full = fit_network(table, by, reference=reference, single_arm=True, **fit_arguments)
    structure = full.structure
    comparative = table[~table["study"].astype(str).isin(structure.single_arm).to_numpy()]
    reached = network_structure(comparative, by, structure.reference).components[0]
    kept = comparative[comparative[by].astype(str).isin(reached).to_numpy()]
    kept = kept[kept.groupby("study")["study"].transform("size").to_numpy() > 1]
    without = fit_network(
        kept, by, reference=structure.reference, single_arm=False, **fit_arguments
    )
    without = without.relative_effects(measure=measure, level=level)
    out = full.relative_effects(measure=measure, level=level).drop(columns="p_better")
    out = out.merge(
        without[["treatment", "median", "lower", "upper"]].rename(
            columns=lambda c: c if c == "treatment" else f"{c}_without"
        ),
        on="treatment",
        how="left",
    )
    out["note"] = [
        "" if t in reached else "no comparative study connects it to the reference"
        for t in out["treatment"]
    ]
    out.attrs["assumption"] = (
        f"{len(structure.single_arm)} single-arm studies enter through the assumption that "
        f"{EXCHANGEABLE_BASELINES}"
    )
    return out


# --------------------------------------------------------------------------------------------
# Inconsistency: consistency against unrelated mean effects
# --------------------------------------------------------------------------------------------


@dataclass
class InconsistencyCheck:
    """The network model against the unrelated-mean-effects model (:func:`inconsistency`).

    Attributes
    ----------
    pairs
        One row per pair compared directly (each comparative study's first arm against each
        of its others): ``treatment``, ``versus``, ``studies``, the direct log odds ratio of
        the unrelated-mean-effects model (``direct_median``, ``direct_lower``,
        ``direct_upper``) and the network's, consistency assumed (``network_median``, ...).
    fit_statistics
        One row per model (``consistency``, ``unrelated mean effects``): ``arms``,
        ``residual_deviance`` (posterior mean; about the number of arms where a model fits),
        ``p_d`` (effective parameters), ``dic``, ``elpd_loo`` and ``elpd_loo_se`` (PSIS-LOO,
        one study left out at a time) and ``high_pareto_k`` (studies with k > 0.7, where the
        PSIS estimate is unreliable).
    deviance
        Each arm's posterior mean residual deviance under both models (``arm``,
        ``consistency``, ``unrelated``): an arm far above the diagonal fits only without
        consistency.
    studies_left_out
        The single-arm studies, which speak to no comparison and are left out of both fits.
    """

    pairs: pd.DataFrame
    fit_statistics: pd.DataFrame
    deviance: pd.DataFrame
    studies_left_out: tuple[str, ...]

    @property
    def dic_difference(self) -> float:
        """DIC of the consistency model minus that of the unrelated-mean-effects model:
        positive where dropping consistency fits better (Dias et al. 2013 read a difference
        of 3 to 5 or more as meaningful)."""
        dic = self.fit_statistics.set_index("model")["dic"]
        return float(dic["consistency"] - dic["unrelated mean effects"])

    def summary(self) -> str:
        """The check in words, every number from :attr:`fit_statistics` and :attr:`pairs`."""
        stats = self.fit_statistics.set_index("model")
        consistent, unrelated = stats.loc["consistency"], stats.loc["unrelated mean effects"]
        lines = [
            f"Residual deviance {consistent['residual_deviance']:.1f} with consistency and "
            f"{unrelated['residual_deviance']:.1f} without, for {int(consistent['arms'])} arms; "
            f"DIC {consistent['dic']:.1f} against {unrelated['dic']:.1f} (difference "
            f"{self.dic_difference:.1f}).",
        ]
        apart = self.pairs[
            (self.pairs["direct_lower"] > self.pairs["network_upper"])
            | (self.pairs["direct_upper"] < self.pairs["network_lower"])
        ]
        lines.append(
            f"{len(apart)} of {len(self.pairs)} direct comparisons have a 95% interval that "
            "does not overlap the network's."
        )
        return "\n".join(lines)


def _unrelated_design(
    arms: pd.DataFrame, treatments: tuple[str, ...]
) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """The unrelated-mean-effects design: each comparative study's first arm b (in the order
    of ``treatments``) gets a free offset per baseline treatment other than the reference, and
    each of its other arms t a free log odds ratio of t against b, one per pair (b, t)."""
    order = {t: i for i, t in enumerate(treatments)}
    first = arms.groupby("study", sort=False)["treatment"].agg(lambda t: min(t, key=order.get))
    baseline = arms["study"].map(first).to_numpy()
    pairs = sorted(
        {(b, t) for b, t in zip(baseline, arms["treatment"], strict=True) if b != t},
        key=lambda pair: (order[pair[0]], order[pair[1]]),
    )
    offsets = sorted({b for b in baseline if b != treatments[0]}, key=order.get)
    names = [f"{t} vs {b}" for b, t in pairs] + [f"baseline {b}" for b in offsets]
    design = np.zeros((len(arms), len(names)))
    for k, (b, t) in enumerate(zip(baseline, arms["treatment"], strict=True)):
        if b != t:
            design[k, pairs.index((b, t))] = 1.0
        if b != treatments[0]:
            design[k, len(pairs) + offsets.index(b)] = 1.0
    return design, names, pairs


def _arm_fit_statistics(
    idata: az.InferenceData, arms: pd.DataFrame
) -> tuple[dict[str, float], np.ndarray]:
    """Residual deviance, pD, DIC and PSIS-LOO by study of one fit; each arm's mean deviance."""
    y = arms["events"].to_numpy(dtype=float)
    n = arms["trials"].to_numpy(dtype=float)
    logit_p = idata.posterior["logit_p"].transpose("chain", "draw", "arm").values
    p = special.expit(logit_p)
    per_arm = residual_deviance(y, n, p).mean(axis=(0, 1))
    at_mean = residual_deviance(y, n, p.mean(axis=(0, 1)))
    loglik = stats.binom.logpmf(y, n, p)
    studies = list(dict.fromkeys(arms["study"]))
    index = arms["study"].map({s: i for i, s in enumerate(studies)}).to_numpy()
    by_study = np.stack([loglik[..., index == i].sum(axis=-1) for i in range(len(studies))], -1)
    likelihood = xr.Dataset({"y": (("chain", "draw", "study"), by_study)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # high Pareto k: counted below
        loo = az.loo(az.InferenceData(posterior=idata.posterior, log_likelihood=likelihood),
                     pointwise=True)  # fmt: skip
    mean_deviance = float(per_arm.sum())
    p_d = mean_deviance - float(at_mean.sum())
    fit_stats = {
        "arms": len(arms), "residual_deviance": mean_deviance, "p_d": p_d,
        "dic": mean_deviance + p_d, "elpd_loo": float(loo.elpd_loo), "elpd_loo_se": float(loo.se),
        "high_pareto_k": int((np.asarray(loo.pareto_k) > 0.7).sum()),
    }  # fmt: skip
    return fit_stats, per_arm


def residual_deviance(events: np.ndarray, trials: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """The binomial residual deviance of each arm, 2 [y log(y / n p) + (n - y) log((n - y) /
    (n - n p))], with 0 log 0 = 0: its sum over arms is about the number of arms where a
    model fits (Dias et al. 2013, NICE DSU TSD 2)."""
    fitted = trials * rate
    return 2 * (
        special.xlogy(events, events) - special.xlogy(events, fitted)
        + special.xlogy(trials - events, trials - events)
        - special.xlogy(trials - events, trials - fitted)
    )  # fmt: skip


def inconsistency(
    studies: pd.DataFrame | str | os.PathLike,
    by: str = "modality",
    outcome: str = "events",
    reference: str | None = None,
    unknown: str = "failure",
    model: str | os.PathLike | ModelSpec = "network",
    sampler: str | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progressbar: bool = False,
) -> InconsistencyCheck:
    """Check the consistency of a network with a loop: the network model against the
    unrelated-mean-effects model (Dias et al. 2013, Medical Decision Making 33:641).

    The unrelated-mean-effects model gives every pair compared directly its own log odds
    ratio, nothing tying one pair to another, so it fits each direct comparison on its own
    while sharing tau and the distribution of baselines. Both models are fitted to the
    comparative studies (a single-arm study speaks to no comparison) with the same priors
    (``effect`` for every free log odds ratio) and compared by residual deviance, DIC and
    PSIS-LOO by study, and pair by pair.

    Parameters
    ----------
    studies, by, outcome, reference, unknown, model
        As in :func:`fit_network`.
    sampler, draws, tune, chains, seed, progressbar
        Sampler settings of both fits (default nutpie, 1000, 1000, 4, random, False).

    Raises
    ------
    BayesReviewError
        If the comparative studies close no loop: there is then no indirect evidence to set
        against the direct.
    """
    spec = network_spec(model)
    run = checked_sampling(sampler, draws, tune, chains, seed, progressbar)
    table = validated(studies)
    structure = network_structure(table, by, reference)
    comparative = table[~table["study"].astype(str).isin(structure.single_arm).to_numpy()]
    inner = network_structure(comparative, by, structure.reference)
    if not inner.has_loop:
        raise BayesReviewError(
            "inconsistency: the comparative studies close no loop (a loop within one multi-arm "
            "trial does not count), so no comparison has both direct and indirect evidence"
        )
    arms = _network_arms(comparative.reset_index(drop=True), by, outcome, unknown)
    consistency_design = _consistency_design(arms, inner.treatments)
    consistent = _sample_arms(arms, consistency_design, list(inner.treatments[1:]), spec, run)
    design, names, pairs = _unrelated_design(arms, inner.treatments)
    unrelated = _sample_arms(arms, design, names, spec, run)
    statistics, deviance = {}, {}
    for name, idata in (("consistency", consistent), ("unrelated mean effects", unrelated)):
        statistics[name], deviance[name] = _arm_fit_statistics(idata, arms)
    return InconsistencyCheck(
        pairs=_pair_table(pairs, consistent, unrelated, inner),
        fit_statistics=pd.DataFrame(statistics).T.rename_axis("model").reset_index(),
        deviance=pd.DataFrame(
            {
                "arm": [f"{s}: {t}" for s, t in zip(arms["study"], arms["treatment"], strict=True)],
                "consistency": deviance["consistency"],
                "unrelated": deviance["unrelated mean effects"],
            }
        ),
        studies_left_out=structure.single_arm,
    )


def _pair_table(pairs, consistent, unrelated, structure: NetworkStructure) -> pd.DataFrame:
    """Direct (unrelated mean effects) next to network (consistency) log odds ratios."""
    d = consistent.posterior["d"].stack(sample=("chain", "draw"))
    direct = unrelated.posterior["d"].stack(sample=("chain", "draw"))
    reference = structure.treatments[0]
    counts = structure.comparisons.set_index(["treatment_a", "treatment_b"])["studies"]

    def effect(t: str):
        return 0.0 if t == reference else d.sel(contrast=t).values

    rows = []
    for b, t in pairs:
        network = effect(t) - effect(b)
        lower, median, upper = np.quantile(direct.sel(contrast=f"{t} vs {b}").values,
                                           [0.025, 0.5, 0.975])  # fmt: skip
        n_lower, n_median, n_upper = np.quantile(network, [0.025, 0.5, 0.975])
        rows.append(
            {
                "treatment": t, "versus": b, "studies": int(counts.loc[(b, t)]),
                "direct_median": median, "direct_lower": lower, "direct_upper": upper,
                "network_median": n_median, "network_lower": n_lower, "network_upper": n_upper,
            }
        )  # fmt: skip
    return pd.DataFrame(rows)
