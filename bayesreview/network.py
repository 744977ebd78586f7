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
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bayesreview.data import validated
from bayesreview.errors import DataError

__all__ = ["NetworkStructure", "arms_of_shared_studies", "network_structure"]


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
    """

    treatments: tuple[str, ...]
    reference: str
    comparisons: pd.DataFrame
    components: tuple[tuple[str, ...], ...]
    multi_arm: tuple[str, ...]
    single_arm: tuple[str, ...]
    basic_pairs: tuple[tuple[str, str], ...]

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
