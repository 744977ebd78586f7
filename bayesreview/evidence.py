"""Validation evidence that stays true: code fingerprints, the replicate cache, evidence tables.

Simulation evidence (SBC, interval coverage) is only evidence about the code that produced it.
Here:

* :func:`code_fingerprint` hashes the code that produces an experiment's numbers: the modules
  that define the likelihoods and derived quantities (:data:`MODEL_MODULES`), the shipped model
  specifications (``models/*.toml``) and the experiment's own simulation module
  (:data:`EXPERIMENTS`). Each module is hashed in a normal form of its syntax tree with every
  docstring (and bare string statement) removed, and each specification as its parsed TOML
  without its ``description``: comments, docstrings and formatting do not change the
  fingerprint, any change to the code or to a prior does.
* :func:`settings_hash` hashes an experiment's settings (sampler settings, design, ...).
* Raw per-replicate records live in a cache folder outside the repository,
  ``<cache>/replicates/<experiment>/<fingerprint>-<settings hash>/seed-<seed>.json``
  (:func:`cache_root`, :func:`replicates_dir`); :func:`bayesreview.validation.run_replicates`
  writes and resumes them, and never reuses a record of another fingerprint or settings.
* The repository keeps one aggregated table per experiment, ``docs/evidence/<experiment>.csv``
  (one row per replicate, a ``configuration`` and a ``fingerprint`` column) with a sidecar
  ``<experiment>.json`` naming its fingerprint, the hash of each file behind it, and each
  configuration's settings (:func:`write_evidence`, :func:`read_evidence`).
  :func:`check_evidence` lists what makes a committed table stale or incomplete; a test runs it
  so that a change to a likelihood comes with regenerated evidence.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesreview._resources import resource_dir
from bayesreview.errors import BayesReviewError

__all__ = [
    "EXPERIMENTS",
    "FOLLOW_UP_FIRST_SEED",
    "MODEL_MODULES",
    "REGENERATE",
    "cache_root",
    "canonical",
    "check_evidence",
    "code_fingerprint",
    "fingerprint_parts",
    "job_settings",
    "loaded_fingerprint",
    "processors_sentence",
    "read_evidence",
    "replicates_dir",
    "settings_hash",
    "write_evidence",
]

_PACKAGE = Path(__file__).resolve().parent

#: Modules (files of the package) whose code determines every experiment's numbers: the data
#: arrays, the PyMC models and their likelihood Ops, the integrals, the fitting and the
#: post-processing of the draws, and the reading of specifications.
MODEL_MODULES: tuple[str, ...] = (
    "backend/models.py",
    "backend/ops.py",
    "backend/priors.py",
    "backend/sampling.py",
    "known_totals.py",
    "quantities.py",
    "integrals.py",
    "model_data.py",
    "fitting.py",
    "spec.py",
    "network.py",
    "backend/network.py",
)

#: Each experiment and its own simulation module (a file of the package).
EXPERIMENTS: dict[str, str] = {
    "sbc": "validation.py",
    "coverage": "coverage.py",
    "bias_simulations": "bias_simulation.py",
}

#: The command (from the repository root) that regenerates each experiment's evidence.
REGENERATE: dict[str, str] = {
    "sbc": "python docs/make_validation.py --n-jobs 2",
    "coverage": "python docs/make_coverage.py --n-jobs 2",
    "bias_simulations": "python docs/make_bias_simulations.py --n-jobs 2",
}

#: Hex digits of a fingerprint or settings hash.
HASH_LENGTH = 12

#: First seed of an experiment's follow-up replicates: its main replicates take the seeds
#: 0, 1, 2, ...; a check repeated on fresh data (a quantity that failed on the main seeds,
#: tested again) takes seeds from here on, so the two never share a simulated data set.
FOLLOW_UP_FIRST_SEED = 100_000


# ---------------------------------------------------------------------------------------------
# Normal forms: code without docstrings, specifications without comments
# ---------------------------------------------------------------------------------------------


def _is_string_statement(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _dump(node: Any) -> str:
    """A deterministic text form of a syntax tree: node types and fields, no positions.

    Docstrings and other bare string statements (no-ops) are left out, and so are empty
    optional fields, so that the form does not change when a Python version adds one.
    """
    if isinstance(node, ast.AST):
        parts = []
        for name, value in ast.iter_fields(node):
            if name in ("type_comment", "kind") or value is None or value == []:
                continue
            if isinstance(value, list):
                value = [v for v in value if not _is_string_statement(v)]
                if not value:
                    continue
            parts.append(f"{name}={_dump(value)}")
        return f"{type(node).__name__}({','.join(parts)})"
    if isinstance(node, list):
        return "[" + ",".join(_dump(v) for v in node) + "]"
    return repr(node)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def module_hash(path: str | os.PathLike) -> str:
    """Hash of a Python file's code, insensitive to comments, docstrings and formatting.

    Raises
    ------
    BayesReviewError
        When the file is missing or is not valid Python.
    """
    path = Path(path)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except OSError as exc:
        raise BayesReviewError(f"fingerprint: cannot read {path} ({exc})") from None
    except SyntaxError as exc:
        raise BayesReviewError(f"fingerprint: {path} is not valid Python ({exc})") from None
    return _digest(_dump(tree))


def spec_hash(path: str | os.PathLike) -> str:
    """Hash of a model specification's parsed TOML, without its ``description`` line.

    Comments, key order and formatting do not change it; any prior, likelihood or setting does.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BayesReviewError(
            f"fingerprint: cannot read the specification {path} ({exc})"
        ) from None
    data.pop("description", None)
    return _digest(json.dumps(data, sort_keys=True, separators=(",", ":")))


def _source_files(experiment: str) -> dict[str, Path]:
    """The files behind ``experiment``, keyed by their name in the repository."""
    if experiment not in EXPERIMENTS:
        raise BayesReviewError(
            f"experiment={experiment!r}: unknown; the experiments are {', '.join(EXPERIMENTS)}"
        )
    modules = (*MODEL_MODULES, EXPERIMENTS[experiment])
    files = {f"bayesreview/{name}": _PACKAGE / name for name in modules}
    for path in sorted(resource_dir("models").glob("*.toml")):
        files[f"models/{path.name}"] = path
    return files


def _file_hash(key: str, path: Path) -> str:
    return spec_hash(path) if key.endswith(".toml") else module_hash(path)


def fingerprint_parts(experiment: str) -> dict[str, str]:
    """The normal-form hash of each file behind ``experiment``'s evidence, keyed by file.

    Parameters
    ----------
    experiment
        A key of :data:`EXPERIMENTS`: ``"sbc"``, ``"coverage"`` or ``"bias_simulations"``.

    Returns
    -------
    dict of str to str
        ``"bayesreview/backend/models.py"``, ..., ``"models/beta_binomial.toml"``, ... to
        SHA-256 hex digests.
    """
    return {key: _file_hash(key, path) for key, path in _source_files(experiment).items()}


def _combine(parts: Mapping[str, str]) -> str:
    text = "\n".join(f"{key} {value}" for key, value in sorted(parts.items()))
    return _digest(text)[:HASH_LENGTH]


def code_fingerprint(experiment: str) -> str:
    """A short hash of the code that produces ``experiment``'s evidence.

    Covers :data:`MODEL_MODULES`, the shipped specifications ``models/*.toml`` (found where
    :func:`bayesreview.spec.load_spec` finds them) and the experiment's module
    (``validation.py`` for ``"sbc"``, ``coverage.py`` for ``"coverage"``, ``bias_simulation.py``
    for ``"bias_simulations"``). Editing a docstring, a comment or the layout leaves it
    unchanged; any change to the code does not.

    Parameters
    ----------
    experiment
        A key of :data:`EXPERIMENTS`.

    Returns
    -------
    str
        12 hexadecimal digits.
    """
    return _combine(fingerprint_parts(experiment))


_LOADED: dict[str, str] = {}


def loaded_fingerprint(experiment: str) -> str:
    """:func:`code_fingerprint` of the code this process runs, fixed at its first call.

    Imports every fingerprinted module first, then hashes the files: the code in memory and the
    fingerprint then belong together, even when the files are edited later (a forked worker
    inherits both). The shipped specifications are read from disk at each fit, so an edit to
    one while replicates run is not caught here.
    """
    if experiment not in _LOADED:
        import importlib

        for key in _source_files(experiment):
            if key.startswith("bayesreview/") and key.endswith(".py"):
                importlib.import_module(key.removesuffix(".py").replace("/", "."))
        _LOADED[experiment] = code_fingerprint(experiment)
    return _LOADED[experiment]


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars and arrays, tuples, paths, specifications.

    A :class:`~bayesreview.spec.ModelSpec` becomes its dict (so a changed prior is a changed
    setting), a function its qualified name.

    Raises
    ------
    BayesReviewError
        For a value with no JSON form.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return canonical(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "to_dict") and type(value).__name__ == "ModelSpec":
        return {"spec": canonical(value.to_dict())}
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{value.__module__}.{value.__qualname__}"
    raise BayesReviewError(f"settings: {type(value).__name__} {value!r} has no JSON form")


def job_settings(job: Callable[..., Any]) -> dict[str, Any]:
    """The settings of a replicate job: its function and the arguments bound by ``partial``."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    while isinstance(job, functools.partial):
        args = [*job.args, *args]
        kwargs = {**job.keywords, **kwargs}
        job = job.func
    return canonical({"job": job, "args": args, "kwargs": kwargs})


def settings_hash(settings: Mapping[str, Any]) -> str:
    """A short hash of ``settings`` (12 hexadecimal digits), independent of key order."""
    text = json.dumps(canonical(settings), sort_keys=True, separators=(",", ":"))
    return _digest(text)[:HASH_LENGTH]


# ---------------------------------------------------------------------------------------------
# The cache of raw replicates
# ---------------------------------------------------------------------------------------------


def cache_root() -> Path:
    """The cache folder: ``$BAYESREVIEW_CACHE``, else ``$XDG_CACHE_HOME/bayesreview``, else
    ``~/.cache/bayesreview``."""
    if os.environ.get("BAYESREVIEW_CACHE"):
        return Path(os.environ["BAYESREVIEW_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "bayesreview"
    return Path.home() / ".cache" / "bayesreview"


def _checked_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not value or not all(c.isalnum() or c in "_-." for c in value):
        raise BayesReviewError(
            f"{what}={value!r}: must be a non-empty name of letters, digits, '_', '-' or '.'"
        )
    return value


def replicates_dir(
    experiment: str,
    fingerprint: str,
    settings_digest: str,
    cache: str | os.PathLike | None = None,
) -> Path:
    """``<cache>/replicates/<experiment>/<fingerprint>-<settings hash>``: one run's records."""
    root = cache_root() if cache is None else Path(cache)
    key = (
        f"{_checked_name('fingerprint', fingerprint)}-{_checked_name('settings', settings_digest)}"
    )
    return root / "replicates" / _checked_name("experiment", experiment) / key


# ---------------------------------------------------------------------------------------------
# Evidence tables in the repository
# ---------------------------------------------------------------------------------------------


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def write_evidence(
    table: pd.DataFrame,
    experiment: str,
    path: str | os.PathLike,
    configurations: Mapping[str, Mapping[str, Any]],
    fingerprint: str | None = None,
) -> Path:
    """Write an experiment's aggregated table and its sidecar naming the fingerprint.

    Parameters
    ----------
    table
        One row per replicate with a ``configuration`` column.
    experiment
        A key of :data:`EXPERIMENTS`.
    path
        The CSV file (e.g. ``docs/evidence/sbc.csv``); the sidecar is the same name with
        ``.json``.
    configurations
        Each configuration's settings (those the replicates ran with).
    fingerprint
        Default :func:`code_fingerprint` of ``experiment`` now. Every record behind ``table``
        must carry it.

    Returns
    -------
    pathlib.Path
        The CSV file.
    """
    path = Path(path)
    if "configuration" not in table:
        raise BayesReviewError("write_evidence: the table needs a 'configuration' column")
    parts = fingerprint_parts(experiment)
    fingerprint = _combine(parts) if fingerprint is None else fingerprint
    present = list(dict.fromkeys(table["configuration"]))
    unknown = sorted(set(present) - set(configurations))
    if unknown:
        raise BayesReviewError(f"write_evidence: configurations without settings: {unknown}")
    out = table.copy()
    out.insert(1, "fingerprint", fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, float_format="%.8g")
    meta = {
        "experiment": experiment,
        "fingerprint": fingerprint,
        "regenerate": REGENERATE.get(experiment, ""),
        "files": parts,
        "compiled_for": _processors(table),
        "configurations": {
            name: {
                "settings_hash": settings_hash(configurations[name]),
                "replicates": int((table["configuration"] == name).sum()),
                "settings": canonical(configurations[name]),
            }
            for name in present
        },
    }
    _sidecar(path).write_text(json.dumps(meta, indent=1, sort_keys=False) + "\n", "utf-8")
    return path


def _processors(table: pd.DataFrame) -> list[str]:
    """The processors the replicates' likelihoods were compiled for (``compiled_for``, one
    per replicate where the records hold it): ranks reproduce on the same processor only."""
    if "compiled_for" not in table:
        return []
    return sorted(set(table["compiled_for"].dropna()))


def processors_sentence(table: pd.DataFrame) -> str:
    """A sentence for an evidence page: the processors its replicates' likelihoods were
    compiled for (:func:`_processors`), on which alone their draws reproduce."""
    processors = _processors(table)
    if not processors:
        return "The records do not say which processor numba compiled their likelihoods for."
    recorded = int(table["compiled_for"].notna().sum())
    where = "every replicate" if recorded == len(table) else f"{recorded} of {len(table)}"
    names = ", ".join(f"`{p}`" for p in processors)
    return f"Likelihoods compiled for {names} ({where}; `bayesreview.backend.compiled_for`)."


def read_evidence(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any]]:
    """An evidence table written by :func:`write_evidence` and its sidecar's contents.

    Raises
    ------
    BayesReviewError
        When the table or its sidecar is missing or unreadable.
    """
    path = Path(path)
    try:
        meta = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise BayesReviewError(
            f"{path}: cannot read the evidence table or its sidecar ({exc})"
        ) from None
    return table, meta


def check_evidence(
    experiment: str,
    path: str | os.PathLike,
    configurations: Mapping[str, Mapping[str, Any]],
    min_replicates: Mapping[str, int] | int = 0,
) -> list[str]:
    """What makes a committed evidence table stale or incomplete; empty when it is current.

    Parameters
    ----------
    experiment
        A key of :data:`EXPERIMENTS`.
    path
        The table, e.g. ``docs/evidence/sbc.csv``.
    configurations
        The configurations the table must hold, with their settings today.
    min_replicates
        Least replicates per configuration (one number for all, or per configuration).

    Returns
    -------
    list of str
        One sentence per problem: a missing table, a fingerprint other than today's code's (with
        the files that changed), settings that changed, a configuration missing or short of
        replicates; each says which command regenerates the table.
    """
    path = Path(path)
    command = REGENERATE.get(experiment, "the docs script")
    again = f"regenerate with `{command}`"
    if not path.is_file() or not _sidecar(path).is_file():
        return [f"{path} (or its sidecar {_sidecar(path).name}) is missing: {again}"]
    try:
        table, meta = read_evidence(path)
    except BayesReviewError as exc:
        return [f"{exc}: {again}"]
    problems = []
    parts = fingerprint_parts(experiment)
    today = _combine(parts)
    recorded = meta.get("fingerprint")
    if recorded != today:
        old = meta.get("files", {})
        changed = sorted(k for k in set(parts) | set(old) if parts.get(k) != old.get(k))
        problems.append(
            f"{path} was made by code with fingerprint {recorded}, today's code has {today} "
            f"(changed since: {', '.join(changed) or 'unknown'}): the evidence does not test "
            f"today's code; {again}"
        )
    if "fingerprint" in table and set(table["fingerprint"].astype(str)) - {str(recorded)}:
        problems.append(f"{path}: rows of another fingerprint than its sidecar's: {again}")
    counts = table["configuration"].value_counts() if "configuration" in table else {}
    stored = meta.get("configurations", {})
    for name, settings in configurations.items():
        need = (
            min_replicates.get(name, 0) if isinstance(min_replicates, Mapping) else min_replicates
        )
        have = int(counts.get(name, 0))
        if have == 0:
            problems.append(f"{path}: configuration {name!r} is missing: {again}")
            continue
        if stored.get(name, {}).get("settings_hash") != settings_hash(settings):
            problems.append(f"{path}: configuration {name!r} ran with other settings: {again}")
        if have < need:
            problems.append(
                f"{path}: configuration {name!r} has {have} replicates, fewer than {need}: {again}"
            )
    return problems
