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

This relies on nutpie internals (written against nutpie 0.16); :func:`compile_model` falls back
to ``nutpie.compile_pymc_model`` when they do not fit.

A numba C callback cannot raise: an exception inside the log-density is printed and the
callback returns 0. The callbacks therefore set the log-density (and every output) to NaN
before evaluating, so a failed evaluation reads as a non-finite log-density, which the sampler
treats as a divergent transition (reported by ``Fit.diagnostics``), never as a valid point.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from bayesreview._fork import reap, start_in_fork

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

    def expand() -> Any:
        return _callback(_EXPAND_TEMPLATE, expand_pt, expand_signature, *sizes)

    # On a first run both callbacks are compiled from scratch: the expand callback is compiled
    # in a forked process on the second CPU meanwhile, and then loaded from the disk cache.
    child = start_in_fork(expand)
    try:
        logp_callback = _callback(_LOGP_TEMPLATE, logp_pt, logp_signature, *sizes)
    finally:
        reap(child)
    expand_callback = expand()

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


def compile_model(model: Any):
    """:func:`compile_cached`, or nutpie's own compilation where nutpie's internals differ."""
    import nutpie
    from numba.core.errors import NumbaError

    try:
        return compile_cached(model)
    except (ImportError, AttributeError, KeyError, TypeError, ValueError, NumbaError):
        return nutpie.compile_pymc_model(model)
