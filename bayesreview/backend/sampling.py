"""Sampling: the compiled model of a data shape, kept and reused, and the NUTS run.

A compiled model is kept for the rest of the session (at most :data:`MAX_COMPILED_MODELS`)
and reused for data of the same shape, so refits (leave-one-out, prior grids, simulations)
skip compilation: only the values of its ``pm.Data`` containers change
(:func:`data_arrays`).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import arviz as az
import numpy as np

from bayesreview.backend.models import REPORTED_AS, build_model, known_totals_array, row_arrays
from bayesreview.errors import BayesReviewError
from bayesreview.model_data import (
    POOLED_LOG_SCALE,
    PRIOR_ONLY_GROUP,
    SMALLEST_GROUP_PADDING,
    TERM_NAMES,
    ModelData,
    Tabulated,
    cell_covariates,
    pad_groups,
    padded_size,
    pooling_arrays,
    prior_only_groups,
    selection_classes,
)
from bayesreview.spec import ModelSpec

__all__ = [
    "MAX_COMPILED_MODELS",
    "SAMPLERS",
    "TARGET_ACCEPT",
    "SamplerSettings",
    "cached_model",
    "checked_sampling",
    "clear_compiled_models",
    "compiled_model",
    "data_arrays",
    "default_sampler",
    "run_nuts",
    "sample",
]

#: Samplers ``fit`` can use. ``"nutpie"`` (Rust NUTS on a numba-compiled model) is the default
#: where installed; ``"pymc"`` is PyMC's own NUTS, the fallback.
SAMPLERS = ("nutpie", "pymc")

#: NUTS target acceptance rate. Above the samplers' 0.8: hierarchical models of few, tiny
#: studies have funnel-like posteriors where smaller steps avoid divergences. Measured on the
#: calcinosis data (12 seeds each): 0.8 gave divergences in 3 fits, 0.9 in none (also none in
#: 8 seeds of the logit-normal, joint and design-covariate models), 0.95 in none but with
#: 60% more gradient evaluations.
TARGET_ACCEPT = 0.9


@dataclass(frozen=True)
class SamplerSettings:
    """How NUTS runs: the sampler (one of :data:`SAMPLERS`), posterior draws per chain,
    tuning steps, chains, the random seed and whether to show progress."""

    sampler: str
    draws: int
    tune: int
    chains: int
    seed: int
    progressbar: bool = False


def checked_sampling(
    sampler: str | None,
    draws: int,
    tune: int,
    chains: int,
    seed: int | None = None,
    progressbar: bool = False,
) -> SamplerSettings:
    """The sampler settings of a fit: ``sampler`` (else :func:`default_sampler`), ``seed``
    (else drawn at random); BayesReviewError naming the argument that is wrong."""
    sampler = sampler or default_sampler()
    if sampler not in SAMPLERS:
        raise BayesReviewError(f"sampler={sampler!r}: must be one of {', '.join(SAMPLERS)}")
    for name, value, least in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if not isinstance(value, int | np.integer) or value < least:
            raise BayesReviewError(f"{name}={value!r}: must be a whole number >= {least}")
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    return SamplerSettings(sampler, int(draws), int(tune), int(chains), int(seed), progressbar)


def default_sampler() -> str:
    """``"nutpie"`` where it is installed, else ``"pymc"``."""
    try:
        import nutpie  # noqa: F401
    except ImportError:  # pragma: no cover - nutpie is a dependency
        return "pymc"
    return "nutpie"


# --------------------------------------------------------------------------------------------
# Sampling, with compiled models reused for data of the same shape
# --------------------------------------------------------------------------------------------

#: Compiled models kept in this process (least recently used dropped first).
MAX_COMPILED_MODELS = 32

_COMPILED: OrderedDict[tuple, tuple[Any, Any]] = OrderedDict()


def clear_compiled_models() -> None:
    """Forget every compiled model kept in this process (the disk cache is kept)."""
    _COMPILED.clear()


def data_arrays(
    data: ModelData, spec: ModelSpec, tabulated: Tabulated | None = None
) -> dict[str, np.ndarray]:
    """Values of the model's ``pm.Data`` containers for ``data`` (or its tabulated counts)."""
    arrays = _count_arrays(data, tabulated)
    arrays[PRIOR_ONLY_GROUP] = prior_only_groups(data)
    if spec.selection is not None:
        arrays["selection_class"] = selection_classes(data)
    name = POOLED_LOG_SCALE.get(spec.likelihood)
    for suffix, pooling in pooling_arrays(data, spec).items():
        arrays[f"{name}_anchor_group{suffix}"] = pooling["anchor_group"]
        arrays[f"{name}_pooled{suffix}"] = pooling["pooled"]
    return arrays


def _count_arrays(data: ModelData, tabulated: Tabulated | None) -> dict[str, np.ndarray]:
    """The counts, codes and weights the likelihood reads (per row, or tabulated per cell)."""
    if tabulated is not None:
        arrays = {"cell_group": tabulated.cell_group}
        if data.bias is not None:
            arrays["cell_covariates"] = cell_covariates(data, tabulated)
        for suffix, terms in tabulated.terms.items():
            arrays.update({f"{n}{suffix}": v for n, v in zip(TERM_NAMES, terms, strict=True)})
        return arrays
    arrays = row_arrays(data)
    if data.bias is not None and data.bias.known_totals:
        arrays["bias_totals"] = known_totals_array(data)
    for suffix, events, trials in data.stage_counts():
        arrays[f"events{suffix}"] = events
        arrays[f"trials{suffix}"] = trials
    return arrays


def compiled_model(
    data: ModelData, spec: ModelSpec, sampler: str, tabulated: Tabulated | None = None
):
    """(model, compiled nutpie model or None), built once per structure and spec.

    The structure (:meth:`ModelData.structure`: outcome, number of groups, bias structure)
    fixes the compiled model; the number of rows, cells and terms, the group labels and the
    counts do not, so data sets that differ only in them share one compiled model.
    """
    key = (
        sampler,
        spec,
        "tabulated" if tabulated is not None else "rows",
        data.structure(),
        None if data.bias is None else (data.bias.levels, data.bias.prior_counts),
    )
    return cached_model(key, lambda: build_model(data, spec, tabulated), sampler)


def cached_model(key: tuple, build: Callable[[], Any], sampler: str) -> tuple[Any, Any]:
    """(model, compiled nutpie model or None) kept under ``key``; ``build()`` makes the PyMC
    model the first time. Every model family shares this cache and its bound."""
    if key in _COMPILED:
        _COMPILED.move_to_end(key)
    else:
        model = build()
        compiled = None
        if sampler == "nutpie":
            from bayesreview.backend.nutpie_cache import compile_model

            compiled = compile_model(model)
        _COMPILED[key] = (model, compiled)
        while len(_COMPILED) > MAX_COMPILED_MODELS:
            _COMPILED.popitem(last=False)
    return _COMPILED[key]


def sample(
    data: ModelData,
    spec: ModelSpec,
    run: SamplerSettings,
    tabulated: Tabulated | None = None,
) -> tuple[az.InferenceData, list[str]]:
    """Sample the model; returns the InferenceData and the names of the free parameters.

    ``data`` is what the model sees (collapsed rows), or, with ``tabulated``, the sufficient
    counts of the beta-binomial likelihood. The model is fitted with its groups padded by
    prior-only groups (:func:`bayesreview.model_data.pad_groups`) to share compiled code with
    other data sets; the posterior returned holds ``data``'s groups only, under their labels,
    and none of the parameters that only the padding or a single group leaves prior-only; a
    parameter sampled on another scale is reported on its own (``REPORTED_AS``).
    """
    padded = pad_groups(data, padded_size(data.n_groups, SMALLEST_GROUP_PADDING))
    model, compiled = compiled_model(padded, spec, run.sampler, tabulated)
    idata = run_nuts(model, compiled, data_arrays(padded, spec, tabulated), run)
    unused = {**REPORTED_AS, **_prior_only_parameters(padded, spec)}
    free = []
    for rv in model.free_RVs:
        name = unused.get(rv.name, rv.name)
        if name is not None and name not in free:
            free.append(name)
    return _data_groups(idata, data, unused), free


def _prior_only_parameters(data: ModelData, spec: ModelSpec) -> dict[str, str | None]:
    """Free parameters of the partially pooled model that ``data`` leaves out of the posterior:
    name -> the name it is reported under (None: dropped).

    Without an anchor group the location's own value ``{log scale}_anchor`` is reported as
    the location ``{log scale}`` (the same draws); with one data group the spread and the
    standard normal deviations are prior-only (the model has one log scale).
    """
    name = POOLED_LOG_SCALE.get(spec.likelihood)
    unused: dict[str, str | None] = {}
    for suffix, pooling in pooling_arrays(data, spec).items():
        if not pooling["anchor_group"].any():
            unused[f"{name}_anchor{suffix}"] = f"{name}{suffix}"
        if not pooling["pooled"]:
            unused[f"{name}_sd{suffix}"] = None
            unused[f"{name}_raw{suffix}"] = None
    return unused


def _data_groups(
    idata: az.InferenceData, data: ModelData, unused: dict[str, str | None]
) -> az.InferenceData:
    """The posterior of ``data``'s own groups, labelled, without ``unused`` parameters."""
    posterior = idata.posterior.drop_vars([v for v in unused if v in idata.posterior])
    if "group" in posterior.dims:
        posterior = posterior.isel(group=slice(0, data.n_groups))
        posterior = posterior.assign_coords(group=list(data.groups))
    groups = {"posterior": posterior}
    if "sample_stats" in idata:
        groups["sample_stats"] = idata.sample_stats
    return az.InferenceData(**groups)


def run_nuts(
    model: Any,
    compiled: Any,
    arrays: dict[str, np.ndarray],
    run: SamplerSettings,
) -> az.InferenceData:
    """NUTS on ``model`` with its ``pm.Data`` containers set to ``arrays``: nutpie on
    ``compiled`` where it is given, else PyMC's sampler (one core)."""
    if compiled is not None:
        import nutpie

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return nutpie.sample(
                compiled.with_data(**arrays),
                draws=run.draws,
                tune=run.tune,
                chains=run.chains,
                seed=run.seed,
                progress_bar=run.progressbar,
                cores=run.chains,
                save_warmup=False,
                target_accept=TARGET_ACCEPT,
            )
    import pymc as pm

    with model:
        pm.set_data(arrays)
        return pm.sample(
            draws=run.draws,
            tune=run.tune,
            chains=run.chains,
            cores=1,
            random_seed=run.seed,
            progressbar=run.progressbar,
            compute_convergence_checks=False,
            target_accept=TARGET_ACCEPT,
            return_inferencedata=True,
        )
