"""Generate docs/sensitivity.md and docs/figures/sensitivity_any.png from the calcinosis data.

Run from the repository root::

    python docs/make_sensitivity.py [--draws 500]

Every number in the page comes from this script; rerun it after changing the models or data.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import bayesreview as br
from bayesreview.checks import ppc
from bayesreview.sensitivity import sensitivity, sensitivity_plot

DOCS = Path(__file__).resolve().parent


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def interval(row) -> str:
    return f"{pct(row.post_median)} ({pct(row.post_lower)} to {pct(row.post_upper)})"


def markdown(frame) -> str:
    """A DataFrame as a Markdown table (numbers to 3 significant digits)."""
    cells = [[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row] for row in frame.values]
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def summarise(table):
    """Per modality: main result, and the range of medians over each kind of scenario."""
    lines = [
        "| modality | studies | main: median (95% CrI) | leave one out: medians | design | "
        "unknown | other model | prior scales |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for modality in table.loc[table.kind == "main", "modality"]:
        sub = table[table.modality == modality]
        main = sub[sub.kind == "main"].iloc[0]
        cells = []
        for kind in ("leave_one_out", "design", "unknown", "model", "prior_scale"):
            values = sub.loc[sub.kind == kind, "post_median"]
            if values.empty:
                cells.append("-")
            elif len(values) == 1:
                cells.append(pct(values.iloc[0]))
            else:
                cells.append(f"{pct(values.min())} to {pct(values.max())}")
        name = modality.replace("_", " ")
        lines.append(f"| {name} | {main.studies} | {interval(main)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def largest_shifts(table, k: int = 5) -> str:
    main = table[table.kind == "main"].set_index("modality")["post_median"]
    loo = table[table.kind == "leave_one_out"].copy()
    loo["shift"] = loo["post_median"] - loo["modality"].map(main)
    loo = loo.reindex(loo["shift"].abs().sort_values(ascending=False).index).head(k)
    lines = ["| left out | modality | median without it | shift |", "|---|---|---|---|"]
    for row in loo.itertuples():
        lines.append(
            f"| {row.scenario.removeprefix('leave out ')} | {row.modality.replace('_', ' ')} | "
            f"{pct(row.post_median)} | {100 * row.shift:+.1f} points |"
        )
    return "\n".join(lines)


def reading(table, checks) -> str:
    """Plain-words notes, every number taken from the tables."""
    main = table[table.kind == "main"].set_index("modality")
    single = [m.replace("_", " ") for m in main.index if main.loc[m, "studies"] == 1]
    widths = main.loc[main.studies == 1, "post_upper"] - main.loc[main.studies == 1, "post_lower"]
    design = table[table.kind == "design"]
    lost = [m.replace("_", " ") for m in main.index if m not in set(design.modality)]
    loo = table[table.kind == "leave_one_out"].copy()
    loo["shift"] = (loo.post_median - loo.modality.map(main.post_median)).abs()
    big = loo[loo["shift"] > 0.05]
    notes = [
        f"- {len(single)} modalities rest on a single study ({', '.join(single)}): their "
        f"95% intervals are {pct(widths.min())} to {pct(widths.max())} wide, i.e. mostly prior "
        "and the heterogeneity borrowed from other modalities, and they vanish from the table "
        "when their only study is left out.",
        f"- {len(big)} of {len(loo)} leave-one-out rows move a modality's median by more than "
        "5 percentage points; the largest are listed above.",
        f"- Excluding case reports and conference abstracts keeps "
        f"{int(design.studies.sum()) if len(design) else 0} studies and loses "
        f"{len(lost)} modalities ({', '.join(lost)}).",
    ]
    flagged = checks[checks.p_two_sided < 0.1]
    for row in flagged.itertuples():
        high = row.p_value < 0.5
        what = {
            "zero_event_studies": ("more" if high else "fewer") + " zero-event studies",
            "all_event_studies": ("more" if high else "fewer") + " all-event studies",
            "rate_sd": ("a larger" if high else "a smaller") + " spread of study rates (SD)",
        }[row.statistic]
        notes.append(
            f"- Posterior predictive check: the data have {what} than the model "
            f"predicts ({row.observed:.3g} observed, {row.replicated_mean:.3g} expected; "
            f"two-sided p = {row.p_two_sided:.2f})."
        )
    if table.attrs["skipped"]:
        notes.append(
            "- Per-study risk-of-bias ratings are not published for this review (only the "
            "totals), so the scenario excluding high risk of bias cannot be run on these data."
        )
    return "\n".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    studies = br.load_dataset("calcinosis_cutis")
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = sensitivity(studies, draws=args.draws, tune=args.draws, seed=args.seed)
    seconds = time.perf_counter() - start
    (DOCS / "figures").mkdir(exist_ok=True)
    fig = sensitivity_plot(table)
    fig.savefig(DOCS / "figures" / "sensitivity_any.png", dpi=150)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = br.fit(
            studies, draws=args.draws, tune=args.draws, chains=2, seed=args.seed, progressbar=False
        )
    checks = ppc(fit)

    skipped = "\n".join(f"- *{k}*: {v}." for k, v in table.attrs["skipped"].items()) or "- none"
    problems = table.attrs["problems"]
    problem_text = (
        "\n".join(f"- {k}: {', '.join(v)}" for k, v in problems.items())
        if problems
        else "- none (no divergences, R-hat <= 1.05 in every refit)"
    )
    del caught
    n_loo = table.loc[table.kind == "leave_one_out", "scenario"].nunique()
    page = f"""# Sensitivity analyses: calcinosis cutis, any response

*Generated by `docs/make_sensitivity.py` (draws = tune = {args.draws} per chain, 2 chains,
seed {args.seed}); do not edit by hand.*

`bayesreview.sensitivity(studies)` refits the default analysis (beta-binomial, any response,
unknown responses counted as failures) under {table.scenario.nunique()} scenarios and tabulates
the pooled mean response rate of each modality (posterior median and 95% credible interval),
with the probability that the modality is the best of those present. The whole table took
{seconds:.0f} s here, including compiling four model variants (the default model, the
logit-normal model and the two prior grids); the {n_loo} leave-one-study-out refits reuse
one compiled model: a left-out study keeps its row with weight 0.

```python
import bayesreview as br
from bayesreview.sensitivity import sensitivity, sensitivity_plot

# tidy: one row per scenario x modality
table = sensitivity(br.load_dataset("calcinosis_cutis"))
sensitivity_plot(table)
```

## Summary per modality

Main result, then the range of posterior medians across each kind of scenario ("design":
excluding case reports and conference abstracts; "unknown": unknown responses excluded from the
denominators; "other model": logit-normal; "prior scales": every prior's scale halved and
doubled). A dash: the modality has no study left in that scenario.

{summarise(table)}

Scenarios not run:

{skipped}

Refits with sampling problems:

{problem_text}

## The studies that move a result most

Largest shifts of a modality's posterior median when one study is left out:

{largest_shifts(table)}

![Sensitivity of the pooled any-response rates](figures/sensitivity_any.png)

## Posterior predictive check of the main model

Bayesian p-values P(T(y_rep) >= T(y)) of the number of zero-event studies, of all-event studies
and of the SD of the study rates (`bayesreview.checks.ppc`):

{markdown(checks)}

## Reading it

{reading(table, checks)}
"""
    (DOCS / "sensitivity.md").write_text(page, encoding="utf-8")
    print(f"wrote {DOCS / 'sensitivity.md'} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
