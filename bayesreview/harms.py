"""Harms: adverse events as outcomes where a lower rate is better, and benefit against risk.

A review of small studies usually prints its adverse events per modality, totalled over the
modality's studies ("Infection (5)" of 53 patients after intralesional STS), and only now and
then per study. :func:`harm_studies` turns one event of an adverse-event table
(:func:`bayesreview.read_adverse_events`) into a study table that :func:`bayesreview.fit`
analyses with ``outcome="events", better="lower"``; :func:`fit_harm` does both.

A total pooled over studies enters as its patients, one row each (n = 1). The beta-binomial
likelihood of one patient is the modality's mean rate, whatever the heterogeneity between
studies, so the rows pin down the mean rate and leave the heterogeneity where its hierarchical
prior puts it: nothing about how the pooled studies differ can be learned from their total,
and the fit says so (:attr:`bayesreview.Fit.heterogeneity_from_prior`). The posterior interval
of the mean rate then treats the total's patients as exchangeable (it is the interval of the
patients' rate, not of a study's); the prediction interval of a new study's rate carries the
prior's heterogeneity.

:func:`benefit_risk` sets the response of a modality against its harm: the response and the
harm are fitted to separate tables, so their posteriors are independent and the joint
posterior of (response rate, harm rate) is their product; P(response > a and harm < b) is
computed from paired draws.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesreview.compare import check_level, check_rate, rate_draws, select_outcomes
from bayesreview.data import (
    POOLED_TOTAL_COLUMN,
    dataset_info,
    display_labels,
    read_adverse_events,
    read_studies,
)
from bayesreview.errors import BayesReviewError, DataError

if TYPE_CHECKING:
    import os

    from bayesreview.fitting import Fit

__all__ = [
    "HARM_ROWS",
    "benefit_risk",
    "benefit_risk_draws",
    "fit_harm",
    "harm_labels",
    "harm_studies",
]

#: Which rows of an adverse-event table a harm analysis uses (never both: they overlap).
HARM_ROWS = {
    "table": "the review's own totals per modality (Table 2's rows: study empty)",
    "studies": "the rows of single studies (pooled false)",
}


def _candidate_rows(
    events: pd.DataFrame, event: str, rows: str, summary: str | None
) -> pd.DataFrame:
    """The rows of ``event`` that ``rows`` selects, before dropping unreported counts.

    Totals are the pooled rows without a study, and of those only the ones whose ``source``
    begins with ``summary`` (the summary table, e.g. ``"Table 2"``) where it is given: the
    text's statements repeat the table's counts.
    """
    of_event = events[events["event"] == event]
    if rows == "studies":
        return of_event[~of_event["pooled"]]
    is_total = of_event["study"].isna() & of_event["pooled"]
    if summary:
        is_total &= of_event["source"].str.startswith(summary)
    return of_event[is_total]


def harm_studies(
    adverse_events: pd.DataFrame | str | os.PathLike,
    event: str,
    rows: str = "table",
    summary: str | None = None,
) -> pd.DataFrame:
    """A study table of one adverse event, for :func:`bayesreview.fit` (``outcome="events"``).

    Parameters
    ----------
    adverse_events
        An adverse-event table (DataFrame or CSV path; see
        :func:`bayesreview.read_adverse_events`), e.g.
        ``load_dataset("calcinosis_cutis_adverse_events")``. Not modified.
    event
        The event code, e.g. ``"infection"``.
    rows
        ``"table"`` (default): the review's totals per modality, the rows whose ``study`` is
        empty and whose ``source`` is a table; each total enters as its patients, one row each
        (``n = 1``, ``events`` 0 or 1, ``pooled_total`` = the total's ``row_id``).
        ``"studies"``: the rows of single studies (``pooled`` false), as they are. A text that
        attributes events to the studies it cites covers mostly studies that had them, so this
        choice warns that its rates are likely too high. The two are never mixed: the study
        rows break the totals down.
    summary
        With ``rows="table"``, the start of ``source`` that marks the summary table's rows
        (the text's statements repeat its counts); default the registry's ``summary_source``
        for a bundled table (``"Table 2"``), else every total without a study.

    Returns
    -------
    pandas.DataFrame
        A validated study table (:func:`bayesreview.read_studies`) with ``study``,
        ``modality``, ``n``, ``events``, ``event``, ``row_id`` (the adverse-event row) and, for
        ``rows="table"``, ``pooled_total``. Rows whose count is not reported (``events``
        empty: ``N/R``, a bound such as "over 11%") are left out; ``.attrs["left_out"]`` lists
        their ``row_id``.

    Raises
    ------
    DataError
        For an unknown ``rows``, an event with no row of that kind, or one with no reported
        count; or a modality with two totals of the same event.
    """
    if rows not in HARM_ROWS:
        choices = "; ".join(f"{k!r}: {v}" for k, v in HARM_ROWS.items())
        raise DataError(f"rows={rows!r}: must be one of {choices}")
    metadata = _metadata(adverse_events)
    summary = summary if summary is not None else metadata.get("summary_source")
    table = read_adverse_events(adverse_events)
    chosen = _candidate_rows(table, event, rows, summary)
    if chosen.empty:
        known = ", ".join(sorted(_candidate_rows_any(table, rows, summary)))
        raise DataError(
            f"event={event!r}: no {HARM_ROWS[rows]} report it; events there: {known or 'none'}"
        )
    counted = chosen[chosen["events"].notna() & chosen["n"].notna()]
    if counted.empty:
        raise DataError(
            f"event={event!r}: no row gives a count (row(s) {', '.join(chosen['row_id'])} are "
            "not reported as numbers)"
        )
    if rows == "table":
        twice = counted["modality"][counted["modality"].duplicated()]
        if len(twice):
            raise DataError(
                f"event={event!r}: modality {twice.iloc[0]!r} has two totals (rows "
                f"{', '.join(counted.loc[counted['modality'] == twice.iloc[0], 'row_id'])})"
            )
        studies = _patients_of_totals(counted)
    else:
        warnings.warn(
            f"rows='studies': the study rows of {event!r} cover only the studies a text "
            "attributes events to, mostly those that had them, so their rates are likely too "
            "high; rows='table' uses the review's totals",
            UserWarning,
            stacklevel=2,
        )
        studies = pd.DataFrame(
            {
                "study": counted["study"].to_numpy(),
                "modality": counted["modality"].to_numpy(),
                "n": counted["n"].astype(int).to_numpy(),
                "events": counted["events"].astype(int).to_numpy(),
                "event": event,
                "row_id": counted["row_id"].to_numpy(),
            }
        )
    result = read_studies(studies)
    result.attrs["left_out"] = list(chosen.loc[~chosen.index.isin(counted.index), "row_id"])
    return result


def _candidate_rows_any(table: pd.DataFrame, rows: str, summary: str | None) -> set[str]:
    events = table["event"].unique()
    return {str(e) for e in events if not _candidate_rows(table, e, rows, summary).empty}


def _metadata(adverse_events: object) -> dict:
    """The registry entry a bundled table carries (empty for the user's own)."""
    if isinstance(adverse_events, pd.DataFrame):
        return dict(adverse_events.attrs.get("metadata", {}))
    return {}


def harm_labels(
    adverse_events: pd.DataFrame | str | os.PathLike, labels: dict[str, str] | None = None
) -> dict[str, str]:
    """Display labels for a harm fit: the codebook's event labels and its response data's
    modality labels (bundled tables), updated by ``labels``."""
    metadata = _metadata(adverse_events)
    codebook = dict(metadata.get("labels", {}))
    if metadata.get("response_data"):
        codebook |= dataset_info(metadata["response_data"]).get("labels", {})
    return display_labels(None, {**codebook, **(labels or {})})


def _patients_of_totals(totals: pd.DataFrame) -> pd.DataFrame:
    """One row per patient of each total: the first ``events`` with the event, then the rest."""
    parts = []
    for row in totals.itertuples(index=False):
        n, events = int(row.n), int(row.events)
        parts.append(
            pd.DataFrame(
                {
                    "study": [f"{row.row_id} patient {k} of {n}" for k in range(1, n + 1)],
                    "modality": row.modality,
                    "n": 1,
                    "events": [1] * events + [0] * (n - events),
                    "event": row.event,
                    "row_id": row.row_id,
                    POOLED_TOTAL_COLUMN: row.row_id,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def fit_harm(
    adverse_events: pd.DataFrame | str | os.PathLike,
    event: str,
    rows: str = "table",
    labels: dict[str, str] | None = None,
    **fit_options: Any,
) -> Fit:
    """Fit the rate of one adverse event per modality (lower is better).

    :func:`harm_studies` then :func:`bayesreview.fit` with ``outcome="events"`` and
    ``better="lower"``. ``labels`` update :func:`harm_labels` (the codebook's, for a bundled
    table); ``fit_options`` go to :func:`bayesreview.fit` (``model``, ``draws``, ``seed``,
    ...).
    """
    from bayesreview.fitting import fit

    for key in ("outcome", "better"):
        if key in fit_options:
            raise BayesReviewError(f"{key}: fit_harm fits outcome='events' with better='lower'")
    studies = harm_studies(adverse_events, event, rows)
    codebook = harm_labels(adverse_events, labels)
    return fit(studies, outcome="events", better="lower", labels=codebook, **fit_options)


def _evenly(draws: np.ndarray, m: int) -> np.ndarray:
    """``m`` of ``draws``, evenly spaced through them (all of them when m = len(draws))."""
    return draws[np.linspace(0, len(draws) - 1, m).round().astype(int)]


def _paired(response: np.ndarray, harm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equal numbers of draws of two independent posteriors, evenly spaced through each."""
    m = min(len(response), len(harm))
    return _evenly(response, m), _evenly(harm, m)


def _common_modalities(response_fit: Fit, harm_fit: Fit) -> list[str]:
    if response_fit.better != "higher" or harm_fit.better != "lower":
        raise BayesReviewError(
            "benefit_risk: the first fit must be of a benefit (better='higher') and the second "
            f"of a harm (better='lower'); they are {response_fit.better!r} and "
            f"{harm_fit.better!r}"
        )
    common = [g for g in response_fit.groups if g in harm_fit.groups]
    if not common:
        raise BayesReviewError(
            "benefit_risk: the two fits share no modality (response: "
            f"{', '.join(response_fit.groups)}; harm: {', '.join(harm_fit.groups)})"
        )
    return common


def benefit_risk_draws(
    response_fit: Fit, harm_fit: Fit, outcome: str | None = None, adjusted: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Paired posterior draws (response rate, harm rate) of each modality both fits have.

    The two fits see separate data, so their posteriors are independent and pairing the i-th
    draw of one with the i-th of the other samples the joint posterior. ``outcome`` is the
    response outcome (default ``"any"`` where fitted, else the fit's first); the harm fit has
    one. Rates are the pooled mean rates, bias-adjusted unless ``adjusted=False``.
    """
    common = _common_modalities(response_fit, harm_fit)
    (outcome,) = select_outcomes(response_fit, _response_outcome(response_fit, outcome))
    response = rate_draws(response_fit, outcome, adjusted)
    harm = rate_draws(harm_fit, harm_fit.outcomes[0], adjusted)
    pairs = {}
    for group in common:
        pairs[group] = _paired(
            response[:, response_fit.groups.index(group)], harm[:, harm_fit.groups.index(group)]
        )
    return pairs


def _response_outcome(fit: Fit, outcome: str | None) -> str:
    if outcome is not None:
        return outcome
    return "any" if "any" in fit.outcomes else fit.outcomes[0]


def benefit_risk(
    response_fit: Fit,
    harm_fit: Fit,
    response_threshold: float,
    harm_threshold: float,
    outcome: str | None = None,
    level: float = 0.95,
    adjusted: bool = True,
) -> pd.DataFrame:
    """Per modality, the chance that its response clears a bar while its harm stays under one.

    Parameters
    ----------
    response_fit
        A fit of a benefit (``better="higher"``), e.g. ``fit(studies)``.
    harm_fit
        A fit of a harm (``better="lower"``), e.g. :func:`fit_harm`.
    response_threshold, harm_threshold
        The bars a and b, rates on the 0-1 scale (0.5 and 0.1: at least half respond, fewer
        than one in ten harmed).
    outcome
        The response outcome; default ``"any"`` where fitted.
    level
        Probability mass of the intervals and of the joint credible region; default 0.95.
    adjusted
        Bias-adjusted mean rates (default) or rates averaged over the observed mix of levels.

    Returns
    -------
    pandas.DataFrame
        One row per modality both fits have: ``modality``; posterior median and equal-tailed
        ``_lower``/``_upper`` of ``response`` and ``harm`` (mean rates); ``p_response``
        (P(response > a)), ``p_harm`` (P(harm < b)) and ``p_both`` (P(response > a and
        harm < b), from the paired draws; the posteriors being independent, it estimates
        ``p_response * p_harm``). ``region_lower``/``region_upper`` columns for each rate
        bound the joint credible region: the rectangle of both rates' equal-tailed intervals of
        mass sqrt(level), whose joint mass is exactly ``level`` under independence.
        ``.attrs`` record the thresholds, the outcome and the harm's event.
    """
    check_level(level)
    a = check_rate("response_threshold", response_threshold)
    b = check_rate("harm_threshold", harm_threshold)
    pairs = benefit_risk_draws(response_fit, harm_fit, outcome, adjusted)
    tail = (1 - level) / 2
    region_tail = (1 - math.sqrt(level)) / 2
    rows = []
    for group, (response, harm) in pairs.items():
        row: dict[str, Any] = {"modality": group}
        for name, draws in (("response", response), ("harm", harm)):
            lower, median, upper = np.quantile(draws, [tail, 0.5, 1 - tail])
            row |= {name: median, f"{name}_lower": lower, f"{name}_upper": upper}
            region = np.quantile(draws, [region_tail, 1 - region_tail])
            row |= {f"{name}_region_lower": region[0], f"{name}_region_upper": region[1]}
        row["p_response"] = float(np.mean(response > a))
        row["p_harm"] = float(np.mean(harm < b))
        row["p_both"] = float(np.mean((response > a) & (harm < b)))
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs |= {
        "response_threshold": a,
        "harm_threshold": b,
        "outcome": _response_outcome(response_fit, outcome),
        "level": level,
    }
    return table
