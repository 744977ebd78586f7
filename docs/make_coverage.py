"""Frequentist coverage of bayesreview's 95% intervals next to the ML binomial-normal GLMM.

Grid (bayesreview.coverage.COVERAGE_GRID): k in {3, 5, 10, 20} studies x true population mean
rate in {0.2, 0.5, 0.8} x tau in {0.3, 1.0} (logit scale); each study's patients uniform on
1..30; logit-normal truth. Each replicate (seed = cell * 10000 + replicate) is a JSON record in
the cache (``$BAYESREVIEW_CACHE``, else ``$XDG_CACHE_HOME/bayesreview``, else
``~/.cache/bayesreview``) under the fingerprint of today's model code and the model's settings,
saved as soon as it finishes: a rerun resumes where it stopped, and records of other code are
never reused. The script then writes the one aggregated table docs/evidence/coverage.csv (one
row per replicate, with its sidecar docs/evidence/coverage.json naming the fingerprint) and,
from that table, docs/coverage.md and its figures.

Usage (from the repository root)::

    python docs/make_coverage.py --n-jobs 2              # every model, its default replicates
    python docs/make_coverage.py --models beta_binomial --replicates 60 --n-jobs 2
    python docs/make_coverage.py --report-only           # page from docs/evidence/coverage.csv
    python docs/make_coverage.py --quick --replicates 1 --out /tmp/coverage-quick
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import special

from bayesreview.coverage import (
    COVERAGE_GRID,
    COVERAGE_KS,
    COVERAGE_MIN_REPLICATES,
    COVERAGE_MODELS,
    COVERAGE_RATES,
    COVERAGE_SETTINGS,
    COVERAGE_TAUS,
    coverage_job,
    coverage_plot,
    coverage_seeds,
    coverage_settings,
    coverage_table,
    logit_normal_mu,
)
from bayesreview.evidence import (
    REGENERATE,
    check_evidence,
    processors_sentence,
    read_evidence,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # docs/_experiments.py
from _experiments import dask_client, gather_records, run_experiment, write_table

DOCS = Path(__file__).resolve().parent
EXPERIMENT = "coverage"
#: Fit settings of --quick (a check that the pipeline runs, not evidence).
QUICK = {"draws": 40, "tune": 40}
#: Columns of a replicate record left out of the committed table (the simulated data: the
#: seed reproduces them, and the cache keeps them).
RAW_ONLY = ("events", "trials")


# ---------------------------------------------------------------------------------------------
# Running and aggregating
# ---------------------------------------------------------------------------------------------


def run(models: list[str], replicates: dict[str, int], n_jobs: int, client, overrides) -> None:
    jobs = {
        model: (
            coverage_job(model, **overrides),
            coverage_seeds(replicates[model]),
            coverage_settings(model, **overrides),
        )
        for model in models
    }
    run_experiment(EXPERIMENT, jobs, n_jobs, client)


def aggregate(evidence: Path, overrides: dict) -> pd.DataFrame:
    """One table of every model's replicates made by today's code (``_experiments``)."""
    settings = {model: coverage_settings(model, **overrides) for model in COVERAGE_MODELS}
    table = gather_records(EXPERIMENT, evidence, settings, drop=RAW_ONLY)
    if table.empty:
        return table
    first = ["configuration", "seed", "cell"]
    return table[[*first, *(c for c in table if c not in first)]]


def results(table: pd.DataFrame) -> pd.DataFrame:
    """Coverage rows of every model with replicates.

    Replicate r of a cell simulates the same data set whatever the model (the simulation is
    seeded by the seed alone), so only the first model's replicates fit the GLMM too.
    """
    tables = []
    for model in COVERAGE_MODELS:
        saved = table[table["configuration"] == model].dropna(axis=1, how="all")
        if saved.empty:
            continue
        tables.append(coverage_table(saved))
    return pd.concat(tables, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def figures(table: pd.DataFrame, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for target in ("mean", "median"):
        fig, axes = plt.subplots(1, len(COVERAGE_TAUS), figsize=(10, 3.8), sharey=True)
        for ax, tau in zip(axes, COVERAGE_TAUS, strict=True):
            coverage_plot(table[table["tau"] == tau], target=target, ax=ax, title=f"tau = {tau:g}")
        fig.suptitle(f"Coverage of the population {target} rate by nominal 95% intervals")
        fig.tight_layout()
        path = folder / f"coverage_{target}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def markdown(table: pd.DataFrame) -> str:
    """Wide table: one row per cell, coverage (MC SE) and mean width of each interval."""
    keys = list(dict.fromkeys(zip(table["method"], table["target"], strict=True)))
    head = "| k | mean rate | tau | R | GLMM failures | " + " | ".join(
        f"`{m}` {t}" for m, t in keys
    )
    lines = [head + " |", "|---" * (5 + len(keys)) + "|"]
    for (k, rate, tau), cell in table.groupby(["k", "true_rate", "tau"], sort=True):
        by_key = {(r.method, r.target): r for r in cell.itertuples(index=False)}
        bayes = [
            r
            for r in cell.itertuples(index=False)
            if r.method.startswith("bayes") and r.target == "mean"
        ]
        glmm = [r for r in cell.itertuples(index=False) if r.method == "glmm_ml"]
        values = [
            f"{by_key[key].coverage:.0%} ({by_key[key].mc_se:.0%}), {by_key[key].mean_width:.2f}"
            if key in by_key
            else ""
            for key in keys
        ]
        lines.append(
            f"| {k} | {rate:g} | {tau:g} | {' / '.join(str(r.replicates) for r in bayes)} "
            f"| {glmm[0].failures if glmm else ''} | " + " | ".join(values) + " |"
        )
    return "\n".join(lines)


def _pooled(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Coverage pooled over cells (all their replicates together) with its MC SE."""
    grouped = (
        table.assign(hits=table["coverage"] * table["replicates"])
        .groupby(by, sort=False)
        .agg(hits=("hits", "sum"), replicates=("replicates", "sum"),
             failures=("failures", "sum"), width=("mean_width", "mean"))
        .reset_index()
    )  # fmt: skip
    grouped["coverage"] = grouped["hits"] / grouped["replicates"]
    grouped["mc_se"] = np.sqrt(
        grouped["coverage"] * (1 - grouped["coverage"]) / grouped["replicates"]
    )
    return grouped


def summary(table: pd.DataFrame) -> str:
    """Coverage pooled over the grid, per method and target (and per tau)."""
    lines = [
        "| method | target | tau | coverage (all cells) | replicates | failures | mean width |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in _pooled(table, ["method", "target", "tau"]).itertuples(index=False):
        lines.append(
            f"| `{row.method}` | {row.target} | {row.tau:g} | {row.coverage:.1%} (MC SE "
            f"{row.mc_se:.1%}) | {row.replicates} | {row.failures} | {row.width:.3f} |"
        )
    return "\n".join(lines)


def by_k(table: pd.DataFrame) -> str:
    """Coverage by k and tau, pooled over the true rates: the figures' lines as numbers."""
    pooled = _pooled(table, ["method", "target", "tau", "k"])
    ks = sorted(pooled["k"].unique())
    lines = [
        "| method | target | tau | " + " | ".join(f"k = {k}" for k in ks) + " |",
        "|---" * (3 + len(ks)) + "|",
    ]
    for (method, target, tau), part in pooled.groupby(["method", "target", "tau"], sort=False):
        values = part.set_index("k")
        cells = [
            f"{values.loc[k, 'coverage']:.1%} ({values.loc[k, 'mc_se']:.1%})"
            if k in values.index
            else ""
            for k in ks
        ]
        lines.append(f"| `{method}` | {target} | {tau:g} | " + " | ".join(cells) + " |")
    short = pooled[pooled["coverage"] + 2 * pooled["mc_se"] < 0.95]
    if short.empty:
        verdict = "No interval's pooled coverage is more than 2 MC SE below 95% at any k and tau."
    else:
        items = [
            f"`{r.method}` ({r.target}) at tau = {r.tau:g}, k = {r.k}: {r.coverage:.1%}"
            for r in short.itertuples(index=False)
        ]
        verdict = "Pooled coverage more than 2 MC SE below 95%: " + "; ".join(items) + "."
    return "\n".join(lines) + "\n\n" + verdict


def findings(table: pd.DataFrame) -> str:
    """One line per method and target: the range of cell coverage and the mean width."""
    lines = ["Range over the cells (each cell's coverage, its MC SE in brackets):", ""]
    for (method, target), part in table.groupby(["method", "target"], sort=False):
        low = part.loc[part["coverage"].idxmin()]
        high = part.loc[part["coverage"].idxmax()]
        below = int((part["coverage"] + 2 * part["mc_se"] < 0.95).sum())
        lines.append(
            f"* `{method}`, {target}: from {low.coverage:.0%} ({low.mc_se:.0%}; k = {low.k}, "
            f"rate {low.true_rate:g}, tau {low.tau:g}) to {high.coverage:.0%}; "
            f"{below} of {len(part)} cells more than 2 MC SE below 95%; mean width "
            f"{part['mean_width'].mean():.3f}."
        )
    return "\n".join(lines)


def medians() -> str:
    """The population median rate invlogit(mu) of each (mean rate, tau) of the grid."""
    items = [
        f"{special.expit(logit_normal_mu(rate, tau)):.3f} for mean {rate:g} at tau = {tau:g}"
        for tau in COVERAGE_TAUS
        for rate in COVERAGE_RATES
        if rate != 0.5
    ]
    return "; ".join(items) + "; 0.5 for mean 0.5"


def _timing(replicates: pd.DataFrame) -> str:
    parts = []
    for model, rows in replicates.groupby("configuration", sort=False):
        seconds = rows["seconds"].dropna()
        if len(seconds):
            parts.append(
                f"`{model}`: median {seconds.median():.1f} s per replicate, "
                f"{seconds.sum() / 60:.0f} min of worker time for {len(rows)} replicates"
            )
    return "; ".join(parts) or "not recorded"


def report(evidence: Path, page: Path, figure_dir: Path) -> None:
    problems = check_evidence(
        EXPERIMENT,
        evidence,
        {model: coverage_settings(model) for model in COVERAGE_MODELS},
        {m: n * len(COVERAGE_GRID) for m, n in COVERAGE_MIN_REPLICATES.items()},
    )
    problems = [p.replace(str(DOCS.parent) + "/", "") for p in problems]
    text = REPORT_TEXT
    values = {
        "{cells}": str(len(COVERAGE_GRID)),
        "{ks}": ", ".join(str(k) for k in COVERAGE_KS),
        "{rates}": ", ".join(f"{r:g}" for r in COVERAGE_RATES),
        "{medians}": medians(),
        "{draws}": str(COVERAGE_SETTINGS["draws"]),
        "{tune}": str(COVERAGE_SETTINGS["tune"]),
        "{chains}": str(COVERAGE_SETTINGS["chains"]),
        "{command}": REGENERATE[EXPERIMENT],
        "{minimum}": ", ".join(f"{n} for `{m}`" for m, n in COVERAGE_MIN_REPLICATES.items()),
    }
    replicates = read_evidence(evidence)[0] if evidence.is_file() else pd.DataFrame()
    if replicates.empty:
        status = "**No replicates yet.**"
        values.update({k: "(none yet)" for k in ("{summary}", "{by_k}", "{table}")})
        values.update({"FINDINGS": "", "FIGURES": ""})
        values.update({"{replicates}": "none", "{glmm_failures}": "–", "{boundary}": "–"})
        values["{differences}"] = "–"
        values["{timing}"] = "not run"
    else:
        table = results(replicates)
        figures(table, figure_dir)
        fingerprint = replicates["fingerprint"].iloc[0]
        status = f"The table was made by code with fingerprint `{fingerprint}`."
        if not problems:
            status = f"The table was made by today's code (fingerprint `{fingerprint}`)."
        status += " " + processors_sentence(replicates)
        bayes = table[table["method"].str.startswith("bayes") & (table["target"] == "mean")]
        per_model = []
        for method, part in bayes.groupby("method", sort=False):
            low, high = int(part["replicates"].min()), int(part["replicates"].max())
            span = str(low) if low == high else f"{low} to {high}"
            per_model.append(
                f"`{method}`: {span} per cell ({int(part['replicates'].sum())} in all)"
            )
        if "glmm_converged" not in replicates:
            replicates["glmm_converged"] = replicates["glmm_boundary"] = np.nan
        first = replicates[replicates["glmm_converged"].notna()]
        converged = first[first["glmm_converged"].astype(bool)]
        boundary = converged["glmm_boundary"].astype(bool)
        gap = (replicates["true_mean"] - replicates["true_median"]).abs()
        values.update(
            {
                "{replicates}": "; ".join(per_model),
                "{glmm_failures}": str(int((~first["glmm_converged"].astype(bool)).sum())),
                "{boundary}": f"{boundary.mean():.0%} of the converged fits here, "
                f"{int(boundary.sum())} of {len(boundary)}",
                "{differences}": f"{gap.max():.3f}",
                "{summary}": summary(table),
                "{by_k}": by_k(table),
                "FINDINGS": findings(table),
                "{table}": markdown(table),
                "{timing}": _timing(replicates),
                "FIGURES": FIGURE_TEXT.replace("{figures}", figure_dir.name),
            }
        )
    if problems:
        status += "\n\n**This evidence is not complete or not current:**\n\n" + "\n".join(
            f"* {p}" for p in problems
        )
    values["{status}"] = status
    for key, value in values.items():
        text = text.replace(key, value)
    page.write_text(text, encoding="utf-8")
    print(f"wrote {page}")


FIGURE_TEXT = """\
![Coverage of the mean]({figures}/coverage_mean.png)

![Coverage of the median]({figures}/coverage_median.png)

Each line is a method's coverage at each k, pooled over the three true rates (all their
replicates together), with 1.96 MC SE error bars; the faint dots are the single cells; the
dashed line is the nominal 95%. Left: small heterogeneity (tau = 0.3), right: large (tau = 1).
"""

REPORT_TEXT = """\
# Coverage against the frequentist GLMM

*Generated by `python docs/make_coverage.py`; do not edit by hand.*

How often does a nominal 95% interval of the pooled rate hold the true value, when a review has
few small studies? This page compares bayesreview's posterior intervals with the confidence
interval of the binomial-normal GLMM fitted by maximum likelihood, the frequentist standard
(metafor's `rma.glmm(xi, ni, measure="PLO", method="ML")`), on the same simulated reviews.

## Design

* **Grid.** k = {ks} studies x true population mean rate {rates} x between-study SD
  tau = 0.3 (small) and 1.0 (large heterogeneity) on the logit scale: {cells} cells. Each
  study's number of patients is drawn uniformly from 1 to 30, afresh in every replicate.
* **Truth.** Logit-normal: study j's true rate is p_j = invlogit(mu + tau z_j), z_j ~ N(0, 1),
  events y_j ~ Binomial(n_j, p_j). mu is set so that the population **mean** rate E[p] equals
  the grid's rate; the population **median** rate is invlogit(mu): {medians}.
* **Replicates.** {replicates}; the GLMM is fitted to the data sets of the first model's
  replicates (replicate r of a cell simulates the same data for every model). The Monte Carlo
  standard error of a coverage c from R replicates is sqrt(c (1 - c) / R): about 2.2
  percentage points at c = 0.95 with R = 100, 3.1 with R = 50, 4.9 with R = 20.

## The intervals and what each targets

* `bayes_beta_binomial`, `bayes_logit_normal`: the equal-tailed 95% posterior interval from
  `bayesreview.fit(table, outcome="events", model=..., draws={draws}, tune={tune},
  chains={chains})` with the default priors. Target `mean`: the interval of `rate`, the
  population mean rate E[p]. Target `median`: the interval of the population median, per
  posterior draw the median of Beta(mu phi, (1 - mu) phi) for the beta-binomial and
  invlogit(alpha) for the logit-normal.
* `glmm_ml`: the ML fit of the binomial-normal GLMM; Wald 95% CI for mu from the observed
  information, back-transformed: invlogit(mu -/+ 1.96 SE). Its own target is the `median`:
  invlogit(mu) is the population **median** rate, which is what `rma.glmm` (and
  `predict(fit, transf=transf.ilogit)`) reports as the pooled rate. It is scored against the
  `mean` too, to show what a reader who takes it for the mean rate gets; the largest
  difference between the true mean and median in these replicates is {differences}.
* `glmm_ml_delta`: the same ML fit; a delta-method Wald 95% CI for logit(E[p]),
  E[p] = E[invlogit(mu + tau z)], back-transformed. Target: the `mean`.

bayesreview's beta-binomial is not the model that generated the data (the truth is
logit-normal), as in practice; its `rate` is the population mean, the quantity bayesreview
reports everywhere. Coverage counts an interval as covering when lower <= truth <= upper.
Posterior intervals carry no guarantee of coverage at a fixed truth: averaged over draws from
the prior they are exact (the SBC checks on the [validation page](validation.md)), not at each
fixed truth.

**GLMM failures.** A GLMM fit fails when no finite maximum exists (every study with 0 events,
or every study with all events: mu -> -/+ infinity), when tau runs to the search bound, or when
the observed information is not positive definite. A failed fit gives no interval: such
replicates are counted in the `failures` column and left out of that method's coverage (which
flatters the GLMM a little: those are the hardest data sets, and bayesreview's interval is
computed for every one of them). Failures in this run: {glmm_failures}.

When the ML estimate of tau is 0 (the boundary: {boundary}), the SE of mu is that of
the pooled binomial, 1 / sqrt(N p (1 - p)), as `rma.glmm` reports it; the `glmm_boundary`
column of the evidence table marks those fits.

## The ML fit and its check against metafor

`bayesreview.coverage.fit_glmm` maximises the marginal likelihood over mu in [-20, 20] and
tau in [0, 15] (L-BFGS-B from two starting values of tau). Each study's integral over the
random effect is computed by the package's one integrator of the logit-normal model,
`bayesreview.integrals.logit_normal_loglik` (Gauss-Hermite quadrature centred and scaled at the
mode of the log-concave integrand, the adaptive quadrature of lme4 with more nodes); the SE of
mu comes from the inverse of the numerical Hessian of (mu, tau), as `vcov` of a `glmer` fit.
`tests/test_coverage.py` checks the log-likelihood against `scipy.integrate.quad`, that the
gradient of that independent likelihood is about zero at the ML estimate, the delta-method
interval against derivatives of the quad mean, that the fit recovers known parameters of a
400-study simulation, the closed form at the boundary, and (a test marked slow, skipped
without R) that the estimates agree with metafor's `rma.glmm(xi, ni, measure="PLO",
method="ML")` (which calls `lme4::glmer` with its default `nAGQ = 7`) on three data sets: mu
to 1e-3, tau, SE and CI limits to 1e-2.

## Results

{status}

Pooled over the grid (the coverage of all replicates of a method and target at one tau, with
its MC SE):

{summary}

FIGURES

By number of studies, pooled over the three true rates (coverage, MC SE in brackets):

{by_k}

FINDINGS

### Every cell

Each entry: coverage (MC SE), mean width of the interval on the rate scale (0-1). R: replicates
per cell, for each Bayesian model in the order of the columns (the GLMM's coverage is over the
first R minus its failures).

{table}

## The evidence and regenerating it

Every replicate is recorded with the fingerprint of the code that produced it: a hash of the
modules that define the likelihoods and the derived quantities, of the shipped model
specifications and of `bayesreview/coverage.py` (`bayesreview.evidence.code_fingerprint`;
comments and docstrings do not count, any code change does). The raw records (with the
simulated events and patients) live in a cache outside the repository (`$BAYESREVIEW_CACHE`,
else `$XDG_CACHE_HOME/bayesreview`, else `~/.cache/bayesreview`), one JSON file per replicate
under `replicates/coverage/<fingerprint>-<settings hash>/` (seed = cell x 10000 + replicate);
a rerun resumes where it stopped and never reuses a record of other code or other settings.
The repository keeps one table, `docs/evidence/coverage.csv` (one row per replicate, a
`configuration` column naming the model, every interval's limits and both truths; its sidecar
`docs/evidence/coverage.json` names the fingerprint and the settings), from which this page is
written. `tests/test_evidence.py` fails when that fingerprint is not today's code's, or when a
model has fewer replicates per cell than required ({minimum}). To regenerate (from the
repository root):

    {command}

Time: {timing}.

Not covered: a beta-binomial truth, and groups or bias covariates.
"""


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--replicates",
        type=int,
        help="per cell and model (default per model: "
        + ", ".join(f"{m} {n}" for m, n in COVERAGE_MIN_REPLICATES.items())
        + ")",
    )
    parser.add_argument("--n-jobs", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--scheduler", help="address of a dask scheduler to run on instead")
    parser.add_argument(
        "--models", default=",".join(COVERAGE_MODELS), help="comma-separated models to run (all)"
    )
    parser.add_argument("--report-only", action="store_true", help="do not run replicates")
    parser.add_argument(
        "--quick", action="store_true", help=f"tiny fits ({QUICK}) to check the pipeline"
    )
    parser.add_argument(
        "--out", type=Path, default=DOCS, help="folder of the page, evidence/ and figures/"
    )
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(COVERAGE_MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(COVERAGE_MODELS)}")
    out = args.out.resolve()
    if args.quick and out == DOCS:
        parser.error("--quick makes no evidence: give --out (a scratch folder)")
    overrides = QUICK if args.quick else {}
    replicates = {
        m: args.replicates if args.replicates is not None else COVERAGE_MIN_REPLICATES[m]
        for m in COVERAGE_MODELS
    }
    evidence = out / "evidence" / "coverage.csv"
    if not args.report_only:
        run(models, replicates, args.n_jobs, dask_client(args.scheduler), overrides)
        write_table(
            EXPERIMENT,
            evidence,
            aggregate(evidence, overrides),
            {m: coverage_settings(m, **overrides) for m in COVERAGE_MODELS},
        )
    out.mkdir(parents=True, exist_ok=True)
    report(evidence, out / "coverage.md", out / "figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
