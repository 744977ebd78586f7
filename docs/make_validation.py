"""Run the simulation-based calibration (SBC) of bayesreview's models; write docs/validation.md.

Four configurations: model in {beta_binomial, logit_normal} x bias covariate in {none, study
design}, each at the calcinosis-cutis design (40 studies, 136 patients, 6 groups). Each replicate
is saved as docs/validation_results/<configuration>/seed-<seed>.json as soon as it finishes, so
the run is resumable: rerunning skips the seeds already done, and a larger --replicates adds
only the new ones. The report is written from whatever replicates are saved.

Usage (from the repository root)::

    python docs/make_validation.py                      # 200 replicates per configuration
    python docs/make_validation.py --replicates 100 --n-jobs 2
    python docs/make_validation.py --report-only        # rewrite the report from saved results
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd

from bayesreview.validation import (
    RANK_PREFIX,
    read_replicates,
    run_replicates,
    sbc_plot,
    sbc_replicate,
    sbc_uniformity,
)

DOCS = Path(__file__).resolve().parent
RESULTS = DOCS / "validation_results"
FIGURES = DOCS / "figures"
REPORT = DOCS / "validation.md"

CONFIGS = {
    "beta_binomial": {"model": "beta_binomial", "bias": False},
    "beta_binomial_design": {"model": "beta_binomial", "bias": True},
    "logit_normal": {"model": "logit_normal", "bias": False},
    "logit_normal_design": {"model": "logit_normal", "bias": True},
}
SETTINGS = {"draws": 500, "tune": 500, "thin": 10, "chains": 2}  # L = 2 x 50 = 100
LEVEL = 0.05
FAMILIES = {
    "alpha": "intercepts alpha (logit)",
    "beta": "bias effects beta",
    "heterogeneity": "heterogeneity (phi or tau)",
    "rate": "mean response rates",
}


def family(quantity: str) -> str:
    name = quantity.split("[")[0]
    return name if name in ("alpha", "beta", "rate") else "heterogeneity"


def run(configs: list[str], replicates: int, n_jobs: int) -> None:
    for name in configs:
        job = functools.partial(sbc_replicate, **CONFIGS[name], **SETTINGS)
        start = time.perf_counter()
        table = run_replicates(job, range(replicates), RESULTS / name, n_jobs=n_jobs)
        print(
            f"{name}: {len(table.attrs['ran'])} run, {len(table.attrs['skipped'])} already "
            f"done, {time.perf_counter() - start:.0f} s",
            flush=True,
        )


def figure(name: str, ranks: pd.DataFrame, L: int) -> Path:
    quantities = [c.removeprefix(RANK_PREFIX) for c in ranks if c.startswith(RANK_PREFIX)]
    present = [f for f in FAMILIES if any(family(q) == f for q in quantities)]
    fig, axes = plt.subplots(1, len(present), figsize=(3.6 * len(present), 3.2), sharey=True)
    for ax, fam in zip(axes, present, strict=True):
        subset = [q for q in quantities if family(q) == fam]
        sbc_plot(ranks, L, quantities=subset, ax=ax, title=f"{FAMILIES[fam]} ({len(subset)})")
        if ax is not axes[0]:
            ax.set_ylabel("")
    fig.suptitle(f"SBC: {name}, {len(ranks)} replicates, L = {L}", fontsize=10)
    fig.tight_layout()
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"sbc_{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report() -> None:
    sections, summary_rows, all_tables = [], [], []
    for name, config in CONFIGS.items():
        ranks = read_replicates(RESULTS / name)
        if len(ranks) == 0:
            summary_rows.append(f"| `{name}` | 0 | – | – | – | – | not run |")
            continue
        L = int(ranks["L"].iloc[0])
        table = sbc_uniformity(ranks, L, level=LEVEL)
        table.insert(0, "configuration", name)
        all_tables.append(table)
        path = figure(name, ranks, L)
        divergent = int((ranks["divergences"] > 0).sum())
        fails = table.loc[table["fails"], "quantity"].tolist()
        summary_rows.append(
            f"| `{name}` | {len(ranks)} | {len(table)} | {table['p_value'].min():.3g} | "
            f"{divergent} | {ranks['max_rhat'].max():.3f} | {', '.join(fails) or 'none'} |"
        )
        rows = [
            f"| {r.quantity} | {r.chi2:.2f} | {r.df} | {r.p_value:.3f} | "
            f"{'**fails**' if r.fails else ''} |"
            for r in table.itertuples()
        ]
        bias = "study design (reference `case_report`)" if config["bias"] else "none"
        sections.append(
            "\n".join(
                [
                    f"### `{name}`: {config['model']} model, bias covariate {bias}",
                    "",
                    f"{len(ranks)} replicates, ranks among L = {L} draws, "
                    f"{table['bins'].iloc[0]} bins per chi-square test; replicates with any "
                    f"divergent transition: {divergent}.",
                    "",
                    f"![SBC ECDF differences, {name}](figures/{path.name})",
                    "",
                    "| quantity | chi-square | df | p-value | Bonferroni |",
                    "|---|---|---|---|---|",
                    *rows,
                ]
            )
        )
    if all_tables:
        RESULTS.mkdir(parents=True, exist_ok=True)
        pd.concat(all_tables).to_csv(RESULTS / "sbc_uniformity.csv", index=False)
    header = [
        "| configuration | replicates | quantities | smallest p-value "
        "| replicates with divergences | largest R-hat | failing (Bonferroni) |",
        "|---|---|---|---|---|---|---|",
    ]
    REPORT.write_text(
        TEMPLATE.format(summary="\n".join(header + summary_rows), sections="\n\n".join(sections))
    )
    print(f"wrote {REPORT}")


TEMPLATE = """\
# Validation: simulation-based calibration

*Generated by `python docs/make_validation.py`; do not edit by hand.*

Simulation-based calibration (SBC; Talts et al. 2018, arXiv:1804.06788; Modrák et al. 2023,
*Bayesian Analysis*, doi:10.1214/23-BA1404) checks the model code, the sampler and the derived
quantities together. Each replicate

1. draws every parameter from the prior of the model's specification (`models/*.toml`), with
   numpy and the priors' quantile functions, independently of the PyMC model code;
2. simulates each study's events at the calcinosis-cutis design: the real number of patients of
   each of the 40 studies (136 patients), its group (6 groups, lasers pooled, `by="group"`)
   and, with the bias covariate, its study design (27 case reports, 12 case series, 1 RCT;
   reference level `case_report`). Beta-binomial: p_j ~ Beta(mu phi, (1 - mu) phi),
   y_j ~ Binomial(n_j, p_j); logit-normal: logit p_j = alpha + beta + tau e_j;
3. fits the model (nutpie NUTS, 2 chains of 500 draws after 500 tuning steps), keeps every
   10th draw of each chain (L = 100 draws), and records the rank of each true value among
   them: the intercepts alpha, the bias effects beta, the heterogeneity parameters (phi,
   log_phi, log_phi_sd for the beta-binomial; tau for the logit-normal) and each group's mean
   response rate (the population mean: invlogit(alpha) for the beta-binomial,
   E[invlogit(alpha + tau z)] for the logit-normal, at the reference level).

If the posterior is right, every rank is uniform on 0..L. Each quantity's ranks are tested
with a chi-square test on binned ranks (at most 10 bins, at least 5 expected per bin); a
quantity **fails** when its p-value is below 0.05 / Q, Q the number of quantities of the
configuration (Bonferroni). The plots show ECDF(rank) - uniform with 95% simultaneous bands
(Säilynoja, Bürkner & Vehtari 2022); a line that leaves the band is labelled. For the
beta-binomial the mean rate is a monotone function of alpha, so its ranks equal alpha's: a
check that the reported rates are computed from the right draws.

Every replicate is fitted with `bayesreview.fit`, as a user would fit a table of studies
(`outcome="events"`, the groups as `by`, the design as `bias`): identical beta-binomial
studies are collapsed and the rows padded, so the check covers that code path too.

## Summary

{summary}

The design asks for 200 replicates per configuration; the table says how many are saved. Each
replicate is one JSON file in `docs/validation_results/<configuration>/seed-<seed>.json`,
written atomically as soon as it finishes; the uniformity tables are in
`docs/validation_results/sbc_uniformity.csv`. To regenerate or extend the results (the runner
skips the seeds already saved, so an interrupted run resumes where it stopped; delete a
folder to start that configuration afresh):

    python docs/make_validation.py --replicates 200 --n-jobs 2

On two shared cores the 800 fits took about 6 minutes (about 0.3-1 s per fit after a
compilation of about 20-40 s per model and worker process).

A miscalibrated fit is caught by the same test: `tests/test_validation.py` simulates with an
intercept prior ten times wider than the fitted one and checks that the intercepts fail.

Not covered here: SBC checks that the posterior is right *given the prior*; it says nothing
about frequentist coverage at fixed true rates. For that, and a comparison with the
frequentist binomial-normal GLMM (metafor's `rma.glmm`), see [Coverage](coverage.md).

## Results by configuration

{sections}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200, help="per configuration (200)")
    parser.add_argument("--n-jobs", type=int, default=2, help="worker processes (2)")
    parser.add_argument(
        "--configs", default=",".join(CONFIGS), help="comma-separated configurations (all)"
    )
    parser.add_argument("--report-only", action="store_true", help="do not run replicates")
    args = parser.parse_args(argv)
    configs = [c for c in args.configs.split(",") if c]
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")
    if not args.report_only:
        run(configs, args.replicates, args.n_jobs)
    report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
