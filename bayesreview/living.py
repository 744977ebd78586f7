"""Living reviews: refit with new or corrected studies, and say what changed.

:func:`update` adds rows to a fit's study table (a row whose ``study`` label is already there,
in the same modality, replaces that study: a correction or a longer follow-up), refits with
the same model and settings, and returns a new fit; the old one is left as it was.
:func:`changes` then gives, per outcome and modality, the studies added or replaced and the
pooled rate before and after, with intervals. Everything is validated before anything is fitted
or written: a new row that fails validation, or a study label that clashes across modalities,
raises a :class:`~bayesreview.DataError`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pandas as pd

from bayesreview.data import read_studies
from bayesreview.errors import DataError

if TYPE_CHECKING:
    from bayesreview.fitting import Fit

__all__ = ["changes", "combine_studies", "fit_arguments", "update"]

#: Columns of the pooled summary kept from before an update (see :func:`changes`).
_BEFORE_COLUMNS = ("outcome", "modality", "mean_rate", "mean_rate_lower", "mean_rate_upper")
#: The arguments of :func:`bayesreview.fit` an update repeats from the fit's settings.
_REPEATED = ("outcome", "by", "bias", "bias_reference", "unknown", "draws", "tune", "chains")


def combine_studies(
    studies: pd.DataFrame, new: pd.DataFrame | str | os.PathLike, by: str = "modality"
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """``studies`` with ``new`` rows added or replacing theirs: (table, added, replaced).

    A new row whose ``study`` is already in ``studies`` with the same ``by`` value replaces
    that row in place; other new rows are appended in their order. Neither input is modified.

    Raises
    ------
    DataError
        When a new row fails validation (:func:`bayesreview.read_studies`), when a new row's
        study is in ``studies`` under another ``by`` value, or when the combined table does
        not validate (e.g. a column the old table has is missing from the new rows).
    """
    new = read_studies(new)
    groups_of: dict[str, set] = {}
    for label, group in zip(studies["study"], studies[by], strict=True):
        groups_of.setdefault(label, set()).add(group)
    replacements: dict[tuple, dict] = {}
    appended: list[dict] = []
    for row, record in enumerate(new.to_dict("records"), start=1):
        label, group = record["study"], record[by]
        if label in groups_of and group not in groups_of[label]:
            known = ", ".join(map(repr, sorted(groups_of[label])))
            raise DataError(
                f"new row {row}, column {by!r}: study {label!r} is already in the table under "
                f"{by} = {known}, not {group!r}; give it another label if it is another study"
            )
        if label in groups_of:
            replacements[(label, group)] = record
        else:
            appended.append(record)
    rows = [
        replacements.get((record["study"], record[by]), record)
        for record in studies.to_dict("records")
    ]
    combined = read_studies(pd.DataFrame(rows + appended))
    return combined, [r["study"] for r in appended], [label for label, _ in replacements]


def fit_arguments(fit: Fit) -> dict[str, Any]:
    """The arguments of :func:`bayesreview.fit` that reproduce ``fit`` (same model, settings,
    seed, labels and direction) on another study table."""
    settings = fit.settings
    arguments = {name: settings[name] for name in _REPEATED}
    arguments.update(
        model=fit.spec,
        seed=settings["seed"],
        sampler=settings["sampler"],
        labels=fit.labels,
        bias_prior_counts=settings.get("bias_prior_counts"),
        bias_totals=settings.get("bias_totals"),
        better=fit.better,
    )
    return arguments


def update(fit: Fit, new: pd.DataFrame | str | os.PathLike, progressbar: bool = False) -> Fit:
    """Refit ``fit`` with ``new`` rows added (or replacing studies of the same label).

    Parameters
    ----------
    fit
        The fit to update; it is not changed.
    new
        New or corrected studies: a DataFrame or CSV path with the columns of a study table.
    progressbar
        Show the sampler's progress; default False.

    Returns
    -------
    Fit
        The refit, with the same model, settings and seed; ``settings["update"]`` records the
        studies added and replaced and the pooled rates before (:func:`changes`).
    """
    from bayesreview.fitting import fit as refit

    combined, added, replaced = combine_studies(fit.studies, new, fit.settings["by"])
    result = refit(combined, progressbar=progressbar, **fit_arguments(fit))
    before = fit.summary()[list(_BEFORE_COLUMNS)]
    result.settings["update"] = {
        "added": added,
        "replaced": replaced,
        "before": before.to_dict("records"),
    }
    return result


def changes(fit: Fit) -> pd.DataFrame:
    """What an update changed, per outcome and modality.

    Parameters
    ----------
    fit
        A fit returned by :func:`update` (or loaded from one's saved file).

    Returns
    -------
    pandas.DataFrame
        ``outcome``, ``modality``, ``added`` and ``replaced`` (the modality's studies, joined
        by "; "), ``mean_rate_before`` with ``_lower``/``_upper``, ``mean_rate_after`` with
        ``_lower``/``_upper``, and ``change`` (after minus before, posterior medians). A
        modality new in the update has no "before".

    Raises
    ------
    DataError
        When ``fit`` is not the result of an update.
    """
    record = fit.settings.get("update")
    if not record:
        raise DataError("changes: this fit is not the result of an update (bayesreview.update)")
    before = pd.DataFrame(record["before"]).rename(
        columns={c: c.replace("mean_rate", "mean_rate_before") for c in _BEFORE_COLUMNS[2:]}
    )
    after = fit.summary()[list(_BEFORE_COLUMNS)].rename(
        columns={c: c.replace("mean_rate", "mean_rate_after") for c in _BEFORE_COLUMNS[2:]}
    )
    table = after.merge(before, on=["outcome", "modality"], how="left")
    studies = fit.studies.set_index("study")[fit.settings["by"]]

    def listed(labels: list[str], modality: str) -> str:
        return "; ".join(label for label in labels if modality in set(studies.loc[[label]]))

    table.insert(2, "added", [listed(record["added"], m) for m in table["modality"]])
    table.insert(3, "replaced", [listed(record["replaced"], m) for m in table["modality"]])
    table["change"] = table["mean_rate_after"] - table["mean_rate_before"]
    return table
