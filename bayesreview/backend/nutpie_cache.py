"""nutpie models whose compiled callbacks are cached on disk, so a new process skips compiling.

``nutpie.compile_pymc_model`` compiles the log-density and its gradient with numba and wraps
them in C callbacks (``numba.cfunc``) for its Rust sampler. PyTensor caches the numba code of
the log-density itself on disk, but nutpie's callbacks hold the data arrays as constants, which
numba cannot cache: every new process spent about 8 s compiling them again (most of the time
``bayesreview analyze`` took). :func:`compile_cached` builds the same ``CompiledPyMCModel`` with
callbacks that read the data arrays through nutpie's user-data record instead, generated as
source with a cache key (PyTensor's key of the compiled graph, the layout of the data and the
versions), so numba stores them in PyTensor's numba cache folder and a later process loads them
in a fraction of a second. Sampling is unchanged: same log-density, same gradient, same
sampler.

This relies on nutpie's, PyTensor's and numba's internals, so it is bounded to the versions it
was tested against (:data:`TESTED_VERSIONS`) and verified when it loads: the callbacks'
log density and gradient must equal those of PyTensor's graph evaluated without numba at test
points (:func:`verify`). Otherwise
:func:`compile_model` warns (:class:`~bayesreview.BackendFallbackWarning`) and falls back to
``nutpie.compile_pymc_model``; it never falls back silently. Nothing here forks: both
callbacks compile in this process.

A numba C callback cannot raise: an exception inside the log-density is printed and the
callback returns 0. The callbacks therefore set the log-density (and every output) to NaN
before evaluating, so a failed evaluation reads as a non-finite log-density, which the sampler
treats as a divergent transition (reported by ``Fit.diagnostics``), never as a valid point.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from typing import Any

import numpy as np

from bayesreview.errors import BackendFallbackWarning

_WORD = 8  # bytes per entry of nutpie's user-data record (uintp / uint64)

_LOGP_TEMPLATE = """
def logp_callback(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    logp_out = numba.carray(logp_, (1,))
    out = numba.carray(out_, ({n_dim},))
    logp_out[0] = np.nan
    for i in range({n_dim}):
        out[i] = np.nan
    x = numba.carray(x_, ({n_dim},))
    header = numba.carray(user_data_, ({n_header},), np.uint64)
{arrays}
    logp_value, grad = FUNCTION({arguments})
    finite_grad = True
    for i in range({n_dim}):
        out[i] = grad[i]
        if not np.isfinite(grad[i]):
            finite_grad = False
    logp_out[0] = logp_value
    if not finite_grad:
        return 3
    if not np.isfinite(logp_value):
        return 4
    return 0
"""

_EXPAND_TEMPLATE = """
def expand_callback(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim} or expanded != {n_expanded}:
        return -1
    out = numba.carray(out_, ({n_expanded},))
    for i in range({n_expanded}):
        out[i] = np.nan
    x = numba.carray(x_, ({n_dim},))
    header = numba.carray(user_data_, ({n_header},), np.uint64)
{arrays}
    (values,) = FUNCTION({arguments})
    for i in range({n_expanded}):
        out[i] = values[i]
    return 0
"""


def _header_layout(record: np.dtype, shared_data: dict[str, np.ndarray]) -> dict[str, tuple]:
    """Where each data array's address and shape sit in nutpie's user-data record, in words.

    The record is ``shared.data.<name>`` (address), ``shared.size.<name>``, and
    ``shared.shape.<name>`` (one entry per dimension), all 8-byte unsigned integers.
    """
    shared, shared_offset = record.fields["shared"]
    layout = {}
    for name, values in shared_data.items():
        address_type, address_offset = shared["data"].fields[name]
        shape_type, shape_offset = shared["shape"].fields[name]
        data_at = shared_offset + shared.fields["data"][1] + address_offset
        shape_at = shared_offset + shared.fields["shape"][1] + shape_offset
        if (
            address_type.itemsize != _WORD
            or shape_type.base.itemsize != _WORD
            or shape_type.base.kind != "u"
            or shape_type.shape != (values.ndim,)
            or data_at % _WORD
            or shape_at % _WORD
        ):
            raise ValueError(f"unexpected nutpie user-data layout for {name!r}")
        layout[name] = (data_at // _WORD, shape_at // _WORD, values.ndim, values.dtype)
    if record.itemsize % _WORD:
        raise ValueError("unexpected nutpie user-data size")
    return layout


def _callback_source(
    template: str,
    n_dim: int,
    n_expanded: int,
    n_header: int,
    arrays: list[tuple[int, int, int, np.dtype]],
) -> str:
    """Source of one C callback: read each array from the record, call FUNCTION, copy out."""
    lines = []
    for i, (data_at, shape_at, ndim, dtype) in enumerate(arrays):
        shape = ", ".join(f"header[{shape_at + d}]" for d in range(ndim))
        shape = f"({shape},)" if ndim == 1 else f"({shape})"
        lines.append(
            f"    array{i} = numba.carray(as_pointer(header[{data_at}]), {shape}, np.{dtype.name})"
        )
    arguments = ", ".join(["x", *(f"array{i}" for i in range(len(arrays)))])
    return template.format(
        n_dim=n_dim,
        n_expanded=n_expanded,
        n_header=n_header,
        arrays="\n".join(lines),
        arguments=arguments,
    )


def _cache_key(graph_key: str | None, source: str) -> str | None:
    """None (do not cache) when PyTensor could not key the compiled graph."""
    if graph_key is None:
        return None
    import numba
    import nutpie
    import pytensor

    # the module's name too: cached code refers to its globals by module, so code cached by a
    # module that has since moved or been renamed is never loaded
    versions = [__name__, nutpie.__version__, pytensor.__version__, numba.__version__]
    return hashlib.sha256("\n".join([graph_key, source, *versions]).encode()).hexdigest()


def _callback(template, function_pt, signature, n_dim, n_expanded, layout, n_header):
    """A numba C callback calling the PyTensor-compiled ``function_pt`` on nutpie's data."""
    import numba
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

    function = function_pt.vm.jit_fn
    arrays = [layout[variable.name] for variable in function_pt.get_shared()]
    source = _callback_source(template, n_dim, n_expanded, n_header, arrays)
    key = _cache_key(CACHED_SRC_FUNCTIONS.get(function.py_func), source)
    name = source.split("def ", 1)[1].split("(", 1)[0]
    python_function = compile_numba_function_src(
        source,
        name,
        global_env={
            "__name__": __name__,
            "numba": numba,
            "np": np,
            "as_pointer": address_as_void_pointer,
            "FUNCTION": function,
        },
        cache_key=key,
    )
    return numba.cfunc(signature, cache=key is not None)(python_function)


def compile_cached(model: Any):
    """``nutpie.compile_pymc_model(model)`` with C callbacks cached on disk.

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
        Usable wherever nutpie's own compiled model is (``with_data``, ``nutpie.sample``).
    """
    import numba
    from nutpie.compile_pymc import (
        CompiledPyMCModel,
        _make_functions,
        _prepare_dims_and_coords,
        _wrap_with_lock,
        make_user_data,
    )
    from pymc.initial_point import make_initial_point_fn

    initial_point = _wrap_with_lock(
        make_initial_point_fn(
            model=model,
            default_strategy="support_point",
            jitter_rvs=set(model.free_RVs),
            return_transformed=True,
        )
    )
    n_dim, n_expanded, logp_pt, expand_pt, initial_point_flat, shape_info = _make_functions(
        model,
        mode="NUMBA",
        compute_grad=True,
        join_expanded=True,
        pymc_initial_point_fn=initial_point,
    )
    shared_vars, shared_data = {}, {}
    for variable in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        if variable.name in shared_vars and shared_vars[variable.name] is not variable:
            raise ValueError(f"shared variables must have unique names: {variable.name}")
        shared_vars[variable.name] = variable
        shared_data[variable.name] = np.array(variable.get_value(), order="C", copy=True)
    for values in shared_data.values():
        values.flags.writeable = False
    user_data = make_user_data(shared_vars, shared_data)
    layout = _header_layout(user_data.dtype, shared_data)
    n_header = user_data.dtype.itemsize // _WORD

    types = numba.types
    double_pointer = types.CPointer(types.double)
    logp_signature = types.int64(
        types.uint64, double_pointer, double_pointer, double_pointer, types.voidptr
    )
    expand_signature = types.int64(
        types.uint64, types.uint64, double_pointer, double_pointer, types.voidptr
    )
    sizes = (n_dim, n_expanded, layout, n_header)

    logp_callback = _callback(_LOGP_TEMPLATE, logp_pt, logp_signature, *sizes)
    expand_callback = _callback(_EXPAND_TEMPLATE, expand_pt, expand_signature, *sizes)

    dims, coords = _prepare_dims_and_coords(model, shape_info)
    return CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp_callback,
        compiled_expand_func=expand_callback,
        initial_point_func=initial_point_flat,
        shared_data=shared_data,
        user_data=user_data,
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_pt,
        expand_func=expand_pt,
    )


#: Versions whose private layout this module was written and tested against, [from, below).
#: Outside them the cached callbacks are not used (:func:`compile_model` warns and falls back).
TESTED_VERSIONS: dict[str, tuple[str, str]] = {
    "nutpie": ("0.16", "0.17"),
    "pytensor": ("2.38", "2.39"),
    "numba": ("0.65", "0.66"),
}
#: Set this environment variable to ``0`` to skip the cached callbacks (no warning).
CACHE_SWITCH = "BAYESREVIEW_NUTPIE_CACHE"
#: The cached callbacks must reproduce PyTensor's log density and gradient to this tolerance.
VERIFY_RTOL = 1e-9


def _release(version: str) -> tuple[int, ...]:
    """(major, minor, ...) of a version string, ignoring suffixes such as ``rc1`` or ``+local``."""
    parts = []
    for part in version.split("+")[0].split("."):
        digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def untested_versions(installed: dict[str, str] | None = None) -> list[str]:
    """``"nutpie 0.18.0 (tested: 0.16 to below 0.17)"`` for each library outside
    :data:`TESTED_VERSIONS`; empty when all are inside. ``installed`` defaults to the imported
    libraries' ``__version__``."""
    if installed is None:
        import numba
        import nutpie
        import pytensor

        installed = {
            "nutpie": nutpie.__version__,
            "pytensor": pytensor.__version__,
            "numba": numba.__version__,
        }
    out = []
    for name, (low, high) in TESTED_VERSIONS.items():
        version = installed[name]
        if not _release(low) <= _release(version) < _release(high):
            out.append(f"{name} {version} (tested: {low} to below {high})")
    return out


def _callback_values(compiled: Any, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Log density and gradient at the flat point ``x`` from the compiled C callback."""
    import ctypes

    doubles = ctypes.POINTER(ctypes.c_double)
    x = np.ascontiguousarray(x, dtype=float)
    grad, logp = np.zeros(compiled.n_dim), np.zeros(1)
    compiled.compiled_logp_func.ctypes(
        compiled.n_dim,
        x.ctypes.data_as(doubles),
        grad.ctypes.data_as(doubles),
        logp.ctypes.data_as(doubles),
        ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    return float(logp[0]), grad


def python_reference(function: Any):
    """PyTensor's compiled log density and gradient ``function`` (a ``pytensor`` Function of
    one flat point), evaluated by PyTensor's Python linker instead of numba: the same
    optimised graph, with its data as explicit inputs taking the values PyTensor holds.

    Building it compiles no numba code, and neither does calling it: every Op runs its
    Python ``perform`` (the likelihood Ops call their numba kernels, already compiled, on
    arrays of the types the compiled graph gives them).
    """
    from pytensor.compile.function import function as pytensor_function
    from pytensor.compile.mode import Mode
    from pytensor.graph.replace import clone_replace

    graph = function.maker.fgraph
    data = [v for v in graph.inputs if hasattr(v, "get_value")]
    points = [v for v in graph.inputs if not hasattr(v, "get_value")]
    stand_ins = {v: v.type(name=v.name) for v in data}
    reference = pytensor_function(
        [*points, *stand_ins.values()],
        clone_replace(graph.outputs, replace=stand_ins),
        mode=Mode(linker="py", optimizer=None),
        accept_inplace=True,
    )
    values = [np.array(v.get_value(), copy=True) for v in data]
    return lambda x: reference(x, *values)


def verify(compiled: Any, points: int = 2) -> str | None:
    """Why the cached callbacks cannot be trusted, or None when they can.

    At ``points`` points (0, then standard-normal draws of a fixed seed, on the sampler's
    unconstrained scale) the callback's log density and gradient, which read the data through
    nutpie's user-data record, must equal those of the PyTensor graph they wrap evaluated
    without numba (:func:`python_reference`, with the data PyTensor holds) to
    :data:`VERIFY_RTOL`. Calling PyTensor's numba function instead would compile the log
    density a second time, for Python's arguments (about 1.4 s per model on a first run).
    """
    reference = python_reference(compiled.logp_func)
    rng = np.random.default_rng(0)
    for k in range(points):
        x = np.zeros(compiled.n_dim) if k == 0 else rng.standard_normal(compiled.n_dim)
        logp, grad = _callback_values(compiled, x)
        expected_logp, expected_grad = reference(x)
        same = np.allclose(logp, expected_logp, rtol=VERIFY_RTOL, atol=1e-12, equal_nan=True)
        same = same and np.allclose(
            grad, expected_grad, rtol=VERIFY_RTOL, atol=1e-12, equal_nan=True
        )
        if not same:
            return (
                f"at a test point the cached log density {logp!r} differs from PyTensor's "
                f"{float(expected_logp)!r}"
            )
    return None


def compile_model(model: Any):
    """:func:`compile_cached`, verified; else nutpie's own compilation, with a warning.

    The cached callbacks are used when the installed nutpie, PyTensor and numba are the
    versions they were tested against (:data:`TESTED_VERSIONS`), when they build without
    error, and when they reproduce PyTensor's log density and gradient (:func:`verify`).
    Otherwise a :class:`~bayesreview.BackendFallbackWarning` says why, and nutpie compiles the
    model itself: the same sampler and posterior, about 8 s more in every new process. Set
    ``BAYESREVIEW_NUTPIE_CACHE=0`` to choose that route without the warning.
    """
    import nutpie
    from numba.core.errors import NumbaError

    if os.environ.get(CACHE_SWITCH, "1") == "0":
        return nutpie.compile_pymc_model(model)
    reasons = untested_versions()
    if not reasons:
        failures = (ImportError, AttributeError, KeyError, TypeError, ValueError, NumbaError)
        try:
            compiled = compile_cached(model)
        except failures as exc:
            reasons = [f"building them failed ({type(exc).__name__}: {exc})"]
        else:
            try:
                problem = verify(compiled)
            except failures as exc:
                problem = f"checking them failed ({type(exc).__name__}: {exc})"
            if problem is None:
                return compiled
            reasons = [problem]
    warnings.warn(
        "bayesreview: not using its disk-cached nutpie callbacks ("
        + "; ".join(reasons)
        + "); nutpie compiles the model itself instead: the same posterior, about 8 s more "
        f"in every new process (set {CACHE_SWITCH}=0 to choose this without the warning)",
        BackendFallbackWarning,
        stacklevel=3,
    )
    return nutpie.compile_pymc_model(model)
