"""Sampling: the compiled model of a data shape, kept and reused, and the NUTS run.

A compiled model is kept for the rest of the session (at most :data:`MAX_COMPILED_MODELS`)
and reused for data of the same shape, so refits (leave-one-out, prior grids, simulations)
skip compilation: only the values of its ``pm.Data`` containers change
(:func:`data_arrays`).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any

import arviz as az
import numpy as np

from bayesreview.backend.models import build_model
from bayesreview.model_data import (
    TERM_NAMES,
    ModelData,
    Tabulated,
    anchor_groups,
    cell_covariates,
    selection_classes,
)
from bayesreview.spec import ModelSpec

__all__ = [
    "MAX_COMPILED_MODELS",
    "SAMPLERS",
    "TARGET_ACCEPT",
    "clear_compiled_models",
    "compiled_model",
    "data_arrays",
    "default_sampler",
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
    if spec.selection is not None:
        arrays["selection_class"] = selection_classes(data)
    for suffix, anchor in anchor_groups(data, spec).items():
        if anchor.any():
            arrays[f"log_phi_anchor_group{suffix}"] = anchor
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
    arrays = {"group_idx": data.group_idx, "weights": data.weights.astype(float)}
    if data.bias is not None:
        codes = data.bias.codes
        arrays["bias_code"] = codes if data.bias.kind == "numeric" else np.maximum(codes, 0)
        if data.bias.kind == "categorical" and data.bias.n_missing:
            arrays["bias_known"] = (codes >= 0).astype(float)
            if data.bias.known_totals:
                arrays["bias_totals"] = np.asarray(data.bias.totals, dtype=np.int64)
    for suffix, events, trials in data.stage_counts():
        arrays[f"events{suffix}"] = events
        arrays[f"trials{suffix}"] = trials
    return arrays


def compiled_model(
    data: ModelData, spec: ModelSpec, sampler: str, tabulated: Tabulated | None = None
):
    """(model, compiled nutpie model or None), built once per structure and spec."""

    shape = (
        data.structure()
        if tabulated is None
        else (
            "tabulated",
            data.outcome,
            tabulated.n_cells,
            tabulated.n_terms,
            None if data.bias is None else data.bias.kind,
        )
    )
    anchored = tuple(bool(anchor.any()) for anchor in anchor_groups(data, spec).values())
    key = (
        sampler,
        spec,
        shape,
        anchored,
        data.groups,
        None if data.bias is None else (data.bias.levels, data.bias.prior_counts),
    )
    if key in _COMPILED:
        _COMPILED.move_to_end(key)
    else:
        model = build_model(data, spec, tabulated)
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
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    progressbar: bool,
    tabulated: Tabulated | None = None,
) -> tuple[az.InferenceData, list[str]]:
    """Sample the model; returns the InferenceData and the names of the free parameters.

    ``data`` is what the model sees (collapsed or padded rows), or, with ``tabulated``, the
    sufficient counts of the beta-binomial likelihood.
    """
    model, compiled = compiled_model(data, spec, sampler, tabulated)
    free = [rv.name for rv in model.free_RVs]
    arrays = data_arrays(data, spec, tabulated)
    if sampler == "nutpie":
        import nutpie

        compiled = compiled.with_data(**arrays)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            idata = nutpie.sample(
                compiled,
                draws=draws,
                tune=tune,
                chains=chains,
                seed=seed,
                progress_bar=progressbar,
                cores=chains,
                save_warmup=False,
                target_accept=TARGET_ACCEPT,
            )
        return idata, free
    import pymc as pm

    with model:
        pm.set_data(arrays)
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=1,
            random_seed=seed,
            progressbar=progressbar,
            compute_convergence_checks=False,
            target_accept=TARGET_ACCEPT,
            return_inferencedata=True,
        )
    return idata, free
