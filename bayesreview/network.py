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
ranks with P(best) and SUCRA, and the heterogeneity tau. The priors are
:data:`NETWORK_PRIORS`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from bayesreview.compare import check_better, check_level
from bayesreview.data import outcome_counts, validated
from bayesreview.errors import BayesReviewError, ConvergenceWarning, DataError
from bayesreview.spec import Prior

__all__ = [
    "MEASURES",
    "NETWORK_PRIORS",
    "NetworkFit",
    "NetworkStructure",
    "arms_of_shared_studies",
    "fit_network",
    "network_structure",
    "single_arm_sensitivity",
]

#: Priors of the network model: each log odds ratio against the reference, the mean and SD of
#: the studies' baseline logits, and the between-study SD tau of the log odds ratios.
NETWORK_PRIORS: dict[str, Prior] = {
    "effect": Prior("normal", {"mu": 0.0, "sigma": 2.0}),
    "baseline_mean": Prior("normal", {"mu": 0.0, "sigma": 1.5}),
    "baseline_sd": Prior("halfnormal", {"sigma": 1.5}),
    "tau": Prior("halfnormal", {"sigma": 1.0}),
}

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
        ``study`` and ``treatments`` (the levels of ``by`` it has rows under, in order), one
        row per such study; empty where there are none.
    """
    arms = pd.DataFrame({"study": studies["study"].astype(str), "treatment": studies[by]})
    levels = (
        arms.dropna()
        .groupby("study", sort=False)["treatment"]
        .agg(lambda t: tuple(dict.fromkeys(t)))
    )
    shared = levels[levels.map(len) > 1]
    return pd.DataFrame({"study": shared.index, "treatments": shared.to_numpy()})


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


@dataclass
class NetworkFit:
    """A fitted network meta-analysis (:func:`fit_network`).

    Attributes
    ----------
    idata
        ArviZ InferenceData; ``posterior`` holds ``d`` (log odds ratios against the
        reference, dim ``contrast``), ``tau``, ``baseline_mean``, ``baseline_sd``, ``mu``
        (the studies' baselines) and ``rate`` (each treatment's rate at the typical study's
        baseline, invlogit(baseline_mean + d), dim ``treatment``).
    structure
        The network fitted (:class:`NetworkStructure`).
    arms
        The arms fitted: ``study``, ``treatment``, ``events``, ``trials``.
    settings
        The arguments of :func:`fit_network`.
    """

    idata: az.InferenceData
    structure: NetworkStructure
    arms: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def treatments(self) -> tuple[str, ...]:
        return self.structure.treatments

    @property
    def reference(self) -> str:
        return self.structure.reference

    def _effects(self) -> xr.DataArray:
        """Log odds ratios of every treatment against the reference (0 for it), per draw."""
        d = self.idata.posterior["d"].stack(sample=("chain", "draw"))
        zero = xr.zeros_like(d.isel(contrast=0)).expand_dims(contrast=[self.reference])
        return xr.concat([zero, d], dim="contrast").rename(contrast="treatment")

    def _on_scale(self, measure: str, a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
        """Treatment a against b (log odds ratios against the reference) on ``measure``."""
        if measure not in MEASURES:
            raise BayesReviewError(f"measure={measure!r}: must be one of {', '.join(MEASURES)}")
        if measure in ("log_or", "or"):
            difference = a - b
            return np.exp(difference) if measure == "or" else difference
        m = self.idata.posterior["baseline_mean"].stack(sample=("chain", "draw"))
        rate_a, rate_b = special.expit(m + a), special.expit(m + b)
        return rate_a / rate_b if measure == "rr" else rate_a - rate_b

    def relative_effects(
        self, reference: str | None = None, measure: str = "log_or", level: float = 0.95
    ) -> pd.DataFrame:
        """Each treatment against ``reference`` (default the fit's), one row per treatment.

        Parameters
        ----------
        reference
            A treatment; default the fit's reference.
        measure
            ``"log_or"`` (default), ``"or"``, ``"rr"`` or ``"rd"``: risk ratio and risk
            difference at the typical study's baseline (``baseline_mean``, the reference's logit
            in a typical study).
        level
            Mass of the equal-tailed intervals; default 0.95.

        Returns
        -------
        pandas.DataFrame
            ``treatment``, ``reference``, ``measure``, ``median``, ``lower``, ``upper`` and
            ``p_better``: the posterior probability that the treatment's rate is better than
            the reference's (higher, or lower with ``better="lower"``).
        """
        check_level(level)
        reference = self.reference if reference is None else reference
        if reference not in self.treatments:
            raise BayesReviewError(
                f"reference={reference!r}: not a treatment; the treatments are "
                + ", ".join(repr(t) for t in self.treatments)
            )
        effects = self._effects()
        base = effects.sel(treatment=reference)
        tail = (1 - level) / 2
        rows = []
        for treatment in self.treatments:
            if treatment == reference:
                continue
            values = self._on_scale(measure, effects.sel(treatment=treatment), base).values
            lower, median, upper = np.quantile(values, [tail, 0.5, 1 - tail])
            ahead = effects.sel(treatment=treatment).values - base.values
            better = ahead > 0 if self.settings["better"] == "higher" else ahead < 0
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
        better = ahead > 0 if self.settings["better"] == "higher" else ahead < 0
        matrix = better.mean(axis=2)
        np.fill_diagonal(matrix, np.nan)
        return pd.DataFrame(matrix, index=list(self.treatments), columns=list(self.treatments))

    def ranks(self) -> pd.DataFrame:
        """Per treatment: ``mean_rank`` (1 = best), ``p_best`` and ``sucra`` (the surface under
        the cumulative ranking curve: 1 for a treatment certainly best, 0 certainly worst)."""
        effects = self._effects().transpose("sample", "treatment").values
        order = -effects if self.settings["better"] == "higher" else effects
        rank = order.argsort(axis=1).argsort(axis=1) + 1  # 1 = best
        k = len(self.treatments)
        probabilities = np.stack([(rank == r).mean(axis=0) for r in range(1, k + 1)], axis=1)
        cumulative = np.cumsum(probabilities, axis=1)[:, :-1]
        return pd.DataFrame(
            {
                "treatment": list(self.treatments),
                "mean_rank": rank.mean(axis=0),
                "p_best": probabilities[:, 0],
                "sucra": cumulative.sum(axis=1) / (k - 1) if k > 1 else np.ones(k),
            }
        )

    def heterogeneity(self, level: float = 0.95) -> dict[str, float]:
        """tau, the between-study SD of the log odds ratios: median, lower, upper."""
        check_level(level)
        tail = (1 - level) / 2
        tau = self.idata.posterior["tau"].values.reshape(-1)
        lower, median, upper = np.quantile(tau, [tail, 0.5, 1 - tail])
        return {"median": float(median), "lower": float(lower), "upper": float(upper)}


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


def fit_network(
    studies: pd.DataFrame | str,
    by: str = "modality",
    outcome: str = "events",
    reference: str | None = None,
    single_arm: bool = True,
    better: str = "higher",
    unknown: str = "failure",
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
    connect to the reference is compared with it through that assumption alone (the fit's
    ``structure.describe()`` says so).

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
    draws, tune, chains, seed, progressbar
        Sampler settings, as in :func:`bayesreview.fit` (default 1000, 1000, 4, random, True).

    Raises
    ------
    DataError
        For bad arms (:func:`network_structure`), or with ``single_arm=False`` where the
        comparative studies leave a treatment unconnected (the message names it).
    """
    from bayesreview.backend.network import network_model, sample_network

    check_better(better)
    table = validated(studies)
    structure = network_structure(table, by, reference)
    if not single_arm:
        table = _comparative_only(table, by, structure)
        structure = network_structure(table, by, structure.reference)
    if not single_arm and not structure.connected:
        outside = ", ".join(repr(t) for t in structure.reached_by_single_arm_studies_only)
        raise DataError(
            f"single_arm=False: the comparative studies do not connect {outside} to the "
            f"reference {structure.reference!r}; fit with single_arm=True (the single-arm "
            "studies then connect them, assuming the studies' baselines exchangeable) or drop "
            "those treatments"
        )
    arms = _network_arms(table, by, outcome, unknown)
    studies_list = list(dict.fromkeys(arms["study"]))
    model = network_model(
        study=arms["study"].map({s: i for i, s in enumerate(studies_list)}).to_numpy(),
        treatment=arms["treatment"]
        .map({t: i for i, t in enumerate(structure.treatments)})
        .to_numpy(),
        events=arms["events"].to_numpy(),
        trials=arms["trials"].to_numpy(),
        studies=studies_list,
        treatments=list(structure.treatments),
        priors=NETWORK_PRIORS,
    )
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    idata = sample_network(model, draws, tune, chains, int(seed), progressbar)
    posterior = idata.posterior
    effects = (
        xr.concat([xr.zeros_like(posterior["d"].isel(contrast=0)), posterior["d"]], dim="contrast")
        .rename(contrast="treatment")
        .assign_coords(treatment=list(structure.treatments))
    )
    idata.posterior["rate"] = special.expit(posterior["baseline_mean"] + effects)
    settings = {
        "by": by, "outcome": outcome, "reference": structure.reference, "single_arm": single_arm,
        "better": better, "unknown": unknown, "draws": draws, "tune": tune, "chains": chains,
        "seed": int(seed),
    }  # fmt: skip
    result = NetworkFit(idata=idata, structure=structure, arms=arms, settings=settings)
    summary = az.summary(idata, var_names=["d", "tau"], kind="diagnostics")
    divergences = int(idata.sample_stats["diverging"].sum())
    if summary["r_hat"].max() > 1.01 or divergences:
        warnings.warn(
            f"The sampler may not have converged: R-hat up to {summary['r_hat'].max():.3f}, "
            f"{divergences} divergent transitions.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return result


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
        f"{len(structure.single_arm)} single-arm studies enter through the exchangeable "
        "baselines of the studies: a single-arm study's patients are taken to respond as a "
        "typical study's would on that treatment"
    )
    return out
