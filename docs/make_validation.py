"""Run the simulation-based calibration (SBC) of bayesreview's models; write docs/validation.md.

One configuration per shipped path (bayesreview.validation.SBC_CONFIGURATIONS): the
beta-binomial and logit-normal models with and without the study-design covariate, the joint
response model, the missing-level mixture and the logit-normal model with large studies. Each
replicate is a JSON record in the cache (``$BAYESREVIEW_CACHE``, else
``$XDG_CACHE_HOME/bayesreview``, else ``~/.cache/bayesreview``), under the fingerprint of
today's model code and the configuration's settings, saved as soon as it finishes: a rerun
resumes where it stopped, and records of other code are never reused. The script then writes
the one aggregated table docs/evidence/sbc.csv (one row per replicate, with its sidecar
docs/evidence/sbc.json naming the fingerprint) and, from that table, docs/validation.md and
its figures.

Usage (from the repository root)::

    python docs/make_validation.py --n-jobs 2                 # 200 replicates per configuration
    python docs/make_validation.py --configs response,missing_levels --n-jobs 2
    python docs/make_validation.py --scheduler tcp://host:8786   # on a dask cluster
    python docs/make_validation.py --report-only              # page from docs/evidence/sbc.csv
    python docs/make_validation.py --quick --replicates 3 --out /tmp/sbc-quick  # pipeline check
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

from bayesreview.evidence import (
    FOLLOW_UP_FIRST_SEED,
    REGENERATE,
    check_evidence,
    processors_sentence,
    read_evidence,
)
from bayesreview.spec import load_spec
from bayesreview.validation import (
    RANK_PREFIX,
    SBC_CONFIGURATIONS,
    SBC_LEVEL_TOTALS,
    SBC_MIN_REPLICATES,
    SBC_SETTINGS,
    large_study_design,
    network_sbc_design,
    sbc_design,
    sbc_job,
    sbc_plot,
    sbc_settings,
    sbc_uniformity,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # docs/_experiments.py
from _experiments import dask_client, gather_records, run_experiment, write_table

DOCS = Path(__file__).resolve().parent
EXPERIMENT = "sbc"
LEVEL = 0.05
#: A configuration with a failing quantity is run again on this many times its replicates, at
#: fresh seeds (FOLLOW_UP_FIRST_SEED, ...), and the failing quantities are tested on those.
FOLLOW_UP_FACTOR = 2
#: Sampler settings of --quick (a check that the pipeline runs, not evidence).
QUICK = {"draws": 40, "tune": 40, "thin": 2}
FAMILIES = {
    "alpha": "intercepts alpha (logit)",
    "beta": "bias effects beta",
    "bias_level_prob": "level probabilities pi",
    "heterogeneity": "heterogeneity (phi or tau)",
    "rate": "mean response rates",
    "d": "log odds ratios d (network)",
    "baseline": "study baselines m and sigma (network)",
}


def family(quantity: str) -> str:
    name = quantity.split("[")[0].removesuffix("_cond")
    if name.startswith("baseline"):
        return "baseline"
    return name if name in FAMILIES else "heterogeneity"


# ---------------------------------------------------------------------------------------------
# Running and aggregating
# ---------------------------------------------------------------------------------------------


def run(configs: list[str], seeds: range, n_jobs: int, client, overrides: dict) -> None:
    jobs = {
        name: (sbc_job(name, **overrides), seeds, sbc_settings(name, **overrides))
        for name in configs
    }
    run_experiment(EXPERIMENT, jobs, n_jobs, client)


def split_seeds(ranks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(main replicates, follow-up replicates at fresh seeds) of one configuration's rows."""
    fresh = ranks["seed"] >= FOLLOW_UP_FIRST_SEED
    return ranks[~fresh].dropna(axis=1, how="all"), ranks[fresh].dropna(axis=1, how="all")


def uniformity(ranks: pd.DataFrame) -> pd.DataFrame:
    """The uniformity test (Bonferroni over its quantities) of the rank columns of ``ranks``."""
    return sbc_uniformity(ranks, int(ranks["L"].iloc[0]), level=LEVEL)


def failing(uniform: pd.DataFrame) -> list[str]:
    """The quantities that fail in the uniformity table ``uniform``."""
    return uniform.loc[uniform["fails"], "quantity"].tolist()


def follow_up_test(fresh: pd.DataFrame, quantities: list[str]) -> pd.DataFrame:
    """The uniformity test of ``quantities`` (those that failed on the main seeds) on the
    follow-up replicates, Bonferroni over those quantities alone."""
    return uniformity(fresh[["L", *(RANK_PREFIX + q for q in quantities)]])


def to_follow_up(table: pd.DataFrame, configs: list[str], replicates: int) -> list[str]:
    """The configurations among ``configs`` with a failing quantity on their main seeds and
    fewer than ``FOLLOW_UP_FACTOR * replicates`` follow-up replicates."""
    out = []
    for name in configs:
        main, fresh = split_seeds(table[table["configuration"] == name])
        if len(main) and failing(uniformity(main)) and len(fresh) < FOLLOW_UP_FACTOR * replicates:
            out.append(name)
    return out


def aggregate(evidence: Path, overrides: dict) -> pd.DataFrame:
    """One table of every configuration's replicates made by today's code (``_experiments``)."""
    settings = {name: sbc_settings(name, **overrides) for name in SBC_CONFIGURATIONS}
    table = gather_records(EXPERIMENT, evidence, settings)
    if table.empty:
        return table
    ranks = [c for c in table if c.startswith(RANK_PREFIX)]
    rest = [c for c in table if c not in ranks and c not in ("configuration", "seed")]
    table = table[["configuration", "seed", *rest, *ranks]]
    for column in [*ranks, "L", "divergences", "seed"]:
        table[column] = table[column].astype("Int64")
    return table


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def figure(name: str, ranks: pd.DataFrame, L: int, figures: Path) -> Path:
    quantities = [c.removeprefix(RANK_PREFIX) for c in ranks if c.startswith(RANK_PREFIX)]
    present = [f for f in FAMILIES if any(family(q) == f for q in quantities)]
    fig, axes = plt.subplots(
        1, len(present), figsize=(3.6 * len(present), 3.2), sharey=True, squeeze=False
    )
    for ax, fam in zip(axes[0], present, strict=True):
        subset = [q for q in quantities if family(q) == fam]
        sbc_plot(ranks, L, quantities=subset, ax=ax, title=f"{FAMILIES[fam]} ({len(subset)})")
        if ax is not axes[0][0]:
            ax.set_ylabel("")
    fig.suptitle(f"SBC: {name}, {len(ranks)} replicates, L = {L}", fontsize=10)
    fig.tight_layout()
    figures.mkdir(parents=True, exist_ok=True)
    path = figures / f"sbc_{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def describe(name: str) -> str:
    """What configuration ``name`` simulates and fits, from its settings and its design."""
    config = SBC_CONFIGURATIONS[name]
    spec = load_spec(config["model"])
    if spec.structure == "network":
        return describe_network(config["model"])
    parts = [f"model `{config['model']}` ({spec.likelihood.replace('_', '-')} likelihood"]
    parts[0] += ", heterogeneity " + spec.heterogeneity.replace("_", " ") + ")"
    if config.get("design") == "large_studies":
        data = large_study_design()
        parts.append(
            f"{data.n_rows} large studies ({data.trials.min():,} to {data.trials.max():,} "
            f"patients, log-uniform quantiles) in {data.n_groups} groups"
        )
    else:
        parts.append("the calcinosis-cutis design")
    if spec.outcome == "response":
        parts.append(
            "two stages: any response of n, then complete response given any, the second with "
            "the priors of `[conditional_priors]`; ranks of both stages' parameters and of the "
            "complete and any response rates"
        )
    if spec.selection is not None:
        parts.append(
            "publication selection by response: the relative publication probabilities of a "
            "case report and of a case series with no responders drawn from their priors, and "
            "each study redrawn at its size until it is published (a study with no responders "
            "is kept with its class's probability); ranks of both weights too"
        )
    bias = config.get("bias")
    if bias == "design":
        data = sbc_design(bias="design")
        counts = np.bincount(data.bias.codes, minlength=len(data.bias.levels))
        mix = ", ".join(f"{c} {lv}" for lv, c in zip(data.bias.levels, counts, strict=True))
        parts.append(f"study design as covariate ({mix}; reference `{data.bias.levels[0]}`)")
    elif bias == "missing":
        data = sbc_design(bias="risk_of_bias")
        counts = ", ".join(f"{c:g}" for c in data.bias.prior_counts)
        parts.append(
            f"a covariate with levels {', '.join(data.bias.levels)} (reference "
            f"`{data.bias.levels[0]}`): pi ~ Dirichlet({counts}), each study's level drawn "
            f"from pi, the levels of {data.n_rows // 2} of the {data.n_rows} studies (chosen at "
            "random) hidden from the fit, which marginalises them; ranks of beta and pi too"
        )
    elif bias == "totals":
        data = sbc_design(bias="risk_of_bias")
        totals = ", ".join(
            f"{lv} {t}" for lv, t in zip(data.bias.levels, SBC_LEVEL_TOTALS, strict=True)
        )
        parts.append(
            f"a covariate with levels {', '.join(data.bias.levels)} (reference "
            f"`{data.bias.levels[0]}`) and known totals ({totals}, the review's): the levels a "
            "uniformly random assignment with those totals, the levels of "
            f"{data.n_rows // 2} of the {data.n_rows} studies hidden from the fit, which "
            "marginalises them over every assignment consistent with the totals; ranks of "
            "beta too"
        )
    else:
        parts.append("no covariate")
    return "; ".join(parts)


def describe_network(model: str) -> str:
    """The network configuration's design in words, counted from :func:`network_sbc_design`."""
    arms = network_sbc_design()
    per_study = arms.groupby("study", sort=False)["modality"].agg(lambda t: "-".join(t))
    single = per_study[~per_study.str.contains("-")]
    trials = per_study[per_study.str.contains("-")].value_counts(sort=False)
    designs = ", ".join(f"{count} {design}" for design, count in trials.items())
    series = single.value_counts(sort=False)
    only_single = sorted(set(single) - set("-".join(trials.index).split("-")))
    return (
        f"model `{model}` (arm-based logit-normal network, shared tau); "
        f"{int(trials.sum())} trials ({designs}) and {len(single)} single-arm studies "
        f"({', '.join(f'{c} of {t}' for t, c in series.items())}; "
        f"{', '.join(only_single)} reached by single-arm studies only), "
        f"{arms['n'].min()} to {arms['n'].max()} patients an arm; reference A; ranks of d, "
        "tau, the baselines' mean m and SD sigma, and each treatment's rate at the typical "
        "baseline"
    )


def _timing(table: pd.DataFrame) -> str:
    seconds = table["seconds"].dropna()
    if seconds.empty:
        return "not recorded"
    return (
        f"median {seconds.median():.1f} s per replicate, {seconds.sum() / 60:.0f} min of worker "
        "time in all (a worker's first replicate includes compiling the model)"
    )


def follow_up_summary(fails: list[str], fresh: pd.DataFrame, again: pd.DataFrame | None) -> str:
    """The summary table's cell for the follow-up of the quantities ``fails``: ``again`` is
    their :func:`follow_up_test` on the replicates ``fresh`` (None before it has run)."""
    if not fails:
        return "–"
    if again is None:
        return "not run yet"
    still = failing(again)
    return f"{len(fresh)} replicates: " + (
        f"{', '.join(still)} fail again" if still else "none fails"
    )


def follow_up_section(
    fails: list[str], fresh: pd.DataFrame, again: pd.DataFrame | None
) -> list[str]:
    """Lines of a configuration's section on its follow-up at fresh seeds (none without
    failing quantities); arguments as :func:`follow_up_summary`."""
    if not fails:
        return []
    if again is None:
        return ["", f"Not yet tested again on fresh seeds: {', '.join(fails)}."]
    seeds = fresh["seed"]
    rows = [
        f"| {r.quantity} | {r.chi2:.2f} | {r.df} | {r.p_value:.3f} | "
        f"{'**fails again**' if r.fails else 'passes'} |"
        for r in again.itertuples()
    ]
    return [
        "",
        f"Tested again on {len(fresh)} replicates at fresh seeds ({seeds.min()} to "
        f"{seeds.max()}), Bonferroni over the {len(fails)} quantities that failed above "
        f"(threshold {LEVEL / len(fails):.3g}):",
        "",
        "| quantity | chi-square | df | p-value | on fresh seeds |",
        "|---|---|---|---|---|",
        *rows,
    ]


def report(evidence: Path, page: Path, figures: Path) -> None:
    if evidence.is_file():
        table, meta = read_evidence(evidence)
    else:
        table, meta = pd.DataFrame({"configuration": []}), {}
    fingerprint = meta.get("fingerprint", "none")
    sections, summary_rows = [], []
    for name in SBC_CONFIGURATIONS:
        ranks, fresh = split_seeds(table[table["configuration"] == name])
        if len(ranks) == 0:
            summary_rows.append(f"| `{name}` | 0 | – | – | – | – | – | not run | – |")
            continue
        L = int(ranks["L"].iloc[0])
        uniform = uniformity(ranks)
        path = figure(name, ranks, L, figures)
        divergent = int((ranks["divergences"] > 0).sum())
        fails = failing(uniform)
        again = follow_up_test(fresh, fails) if fails and len(fresh) else None
        summary_rows.append(
            f"| `{name}` | {len(ranks)} | {len(uniform)} | {uniform['p_value'].min():.3g} | "
            f"{divergent} | {ranks['max_rhat'].max():.3f} | {ranks['min_ess'].min():.0f} | "
            f"{', '.join(fails) or 'none'} | {follow_up_summary(fails, fresh, again)} |"
        )
        rows = [
            f"| {r.quantity} | {r.chi2:.2f} | {r.df} | {r.p_value:.3f} | "
            f"{'**fails**' if r.fails else ''} |"
            for r in uniform.itertuples()
        ]
        settings = meta.get("configurations", {}).get(name, {}).get("settings", {})
        kwargs = settings.get("kwargs", {})
        sampler = ", ".join(f"{k} {kwargs[k]}" for k in ("chains", "draws", "tune", "thin"))
        sections.append(
            "\n".join(
                [
                    f"### `{name}`",
                    "",
                    describe(name) + ".",
                    "",
                    f"{len(ranks)} replicates ({sampler}), ranks among L = {L} draws, "
                    f"{uniform['bins'].iloc[0]} bins per chi-square test; replicates with any "
                    f"divergent transition: {divergent}; time: {_timing(ranks)}.",
                    "",
                    f"![SBC ECDF differences, {name}]({figures.name}/{path.name})",
                    "",
                    "| quantity | chi-square | df | p-value | Bonferroni |",
                    "|---|---|---|---|---|",
                    *rows,
                    *follow_up_section(fails, fresh, again),
                ]
            )
        )
    header = [
        "| configuration | replicates | quantities | smallest p-value "
        "| replicates with divergences | largest R-hat | smallest ESS | failing (Bonferroni) "
        "| on fresh seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    problems = check_evidence(
        EXPERIMENT,
        evidence,
        {name: sbc_settings(name) for name in SBC_CONFIGURATIONS},
        SBC_MIN_REPLICATES,
    )
    status = (
        f"The table was made by today's code (fingerprint `{fingerprint}`). "
        + processors_sentence(table)
        if not problems
        else "**This evidence is not complete or not current:**\n\n"
        + "\n".join(f"* {p.replace(str(DOCS.parent) + '/', '')}" for p in problems)
    )
    data = sbc_design(bias="design")
    page.write_text(
        TEMPLATE.format(
            summary="\n".join(header + summary_rows),
            sections="\n\n".join(sections) or "No replicates yet.",
            status=status,
            command=REGENERATE[EXPERIMENT],
            factor=FOLLOW_UP_FACTOR,
            first_seed=f"{FOLLOW_UP_FIRST_SEED:,}",
            configurations=len(SBC_CONFIGURATIONS),
            level=LEVEL,
            chance=1 - (1 - LEVEL) ** len(SBC_CONFIGURATIONS),
            minimum=SBC_MIN_REPLICATES,
            studies=data.n_rows,
            patients=int(data.trials.sum()),
            groups=data.n_groups,
            chains=SBC_SETTINGS["chains"],
            draws=SBC_SETTINGS["draws"],
            tune=SBC_SETTINGS["tune"],
            thin=SBC_SETTINGS["thin"],
            L=SBC_SETTINGS["chains"] * -(-SBC_SETTINGS["draws"] // SBC_SETTINGS["thin"]),
        ),
        encoding="utf-8",
    )
    print(f"wrote {page}")


TEMPLATE = """\
# Validation: simulation-based calibration

*Generated by `python docs/make_validation.py`; do not edit by hand.*

Simulation-based calibration (SBC; Talts et al. 2018, arXiv:1804.06788; Modrák et al. 2023,
*Bayesian Analysis*, doi:10.1214/23-BA1404) checks the model code, the sampler and the derived
quantities together. Each replicate

1. draws every parameter from the prior of the model's specification (`models/*.toml`), with
   numpy and the priors' quantile functions, independently of the PyMC model code
   (`bayesreview.validation.simulate_from_prior`);
2. simulates each study's events at a design: by default the calcinosis-cutis design, the
   real number of patients of each of the {studies} studies ({patients} patients) and its group
   ({groups} groups, lasers pooled, `by="group"`). Beta-binomial: p_j ~ Beta(mu phi,
   (1 - mu) phi), y_j ~ Binomial(n_j, p_j); logit-normal: logit p_j = alpha + beta + tau e_j;
3. fits the model with `bayesreview.fit`, as a user would fit a table of studies (nutpie NUTS,
   {chains} chains of {draws} draws after {tune} tuning steps), keeps every {thin}th draw of
   each chain (L = {L} draws), and records the rank of each true value among them: the
   intercepts alpha, the bias effects beta, the heterogeneity parameters (phi, log_phi,
   log_phi_sd for the beta-binomial; tau for the logit-normal), the level probabilities pi
   where levels are missing, and each group's mean response rate (the population mean:
   invlogit(alpha) for the beta-binomial, E[invlogit(alpha + tau z)] for the logit-normal,
   at the reference level).

If the posterior is right, every rank is uniform on 0..L. Each quantity's ranks are tested
with a chi-square test on binned ranks (at most 10 bins, at least 5 expected per bin); a
quantity **fails** when its p-value is below 0.05 / Q, Q the number of quantities of the
configuration (Bonferroni). The plots show ECDF(rank) - uniform with 95% simultaneous bands
(Säilynoja, Bürkner & Vehtari 2022); a line that leaves the band is labelled. For the
beta-binomial the mean rate is a monotone function of alpha, so its ranks equal alpha's: a
check that the reported rates are computed from the right draws.

A quantity that fails is tested again, with the others that failed in its configuration
(Bonferroni over them), on {factor} times as many replicates at fresh seeds (from
{first_seed}). With {configurations} configurations, each tested at family-wise level {level},
at least one fails with probability 1 - (1 - {level})^{configurations} = {chance:.0%} even
when every posterior is right (were the configurations independent): a miscalibration fails
again on fresh data, a chance failure as a rule does not.

A miscalibrated fit is caught by the same test: `tests/test_validation.py` simulates with an
intercept prior ten times wider than the fitted one and checks that the intercepts fail.

Not covered here: SBC checks that the posterior is right *given the prior*; it says nothing
about frequentist coverage at fixed true rates. For that, and a comparison with the
frequentist binomial-normal GLMM (metafor's `rma.glmm`), see [Coverage](coverage.md).

## The evidence and the code it tests

{status}

Every replicate is recorded with the fingerprint of the code that produced it: a hash of the
modules that define the likelihoods and the derived quantities, of the shipped model
specifications and of `bayesreview/validation.py` (`bayesreview.evidence.code_fingerprint`;
comments and docstrings do not count, any code change does). The raw records live in a cache
outside the repository (`$BAYESREVIEW_CACHE`, else `$XDG_CACHE_HOME/bayesreview`, else
`~/.cache/bayesreview`), one JSON file per replicate under
`replicates/sbc/<fingerprint>-<settings hash>/`; a rerun resumes where it stopped and never
reuses a record of other code or other settings. The repository keeps one table,
`docs/evidence/sbc.csv` (one row per replicate, a `configuration` column; its sidecar
`docs/evidence/sbc.json` names the fingerprint and the settings), from which this page is
written (the follow-up replicates are its rows with seeds from {first_seed}).
`tests/test_evidence.py` fails when that fingerprint is not today's code's, when a
configuration has fewer than {minimum} replicates, or when a quantity that fails has not been
tested again on fresh seeds. A replicate's ranks also depend, through the last digits of
the arithmetic, on the processor that numba compiles for (`bayesreview.backend.compiled_for`):
the same code and seeds on another kind of processor give other ranks, draws of the same
distribution, so a rerun there tests the calibration again rather than repeating this table.
To regenerate (from the repository root):

    {command}

## Summary

{summary}

## Results by configuration

{sections}
"""


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--replicates",
        type=int,
        default=SBC_MIN_REPLICATES,
        help=f"per configuration ({SBC_MIN_REPLICATES})",
    )
    parser.add_argument("--n-jobs", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--scheduler", help="address of a dask scheduler to run on instead")
    parser.add_argument(
        "--configs",
        default=",".join(SBC_CONFIGURATIONS),
        help="comma-separated configurations to run (all)",
    )
    parser.add_argument("--report-only", action="store_true", help="do not run replicates")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"tiny fits ({QUICK}) to check the pipeline; needs --out",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DOCS,
        help="folder of the page, evidence/ and figures/ (default docs/)",
    )
    args = parser.parse_args(argv)
    configs = [c for c in args.configs.split(",") if c]
    unknown = sorted(set(configs) - set(SBC_CONFIGURATIONS))
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {list(SBC_CONFIGURATIONS)}")
    out = args.out.resolve()
    if args.quick and out == DOCS:
        parser.error("--quick makes no evidence: give --out (a scratch folder)")
    overrides = QUICK if args.quick else {}
    evidence = out / "evidence" / "sbc.csv"
    if not args.report_only:
        client = dask_client(args.scheduler)
        run(configs, range(args.replicates), args.n_jobs, client, overrides)
        follow_up = to_follow_up(aggregate(evidence, overrides), configs, args.replicates)
        if follow_up:
            print(f"quantities failing in {', '.join(follow_up)}: testing them on fresh seeds")
            first = FOLLOW_UP_FIRST_SEED
            seeds = range(first, first + FOLLOW_UP_FACTOR * args.replicates)
            run(follow_up, seeds, args.n_jobs, client, overrides)
        write_table(
            EXPERIMENT,
            evidence,
            aggregate(evidence, overrides),
            {n: sbc_settings(n, **overrides) for n in SBC_CONFIGURATIONS},
        )
    out.mkdir(parents=True, exist_ok=True)
    report(evidence, out / "validation.md", out / "figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
