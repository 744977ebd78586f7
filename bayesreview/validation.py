"""Validation by simulation: a resumable replicate runner and simulation-based calibration.

:func:`run_replicates` runs ``job(seed)`` for many seeds, in parallel over local processes or
on a ``dask.distributed`` cluster, and writes each finished replicate to its own small JSON
record in a cache folder outside the repository (:mod:`bayesreview.evidence`), keyed by the
fingerprint of today's model code and by the job's settings: a crash loses no finished
replicate, a rerun does only the missing seeds, and a record made by other code or with other
settings is never reused.

Simulation-based calibration (SBC; Talts et al. 2018, arXiv:1804.06788; Modrák et al. 2023,
Bayesian Analysis, doi:10.1214/23-BA1404) checks the model code and the sampler together: draw
the parameters from the prior, simulate data from them, fit, and record the rank of each true
value among L posterior draws. If the fit is right, every rank is uniform on ``0, ..., L``.
:func:`sbc_replicate` does one replicate (at the calcinosis-cutis design by default: the real
number of patients of every study, its group and its study design), :func:`sbc_uniformity`
tests the ranks for uniformity and :func:`sbc_plot` draws their ECDF differences with
simultaneous bands (Säilynoja, Bürkner & Vehtari 2022, Statistics and Computing 32:32).
:data:`SBC_CONFIGURATIONS` are the configurations the documentation reports, one per shipped
path.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import os
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import special, stats

from bayesreview.backend import compiled_for
from bayesreview.errors import BayesReviewError
from bayesreview.evidence import (
    job_settings,
    loaded_fingerprint,
    replicates_dir,
    settings_hash,
)
from bayesreview.integrals import logit_normal_moment
from bayesreview.model_data import LEVEL_PROBABILITY
from bayesreview.progress import progress
from bayesreview.spec import SELECTION_CLASSES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bayesreview.model_data import ModelData
    from bayesreview.spec import ModelSpec

__all__ = [
    "RANK_PREFIX",
    "SBC_CONFIGURATIONS",
    "SBC_MIN_REPLICATES",
    "SBC_SETTINGS",
    "ReplicateError",
    "large_study_design",
    "network_sbc_design",
    "network_sbc_replicate",
    "read_replicates",
    "run_replicates",
    "sbc_design",
    "sbc_ecdf_band",
    "sbc_job",
    "sbc_plot",
    "sbc_replicate",
    "sbc_settings",
    "sbc_uniformity",
    "simulate_from_prior",
    "simulate_network",
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


def _read_record(path: Path, fingerprint: str, digest: str) -> dict | None:
    """A saved replicate of this fingerprint and settings, or None (then it is rerun).

    None when the file is missing or unreadable, or when the record names another
    fingerprint or settings hash than the run's (a record is never reused for other code).
    """
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("result"), dict):
        return None
    if record.get("fingerprint") != fingerprint or record.get("settings_hash") != digest:
        return None
    return record


def _call(
    job: Callable[[int], Mapping[str, Any]], seed: int, check: tuple[str, str] | None = None
) -> tuple[bool, Any, float, str]:
    """Run one replicate; never raises: (True, result, seconds, processor) or (False,
    traceback, seconds, processor), the processor the worker's likelihoods are compiled for
    (:func:`bayesreview.backend.compiled_for`: the draws depend on it).

    ``check`` is (experiment, fingerprint): the worker first checks that the code it runs has
    that fingerprint (a cluster's workers may run another version than the client's).
    """
    processor = compiled_for()
    start = time.perf_counter()
    try:
        if check is not None:
            here = loaded_fingerprint(check[0])
            if here != check[1]:
                raise BayesReviewError(
                    f"this worker's code has fingerprint {here}, the run's is {check[1]}: "
                    "install the same version of bayesreview on every worker"
                )
        result = job(seed)
        if not isinstance(result, Mapping):
            raise TypeError(f"job({seed}) returned {type(result).__name__}, not a dict")
        # fail here, in the worker, if the result cannot be saved
        json.dumps(dict(result), default=_jsonable)
        return True, dict(result), time.perf_counter() - start, processor
    except Exception:  # every failure is reported with its seed
        return False, traceback.format_exc(), time.perf_counter() - start, processor


def _checked_seeds(seeds: Iterable[int]) -> list[int]:
    checked = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise BayesReviewError(f"seeds: every seed must be a whole number >= 0, got {seed!r}")
        checked.append(int(seed))
    duplicated = sorted(s for s, count in Counter(checked).items() if count > 1)
    if duplicated:
        raise BayesReviewError(f"seeds: duplicated seed(s) {duplicated[:10]}")
    return checked


def _run_folder(
    experiment: str,
    settings: Mapping[str, Any],
    fingerprint: str | None,
    cache: str | os.PathLike | None,
) -> tuple[Path, str, str, bool]:
    """(folder, fingerprint, settings hash, whether the fingerprint is today's code's)."""
    from_code = fingerprint is None
    fingerprint = loaded_fingerprint(experiment) if from_code else fingerprint
    digest = settings_hash(settings)
    return replicates_dir(experiment, fingerprint, digest, cache), fingerprint, digest, from_code


def run_replicates(
    job: Callable[[int], Mapping[str, Any]],
    seeds: Iterable[int],
    experiment: str,
    settings: Mapping[str, Any] | None = None,
    *,
    fingerprint: str | None = None,
    cache: str | os.PathLike | None = None,
    n_jobs: int | None = None,
    client: Any = None,
    errors: str = "raise",
    progressbar: bool = True,
) -> pd.DataFrame:
    """Run ``job(seed)`` for every seed not done yet with today's code, saving each result.

    Each finished replicate is a JSON record
    ``<cache>/replicates/<experiment>/<fingerprint>-<settings hash>/seed-<seed>.json`` (a
    temporary file, then an atomic rename) holding the seed, the fingerprint, the settings and
    their hash, the seconds it took, the processor the worker's likelihoods were compiled for
    (``compiled_for``, :func:`bayesreview.backend.compiled_for`) and the job's result. A crash
    loses no finished replicate; a rerun with the same code and settings skips the seeds
    already saved and can extend the run with more seeds. A record of another fingerprint or
    settings is never reused: it lives in another folder, and one found in this folder with
    other values inside is rerun.

    Parameters
    ----------
    job
        A function of one integer seed returning a dict of JSON-serialisable results (numbers,
        strings, lists; numpy scalars are converted). For processes and clusters it must be
        picklable: a module-level function or a ``functools.partial`` of one.
    seeds
        Distinct whole numbers >= 0; each is saved under its own file and passed to ``job``.
    experiment
        Name of the experiment, e.g. ``"sbc"`` or ``"coverage"``; it names the cache folder
        and, unless ``fingerprint`` is given, whose code is fingerprinted.
    settings
        What the replicates depend on besides the code and the seed (JSON data); default the
        job's function and the arguments bound by ``functools.partial``
        (:func:`bayesreview.evidence.job_settings`).
    fingerprint
        Key of the code; default the fingerprint of the code this process runs
        (:func:`bayesreview.evidence.loaded_fingerprint`: ``code_fingerprint(experiment)``
        when the modules were imported), which each worker then checks against its own before
        running a replicate.
    cache
        Cache folder; default :func:`bayesreview.evidence.cache_root` (``$BAYESREVIEW_CACHE``,
        ``$XDG_CACHE_HOME/bayesreview`` or ``~/.cache/bayesreview``).
    n_jobs
        Local worker processes (``concurrent.futures.ProcessPoolExecutor``, started by spawning
        fresh interpreters, never by forking this one); default
        ``os.cpu_count()``. ``1`` runs in this process, one seed after another.
    client
        A ``dask.distributed.Client``: the replicates are submitted to its cluster instead
        (``client.map``, collected with ``as_completed``); ``n_jobs`` is then ignored. Results
        come back to this process, which writes the files, so workers need no shared disk.
    errors
        ``"raise"`` (default): after every other replicate has finished and been saved, raise
        :class:`ReplicateError` naming each failed seed with its error. ``"ignore"``: return
        the finished replicates only; the failures are in ``result.attrs["failures"]``.
    progressbar
        Show a progress bar of the replicates (on a terminal only; :mod:`bayesreview.progress`);
        default True.

    Returns
    -------
    pandas.DataFrame
        One row per requested seed that has a result (this run's and earlier runs'), sorted
        by seed: ``seed``, ``seconds``, ``compiled_for`` (absent from records written before
        it was recorded) and one column per key of the job's dict. ``attrs``
        holds ``folder``, ``fingerprint``, ``settings_hash``, ``ran`` (seeds run now),
        ``skipped`` (seeds already done) and ``failures``.

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
    settings = job_settings(job) if settings is None else settings
    out_dir, fingerprint, digest, from_code = _run_folder(experiment, settings, fingerprint, cache)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = {s for s in seeds if _read_record(_result_path(out_dir, s), fingerprint, digest)}
    todo = [s for s in seeds if s not in done]
    failures: dict[int, str] = {}
    header = {
        "experiment": experiment,
        "fingerprint": fingerprint,
        "settings_hash": digest,
        "settings": settings,
    }
    check = (experiment, fingerprint) if from_code else None

    with progress(len(todo), f"{experiment} replicates", progressbar) as advance:

        def save(seed: int, ok: bool, value: Any, seconds: float, processor: str | None) -> None:
            if ok:
                record = {"seed": seed, **header, "seconds": round(seconds, 3)}
                record.update(compiled_for=processor, result=value)
                _write_atomic(_result_path(out_dir, seed), record)
            else:
                failures[seed] = value
            advance()

        _run_todo(job, todo, save, check, client, n_jobs)
    table = _table(out_dir, fingerprint, digest, seeds)
    table.attrs.update(ran=todo, skipped=sorted(done), failures=dict(failures))
    if failures and errors == "raise":
        raise ReplicateError(failures, out_dir)
    return table


def _run_todo(job, todo: list[int], save, check, client, n_jobs) -> None:
    """Run the seeds not done yet: on a dask cluster, in processes, or one after another."""
    if not todo:
        return
    if client is not None:
        _run_on_client(client, job, todo, save, check)
        return
    n_jobs = (os.cpu_count() or 1) if n_jobs is None else n_jobs
    if not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise BayesReviewError(f"n_jobs={n_jobs!r}: must be a whole number >= 1")
    if n_jobs == 1 or len(todo) == 1:
        for seed in todo:
            save(seed, *_call(job, seed, check))
    else:
        _run_in_processes(job, todo, min(int(n_jobs), len(todo)), save, check)


def _run_in_processes(job, seeds: list[int], n_jobs: int, save, check) -> None:
    """Each seed in one of ``n_jobs`` fresh worker processes: started by spawning, never by
    forking this process, whose numba, LLVM and sampler threads may be running (a forked
    child can inherit a lock held by another thread and hang)."""
    spawning = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=spawning) as pool:
        futures = {pool.submit(_call, job, seed, check): seed for seed in seeds}
        for future in as_completed(futures):
            seed = futures[future]
            try:
                outcome = future.result()
            except Exception:  # a worker died or the job could not be pickled
                outcome = False, traceback.format_exc(), math.nan, None
            save(seed, *outcome)


def _run_on_client(client, job, seeds: list[int], save, check) -> None:
    from distributed import as_completed as dask_as_completed

    n = len(seeds)
    futures = client.map(_call, [job] * n, seeds, [check] * n, pure=False)
    seed_of = {future.key: seed for future, seed in zip(futures, seeds, strict=True)}
    for future in dask_as_completed(futures):
        seed = seed_of[future.key]
        try:
            outcome = future.result()
        except Exception:  # a worker died or the job could not be pickled
            outcome = False, traceback.format_exc(), math.nan, None
        save(seed, *outcome)
        future.release()


def _processor(record: Mapping[str, Any]) -> dict[str, str]:
    """``compiled_for`` of a replicate's record; none in a record written before it was."""
    return {"compiled_for": record["compiled_for"]} if "compiled_for" in record else {}


def _table(
    out_dir: Path, fingerprint: str, digest: str, seeds: Iterable[int] | None
) -> pd.DataFrame:
    if seeds is None:
        paths = sorted(out_dir.glob("seed-*.json"))
    else:
        paths = [_result_path(out_dir, s) for s in seeds]
    records = [r for r in (_read_record(p, fingerprint, digest) for p in paths) if r is not None]
    if records:
        rows = [
            {"seed": r["seed"], "seconds": r.get("seconds"), **_processor(r), **r["result"]}
            for r in records
        ]
        table = pd.DataFrame(rows).sort_values("seed", kind="stable").reset_index(drop=True)
    else:
        table = pd.DataFrame(
            {"seed": pd.Series([], dtype=np.int64), "seconds": pd.Series([], dtype=float)}
        )
    table.attrs.update(folder=str(out_dir), fingerprint=fingerprint, settings_hash=digest)
    return table


def read_replicates(
    experiment: str,
    settings: Mapping[str, Any],
    seeds: Iterable[int] | None = None,
    *,
    fingerprint: str | None = None,
    cache: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The replicates :func:`run_replicates` saved for this code and settings, by seed.

    Parameters
    ----------
    experiment, settings, fingerprint, cache
        As for :func:`run_replicates` (``settings`` is required here: for a job's default,
        pass :func:`bayesreview.evidence.job_settings` of it). Records of another
        fingerprint or settings are never read.
    seeds
        Only these seeds (those without a result are left out); default every saved seed.

    Returns
    -------
    pandas.DataFrame
        As :func:`run_replicates` returns, without ``ran``, ``skipped`` and ``failures``.
    """
    out_dir, fingerprint, digest, _ = _run_folder(experiment, settings, fingerprint, cache)
    seeds = None if seeds is None else _checked_seeds(seeds)
    return _table(out_dir, fingerprint, digest, seeds)


# ---------------------------------------------------------------------------------------------
# Designs to simulate at
# ---------------------------------------------------------------------------------------------


def sbc_design(
    studies: pd.DataFrame | None = None,
    by: str = "group",
    bias: str | None = None,
    outcome: str = "any",
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
        common, ``case_report``) or ``"risk_of_bias"`` (levels ``low``, ``moderate``,
        ``high``, all missing in the bundled data: simulate the levels with
        ``simulate_from_prior(..., levels="prior")``). Default None.
    outcome
        ``"any"`` (default) or ``"response"`` for the joint model.

    Returns
    -------
    ModelData
        The arrays of the outcome; the events are the real ones and are replaced by simulated
        counts in :func:`sbc_replicate`.
    """
    from bayesreview.data import load_dataset
    from bayesreview.model_data import model_data

    if studies is None:
        studies = load_dataset("calcinosis_cutis")
    return model_data(studies, outcome, by=by, bias=bias)


def large_study_design(
    n_studies: int = 12, n_groups: int = 2, n_range: tuple[int, int] = (100, 5000)
) -> ModelData:
    """A design of large studies: patients log-uniform on ``n_range``, groups alternating.

    Study j (j = 0, ..., J - 1) has ``round(low * (high / low) ** ((j + 0.5) / J))`` patients,
    the quantiles of the log-uniform distribution (J = 12: 118 to 4,243 patients), and is in
    group ``j % n_groups``, so that every group has small and large studies. Groups are named
    ``A``, ``B``, ...

    Returns
    -------
    ModelData
        Outcome ``"events"`` (the events are placeholders, replaced by simulated ones).
    """
    from bayesreview.data import read_studies
    from bayesreview.model_data import model_data

    low, high = n_range
    if not (1 <= low < high) or n_studies < n_groups or not 1 <= n_groups <= 26:
        raise BayesReviewError(
            f"large_study_design: need 1 <= low < high, 1 <= n_groups <= 26 and at least one "
            f"study per group; got n_range={n_range}, n_studies={n_studies}, n_groups={n_groups}"
        )
    j = np.arange(n_studies)
    trials = np.round(low * (high / low) ** ((j + 0.5) / n_studies)).astype(np.int64)
    table = pd.DataFrame(
        {
            "study": [f"study {i + 1}" for i in j],
            "modality": [chr(ord("A") + i % n_groups) for i in j],
            "n": trials,
            "events": np.zeros(n_studies, dtype=np.int64),
        }
    )
    return model_data(read_studies(table), "events", by="modality")


# ---------------------------------------------------------------------------------------------
# Simulation from the prior
# ---------------------------------------------------------------------------------------------


def _draw(prior, size, rng: np.random.Generator) -> np.ndarray:
    """Draws of a prior by inverting its CDF (independent of PyMC)."""
    return np.asarray(prior.quantile(rng.uniform(size=size)), dtype=float)


def _pools(spec: ModelSpec, n_groups: int) -> bool:
    """Whether the model pools the heterogeneity across groups (two groups or more)."""
    return spec.heterogeneity == "partial_pooling" and n_groups > 1


def _log_scale(
    spec: ModelSpec, stage: str, suffix: str, keys: tuple[str, str], name: str, n_groups: int, rng
) -> dict:
    """True heterogeneity parameters on the log scale, named as in the PyMC model."""
    if _pools(spec, n_groups):
        centre = float(_draw(spec.prior(keys[0], stage), None, rng))
        spread = float(_draw(spec.prior(keys[1], stage), None, rng))
        z = rng.standard_normal(n_groups)
        return {
            f"{name}{suffix}": centre,
            f"{name}_sd{suffix}": spread,
            "_log_scale": centre + spread * z,
        }
    if spec.heterogeneity == "per_modality":
        values = _draw(spec.prior(keys[0], stage), n_groups, rng)
        return {f"{name}{suffix}": values, "_log_scale": values}
    shared = float(_draw(spec.prior(keys[0], stage), None, rng))
    return {f"{name}{suffix}": shared, "_log_scale": np.full(n_groups, shared)}


def _simulate_stage(
    spec: ModelSpec,
    stage: str,
    suffix: str,
    design: ModelData,
    levels: np.ndarray | None,
    trials: np.ndarray,
    rng: np.random.Generator,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(truth, events, mean rate per (level, group)) of one likelihood stage."""
    groups, g = design.n_groups, design.group_idx
    truth: dict[str, Any] = {f"alpha{suffix}": _draw(spec.prior("intercept", stage), groups, rng)}
    shift = np.zeros(1)
    if levels is not None:
        beta = _draw(spec.prior("bias", stage), len(design.bias.levels) - 1, rng)
        truth[f"beta{suffix}"] = beta
        shift = np.concatenate([[0.0], beta])
    alpha = truth[f"alpha{suffix}"]
    eta = alpha[g] + (shift[levels] if levels is not None else 0.0)
    eta_level = shift[:, None] + alpha[None, :]  # (levels, groups)
    if spec.likelihood == "beta_binomial":
        scale = _log_scale(
            spec, stage, suffix, ("log_concentration", "log_concentration_sd"), "log_phi",
            groups, rng,
        )  # fmt: skip
        phi = np.exp(scale.pop("_log_scale"))
        truth.update(scale)
        truth[f"phi{suffix}"] = phi
        tiny = np.finfo(float).tiny
        a = np.maximum(phi[g] * special.expit(eta), tiny)
        b = np.maximum(phi[g] * special.expit(-eta), tiny)

        def study_rates(rows):
            return rng.beta(a[rows], b[rows])

        mean = special.expit(eta_level)
    else:
        if spec.heterogeneity == "partial_pooling":
            scale = _log_scale(
                spec, stage, suffix, ("log_tau", "log_tau_sd"), "log_tau", groups, rng
            )
            tau = np.exp(scale.pop("_log_scale"))
            truth.update(scale)
            truth[f"tau{suffix}"] = tau
        elif spec.heterogeneity == "per_modality":
            tau = _draw(spec.prior("tau", stage), groups, rng)
            truth[f"tau{suffix}"] = tau
        else:
            shared = float(_draw(spec.prior("tau", stage), None, rng))
            tau = np.full(groups, shared)
            truth[f"tau_shared{suffix}"] = shared
            truth[f"tau{suffix}"] = tau

        def study_rates(rows):
            return special.expit(eta[rows] + tau[g][rows] * rng.standard_normal(rows.sum()))

        mean = logit_normal_moment(eta_level, tau[None, :])
    everyone = np.ones(len(trials), dtype=bool)
    events = rng.binomial(trials, np.clip(study_rates(everyone), 0.0, 1.0)).astype(np.int64)
    if spec.selection is not None and stage == "marginal":
        truth["selection_weight"] = np.array(
            [float(_draw(spec.prior(key), None, rng)) for key in SELECTION_CLASSES.values()]
        )
        events = _published(events, trials, truth["selection_weight"], study_rates, rng)
    return truth, events, mean


#: Most rounds of redrawing an unpublished study in :func:`_published`.
_PUBLICATION_ROUNDS = 100_000


def _published(events, trials, weights, study_rates, rng: np.random.Generator) -> np.ndarray:
    """Events of published studies, by rejection: a study with no events is published with
    probability ``weights[class]`` (class 0 a case report of one patient, 1 a case series),
    one with events always; an unpublished study is redrawn (a new rate, new events) at the
    same size until it is published, so each study's events follow f(y) w(y) / Z exactly."""
    weight = np.where(trials == 1, weights[0], weights[1])
    events = events.copy()
    unpublished = np.ones(len(events), dtype=bool)
    for _ in range(_PUBLICATION_ROUNDS):
        unpublished &= (events == 0) & (rng.random(len(events)) >= weight)
        if not unpublished.any():
            return events
        rates = np.clip(study_rates(unpublished), 0.0, 1.0)
        events[unpublished] = rng.binomial(trials[unpublished], rates)
    raise BayesReviewError("simulate_from_prior: a study was not published in 100,000 draws")


def simulate_from_prior(
    spec: ModelSpec,
    design: ModelData,
    rng: np.random.Generator,
    levels: str = "design",
    hidden: int = 0,
    totals: tuple[int, ...] | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Draw every parameter from the prior of ``spec`` and events at ``design``.

    Written with numpy and the priors' quantile functions, independently of the PyMC model
    code it serves to check.

    Parameters
    ----------
    spec
        The model simulated from. With ``outcome = "response"`` (the joint model) both stages
        are simulated: any response of each study's patients, then complete response of those
        who responded, the second stage with the priors of ``[conditional_priors]``.
    design
        Patients, groups and (categorical) bias covariate of each study
        (:func:`sbc_design`, :func:`large_study_design`).
    rng
        The random generator.
    levels
        ``"design"`` (default): each study's bias level is the design's (every level must be
        known). ``"prior"``: the level probabilities are drawn, pi ~ Dirichlet(the design's
        prior counts), and each study's level from pi. ``"totals"``: the levels are a uniformly
        random assignment with the level totals ``totals`` (the known-totals model's prior).
    hidden
        Number of studies, chosen at random, whose level the fit is not told (default 0).
    totals
        With ``levels="totals"``, the number of studies at each level (summing to the
        number of studies).

    Returns
    -------
    (truth, events)
        ``truth`` maps the model's parameter names (``alpha`` per group, ``beta`` per
        non-reference bias level, ``log_phi``/``log_phi_sd``/``phi`` or ``tau``/``log_tau``/
        ``log_tau_sd``/``tau_shared``, as the heterogeneity has them; the second stage's with
        the suffix ``_cond``; ``bias_level_prob`` with ``levels="prior"``) to true values, and
        ``rate`` to each group's true population mean rate at the reference level:
        invlogit(alpha) for the beta-binomial, E[invlogit(alpha + tau z)] for the
        logit-normal, shaped (groups,), or (3, groups) for the outcomes complete, partial and
        any of the joint model (complete = any x complete-given-any). With a covariate it also
        holds ``level`` (each study's true level index) and ``hidden`` (True where the fit is
        not told the level). With publication selection (``spec.selection``) it holds
        ``selection_weight`` (case report, case series), each drawn from its prior, and the
        events are those of published studies: a study with no events is published with
        its class's weight, and one not published is redrawn at its size until it is
        (:func:`_published`). ``events`` are the simulated counts, one per study, or for
        the joint model a (2, studies) array: any response, then complete response.
    """
    n = design.trials
    codes = None
    truth: dict[str, Any] = {}
    if design.bias is not None:
        if design.bias.kind != "categorical":
            raise BayesReviewError("SBC simulates a categorical bias covariate only")
        k = len(design.bias.levels)
        if levels == "design":
            if design.bias.n_missing:
                raise BayesReviewError(
                    "simulate_from_prior: the design has missing levels; simulate them with "
                    "levels='prior'"
                )
            codes = np.asarray(design.bias.codes, dtype=np.int64)
        elif levels == "prior":
            pi = rng.dirichlet(np.asarray(design.bias.prior_counts, dtype=float))
            truth[LEVEL_PROBABILITY] = pi
            codes = rng.choice(k, size=len(n), p=pi).astype(np.int64)
        elif levels == "totals":
            if totals is None or len(totals) != k or sum(totals) != len(n):
                raise BayesReviewError(
                    f"levels='totals': need {k} totals summing to {len(n)}, got {totals!r}"
                )
            codes = rng.permutation(np.repeat(np.arange(k), totals)).astype(np.int64)
            truth["level_totals"] = tuple(int(t) for t in totals)
        else:
            raise BayesReviewError(f"levels={levels!r}: must be 'design', 'prior' or 'totals'")
        if not 0 <= hidden <= len(n):
            raise BayesReviewError(f"hidden={hidden!r}: must be between 0 and {len(n)}")
        mask = np.zeros(len(n), dtype=bool)
        mask[rng.choice(len(n), size=hidden, replace=False)] = True
        truth.update(level=codes, hidden=mask)
    elif hidden:
        raise BayesReviewError("hidden: the design has no bias covariate")

    first, events, mean1 = _simulate_stage(spec, "marginal", "", design, codes, n, rng)
    truth.update(first)
    if spec.outcome != "response":
        truth["rate"] = mean1[0]
        return truth, events
    second, complete, mean2 = _simulate_stage(
        spec, "conditional", "_cond", design, codes, events, rng
    )
    truth.update(second)
    truth["rate"] = np.stack([mean1[0] * mean2[0], mean1[0] * (1 - mean2[0]), mean1[0]])
    return truth, np.stack([events, complete])


# ---------------------------------------------------------------------------------------------
# One SBC replicate
# ---------------------------------------------------------------------------------------------

#: Parameters whose true values are ranked (each with the ``_cond`` suffix too).
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
    "selection_weight",
)

#: Designs :func:`sbc_replicate` knows by name.
DESIGNS = ("calcinosis", "large_studies")
#: Bias covariates :func:`sbc_replicate` knows: None, the study design (known), or a
#: three-level covariate whose levels are drawn from the prior and partly hidden, either with
#: the Dirichlet form (``"missing"``) or with known totals (``"totals"``).
BIAS_KINDS = (None, "design", "missing", "totals")


def _fit(
    design: ModelData,
    events: np.ndarray,
    truth: Mapping[str, Any],
    spec: ModelSpec,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
):
    """Fit the simulated events with :func:`bayesreview.fit`, as a user would.

    The study table holds the design's groups, bias levels (None where hidden) and patients
    with the simulated counts: ``events`` (one outcome) or the ``complete``/``partial``/
    ``none`` counts of the joint model. ``fit`` collapses identical beta-binomial studies; the
    model reads the number of rows at run time, so the data sets of every replicate share one
    compiled model per process.
    """
    import warnings

    from bayesreview.fitting import fit

    table = pd.DataFrame(
        {
            "study": [f"study {i + 1}" for i in range(design.n_rows)],
            "modality": [design.groups[g] for g in design.group_idx],
            "n": design.trials,
        }
    )
    joint = spec.outcome == "response"
    if joint:
        responders, complete = events
        table["complete"] = complete
        table["partial"] = responders - complete
        table["none"] = design.trials - responders
        table["unknown"] = 0
    else:
        table["events"] = events
    bias_kwargs: dict[str, Any] = {}
    if design.bias is not None:
        bias = design.bias
        column = bias.column
        table[column] = [
            None if hide else bias.levels[c]
            for c, hide in zip(truth["level"], truth["hidden"], strict=True)
        ]
        bias_kwargs = {"bias": column, "bias_reference": bias.levels[0]}
        if "level_totals" in truth:
            bias_kwargs["bias_totals"] = dict(zip(bias.levels, truth["level_totals"], strict=True))
        else:
            bias_kwargs["bias_prior_counts"] = dict(
                zip(bias.levels, bias.prior_counts, strict=True)
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is recorded, not warned about, here
        result = fit(
            table,
            outcome="response" if joint else "events",
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


#: Level totals of the known-totals SBC: the review's published risk-of-bias totals (low 10,
#: moderate 19, high 11 of its 40 studies).
SBC_LEVEL_TOTALS = (10, 19, 11)


def _replicate_design(design: str, bias: str | None, joint: bool) -> tuple[ModelData, str, int]:
    """(design, levels, hidden) of a named design and bias covariate."""
    if design not in DESIGNS:
        raise BayesReviewError(f"design={design!r}: must be one of {', '.join(DESIGNS)}")
    if bias not in BIAS_KINDS:
        raise BayesReviewError(f"bias={bias!r}: must be one of {BIAS_KINDS}")
    if design == "large_studies":
        if bias is not None or joint:
            raise BayesReviewError("design='large_studies' has one outcome and no covariate")
        return large_study_design(), "design", 0
    outcome = "response" if joint else "any"
    if bias in ("missing", "totals"):
        data = sbc_design(bias="risk_of_bias", outcome=outcome)
        return data, "prior" if bias == "missing" else "totals", data.n_rows // 2
    return sbc_design(bias=bias, outcome=outcome), "design", 0


def sbc_replicate(
    seed: int,
    model: str | os.PathLike | ModelSpec = "beta_binomial",
    bias: str | None = None,
    design: str = "calcinosis",
    draws: int = 500,
    tune: int = 500,
    thin: int = 10,
    chains: int = 2,
    fit_model: str | os.PathLike | ModelSpec | None = None,
) -> dict[str, Any]:
    """One SBC replicate: draw from the prior, simulate, fit, rank the truth among the draws.

    Draws the parameters from the prior of ``model`` (:func:`simulate_from_prior`), simulates
    every study's events, fits ``fit_model`` to them with :func:`bayesreview.fit`, and ranks
    each true value among ``L = chains * ceil(draws / thin)`` thinned posterior draws.

    Parameters
    ----------
    seed
        Seeds the simulation and the sampler.
    model
        Specification simulated from (and fitted, unless ``fit_model`` is given); default the
        shipped ``"beta_binomial"``. A joint response model (``"response"``) simulates and
        fits both stages.
    bias
        None (default); ``"design"``: the study design (``case_report``, ``case_series``,
        ``rct``) as a categorical bias covariate, reference ``case_report``; ``"missing"``:
        a covariate with levels ``low``, ``moderate``, ``high`` (reference ``low``), drawn as
        pi ~ Dirichlet(1, 1, 1) and each study's level from pi, half of the studies' levels
        (chosen at random) hidden from the fit, which marginalises them; ``"totals"``: the
        same covariate with the levels a uniformly random assignment with the totals
        :data:`SBC_LEVEL_TOTALS`, half hidden, fitted with those totals known
        (``bias_totals``).
    design
        ``"calcinosis"`` (default): the calcinosis-cutis design, by group (:func:`sbc_design`);
        ``"large_studies"``: 12 studies of 118 to 4,243 patients in 2 groups
        (:func:`large_study_design`).
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
        ``L``, ``divergences``, ``max_rhat`` (largest R-hat of the fit's parameters),
        ``min_ess`` (smallest bulk or tail ESS) and, for each quantity,
        ``"rank:<name>[<label>]"``: an integer in ``0..L``. Quantities: ``alpha``, ``beta``,
        the heterogeneity parameters (each stage's), ``bias_level_prob`` (with
        ``bias="missing"``) and ``rate`` (the population mean rate at the reference level;
        for the joint model of complete and of any response, labelled ``[complete, <group>]``).
    """
    from bayesreview.spec import load_spec

    sim_spec = load_spec(model)
    if sim_spec.structure == "network":
        if fit_model is not None or bias is not None or design != "calcinosis":
            raise BayesReviewError(
                "sbc_replicate: the network model has its own design "
                "(network_sbc_design) and takes no bias, design or fit_model"
            )
        return network_sbc_replicate(seed, sim_spec, draws, tune, thin, chains)
    fit_spec = sim_spec if fit_model is None else load_spec(fit_model)
    if sim_spec.likelihood != fit_spec.likelihood or sim_spec.outcome != fit_spec.outcome:
        raise BayesReviewError(
            "sbc_replicate: model and fit_model must share the likelihood and the outcome"
        )
    joint = sim_spec.outcome == "response"
    data, levels, hidden = _replicate_design(design, bias, joint)
    rng = np.random.default_rng([seed, 0])
    truth, events = simulate_from_prior(
        sim_spec, data, rng, levels=levels, hidden=hidden, totals=SBC_LEVEL_TOTALS
    )

    fitted = _fit(data, events, truth, fit_spec, draws, tune, chains, seed)
    posterior = fitted.idata.posterior.isel(draw=slice(None, None, thin))
    names = [f"{n}{s}" for s in ("", "_cond") for n in _RANKED] + [LEVEL_PROBABILITY]
    arrays = {name: posterior[name] for name in names if name in posterior and name in truth}
    if joint:  # complete and any response; partial is any minus complete
        arrays["rate"] = posterior["rate"].sel(outcome=["complete", "any"])
        truth = {**truth, "rate": np.asarray(truth["rate"])[[0, 2]]}
    else:
        arrays["rate"] = posterior["rate"].isel(outcome=0)
    return _ranked(arrays, truth, fitted, rng)


def _ranked(arrays: Mapping[str, Any], truth: Mapping[str, Any], fitted, rng) -> dict[str, Any]:
    """``L``, each true value's rank among the thinned draws ``arrays`` (``"rank:<name>
    [<label>]"``), and the fit's divergences, largest R-hat and smallest ESS."""
    first = next(iter(arrays.values()))
    draws_kept = first.sizes["chain"] * first.sizes["draw"]
    result: dict[str, Any] = {"L": int(draws_kept)}
    for name, array in arrays.items():
        dims = [d for d in array.dims if d not in ("chain", "draw")]
        post = array.transpose("chain", "draw", *dims).values.reshape(draws_kept, -1)
        true = np.asarray(truth[name], dtype=float).reshape(-1)
        if true.size != post.shape[1]:
            raise BayesReviewError(
                f"sbc_replicate: {name} has {true.size} true values but {post.shape[1]} in the fit"
            )
        labels = [""]
        if dims:
            coords = [array[d].values for d in dims]
            labels = [
                ", ".join(str(coords[i][k]) for i, k in enumerate(combo))
                for combo in np.ndindex(*[len(c) for c in coords])
            ]
        for i, label in enumerate(labels):
            key = f"{RANK_PREFIX}{name}[{label}]" if dims else f"{RANK_PREFIX}{name}"
            result[key] = _rank(post[:, i], float(true[i]), rng)
    diagnostics = fitted.diagnostics()
    result["divergences"] = fitted.divergences
    result["max_rhat"] = float(diagnostics["r_hat"].max())
    result["min_ess"] = float(min(diagnostics["ess_bulk"].min(), diagnostics["ess_tail"].min()))
    return result


# ---------------------------------------------------------------------------------------------
# The network model
# ---------------------------------------------------------------------------------------------


def network_sbc_design() -> pd.DataFrame:
    """The arms the network SBC simulates at: treatments ``A`` (the reference) to ``D``.

    Ten comparative trials of 20 to 60 patients per arm: four of A against B, three of A
    against C, two of B against C (closing the loop A-B-C) and one three-arm trial of A, B and
    C; and eight single-arm studies of 4 to 15 patients: three of A, two of B and three of D,
    which no comparative study reaches (it is compared with the others through the
    exchangeable baselines alone). Columns ``study``, ``modality``, ``n``.
    """
    trials = [("A", "B")] * 4 + [("A", "C")] * 3 + [("B", "C")] * 2 + [("A", "B", "C")]
    rows = []
    for i, arms in enumerate(trials):
        rows += [(f"trial {i + 1}", t, 20 + (7 * i + 11 * k) % 41) for k, t in enumerate(arms)]
    single = ["A"] * 3 + ["B"] * 2 + ["D"] * 3
    rows += [(f"series {i + 1}", t, 4 + (5 * i) % 12) for i, t in enumerate(single)]
    return pd.DataFrame(rows, columns=["study", "modality", "n"])


def simulate_network(
    spec: ModelSpec, arms: pd.DataFrame, rng: np.random.Generator
) -> tuple[dict[str, Any], np.ndarray]:
    """Draw the network model's parameters from the priors of ``spec`` and each arm's events.

    The reference is ``A`` and the treatments are in sorted order. Returns the truth (``d``,
    ``tau``, ``baseline_mean``, ``baseline_sd``, ``rate`` = invlogit(baseline_mean + d), with
    0 for the reference) and the events, one per row of ``arms``; independent of PyMC.
    """
    treatments = sorted(arms["modality"].unique())
    studies = list(dict.fromkeys(arms["study"]))
    d = _draw(spec.priors["effect"], len(treatments) - 1, rng)
    m = float(_draw(spec.priors["baseline_mean"], 1, rng)[0])
    sigma_mu = float(_draw(spec.priors["baseline_sd"], 1, rng)[0])
    tau = float(_draw(spec.priors["effect_sd"], 1, rng)[0])
    mu = rng.normal(m, sigma_mu, size=len(studies))
    effect = dict(zip(treatments, np.concatenate([[0.0], d]), strict=True))
    study = arms["study"].map({s: i for i, s in enumerate(studies)}).to_numpy()
    logit = (
        mu[study]
        + arms["modality"].map(effect).to_numpy()
        + rng.normal(0.0, tau / np.sqrt(2.0), size=len(arms))
    )
    events = rng.binomial(arms["n"].to_numpy(), special.expit(logit))
    truth = {
        "d": d, "tau": tau, "baseline_mean": m, "baseline_sd": sigma_mu,
        "rate": special.expit(m + np.concatenate([[0.0], d])),
    }  # fmt: skip
    return truth, events


def network_sbc_replicate(
    seed: int, spec: ModelSpec, draws: int, tune: int, thin: int, chains: int
) -> dict[str, Any]:
    """One SBC replicate of the network model at :func:`network_sbc_design`, fitted with
    :func:`bayesreview.fit` (``model=spec``) as a user would; the result as in
    :func:`sbc_replicate`, ranking ``d``, ``tau``, ``baseline_mean``, ``baseline_sd`` and
    ``rate`` (each treatment's rate at the typical study's baseline)."""
    import warnings

    from bayesreview.fitting import fit

    arms = network_sbc_design()
    rng = np.random.default_rng([seed, 0])
    truth, events = simulate_network(spec, arms, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is recorded; D's assumption is the design's
        fitted = fit(
            arms.assign(events=events), outcome="events", model=spec, reference="A",
            draws=draws, tune=tune, chains=chains, seed=seed, progressbar=False,
        )  # fmt: skip
    if list(fitted.treatments) != sorted(arms["modality"].unique()):
        raise BayesReviewError("network SBC: the fit's treatments differ from the design's")
    posterior = fitted.idata.posterior.isel(draw=slice(None, None, thin))
    names = ("d", "tau", "baseline_mean", "baseline_sd", "rate")
    return _ranked({name: posterior[name] for name in names}, truth, fitted, rng)


# ---------------------------------------------------------------------------------------------
# The configurations the documentation reports
# ---------------------------------------------------------------------------------------------

#: Sampler settings of every SBC configuration: L = 2 chains x 50 kept draws = 100.
SBC_SETTINGS: dict[str, int] = {"draws": 500, "tune": 500, "thin": 10, "chains": 2}

#: One configuration per shipped path: arguments of :func:`sbc_replicate` besides the seed.
SBC_CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "beta_binomial": {"model": "beta_binomial"},
    "beta_binomial_design": {"model": "beta_binomial", "bias": "design"},
    "logit_normal": {"model": "logit_normal"},
    "logit_normal_design": {"model": "logit_normal", "bias": "design"},
    "response": {"model": "response"},
    "missing_levels": {"model": "beta_binomial", "bias": "missing"},
    "known_totals": {"model": "beta_binomial", "bias": "totals"},
    "logit_normal_large": {"model": "logit_normal", "design": "large_studies"},
    "selection": {"model": "selection"},
    "network": {"model": "network"},
}

#: Least replicates per configuration in the committed evidence.
SBC_MIN_REPLICATES = 200


def sbc_job(name: str, **overrides: Any) -> functools.partial:
    """The replicate job of configuration ``name``: :func:`sbc_replicate` with its arguments.

    ``overrides`` replace sampler settings (e.g. ``draws=50`` for a quick check of the
    pipeline; such a run has other settings, so it never mixes with the real one).
    """
    if name not in SBC_CONFIGURATIONS:
        raise BayesReviewError(
            f"unknown SBC configuration {name!r}; choose from {', '.join(SBC_CONFIGURATIONS)}"
        )
    return functools.partial(
        sbc_replicate, **{**SBC_CONFIGURATIONS[name], **SBC_SETTINGS, **overrides}
    )


def sbc_settings(name: str, **overrides: Any) -> dict[str, Any]:
    """The settings (as recorded and hashed) of :func:`sbc_job` ``(name, **overrides)``."""
    return job_settings(sbc_job(name, **overrides))


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
