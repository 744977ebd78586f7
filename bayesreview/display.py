"""How a :class:`~bayesreview.fitting.Fit` shows itself: plain text and a notebook's HTML.

``repr(fit)`` and ``fit._repr_html_()`` (what Jupyter shows for a cell ending in ``fit``) say
what was fitted (studies, outcome, model, pooling, bias covariate, sampler settings), give the
summary table with the crude rate next to the posterior (display labels, percentages), and put
convergence in one line. Nothing here computes a posterior quantity: the numbers come from
:meth:`Fit.summary` and :meth:`Fit.convergence_problems`.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import pandas as pd

from bayesreview.formatting import outcome_words, percent
from bayesreview.spec import SELECTION_CLASS_LABELS

if TYPE_CHECKING:
    from bayesreview.fitting import Fit

__all__ = [
    "convergence_line",
    "fit_html",
    "fit_text",
    "pooled_totals_note",
    "readable_summary",
    "selection_note",
    "what_was_fitted",
]

#: Column headings of :func:`readable_summary`.
SUMMARY_HEADINGS = {
    "outcome": "Outcome",
    "modality": "Modality",
    "studies": "Studies",
    "events": "Events / n",
    "crude": "Crude % (exact 95% CI)",
    "mean_rate": "Pooled mean % (95% CrI)",
    "pred": "Prediction % (95%)",
}


def _interval(value: float, lower: float, upper: float) -> str:
    return f"{percent(value)} ({percent(lower)}–{percent(upper)})"


def pooled_totals_note(fit: Fit) -> str | None:
    """The sentence saying which groups' heterogeneity is only the prior's, or None.

    See :attr:`Fit.heterogeneity_from_prior`.
    """
    groups = fit.heterogeneity_from_prior
    if not groups:
        return None
    names = ", ".join(fit.label(g) for g in groups)
    return (
        f"{names}: only totals pooled over studies are reported, so nothing about how those "
        "studies differ can be learned; the heterogeneity is its prior's, the mean-rate "
        "interval is that of the patients' rate, and the prediction interval rests on the "
        "prior."
    )


def selection_note(fit: Fit) -> str:
    """The publication-selection weights of ``fit`` in words, with how far the data moved
    them (:meth:`Fit.selection_identification`)."""
    table = fit.selection_identification()
    parts = [
        f"{SELECTION_CLASS_LABELS[row.level]} {percent(row.median)}% "
        f"(95% CrI {percent(row.lower)}–{percent(row.upper)}%; posterior SD / prior SD "
        f"{row.sd_ratio:.2f})"
        for row in table.itertuples()
    ]
    return (
        "publication probability of a study with no responders relative to one with "
        "responders: " + "; ".join(parts)
    )


def what_was_fitted(fit: Fit) -> list[tuple[str, str]]:
    """(item, value) pairs naming what was fitted, in words and display labels."""
    settings = fit.settings
    studies = int((fit.data.weights > 0).sum())
    patients = int(fit.data.trials[fit.data.weights > 0].sum())
    spec = fit.spec
    model = spec.name if spec.name == spec.likelihood else f"{spec.name} ({spec.likelihood})"
    pooled = f"pooled by {fit.data.by} ({len(fit.groups)} levels)"
    items = [
        ("Studies", f"{studies} ({patients} patients), {pooled}"),
        ("Outcome", f"{settings['outcome']} ({fit.better} rates are better)"),
        ("Model", f"{model}; heterogeneity: {settings['heterogeneity']}"),
    ]
    note = pooled_totals_note(fit)
    if note:
        items.append(("Pooled totals", note))
    if settings.get("bias"):
        adjusted = fit.adjusted_to(fit.headline_adjusted())
        items.append(("Bias covariate", f"{settings['bias']} (rates: {adjusted})"))
    if spec.selection is not None:
        items.append(("Publication selection", selection_note(fit)))
    items.append(("Unknown responses", f"counted as {settings['unknown']}"))
    items.append(
        (
            "Sampling",
            f"{settings['sampler']}, {settings['chains']} chains x {settings['draws']} draws "
            f"({settings['tune']} tuning), seed {settings['seed']}",
        )
    )
    return items


def convergence_line(fit: Fit) -> str:
    """One line: converged, or what is wrong (the first problem) and how many problems."""
    problems = fit.convergence_problems()
    if not problems:
        return "Convergence: no problems (R-hat, effective sample size, divergences)."
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"Convergence: {problems[0]}{more}."


def readable_summary(fit: Fit, level: float = 0.95) -> pd.DataFrame:
    """:meth:`Fit.summary` as people read it: labels, percentages, crude next to posterior.

    Columns are :data:`SUMMARY_HEADINGS`; rates in percent with their intervals, modalities by
    their display labels (:meth:`Fit.label`).
    """
    table = fit.summary(level=level)
    rows = []
    for _, row in table.iterrows():
        rows.append(
            {
                "outcome": outcome_words(row["outcome"]),
                "modality": fit.label(row["modality"]),
                "studies": int(row["studies"]),
                "events": f"{int(row['events'])} / {int(row['n'])}",
                "crude": _interval(row["crude"], row["crude_lower"], row["crude_upper"]),
                "mean_rate": _interval(
                    row["mean_rate"], row["mean_rate_lower"], row["mean_rate_upper"]
                ),
                "pred": f"{percent(row['pred_lower'])}–{percent(row['pred_upper'])}",
            }
        )
    return pd.DataFrame(rows).rename(columns=SUMMARY_HEADINGS)


def fit_text(fit: Fit) -> str:
    """Plain-text description of ``fit`` (its ``repr``)."""
    lines = ["bayesreview Fit"]
    lines += [f"  {item}: {value}" for item, value in what_was_fitted(fit)]
    lines.append(readable_summary(fit).to_string(index=False))
    lines.append(convergence_line(fit))
    return "\n".join(lines)


def fit_html(fit: Fit) -> str:
    """HTML description of ``fit`` for notebooks: facts, summary table, convergence."""
    facts = "".join(
        f"<tr><th style='text-align:left'>{html.escape(item)}</th>"
        f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
        for item, value in what_was_fitted(fit)
    )
    table = readable_summary(fit).to_html(index=False, border=0, classes="bayesreview-summary")
    problems = fit.convergence_problems()
    colour = "#1a7f37" if not problems else "#b35900"
    return (
        "<div class='bayesreview-fit'>"
        "<strong>bayesreview Fit</strong>"
        f"<table>{facts}</table>{table}"
        f"<p style='color:{colour}'>{html.escape(convergence_line(fit))}</p>"
        "</div>"
    )
