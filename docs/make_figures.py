"""Make the figures and tables of docs/comparisons.md from the bundled calcinosis cutis data.

Run from the repository root::

    python docs/make_figures.py            # 4 chains x 1000 draws (the published figures)
    python docs/make_figures.py --draws 300

It fits the joint response model (complete, partial and any response; ``outcome="response"``)
pooling by ``group`` (Table 2's rows: the four lasers together) with ``seed=2021``, and writes
into ``docs/figures/``: ``forest_any.png``/``.svg``, ``forest_complete.png``,
``comparison_heatmap_any.png``, ``rankogram_any.png``, ``comparison_any.csv``,
``ranks_any.csv`` and ``summary.csv``; then it regenerates ``docs/comparisons.md`` entirely.
Every file is written whole or not at all.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

import bayesreview as br  # noqa: E402
from bayesreview.compare import pairwise, ranks  # noqa: E402
from bayesreview.formatting import percent  # noqa: E402
from bayesreview.plots import (  # noqa: E402
    comparison_heatmap,
    forest_plot,
    interval_text,
    rankogram,
    save_figure,
)
from bayesreview.report import write_text_atomic  # noqa: E402

FIGURES = HERE / "figures"
MARKDOWN = HERE / "comparisons.md"
SEED = 2021
LABELS = {
    "topical_sts": "Topical STS",
    "intralesional_sts": "Intralesional STS",
    "laser": "Laser (CO2, Er:YAG, diode, picosecond + CO2)",
    "eswl": "ESWL",
    "eswl_intralesional_sts": "ESWL + intralesional STS",
    "picosecond_topical_sts": "Picosecond laser + topical STS",
}
SHORT = {
    "topical_sts": "Topical STS",
    "intralesional_sts": "IL STS",
    "laser": "Laser",
    "eswl": "ESWL",
    "eswl_intralesional_sts": "ESWL + IL STS",
    "picosecond_topical_sts": "Picosecond + top. STS",
}
MID = 0.10  # minimal important difference shown in the tables: 10 percentage points


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    write_text_atomic(path, frame.to_csv(index=False, float_format="%.6g"))


def _markdown(frame: pd.DataFrame) -> str:
    """A pipe table (strings as they are; no tabulate dependency)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(frame.shape[1])) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.to_numpy()]
    return "\n".join([header, rule, *body])


def _summary_table(fit) -> str:
    table = fit.summary()
    table = table[table["outcome"] == "any"]
    rows = []
    for r in table.itertuples():
        rows.append(
            {
                "Modality": LABELS[r.modality],
                "Studies": r.studies,
                "Events/n": f"{r.events}/{r.n}",
                "Crude % (exact 95% CI)": interval_text(r.crude, r.crude_lower, r.crude_upper),
                "Posterior % (95% CrI)": interval_text(r.post_median, r.post_lower, r.post_upper),
                "Prediction % (95% PrI)": f"{percent(r.pred_lower)}–{percent(r.pred_upper)}",
            }
        )
    return _markdown(pd.DataFrame(rows))


def _matrix_table(fit) -> str:
    table = pairwise(fit, outcome="any").set_index(["modality_a", "modality_b"])["p_greater"]
    rows = []
    for a in fit.groups:
        row = {"P(row > column)": SHORT[a]}
        for b in fit.groups:
            row[SHORT[b]] = "—" if a == b else f"{table[(a, b)]:.2f}"
        rows.append(row)
    return _markdown(pd.DataFrame(rows))


def _pairs_table(fit) -> str:
    """Each unordered pair once, the modality with the higher median difference first."""
    plain = pairwise(fit, outcome="any")
    mid = pairwise(fit, outcome="any", threshold=MID).set_index(["modality_a", "modality_b"])
    rows = []
    for r in plain[plain["diff_median"] >= 0].itertuples():
        rows.append(
            {
                "A": SHORT[r.modality_a],
                "B": SHORT[r.modality_b],
                "P(A > B)": f"{r.p_greater:.2f}",
                f"P(A − B > {percent(MID)} points)": (
                    f"{mid.loc[(r.modality_a, r.modality_b), 'p_greater']:.2f}"
                ),
                "A − B, points (95% CrI)": (
                    f"{100 * r.diff_median:.0f} ({100 * r.diff_lower:.0f} to "
                    f"{100 * r.diff_upper:.0f})"
                ),
            }
        )
    frame = pd.DataFrame(rows).sort_values("P(A > B)", ascending=False, kind="stable")
    return _markdown(frame)


def _ranks_table(fit) -> str:
    table = ranks(fit, outcome="any").sort_values("sucra", ascending=False)
    rows = [
        {
            "Modality": LABELS[r.modality],
            "P(best)": f"{r.p_best:.2f}",
            "Mean rank": f"{r.mean_rank:.1f}",
            "SUCRA": f"{r.sucra:.2f}",
        }
        for r in table.itertuples()
    ]
    return _markdown(pd.DataFrame(rows))


def _page(fit, draws: int) -> str:
    chains = fit.idata.posterior.sizes["chain"]
    problems = fit.convergence_problems()
    health = (
        "The sampler's diagnostics raised no concern (R-hat ≤ 1.01, bulk and tail ESS ≥ 400, "
        "no divergent transitions)."
        if not problems
        else "Diagnostics: " + "; ".join(problems) + "."
    )
    return f"""# Comparing the calcinosis cutis therapies

<!-- Generated by `python docs/make_figures.py --draws {draws}`; do not edit by hand. -->

The bundled data (`br.load_dataset("calcinosis_cutis")`: Table 1 of Nowaczyk et al. 2021, 40
studies, 136 patients) fitted with the joint response model, pooled by `group` (Table 2's
rows; the four lasers together), unknown responses counted as non-responders as the review
does:

```python
import bayesreview as br
studies = br.load_dataset("calcinosis_cutis")
fit = br.fit(studies, outcome="response", by="group", seed={SEED}, draws={draws})
fit.summary(); fit.compare(outcome="any"); fit.ranks(outcome="any"); fit.forest_plot()
```

Model `{fit.spec.name}`: beta-binomial random effects per group with heterogeneity partially
pooled across groups; any response, then complete response among responders (so complete ≤
any in every draw). {chains} chains × {draws} draws, seed {SEED}, bayesreview
{br.__version__}.
{health}

All rates below are the **population mean response rate** of a modality's studies (no bias
covariate is used: the per-study risk-of-bias ratings are not published). Crude percentages
count every patient alike, as the review's Table 2 does.

## Any response (complete or partial)

{_summary_table(fit)}

Where the posterior differs from the crude percentage, it is mostly because the crude figure
weights patients, so one large series dominates a modality (Ma 2019, 19/28, among the topical
STS studies; Bottomley 1996, six patients with unknown response, among the lasers), while the
random-effects model treats each study as one draw from the modality's population of studies
and pulls each study's estimate toward that population's mean (the open circles in the forest
plot).

Two of the six groups are a single study (ESWL + intralesional STS, one patient; picosecond
laser + topical STS, two patients): their posteriors are mostly prior and partial pooling of
heterogeneity, and their prediction intervals span nearly 0–100%.

## Forest plot

![Forest plot of any response](figures/forest_any.png)

Squares: each study's crude proportion with its exact (Clopper–Pearson) 95% interval; open
circles: the shrunken study estimate (its posterior given the modality's mean and
heterogeneity); diamonds: posterior median and 95% credible interval of the modality's mean
rate; grey bars: 95% prediction interval of a new study's rate. Vector version:
[forest_any.svg](figures/forest_any.svg); complete response:
[forest_complete.png](figures/forest_complete.png).

## Pairwise comparisons

Posterior probability that the row modality's mean rate of any response exceeds the
column's ([comparison_any.csv](figures/comparison_any.csv) has every ordered pair with the
difference's median and 95% interval):

{_matrix_table(fit)}

![P(row > column)](figures/comparison_heatmap_any.png)

Each pair once, the one ahead first, with the probability that it is ahead by more than a
minimal important difference of {percent(MID)} percentage points
(`fit.compare(outcome="any", threshold={MID})`):

{_pairs_table(fit)}

These are posterior probabilities of statements about the modalities' mean rates, not
p-values; they inherit every weakness of the evidence (single-arm case reports and series,
different patients and lesions per modality), so they rank the published experience, not the
treatments' efficacy in a trial.

## Ranks

Rank 1 is the highest mean rate; SUCRA is the surface under the cumulative ranking curve
(1: surely best, 0: surely worst). [ranks_any.csv](figures/ranks_any.csv) has the full rank
probabilities; [summary.csv](figures/summary.csv) the summary of all three outcomes.

{_ranks_table(fit)}

![Rank probabilities](figures/rankogram_any.png)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000, help="draws per chain (1000)")
    parser.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (1000)")
    parser.add_argument("--chains", type=int, default=4, help="chains (4)")
    args = parser.parse_args(argv)

    studies = br.load_dataset("calcinosis_cutis")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", br.ConvergenceWarning)
        fit = br.fit(
            studies,
            outcome="response",
            by="group",
            seed=SEED,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            progressbar=False,
        )
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    FIGURES.mkdir(parents=True, exist_ok=True)

    written = []
    figure = forest_plot(fit, outcome="any", labels=LABELS)
    written += save_figure(figure, FIGURES / "forest_any", formats=("png", "svg"))
    figure = forest_plot(fit, outcome="complete", labels=LABELS)
    written += save_figure(figure, FIGURES / "forest_complete", formats=("png",))
    figure = comparison_heatmap(fit, outcome="any", labels=SHORT)
    written += save_figure(figure, FIGURES / "comparison_heatmap_any", formats=("png",))
    figure = rankogram(fit, outcome="any", labels=LABELS)
    written += save_figure(figure, FIGURES / "rankogram_any", formats=("png",))
    plt.close("all")

    comparison = pairwise(fit, outcome="any")
    mid = pairwise(fit, outcome="any", threshold=MID)
    comparison.insert(4, f"p_greater_{MID:g}", mid["p_greater"].to_numpy())
    for frame, name in (
        (comparison, "comparison_any.csv"),
        (ranks(fit, outcome="any"), "ranks_any.csv"),
        (fit.summary(), "summary.csv"),
    ):
        _write_csv(frame, FIGURES / name)
        written.append(FIGURES / name)
    write_text_atomic(MARKDOWN, _page(fit, args.draws))
    written.append(MARKDOWN)
    for path in written:
        print(path.relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
