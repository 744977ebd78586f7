"""Validation by simulation: a resumable replicate runner and simulation-based calibration.

:func:`run_replicates` runs ``job(seed)`` for many seeds, in parallel over local processes or
on a ``dask.distributed`` cluster, and writes each finished replicate to its own small JSON
file, so that a crash loses no finished replicate and a rerun does only the missing seeds.

Simulation-based calibration (SBC; Talts et al. 2018, arXiv:1804.06788; Modrák et al. 2023,
Bayesian Analysis, doi:10.1214/23-BA1404) checks the model code and the sampler together: draw
the parameters from the prior, simulate data from them, fit, and record the rank of each true
value among L posterior draws. If the fit is right, every rank is uniform on ``0, ..., L``.
:func:`sbc_replicate` does one replicate at the calcinosis-cutis design (the real number of
patients of every study, its group and its study design), :func:`sbc_uniformity` tests the
ranks for uniformity and :func:`sbc_plot` draws their ECDF differences with simultaneous
bands (Säilynoja, Bürkner & Vehtari 2022, Statistics and Computing 32:32).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import integrate, special, stats

from bayesreview.errors import BayesReviewError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bayesreview.design import ModelData
    from bayesreview.spec import ModelSpec

__all__ = [
    "RANK_PREFIX",
    "ReplicateError",
    "read_replicates",
    "run_replicates",
    "sbc_design",
    "sbc_ecdf_band",
    "sbc_plot",
    "sbc_replicate",
    "sbc_uniformity",
    "simulate_from_prior",
]

#: Columns of a replicate's result that hold SBC ranks start with this prefix.
RANK_PREFIX = "rank:"

# ---------------------------------------------------------------------------------------------
# The replicate runner
# ---------------------------------------------------------------------------------------------


class ReplicateError(BayesReviewError):
    """Some replicates failed; the others were saved.

    Attributes
    ----------
    failures : dict of int to str
        The traceback of each failed seed.
    """

    def __init__(self, failures: Mapping[int, str], out_dir: Path) -> None:
        self.failures = dict(sorted(failures.items()))
        lines = [
            f"{len(self.failures)} replicate(s) failed; the finished ones are saved in "
            f"{out_dir} and a rerun retries only the missing seeds:"
        ]
        for seed, text in list(self.failures.items())[:10]:
            last = text.strip().splitlines()[-1] if text.strip() else "unknown error"
            lines.append(f"  - seed {seed}: {last}")
        if len(self.failures) > 10:
            lines.append(f"  ... and {len(self.failures) - 10} more")
        super().__init__("\n".join(lines))


def _result_path(out_dir: Path, seed: int) -> Path:
    return out_dir / f"seed-{seed}.json"


def _jsonable(value: Any) -> Any:
    """JSON fallback for numpy scalars and arrays."""
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _write_atomic(path: Path, record: Mapping[str, Any]) -> None:
    """Write ``record`` as JSON to ``path``: a temporary file in the same folder, then a rename."""
    text = json.dumps(record, default=_jsonable, sort_keys=False)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a result file is not
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _read_result(path: Path) -> dict | None:
    """A saved replicate, or None when the file is missing or unreadable (then it is rerun)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _call(job: Callable[[int], Mapping[str, Any]], seed: int) -> tuple[bool, Any]:
    """Run one replicate; never raises: (True, result) or (False, traceback text)."""
    try:
        result = job(seed)
        if not isinstance(result, Mapping):
            raise TypeError(f"job({seed}) returned {type(result).__name__}, not a dict")
        # fail here, in the worker, if the result cannot be saved
        json.dumps(dict(result), default=_jsonable)
        return True, dict(result)
    except Exception:  # every failure is reported with its seed
        return False, traceback.format_exc()


def _checked_seeds(seeds: Iterable[int]) -> list[int]:
    checked = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise BayesReviewError(f"seeds: every seed must be a whole number >= 0, got {seed!r}")
        checked.append(int(seed))
    duplicated = sorted({s for s in checked if checked.count(s) > 1})
    if duplicated:
        raise BayesReviewError(f"seeds: duplicated seed(s) {duplicated[:10]}")
    return checked


def run_replicates(
    job: Callable[[int], Mapping[str, Any]],
    seeds: Iterable[int],
    out_dir: str | os.PathLike,
    n_jobs: int | None = None,
    client: Any = None,
    errors: str = "raise",
) -> pd.DataFrame:
    """Run ``job(seed)`` for every seed not done yet, saving each result as it finishes.

    Each finished replicate is written to ``out_dir/seed-<seed>.json`` (a temporary file, then
    an atomic rename), so a crash loses no finished replicate, and a rerun with the same
    ``out_dir`` skips the seeds whose file exists: the run is resumable and can be extended by
    passing more seeds.

    Parameters
    ----------
    job
        A function of one integer seed returning a dict of JSON-serialisable results (numbers,
        strings, lists; numpy scalars are converted). For processes and clusters it must be
        picklable: a module-level function or a ``functools.partial`` of one.
    seeds
        Distinct whole numbers >= 0; each is saved under its own file and passed to ``job``.
    out_dir
        Folder of the result files; created if needed.
    n_jobs
        Local worker processes (``concurrent.futures.ProcessPoolExecutor``); default
        ``os.cpu_count()``. ``1`` runs in this process, one seed after another.
    client
        A ``dask.distributed.Client``: the replicates are submitted to its cluster instead
        (``client.map``, collected with ``as_completed``); ``n_jobs`` is then ignored. Results
        come back to this process, which writes the files, so workers need no shared disk.
    errors
        ``"raise"`` (default): after every other replicate has finished and been saved, raise
        :class:`ReplicateError` naming each failed seed with its error. ``"ignore"``: return
        the finished replicates only; the failures are in ``result.attrs["failures"]``.

    Returns
    -------
    pandas.DataFrame
        One row per requested seed that has a result (this run's and earlier runs'), sorted
        by seed: a ``seed`` column and one column per key of the job's dict. ``attrs`` holds
        ``ran`` (seeds run now), ``skipped`` (seeds already done) and ``failures``.

    Raises
    ------
    ReplicateError
        When ``errors="raise"`` and some replicate raised (or returned something that is not a
        JSON-serialisable dict).
    BayesReviewError
        When the seeds or arguments are invalid.
    """
    if errors not in ("raise", "ignore"):
        raise BayesReviewError(f"errors={errors!r}: must be 'raise' or 'ignore'")
    seeds = _checked_seeds(seeds)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = {s for s in seeds if _read_result(_result_path(out_dir, s)) is not None}
    todo = [s for s in seeds if s not in done]
    failures: dict[int, str] = {}

    def save(seed: int, ok: bool, value: Any) -> None:
        if ok:
            _write_atomic(_result_path(out_dir, seed), {"seed": seed, **value})
        else:
            failures[seed] = value

    if todo:
        if client is not None:
            _run_on_client(client, job, todo, save)
        else:
            n_jobs = (os.cpu_count() or 1) if n_jobs is None else n_jobs
            if not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
                raise BayesReviewError(f"n_jobs={n_jobs!r}: must be a whole number >= 1")
            if n_jobs == 1 or len(todo) == 1:
                for seed in todo:
                    save(seed, *_call(job, seed))
            else:
                _run_in_processes(job, todo, min(int(n_jobs), len(todo)), save)

    table = read_replicates(out_dir, seeds)
    table.attrs.update(ran=todo, skipped=sorted(done), failures=dict(failures))
    if failures and errors == "raise":
        raise ReplicateError(failures, out_dir)
    return table


def _run_in_processes(job, seeds: list[int], n_jobs: int, save) -> None:
    with ProcessPoolExecutor(max_workers=n_jobs) as pool:
        futures = {pool.submit(_call, job, seed): seed for seed in seeds}
        for future in as_completed(futures):
            seed = futures[future]
            try:
                ok, value = future.result()
            except Exception:  # a worker died or the job could not be pickled
                ok, value = False, traceback.format_exc()
            save(seed, ok, value)


def _run_on_client(client, job, seeds: list[int], save) -> None:
    from distributed import as_completed as dask_as_completed

    futures = client.map(_call, [job] * len(seeds), seeds, pure=False)
    seed_of = {future.key: seed for future, seed in zip(futures, seeds, strict=True)}
    for future in dask_as_completed(futures):
        seed = seed_of[future.key]
        try:
            ok, value = future.result()
        except Exception:  # a worker died or the job could not be pickled
            ok, value = False, traceback.format_exc()
        save(seed, ok, value)
        future.release()


def read_replicates(out_dir: str | os.PathLike, seeds: Iterable[int] | None = None) -> pd.DataFrame:
    """The replicates saved in ``out_dir`` by :func:`run_replicates`, one row each, by seed.

    Parameters
    ----------
    out_dir
        The runner's output folder.
    seeds
        Only these seeds (those without a result are left out); default every saved seed.
    """
    out_dir = Path(out_dir)
    if seeds is None:
        paths = sorted(out_dir.glob("seed-*.json"))
    else:
        paths = [_result_path(out_dir, s) for s in seeds]
    records = [r for r in map(_read_result, paths) if r is not None]
    if not records:
        return pd.DataFrame({"seed": pd.Series([], dtype=np.int64)})
    return pd.DataFrame(records).sort_values("seed", kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Simulation from the prior at a real design
# ---------------------------------------------------------------------------------------------


def sbc_design(
    studies: pd.DataFrame | None = None, by: str = "group", bias: str | None = None
) -> ModelData:
    """The design that SBC simulates at: per study its patients, group and bias level.

    Parameters
    ----------
    studies
        A study table; default the bundled ``calcinosis_cutis`` data (40 studies, 136 patients).
    by
        Grouping column; default ``"group"`` (6 groups: the lasers pooled, as in the review's
        Table 2).
    bias
        Optional categorical covariate column, e.g. ``"design"`` (reference level: the most
        common, ``case_report``). Default None.

    Returns
    -------
    ModelData
        The arrays of outcome ``"any"``; the events are the real ones and are replaced by
        simulated counts in :func:`sbc_replicate`.
    """
    from bayesreview.data import load_dataset
    from bayesreview.design import model_data

    if studies is None:
        studies = load_dataset("calcinosis_cutis")
    return model_data(studies, "any", by=by, bias=bias)


def _draw(prior, size, rng: np.random.Generator) -> np.ndarray:
    """Draws of a prior by inverting its CDF (independent of PyMC)."""
    return np.asarray(prior.quantile(rng.uniform(size=size)), dtype=float)


def _log_scale(spec: ModelSpec, keys: tuple[str, str], name: str, n_groups: int, rng) -> dict:
    """True heterogeneity parameters on the log scale, named as in the PyMC model."""
    if spec.heterogeneity == "partial_pooling":
        centre = float(_draw(spec.prior(keys[0]), None, rng))
        spread = float(_draw(spec.prior(keys[1]), None, rng))
        z = rng.standard_normal(n_groups)
        return {name: centre, f"{name}_sd": spread, "_log_scale": centre + spread * z}
    if spec.heterogeneity == "per_modality":
        values = _draw(spec.prior(keys[0]), n_groups, rng)
        return {name: values, "_log_scale": values}
    shared = float(_draw(spec.prior(keys[0]), None, rng))
    return {name: shared, "_log_scale": np.full(n_groups, shared)}


def _logit_normal_mean(alpha: float, tau: float) -> float:
    """E[invlogit(alpha + tau z)], z ~ Normal(0, 1), by adaptive quadrature."""
    if tau == 0:
        return float(special.expit(alpha))
    value, _ = integrate.quad(
        lambda z: special.expit(alpha + tau * z) * stats.norm.pdf(z), -np.inf, np.inf
    )
    return float(value)


def simulate_from_prior(
    spec: ModelSpec, design: ModelData, rng: np.random.Generator
) -> tuple[dict[str, Any], np.ndarray]:
    """Draw every parameter from the prior of ``spec`` and events at ``design``.

    Written with numpy and the priors' quantile functions, independently of the PyMC model
    code it serves to check.

    Returns
    -------
    (truth, events)
        ``truth`` maps the model's parameter names (``alpha`` per group, ``beta`` per
        non-reference bias level, ``log_phi``/``log_phi_sd``/``phi`` or ``tau``/``log_tau``/
        ``log_tau_sd``/``tau_shared``, as the heterogeneity has them) to true values, and
        ``rate`` to each group's true population mean rate at the reference level:
        invlogit(alpha) for the beta-binomial, E[invlogit(alpha + tau z)] for the
        logit-normal. ``events`` are the simulated counts, one per study.
    """
    groups, g = design.n_groups, design.group_idx
    truth: dict[str, Any] = {"alpha": _draw(spec.prior("intercept"), groups, rng)}
    eta = truth["alpha"][g].copy()
    if design.bias is not None:
        if design.bias.kind != "categorical" or design.bias.n_missing:
            raise BayesReviewError(
                "SBC simulates a categorical bias covariate with every level known"
            )
        truth["beta"] = _draw(spec.prior("bias"), len(design.bias.levels) - 1, rng)
        eta += np.concatenate([[0.0], truth["beta"]])[design.bias.codes]
    n = design.trials
    if spec.likelihood == "beta_binomial":
        scale = _log_scale(
            spec, ("log_concentration", "log_concentration_sd"), "log_phi", groups, rng
        )
        phi = np.exp(scale.pop("_log_scale"))
        truth.update(scale, phi=phi)
        tiny = np.finfo(float).tiny
        a = np.maximum(phi[g] * special.expit(eta), tiny)
        b = np.maximum(phi[g] * special.expit(-eta), tiny)
        p = rng.beta(a, b)
        truth["rate"] = special.expit(truth["alpha"])
    else:
        if spec.heterogeneity == "partial_pooling":
            scale = _log_scale(spec, ("log_tau", "log_tau_sd"), "log_tau", groups, rng)
            tau = np.exp(scale.pop("_log_scale"))
            truth.update(scale, tau=tau)
        elif spec.heterogeneity == "per_modality":
            tau = _draw(spec.prior("tau"), groups, rng)
            truth["tau"] = tau
        else:
            shared = float(_draw(spec.prior("tau"), None, rng))
            tau = np.full(groups, shared)
            truth.update(tau_shared=shared, tau=tau)
        p = special.expit(eta + tau[g] * rng.standard_normal(len(n)))
        truth["rate"] = np.array(
            [_logit_normal_mean(a, t) for a, t in zip(truth["alpha"], tau, strict=True)]
        )
    events = rng.binomial(n, np.clip(p, 0.0, 1.0)).astype(np.int64)
    return truth, events


# ---------------------------------------------------------------------------------------------
# One SBC replicate
# ---------------------------------------------------------------------------------------------

_RANKED = (
    "alpha",
    "beta",
    "log_phi",
    "log_phi_sd",
    "phi",
    "log_tau",
    "log_tau_sd",
    "tau_shared",
    "tau",
)


def _fit(
    design: ModelData,
    events: np.ndarray,
    spec: ModelSpec,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
):
    """Fit the simulated events with :func:`bayesreview.fit`, as a user would.

    The study table holds the design's groups, bias levels and patients with the simulated
    ``events``. ``fit`` collapses identical beta-binomial studies and pads the rows to a power
    of two, so the data sets of every replicate share one compiled model per process.
    """
    import warnings

    from bayesreview.fitting import fit

    table = pd.DataFrame(
        {
            "study": [f"study {i + 1}" for i in range(design.n_rows)],
            "modality": [design.groups[g] for g in design.group_idx],
            "n": design.trials,
            "events": events,
        }
    )
    bias_kwargs: dict[str, Any] = {}
    if design.bias is not None:
        table["design"] = [design.bias.levels[c] for c in design.bias.codes]
        bias_kwargs = {"bias": "design", "bias_reference": design.bias.levels[0]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is recorded, not warned about, here
        result = fit(
            table,
            outcome="events",
            model=spec,
            by="modality",
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progressbar=False,
            **bias_kwargs,
        )
    if result.groups != design.groups or (
        design.bias is not None and result.data.bias.levels != design.bias.levels
    ):
        raise BayesReviewError("sbc_replicate: the fit's groups or levels differ from the design")
    return result


def _rank(draws: np.ndarray, truth: float, rng: np.random.Generator) -> int:
    """Number of draws below ``truth``; ties (rare) broken at random."""
    below = int(np.sum(draws < truth))
    ties = int(np.sum(draws == truth))
    return below + (int(rng.integers(0, ties + 1)) if ties else 0)


def sbc_replicate(
    seed: int,
    model: str | os.PathLike | ModelSpec = "beta_binomial",
    bias: bool = False,
    draws: int = 500,
    tune: int = 500,
    thin: int = 10,
    chains: int = 2,
    fit_model: str | os.PathLike | ModelSpec | None = None,
) -> dict[str, Any]:
    """One SBC replicate at the calcinosis-cutis design (see :func:`sbc_design`, by group).

    Draws the parameters from the prior of ``model``, simulates every study's events (its real
    number of patients), fits ``fit_model`` to them, and ranks each true value among
    ``L = chains * ceil(draws / thin)`` thinned posterior draws.

    Parameters
    ----------
    seed
        Seeds the simulation and the sampler.
    model
        Specification simulated from (and fitted, unless ``fit_model`` is given); default the
        shipped ``"beta_binomial"``. A joint response model is not supported.
    bias
        Use the study design (``case_report``, ``case_series``, ``rct``) as a categorical bias
        covariate, reference ``case_report``; default False.
    draws, tune, chains
        Posterior draws per chain (default 500), tuning steps (500) and chains (2).
    thin
        Keep every ``thin``-th draw of each chain (default 10), reducing autocorrelation so
        that the ranks are close to those of independent draws.
    fit_model
        Specification fitted; default ``model``. Give a different one to see miscalibration.

    Returns
    -------
    dict
        ``seed``, ``L``, ``divergences``, ``max_rhat`` (largest R-hat of the fit's parameters)
        and, for each quantity, ``"rank:<name>[<label>]"``: an integer in ``0..L``.
        Quantities: ``alpha``, ``beta``, the heterogeneity parameters and ``rate`` (the
        population mean rate at the reference level).
    """
    from bayesreview.spec import load_spec

    sim_spec = load_spec(model)
    fit_spec = sim_spec if fit_model is None else load_spec(fit_model)
    if sim_spec.outcome == "response" or fit_spec.outcome == "response":
        raise BayesReviewError("sbc_replicate: the joint response model is not supported")
    if sim_spec.likelihood != fit_spec.likelihood:
        raise BayesReviewError("sbc_replicate: model and fit_model must share the likelihood")
    design = sbc_design(bias="design" if bias else None)
    rng = np.random.default_rng([seed, 0])
    truth, events = simulate_from_prior(sim_spec, design, rng)

    fitted = _fit(design, events, fit_spec, draws, tune, chains, seed)
    posterior = fitted.idata.posterior.isel(draw=slice(None, None, thin))
    posterior["rate"] = posterior["rate"].isel(outcome=0)
    flat = {
        name: array.values.reshape((-1, *array.shape[2:]))
        for name, array in posterior.data_vars.items()
        if name in (*_RANKED, "rate")
    }
    draws_kept = posterior.sizes["chain"] * posterior.sizes["draw"]

    labels = {"alpha": design.groups, "phi": design.groups, "tau": design.groups}
    labels["rate"] = design.groups
    labels["log_phi"] = labels["log_tau"] = design.groups  # used when given per group
    if design.bias is not None:
        labels["beta"] = design.bias.levels[1:]
    result: dict[str, Any] = {"seed": int(seed), "L": int(draws_kept)}
    for name in (*_RANKED, "rate"):
        if name not in truth or name not in flat:
            continue
        true = np.atleast_1d(np.asarray(truth[name], dtype=float))
        post = flat[name].reshape(draws_kept, -1)
        if true.size == 1:
            result[f"{RANK_PREFIX}{name}"] = _rank(post[:, 0], float(true[0]), rng)
            continue
        for i, label in enumerate(labels[name]):
            result[f"{RANK_PREFIX}{name}[{label}]"] = _rank(post[:, i], float(true[i]), rng)
    result["divergences"] = fitted.divergences
    result["max_rhat"] = float(fitted.diagnostics()["r_hat"].max())
    return result


# ---------------------------------------------------------------------------------------------
# Uniformity of the ranks
# ---------------------------------------------------------------------------------------------


def _rank_columns(ranks: pd.DataFrame) -> list[str]:
    columns = [c for c in ranks.columns if str(c).startswith(RANK_PREFIX)]
    if not columns:
        raise BayesReviewError(f"no rank columns (named '{RANK_PREFIX}...') in the table")
    return columns


def _bin_probabilities(L: int, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin of each rank 0..L (contiguous, near-equal) and each bin's probability under H0."""
    which = (np.arange(L + 1) * bins) // (L + 1)
    return which, np.bincount(which, minlength=bins) / (L + 1)


def sbc_uniformity(
    ranks: pd.DataFrame, L: int, bins: int | None = None, level: float = 0.05
) -> pd.DataFrame:
    """Chi-square test that each quantity's SBC ranks are uniform on ``0..L``.

    The L + 1 possible ranks are split into ``bins`` contiguous bins of near-equal width;
    each bin's expected count is N times the share of rank values it holds (exact also when
    ``bins`` does not divide L + 1).

    Parameters
    ----------
    ranks
        One row per replicate; the columns named ``"rank:..."`` are tested (as from
        :func:`run_replicates` with :func:`sbc_replicate`). Missing values are dropped.
    L
        Number of posterior draws each rank was taken among (ranks lie in ``0..L``).
    bins
        Number of bins; default ``min(10, N // 5)`` (at least 2) so that every expected count
        is at least 5 (N replicates).
    level
        Family-wise significance level; a quantity ``fails`` when its p-value is below
        ``level / Q`` (Bonferroni over the Q quantities). Default 0.05.

    Returns
    -------
    pandas.DataFrame
        ``quantity``, ``replicates``, ``bins``, ``chi2``, ``df``, ``p_value``, ``fails``.

    Raises
    ------
    BayesReviewError
        When a rank lies outside ``0..L`` or there are no rank columns.
    """
    columns = _rank_columns(ranks)
    rows = []
    for column in columns:
        values = ranks[column].dropna().to_numpy()
        n = len(values)
        if n and (np.any(values < 0) or np.any(values > L) or np.any(values % 1 != 0)):
            raise BayesReviewError(f"{column}: ranks must be whole numbers in 0..{L}")
        k = bins if bins is not None else max(2, min(10, n // 5))
        k = min(k, L + 1)
        which, prob = _bin_probabilities(L, k)
        observed = np.bincount(which[values.astype(int)], minlength=k)
        expected = n * prob
        if n:
            chi2 = float(np.sum((observed - expected) ** 2 / expected))
            p_value = float(stats.chi2.sf(chi2, k - 1))
        else:
            chi2 = p_value = math.nan
        rows.append(
            {
                "quantity": column.removeprefix(RANK_PREFIX),
                "replicates": n,
                "bins": k,
                "chi2": chi2,
                "df": k - 1,
                "p_value": p_value,
            }
        )
    table = pd.DataFrame(rows)
    table["fails"] = table["p_value"] < level / len(table)
    return table


def sbc_ecdf_band(
    n: int, L: int, level: float = 0.95, n_sim: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simultaneous band for the ECDF difference of n uniform ranks on ``0..L``.

    Säilynoja et al. (2022), simulation method: the pointwise binomial level gamma is tuned so
    that ``level`` of ECDFs of n independent uniform ranks stay inside the band at every point.

    Returns
    -------
    (x, lower, upper)
        Evaluation points ``x = (k + 1) / (L + 1)``, k = 0..L-1, and the band's limits for
        ``ECDF(x) - x``.
    """
    x = np.arange(1, L + 1) / (L + 1)
    rng = np.random.default_rng(seed)
    sims = rng.integers(0, L + 1, size=(n_sim, n))
    counts = np.stack([np.bincount(s, minlength=L + 1) for s in sims])[:, :L].cumsum(axis=1)
    cdf = stats.binom.cdf(counts, n, x)
    below = stats.binom.cdf(counts - 1, n, x)
    tail = 2 * np.minimum(cdf, 1 - below)  # two-sided pointwise tail probability
    gamma = float(np.quantile(tail.min(axis=1), 1 - level))
    lower = stats.binom.ppf(gamma / 2, n, x) / n - x
    upper = stats.binom.ppf(1 - gamma / 2, n, x) / n - x
    return x, lower, upper


def sbc_plot(
    ranks: pd.DataFrame,
    L: int,
    quantities: Iterable[str] | None = None,
    level: float = 0.95,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """ECDF-difference plot of SBC ranks with a simultaneous ``level`` band.

    Each quantity's line is ``ECDF(rank / (L + 1)) - x``; with uniform ranks all lines stay
    inside the grey band with probability ``level`` each (Säilynoja et al. 2022). Lines that
    leave the band are labelled.

    Parameters
    ----------
    ranks
        Replicates with ``"rank:..."`` columns.
    L
        Number of posterior draws behind each rank.
    quantities
        Quantity names (without the prefix) to draw; default all.
    level
        Coverage of the simultaneous band; default 0.95.
    ax
        Axes to draw on; default a new figure.
    title
        Axes title; default none.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    columns = _rank_columns(ranks)
    if quantities is not None:
        wanted = {f"{RANK_PREFIX}{q}" for q in quantities}
        columns = [c for c in columns if c in wanted]
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
    else:
        fig = ax.figure
    n = int(ranks[columns].notna().sum().min()) if columns else 0
    if n:
        x, lower, upper = sbc_ecdf_band(n, L, level)
        ax.fill_between(x, lower, upper, step="post", color="0.85", label=f"{level:.0%} band")
        for column in columns:
            values = ranks[column].dropna().to_numpy().astype(int)
            ecdf = np.bincount(values, minlength=L + 1)[:L].cumsum() / len(values)
            outside = np.any((ecdf - x < lower - 1e-12) | (ecdf - x > upper + 1e-12))
            ax.step(
                x,
                ecdf - x,
                where="post",
                lw=1.5 if outside else 0.8,
                alpha=1.0 if outside else 0.6,
                label=column.removeprefix(RANK_PREFIX) if outside else None,
            )
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_xlim(0, 1)
    ax.set_xlabel("normalised rank")
    ax.set_ylabel("ECDF difference")
    ax.set_title(title or f"{len(columns)} quantities, {n} replicates", fontsize=9)
    ax.legend(fontsize=7, loc="upper right", frameon=False)
    return fig
