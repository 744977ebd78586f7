"""Speed and scale benchmarks, each figure a ratio against a plain PyMC baseline run alongside.

Run every benchmark and write ``benchmarks/results.json`` and the table in
``docs/benchmarks.md``::

    python benchmarks/run.py            # everything (about 15-25 minutes on 2 cores)
    python benchmarks/run.py --quick    # smaller sizes, for a smoke test

The baseline is the same beta-binomial model (one intercept per group, a design covariate, one
concentration) written the plain way in PyMC 5: ``pm.BetaBinomial`` observed per study, sampled
with ``pm.sample`` (4 chains x 1000 draws after 1000 tuning steps). bayesreview fits the same
model (a spec with ``heterogeneity = "shared"``) through ``bayesreview.fit``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from bayesreview.report import write_text_atomic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results.json"
DOCS = ROOT / "docs" / "benchmarks.md"

SAMPLING = {"draws": 1000, "tune": 1000, "chains": 4}

SHARED_SPEC = {
    "name": "beta_binomial_shared",
    "likelihood": "beta_binomial",
    "heterogeneity": "shared",
    "priors": {
        "intercept": {"dist": "normal", "mu": 0.0, "sigma": 1.5},
        "bias": {"dist": "normal", "mu": 0.0, "sigma": 1.0},
        "log_concentration": {"dist": "normal", "mu": 2.302585, "sigma": 1.0},
    },
}


def _spec():
    from bayesreview.spec import ModelSpec

    return ModelSpec.from_dict(SHARED_SPEC)


def baseline_model(table: pd.DataFrame):
    """The plain PyMC model: BetaBinomial observed, per study."""
    import pymc as pm
    import pytensor.tensor as pt

    groups, g = np.unique(table["group"], return_inverse=True)
    levels, b = np.unique(table["design"], return_inverse=True)
    with pm.Model() as model:
        alpha = pm.Normal("alpha", 0.0, 1.5, shape=len(groups))
        beta = pm.Normal("beta", 0.0, 1.0, shape=len(levels) - 1)
        log_phi = pm.Normal("log_phi", np.log(10), 1.0)
        eta = alpha[g] + pt.concatenate([pt.zeros(1), beta])[b]
        mu = pm.math.invlogit(eta)
        phi = pt.exp(log_phi)
        pm.BetaBinomial(
            "y",
            n=table["n"].to_numpy(),
            alpha=mu * phi,
            beta=(1 - mu) * phi,
            observed=table["events"].to_numpy(),
        )
    return model


def baseline_fit(table: pd.DataFrame, seed: int, draws: int = 1000, tune: int = 1000):
    import pymc as pm

    with baseline_model(table):
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=4,
            random_seed=seed,
            progressbar=False,
            compute_convergence_checks=False,
        )


def calcinosis_table() -> pd.DataFrame:
    import bayesreview as br

    studies = br.load_dataset("calcinosis_cutis")
    events = studies["complete"] + studies["partial"]
    return pd.DataFrame(
        {
            "study": studies["study"],
            "modality": studies["group"],
            "group": studies["group"],
            "design": studies["design"],
            "n": studies["n"],
            "events": events,
        }
    )


def synthetic_table(n_studies: int, seed: int = 0) -> pd.DataFrame:
    """Studies over 6 modalities and 3 designs, n from 1 to 30, beta-binomial truth."""
    from scipy import special

    rng = np.random.default_rng(seed)
    group = rng.integers(0, 6, n_studies)
    design = rng.integers(0, 3, n_studies)
    alpha = np.linspace(-1.0, 1.5, 6)[group] + np.array([0.0, -0.4, -0.8])[design]
    mu, phi = special.expit(alpha), 8.0
    size = rng.integers(1, 31, n_studies)
    events = rng.binomial(size, rng.beta(mu * phi, (1 - mu) * phi))
    labels = np.array(["m1", "m2", "m3", "m4", "m5", "m6"])
    return pd.DataFrame(
        {
            "study": [f"s{i}" for i in range(n_studies)],
            "modality": labels[group],
            "group": labels[group],
            "design": np.array(["case_report", "case_series", "rct"])[design],
            "n": size,
            "events": events,
        }
    )


def ours_fit(table: pd.DataFrame, seed: int, **kwargs):
    import bayesreview as br

    return br.fit(
        br.read_studies(table),
        outcome="events",
        model=_spec(),
        by="group",
        bias="design",
        bias_reference="case_report",
        seed=seed,
        progressbar=False,
        **{**SAMPLING, **kwargs},
    )


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value


def converged(fit) -> bool:
    diag = fit.diagnostics()
    return bool(
        diag["r_hat"].max() <= 1.01
        and diag[["ess_bulk", "ess_tail"]].min().min() >= 400
        and fit.divergences == 0
    )


def bench_warm_fit() -> dict:
    table = calcinosis_table()
    baseline_fit(table, seed=0)  # compile and warm up
    base_time, _ = timed(baseline_fit, table, 1)
    ours_fit(table, seed=0)  # compile once
    ours_time, fit = timed(ours_fit, table, 1)
    shuffled = table.copy()
    shuffled["events"] = np.random.default_rng(5).binomial(table["n"], 0.6)
    refit_time, _ = timed(ours_fit, shuffled, 2)
    fast = timed(ours_fit, shuffled, 3, draws=500, tune=500, chains=2)[0]
    return {
        "warm_fit": {
            "ours_s": ours_time,
            "baseline_s": base_time,
            "ratio": base_time / ours_time,
            "converged": converged(fit),
            "target": ">= 4x faster",
            "met": bool(base_time / ours_time >= 4 and converged(fit)),
        },
        "refit_same_shape": {
            "ours_s": refit_time,
            "baseline_s": base_time,
            "ratio": base_time / refit_time,
            "target": "< 0.5 s",
            "met": refit_time < 0.5,
            "note": "4 chains x 1000 draws, summaries included",
        },
        "refit_same_shape_2x500": {
            "ours_s": fast,
            "baseline_s": base_time,
            "ratio": base_time / fast,
            "note": "2 chains x 500 draws after 500 tuning steps",
        },
    }


def network_trials() -> pd.DataFrame:
    """metadat's hasselblad1998 (tests/data): 50 arms of 24 smoking-cessation trials."""
    import bayesreview as br

    return br.read_studies(ROOT / "tests" / "data" / "hasselblad1998.csv")


def baseline_network_fit(trials: pd.DataFrame, seed: int):
    """The same arm-based network model written the plain way in PyMC, with ``pm.sample``."""
    import pymc as pm

    studies, study = np.unique(trials["study"], return_inverse=True)
    treatments, treatment = np.unique(trials["modality"], return_inverse=True)
    reference = list(treatments).index("no_contact")
    with pm.Model():
        d = pm.Normal("d", 0.0, 2.0, shape=len(treatments))
        m = pm.Normal("baseline_mean", 0.0, 1.5)
        sigma = pm.HalfNormal("baseline_sd", 1.5)
        tau = pm.HalfNormal("tau", 1.0)
        mu = m + sigma * pm.Normal("baseline_raw", 0.0, 1.0, shape=len(studies))
        u = tau / np.sqrt(2.0) * pm.Normal("arm_raw", 0.0, 1.0, shape=len(trials))
        effect = d[treatment] * (treatment != reference)
        pm.Binomial(
            "y", n=trials["n"].to_numpy(), logit_p=mu[study] + effect + u,
            observed=trials["events"].to_numpy(),
        )  # fmt: skip
        return pm.sample(
            **SAMPLING, random_seed=seed, progressbar=False, compute_convergence_checks=False
        )


def bench_network() -> dict:
    """The network model on hasselblad1998: a warm fit, and a refit of the same shape (other
    events), against the plain PyMC model's warm fit."""
    import bayesreview as br

    trials = network_trials()
    baseline_network_fit(trials, 0)  # compile and warm up
    base_time, _ = timed(baseline_network_fit, trials, 1)

    def ours(table, seed):
        return br.fit(
            table, model="network", outcome="events", reference="no_contact", seed=seed,
            progressbar=False, **SAMPLING,
        )  # fmt: skip

    first_time, _ = timed(ours, trials, 0)
    shuffled = trials.assign(events=np.random.default_rng(5).binomial(trials["n"], 0.15))
    refit_time, fit = timed(ours, shuffled, 2)
    return {
        "network_refit_same_shape": {
            "ours_s": refit_time,
            "baseline_s": base_time,
            "ratio": base_time / refit_time,
            "target": "< 1 s",
            "met": refit_time < 1.0,
            "note": (
                f"hasselblad1998, 50 arms; 4 chains x 1000 draws; first fit in this process "
                f"{first_time:.1f} s; divergences {fit.divergences}"
            ),
        },
    }


def bench_leave_one_out() -> dict:
    """40 refits, each leaving one study out (weight 0), 4 chains x 500 draws after 500 tuning."""
    table = calcinosis_table()
    loo = {"draws": 500, "tune": 500, "chains": 4}
    ours_fit(table, seed=0, **loo)  # compiled model available
    start = time.perf_counter()
    for j in range(len(table)):
        weights = np.ones(len(table), dtype=int)
        weights[j] = 0
        ours_fit(table, seed=j, weights=weights, **loo)
    ours = time.perf_counter() - start
    baseline_fit(table.iloc[1:], seed=0, draws=500, tune=500)  # warm
    start = time.perf_counter()
    for j in range(3):
        baseline_fit(table.drop(index=j), seed=j, draws=500, tune=500)
    base = (time.perf_counter() - start) / 3 * len(table)
    return {
        "leave_one_out_40": {
            "ours_s": ours,
            "baseline_s": base,
            "ratio": base / ours,
            "target": "< 20 s in total",
            "met": ours < 20,
            "note": "4 chains x 500 draws after 500 tuning steps per refit, summaries included; "
            "baseline extrapolated from 3 refits",
        }
    }


SCALE_SCRIPT = (
    "import sys, time; sys.path.insert(0, {here!r}); import run; "
    "table = run.synthetic_table({n}); start = time.perf_counter(); run.ours_fit(table, 0); "
    "print(time.perf_counter() - start)"
)


def bench_scale(n_studies: int) -> dict:
    """n synthetic studies: a first fit with empty compile caches, a refit, vs the baseline.

    The first fit runs in a fresh process whose compile caches are empty, so compilation is
    included in full; the refit runs in this process once the model is compiled.
    """
    table = synthetic_table(n_studies)
    with tempfile.TemporaryDirectory() as tmp:
        script = SCALE_SCRIPT.format(here=str(Path(__file__).resolve().parent), n=n_studies)
        env = _cache_env(Path(tmp))
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        cold_time = float(done.stdout.split()[-1])
    ours_fit(table, 0)  # compile here too
    ours_time, fit = timed(ours_fit, table, 1)
    draws = 100
    base_time, base = timed(baseline_fit, table, 1, draws, draws)
    per_draw = base_time / (2 * draws)
    base_full = per_draw * (SAMPLING["draws"] + SAMPLING["tune"])
    import arviz as az

    order = np.argsort(fit.groups)
    ours_alpha = fit.idata.posterior["alpha"].mean(("chain", "draw")).values[order]
    base_alpha = base.posterior["alpha"].mean(("chain", "draw")).values
    ours_se = az.mcse(fit.idata, var_names=["alpha"])["alpha"].values[order]
    base_se = az.mcse(base, var_names=["alpha"])["alpha"].values
    z = (ours_alpha - base_alpha) / np.sqrt(ours_se**2 + base_se**2)
    ratio = base_full / cold_time
    return {
        f"studies_{n_studies}": {
            "ours_s": cold_time,
            "ours_warm_s": ours_time,
            "baseline_s": base_full,
            "ratio": ratio,
            "ratio_warm": base_full / ours_time,
            "target": ">= 15x faster, same posterior",
            "met": bool(ratio >= 15 and np.abs(z).max() < 4),
            "likelihood_terms": fit.settings.get("likelihood_terms"),
            "max_abs_diff_alpha_means": float(np.abs(ours_alpha - base_alpha).max()),
            "max_abs_z_alpha_means": float(np.abs(z).max()),
            "note": f"ours: first fit in a fresh process with empty compile caches, compilation "
            f"and validation of the table included (a refit: {ours_time:.1f} s); baseline "
            f"timed with {draws} tuning + "
            f"{draws} draws and scaled to 2000 iterations; posterior means of alpha compared "
            f"in units of their Monte Carlo standard error (|z| < 4)",
        }
    }


#: Real single-arm data sets of new shapes (metadat's, in ``tests/data``): name and the column
#: pooled separately.
NEW_DATASETS: tuple[tuple[str, str], ...] = (
    ("pritz1997", "modality"),
    ("hannum2020", "objectivity"),
    ("debruin2009", "ethnicity"),
)
#: The shipped models a new user would fit, each with a plain PyMC baseline of the same model.
NEW_DATASET_MODELS: tuple[str, ...] = ("beta_binomial", "logit_normal")

NEW_DATASET_SCRIPT = (
    "import sys; sys.path.insert(0, {here!r}); import run; "
    "print(run.first_fit_of_a_new_dataset({who!r}, {name!r}, {by!r}, {model!r}))"
)


def _new_dataset(name: str, by: str) -> pd.DataFrame:
    table = pd.read_csv(ROOT / "tests" / "data" / f"{name}.csv")
    return table.assign(group=table[by])


def plain_model(table: pd.DataFrame, model: str):
    """The shipped ``model`` written the plain way in PyMC, per study, with the spec's priors:
    beta-binomial with partially pooled log phi (one log phi for one group), or the
    binomial-normal GLMM with a non-centred effect per study and tau per group."""
    import pymc as pm
    import pytensor.tensor as pt

    from bayesreview.spec import load_spec

    spec = load_spec(model)
    groups, g = np.unique(table["group"], return_inverse=True)
    n, y = table["n"].to_numpy(), table["events"].to_numpy()
    intercept = spec.prior("intercept")
    with pm.Model() as plain:
        alpha = pm.Normal(
            "alpha", intercept.param("mu"), intercept.param("sigma"), shape=len(groups)
        )
        if spec.likelihood == "beta_binomial":
            location = spec.prior("log_concentration")
            log_phi = pm.Normal("log_phi", location.param("mu"), location.param("sigma"))
            if len(groups) > 1:
                spread = pm.HalfNormal(
                    "log_phi_sd", spec.prior("log_concentration_sd").param("sigma")
                )
                z = pm.Normal("log_phi_raw", 0.0, 1.0, shape=len(groups))
                log_phi = log_phi + spread * z
            phi = pt.exp(log_phi) * pt.ones(len(groups))
            mu = pm.math.invlogit(alpha)
            pm.BetaBinomial("y", n=n, alpha=(mu * phi)[g], beta=((1 - mu) * phi)[g], observed=y)
        else:
            tau = pm.HalfNormal("tau", spec.prior("tau").param("sigma"), shape=len(groups))
            effect = pm.Normal("effect", 0.0, 1.0, shape=len(n))
            pm.Binomial("y", n=n, logit_p=alpha[g] + tau[g] * effect, observed=y)
    return plain


def first_fit_of_a_new_dataset(who: str, name: str, by: str, model: str) -> float:
    """Seconds of the first fit of data set ``name`` in a new user's first session: the bundled
    data fitted once with ``model`` (compiling it), then the new data set timed. ``who``:
    ``"ours"`` (``bayesreview.fit``) or ``"baseline"`` (:func:`plain_model`, ``pm.sample``)."""
    import bayesreview as br

    warnings.simplefilter("ignore")
    bundled = calcinosis_table()
    new = _new_dataset(name, by)
    if who == "ours":

        def run(table, seed):
            return br.fit(
                br.read_studies(table),
                outcome="events",
                model=model,
                by="group",
                seed=seed,
                progressbar=False,
                **SAMPLING,
            )

    else:
        import pymc as pm

        def run(table, seed):
            with plain_model(table, model):
                return pm.sample(
                    **SAMPLING,
                    random_seed=seed,
                    progressbar=False,
                    compute_convergence_checks=False,
                )

    run(bundled.drop(columns="design"), 0)
    start = time.perf_counter()
    run(new, 1)
    return time.perf_counter() - start


def bench_new_datasets() -> dict:
    """The first fit of each new data set with each shipped model, against plain PyMC's.

    Each (data set, model, implementation) runs in a fresh process with empty compile caches,
    as a new user's first session: one fit of the bundled data, then the new data set, timed.
    """
    here = str(Path(__file__).resolve().parent)
    rows, ratios = {}, []
    for name, by in NEW_DATASETS:
        for model in NEW_DATASET_MODELS:
            seconds = {}
            for who in ("ours", "baseline"):
                script = NEW_DATASET_SCRIPT.format(
                    here=here, who=who, name=name, by=by, model=model
                )
                with tempfile.TemporaryDirectory() as tmp:
                    done = subprocess.run(
                        [sys.executable, "-c", script],
                        env=_cache_env(Path(tmp)),
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                seconds[who] = float(done.stdout.split()[-1])
            table = _new_dataset(name, by)
            ratio = seconds["baseline"] / seconds["ours"]
            ratios.append(ratio)
            rows[f"new_dataset_{name}_{model}"] = {
                "ours_s": seconds["ours"],
                "baseline_s": seconds["baseline"],
                "ratio": ratio,
                "target": ">= 3x faster (each)",
                "met": bool(ratio >= 3),
                "note": f"{len(table)} studies by {by} ({table['group'].nunique()} groups, n up to "
                f"{table['n'].max():,}); first fit after one fit of the bundled data, empty caches",
            }
    geometric = float(np.exp(np.mean(np.log(ratios))))
    rows["new_dataset_geometric_mean"] = {
        "ours_s": float(np.exp(np.mean(np.log([r["ours_s"] for r in rows.values()])))),
        "baseline_s": float(np.exp(np.mean(np.log([r["baseline_s"] for r in rows.values()])))),
        "ratio": geometric,
        "target": ">= 5x faster",
        "met": bool(geometric >= 5),
        "note": "geometric means over the three data sets and both models",
    }
    return rows


#: Model families timed by :func:`bench_families`: name -> arguments of ``bayesreview.fit`` on
#: the bundled data (``network``: on hasselblad1998).
FAMILIES = {
    "beta_binomial": {"outcome": "any"},
    "logit_normal": {"outcome": "any", "model": "logit_normal"},
    "response": {"outcome": "response", "model": "response", "by": "group"},
    "missing_levels": {"outcome": "any", "bias": "risk_of_bias"},
    "known_totals": {"outcome": "any", "bias": "risk_of_bias", "bias_totals": "dataset"},
    "selection": {"outcome": "any", "model": "selection"},
    "network": {"outcome": "events", "model": "network", "reference": "no_contact"},
}

FAMILY_SCRIPT = (
    "import sys; sys.path.insert(0, {here!r}); import run; print(run.first_fit_of_family({name!r}))"
)


def family_table(name: str) -> pd.DataFrame:
    """Family ``name``'s own data: hasselblad1998 for the network, else the bundled table."""
    import bayesreview as br

    return network_trials() if name == "network" else br.load_dataset("calcinosis_cutis")


def fit_twice(table: pd.DataFrame, arguments: dict) -> str:
    """Seconds of ``bayesreview.fit(table, **arguments)`` (4 chains x 1000 draws), then of the
    same fit again: "first second", as the fresh-process scripts print them."""
    import bayesreview as br

    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        br.fit(table, seed=1, progressbar=False, **SAMPLING, **arguments)
        seconds.append(time.perf_counter() - start)
    return " ".join(f"{s:.6f}" for s in seconds)


def first_fit_of_family(name: str) -> str:
    """Seconds of the first fit of model family ``name`` in a new process (compiling included),
    as a new user's first call, then of the same fit again (compiled): "first second"."""
    warnings.simplefilter("ignore")
    return fit_twice(family_table(name), FAMILIES[name])


#: Fresh processes per family in :func:`bench_families`; each figure is their median. One run
#: each moved by more than 20% between sessions on the same machine.
FAMILY_REPEATS = 3


def _first_fit_in_fresh_process(name: str, script: str = FAMILY_SCRIPT) -> tuple[float, float]:
    """(first fit, compiled refit) seconds that ``script`` (:data:`FAMILY_SCRIPT`, or
    :data:`NEW_SHAPE_SCRIPT`) prints for family ``name`` in a new process whose compile
    caches are empty."""
    here = str(Path(__file__).resolve().parent)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-c", script.format(here=here, name=name)],
            env=_cache_env(Path(tmp)),
            capture_output=True,
            text=True,
            check=True,
        )
    first, compiled = map(float, done.stdout.split()[-2:])
    return first, compiled


def bench_families() -> dict:
    """The first fit of each model family in a fresh process with empty compile caches, and
    what compiling cost it (the first fit less a second, compiled one), set against the
    default beta-binomial's (the target: none compiles for longer).

    Each family runs in :data:`FAMILY_REPEATS` fresh processes, taken in rounds (every family
    once, then again) so that a drift of the machine's speed reaches all alike; the figures
    are the medians.
    """
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in FAMILIES}
    for _ in range(FAMILY_REPEATS):
        for name in FAMILIES:
            runs[name].append(_first_fit_in_fresh_process(name))
    # what compiling cost in each run: its first fit less its compiled refit
    compiling_runs = {name: [f - c for f, c in runs[name]] for name in FAMILIES}
    compiling = {name: float(np.median(compiling_runs[name])) for name in FAMILIES}
    first = {name: float(np.median([f for f, _ in runs[name]])) for name in FAMILIES}
    compiled = {name: float(np.median([c for _, c in runs[name]])) for name in FAMILIES}
    default = compiling["beta_binomial"]
    default_runs = compiling_runs["beta_binomial"]
    return {
        f"first_fit_{name}": {
            "ours_s": compiling[name],
            "baseline_s": default,
            "ratio": default / compiling[name],
            "first_fit_s": first[name],
            "compiled_fit_s": compiled[name],
            "default_first_fit_s": first["beta_binomial"],
            "compiling_runs_s": compiling_runs[name],
            "default_compiling_runs_s": default_runs,
            "target": "compiling <= the default model's (5% timing noise allowed)",
            "met": bool(compiling[name] <= default * 1.05),
            "note": f"empty compile caches, fresh process, median of {FAMILY_REPEATS} runs; "
            "seconds spent compiling (each run's first fit less its compiled refit; median "
            f"first fit {first[name]:.1f} s, median refit {compiled[name]:.1f} s; runs "
            f"{min(compiling_runs[name]):.1f} to {max(compiling_runs[name]):.1f} s); baseline: "
            f"the default beta-binomial's (runs {min(default_runs):.1f} to "
            f"{max(default_runs):.1f} s)",
        }
        for name in FAMILIES
        if name != "beta_binomial"
    }


def new_shape_table(name: str) -> tuple[pd.DataFrame, dict]:
    """A data set of another shape for family ``name`` and the ``fit`` arguments it needs:
    the family's own data (the bundled table, or hasselblad1998 for the network) less every
    third study of each group (every third trial, for the network): fewer studies, the same
    groups. With known totals, the totals of the subset: the published ones scaled to its
    number of studies (largest remainder)."""
    arguments = dict(FAMILIES[name])
    table = family_table(name)
    if name == "network":
        trials = list(dict.fromkeys(table["study"]))
        return table[table["study"].isin(trials[0::3] + trials[1::3])], arguments
    by = arguments.get("by", "modality")
    position = table.groupby(by, sort=False).cumcount()
    subset = table[position % 3 != 2]
    if arguments.get("bias_totals") == "dataset":
        published = table.attrs["metadata"]["risk_of_bias_totals"]
        share = {k: v * len(subset) / len(table) for k, v in published.items()}
        totals = {k: int(v) for k, v in share.items()}
        largest_remainders = sorted(share, key=lambda k: share[k] - totals[k], reverse=True)
        for k in largest_remainders[: len(subset) - sum(totals.values())]:
            totals[k] += 1
        arguments["bias_totals"] = totals
    return subset, arguments


def new_shape_fits(name: str) -> str:
    """In one process, as a user meets the package: a fit of family ``name``'s own data (its
    first fit, compiling), then the first fit of a data set of another shape
    (:func:`new_shape_table`) and the same fit again (compiled): "first second" seconds of
    the last two."""
    import bayesreview as br

    warnings.simplefilter("ignore")
    br.fit(family_table(name), seed=1, progressbar=False, **SAMPLING, **FAMILIES[name])
    return fit_twice(*new_shape_table(name))


NEW_SHAPE_SCRIPT = (
    "import sys; sys.path.insert(0, {here!r}); import run; print(run.new_shape_fits({name!r}))"
)


def bench_family_new_shapes() -> dict:
    """Each family on the new-data-set path: in a fresh process with empty compile caches, a
    fit of the family's own data, then the first fit of a data set of another shape
    (:func:`new_shape_fits`). What that fit spends compiling (itself less its compiled
    refit) is set against the default beta-binomial's on the same path (the target: none
    compiles for longer; a shape compiled once per family, not once per data set).
    Medians of :data:`FAMILY_REPEATS` processes, taken in rounds."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in FAMILIES}
    for _ in range(FAMILY_REPEATS):
        for name in FAMILIES:
            runs[name].append(_first_fit_in_fresh_process(name, NEW_SHAPE_SCRIPT))
    compiling = {n: [f - c for f, c in r] for n, r in runs.items()}
    median = {n: float(np.median(c)) for n, c in compiling.items()}
    default = median["beta_binomial"]
    rows = {}
    for name in FAMILIES:
        first = float(np.median([f for f, _ in runs[name]]))
        compiled = float(np.median([c for _, c in runs[name]]))
        subset, _ = new_shape_table(name)
        rows[f"new_shape_{name}"] = {
            "ours_s": median[name],
            "baseline_s": default,
            "ratio": None,
            "first_fit_s": first,
            "compiled_fit_s": compiled,
            "compiling_runs_s": compiling[name],
            "target": "compiling <= the default model's (+0.5 s timing noise)",
            "met": bool(median[name] <= default + NEW_SHAPE_NOISE_S),
            "note": f"{len(subset)} rows, after a fit of the family's own data in the same "
            f"process (empty caches before it); seconds compiling (the first fit of the new "
            f"shape, median {first:.2f} s, less its compiled refit, median {compiled:.2f} s; "
            f"runs {min(compiling[name]):.2f} to {max(compiling[name]):.2f} s)",
        }
    return rows


#: Timing noise allowed by :func:`bench_family_new_shapes`: two fits of a few seconds each
#: differ by a few tenths of a second from run to run.
NEW_SHAPE_NOISE_S = 0.5


BASELINE_SCRIPT = (
    "import sys; sys.path.insert(0, {here!r}); import run; "
    "run.baseline_fit(run.calcinosis_table(), seed=1)"
)


def _cache_env(cache: Path) -> dict[str, str]:
    """The environment with every compile cache under ``cache``: numba's own, and PyTensor's
    C modules and numba code (both under its base_compiledir)."""
    return {
        **os.environ,
        "NUMBA_CACHE_DIR": str(cache / "numba"),
        "PYTENSOR_FLAGS": f"base_compiledir={cache / 'pytensor'}",
    }


def _whole_process(argv: list[str], cache: Path) -> tuple[float, int]:
    """Wall time and exit code of a process whose compile caches all live under ``cache``."""
    env = _cache_env(cache)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode


#: The ``bayesreview analyze`` runs timed by :func:`bench_cli`: name -> extra arguments
ANALYZE_RUNS = {
    "analyze_whole_process": [],
    "analyze_one_fit_whole_process": ["--no-bias-analyses"],
}


def bench_cli() -> dict:
    """``bayesreview analyze`` on the bundled data as a whole process, cold then warm: as
    shipped (the joint response model, then refits with the design, the published
    risk-of-bias totals and publication selection), and with ``--no-bias-analyses`` (the one
    fit that ``analyze`` was before its Bias section).

    Cold: every compile cache empty. Warm: the caches the cold run left. The baseline is a
    process fitting the plain PyMC model (no tables, figures or report), timed the same way,
    once for both.
    """
    baseline = [
        sys.executable,
        "-c",
        BASELINE_SCRIPT.format(here=str(Path(__file__).resolve().parent)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        # the baseline, cold then warm, once for both runs of analyze
        plain = {
            f"baseline_{label}": _whole_process(baseline, Path(tmp)) for label in ("cold", "warm")
        }
    results = {}
    for name, extra in ANALYZE_RUNS.items():
        out = dict(plain)
        with tempfile.TemporaryDirectory() as tmp:
            for label in ("cold", "warm"):
                analyze = [sys.executable, "-m", "bayesreview", "analyze", "--seed", "1", *extra]
                out[label] = _whole_process([*analyze, "--out", str(Path(tmp) / label)], Path(tmp))
        codes = [out[k][1] for k in ("cold", "warm", "baseline_cold", "baseline_warm")]
        cold, warm = out["cold"][0], out["warm"][0]
        results[name] = {
            "cold_s": cold,
            "warm_s": warm,
            "baseline_cold_s": out["baseline_cold"][0],
            "baseline_warm_s": out["baseline_warm"][0],
            "exit_codes": codes,
            "target": "< 20 s cold, < 10 s warm",
            "met": bool(cold < 20 and warm < 10 and not any(codes)),
            "note": f"bayesreview analyze {' '.join(extra)}".rstrip()
            + ": fit"
            + ("" if extra else ", three bias refits")
            + ", tables, forest plots (PNG, SVG, PDF), fit.nc and report.html; baseline: the "
            "plain PyMC fit alone",
        }
    return results


def machine() -> dict:
    packages = {}
    for name in ("bayesreview", "pymc", "pytensor", "nutpie", "arviz", "numpy", "numba", "dask"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "packages": packages,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def code_revision() -> str:
    """The git commit benchmarked, with ``+changes`` when the work tree differs from it."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


NOTES = """
## Reading the table

- The baseline is `pm.sample` with its defaults. On a 2-CPU machine PyMC samples the four
  chains one after another (it counts half of the CPUs as hyperthreads); nutpie runs them on
  both cores.
- "Cold" means every compile cache empty (PyTensor's `base_compiledir`, numba's cache), as
  on the first run after installing; "warm" reuses what the cold run stored.
- `studies_100000` compares posterior means of the group intercepts in units of their Monte
  Carlo standard error: the same posterior, up to Monte Carlo error.
- `new_dataset_*`: a new user's first session, each in a fresh process with empty compile
  caches: one fit of the bundled data with the shipped model (`beta_binomial` or
  `logit_normal`), then the first fit of a real data set of another shape (metadat's
  pritz1997, hannum2020 by objectivity, debruin2009 by ethnicity; `tests/data`), timed. The
  baseline is the same model written the plain way in PyMC (`plain_model`), timed the same way
  after its own fit of the bundled data.
- `first_fit_*` and `new_shape_*` read the target "none compiles for longer than the default
  model" in its two ways. `first_fit_*`: each family's very first fit, with empty caches,
  against the default model's. `new_shape_*`: each family on the new-data-set path, in a
  fresh process with empty caches: a fit of the family's own data, then the first fit of a
  data set of another shape (the same data less every third study of each group, or of the
  network's trials; known totals scaled to it), less the same fit compiled. Its baseline is
  the default model's on the same path.

## Where the speed comes from

- **One compiled model per model family and data structure, not per data shape.** The model
  reads the number of studies, cells and terms at run time, and the groups are padded to a
  power of two (at least 8) with prior-only groups, whose parameters are dropped after
  sampling; whether heterogeneity is pooled and which group anchors the pooled location are
  data too. A new data set of up to 8 groups, any number of studies and any denominators
  reuses the model compiled for the bundled data (`new_dataset_*`): in the same process, or
  through the disk cache in the next.
- The network model is padded likewise: arms (and, to as many, studies) to a power of two
  (at least 16), log odds ratios to a power of two (at least 4), with arms of no patients,
  studies without arms and columns of zeros in the design, dropped after sampling
  (`new_shape_network`). Its sampler's target is the binomial log-likelihood without the
  log binomial coefficients, which are constant: no log Gamma at every step.
- The likelihoods are PyTensor Ops on numba kernels, each giving the log-likelihood and its
  gradient in one call: per study (`bayesreview.backend.ops.BetaBinomialRows`, and
  `LogitNormalRows` with each study's effect integrated out) below 256 studies, and for
  larger data sets the beta-binomial from sufficient counts
  (`bayesreview.backend.ops.TabulatedBetaBinomial`, [models](models.md)), whose cost depends
  on the cells and their largest n, not on the number of studies (`studies_100000`).
- Each likelihood kernel is compiled for one type of inputs: the Ops hand it C-contiguous,
  writable copies of their inputs, where PyTensor passes strided views in some graphs and
  read-only constants in others (each variant compiled the whole kernel again: three times
  on a first fit of the joint response model).
- A study is left out with weight 0, so leave-one-out refits and sensitivity grids reuse the
  compiled model too.
- The known-totals recursion follows a table of its states and their successors, tabulated
  with numpy once per data set and held by the model as data
  (`bayesreview.known_totals.packed_states`), rather than building the states at every
  evaluation (about 60 instead of 110 µs per evaluation for the bundled totals); the state
  counting is not compiled into the likelihood kernel that every model links.
- nutpie samples the chains in parallel threads with no Python in the loop, at target
  acceptance 0.9.
- nutpie's C callbacks are compiled so that numba can cache them on disk
  (`bayesreview.backend.nutpie_cache`): a new process loads the compiled model in well under a
  second, where nutpie's own callbacks are compiled again in every process. The callbacks
  are used only with the nutpie, PyTensor and numba versions they were tested against, and
  only after their log density and gradient have matched PyTensor's at test points;
  otherwise the package warns (`BackendFallbackWarning`) and nutpie compiles the model itself.
- The logit-normal's per-study log-likelihood of every draw (for PSIS-LOO) is computed by the
  sampler's compiled kernel rather than by numpy.
- `bayesreview analyze` embeds the SVG it has just written in the report instead of drawing
  another PNG and finds each figure's tight bounding box once for its three formats. Nothing
  forks (a fork after numba, LLVM and nutpie's threads have started is unsafe), and the
  process exits normally, running the interpreter's teardown.

## What a first run spends

On a machine whose caches are empty, the first fit of each model family compiles its
likelihood kernel (numba, stored on disk) and the model's PyTensor functions and callbacks;
the kernel is compiled once per machine, the model once per structure. `first_fit_*` gives
what compiling costs each family (its first fit in a fresh process less a compiled refit in
the same process; the note gives both) against the default model's, since the families
differ in how long they sample (the known-totals recursion most).

Where a first compile goes: numba compiles a function that calls another jitted one by
linking the callee's code into the caller's and generating machine code for the whole, so
the rows kernel is compiled again inside each function that calls it (the Op's node,
PyTensor's log-density and nutpie's callback), and the graph around the kernel (the priors,
transforms and their gradients, one small numba function per node) costs as much again; a
family with more parameters has a larger graph. Measured and not taken:

- a lower LLVM optimisation level (`NUMBA_OPT=1` saved about 1 s; `0` disables caching);
- calling the log-density from Python through `nutpie.from_pyfunc` (no callback to
  compile, but sampling took 4.5 s instead of 1 s);
- the rows kernel behind a C symbol (a `numba.cfunc` cached on disk, registered with
  `llvmlite.binding.add_symbol` and called through `numba.types.ExternalFunction`), so that
  its callers hold a declaration only. Measured twice (12-06 and 12-07), with the same
  result: the three linkings it saves (about 5 s of a 43 s first default fit on this
  machine, 12-07) are spent on the entry point's own compile and on passing the arrays
  through it (first default fit 44.8 s against 42.8 s, one run each). It gains about 2 s
  per later structure in one process, nothing on a first fit;
- running `analyze`'s three bias refits in spawned worker processes while the main fit
  runs and its results are written. On 2 CPUs it gained nothing warm (51.4 s one after
  another, 52.3 s in workers: nutpie's threads already keep both CPUs busy, and each worker
  imports PyMC again) and 11% cold (149 to 133 s: every process compiles the shared kernels
  itself);
- stacking the joint response model's two stages into one parameter of each kind (a
  (2, G) intercept instead of `alpha` and `alpha_cond`, and likewise for the log
  concentrations and their pooling): building and compiling the model with empty caches
  took 47.1 s against 47.7 s (12-07, one run each). Fewer nodes, the same kinds of node,
  and numba compiles each kind of node function once per process;
- static shapes for the group-sized data containers, which takes the `SpecifyShape`
  checks (2.1 to 2.8 s to compile the first, 12-07) out of every family's graph: the
  default model's log-density then compiled in 29.1 s against 27.7 s, the time moving to
  the rows node (12.8 to 16.0 s).

Where the families' compile differs (12-07, empty caches, one first fit each; numba's
compile time of the log-density function, and of the node functions inside it): the
default model 27.7 s (the rows node with its kernel 12.8 s, elementwise nodes 4.7 s); the
joint response model 32.5 s (rows node 14.6 s: its two stages are packed by functions
compiled for tuples of two; elementwise nodes 5.2 s); missing levels 35.1 s (rows node
11.0 s, elementwise 5.6 s, and the two simplex Ops 5.3 s); selection 30.2 s (elementwise
5.8 s). Each family's excess is a few seconds spread over the kinds of node its graph has
and the default's lacks, which is what the one-Op route below removes.

Since then (12-07, numba's compile events on a first fit with empty caches) the helpers
that packed the stages and mapped the simplex are loops: numba took seconds to compile an
array slice assignment or reduction (`w[:-1] = z` and `w.max()` in the simplex map 5.6 s,
`out[s] = rows[s]` in `stage_rows` 1.9 s) and a fraction of a second for the same loop. The
simplex nodes now compile in 1.3 s (were 5.1 s) and `stage_rows` no longer shows in any
family's list. The missing-level family's remaining excess (about 4 s) is spread over the
nodes of its larger graph (shape checks, joins, gathers, elementwise), as is the selection
family's.

What would compile once per family and machine (prototyped on 12-06 for the default model,
not landed): the whole log-density as one Op on a hand-written kernel, its priors and
transforms from the specification as data, so that every family's PyTensor graph is the
same handful of nodes, with the kernel behind a C symbol. The prototype's graph around its
kernel took 0.34 s warm per structure against about 1.2 s, and 3.6 s cold with the kernel
kept out of it.
"""


def _run_dates(rows: dict) -> list[str]:
    """A line saying that the rows were run at different times (``--only``), if they were."""
    dates = sorted({row["run"] for row in rows.values() if "run" in row})
    if len(dates) < 2:
        return []
    return [
        "",
        f"Rows were run between {dates[0]} and {dates[-1]} (`--only` reruns some): each "
        "row's note gives its run and the code it measured.",
    ]


def write_docs(results: dict) -> None:
    machine = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python benchmarks/run.py` (results in `benchmarks/results.json`). "
        "Each figure is set against a plain PyMC 5 baseline of the same model run in "
        "the same session on the same machine; ratio > 1 means bayesreview is faster.",
        "",
        f"Machine: {machine['cpus']} CPUs, {machine['platform']}, "
        f"Python {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
        + f"; run {machine['date']}.",
        *_run_dates(results["benchmarks"]),
        "",
        "| benchmark | bayesreview (s) | baseline (s) | ratio | target | met | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in results["benchmarks"].items():
        ours, base, ratio = row.get("ours_s"), row.get("baseline_s"), row.get("ratio")
        note = row.get("note", "")
        if "converged" in row:
            note = f"converged: {row['converged']}. {note}"
        if "max_abs_z_alpha_means" in row:
            note += (
                f" Largest difference of the posterior means of alpha: "
                f"{row['max_abs_diff_alpha_means']:.3f} ({row['max_abs_z_alpha_means']:.1f} "
                "Monte Carlo SE)."
            )
        if name in ANALYZE_RUNS:
            note = (
                f"cold {row['cold_s']:.1f} s (baseline {row['baseline_cold_s']:.1f} s), "
                f"warm {row['warm_s']:.1f} s (baseline {row['baseline_warm_s']:.1f} s). {note}"
            )
            ours, base = row["warm_s"], row["baseline_warm_s"]
            ratio = base / ours
        if "run" in row:
            note = f"{note.rstrip()} (run {row['run']}, code {row['code']})".strip()
        met = {True: "yes", False: "**no**", None: ""}[row.get("met")]
        lines.append(
            f"| {name} | {ours:.2f} | {base:.2f} | "
            f"{'' if ratio is None else f'{ratio:.1f}x'} | {row.get('target', '')} | {met} | "
            f"{note} |"
        )
    write_text_atomic(DOCS, "\n".join(lines) + "\n" + NOTES)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke test")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    benches = {
        "warm": bench_warm_fit,
        "loo": bench_leave_one_out,
        "scale": lambda: bench_scale(10_000 if args.quick else 100_000),
        "cli": bench_cli,
        "new": bench_new_datasets,
        "network": bench_network,
        "families": bench_families,
        "shapes": bench_family_new_shapes,
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"benchmarks": {}}
    for row in results["benchmarks"].values():  # rows from before runs were stamped
        row.setdefault("run", results["machine"]["date"])
        row.setdefault("code", "not recorded")
    for name, bench in benches.items():
        if args.only and name not in args.only:
            continue
        print(f"running {name} ...", flush=True)
        stamp = {"run": time.strftime("%Y-%m-%d %H:%M"), "code": code_revision()}
        results["benchmarks"].update({k: {**row, **stamp} for k, row in bench().items()})
    results["machine"] = machine()
    write_text_atomic(RESULTS, json.dumps(results, indent=2))
    write_docs(results)
    print(json.dumps(results["benchmarks"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
