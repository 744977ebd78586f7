"""The disk-cached nutpie callbacks (bayesreview.backend.nutpie_cache) against PyMC's log-density.

The callbacks are what the sampler sees, so they are checked value for value: the log-density
and its gradient at random points equal PyMC's (compiled separately, by PyTensor's default
backend), before and after new data are swapped in, and a later process loads them from the
cache instead of compiling them.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pymc as pm
import pytest

import bayesreview as br
from bayesreview.backend.models import build_model
from bayesreview.backend.nutpie_cache import (
    _LOGP_TEMPLATE,
    _callback,
    compile_cached,
    compile_model,
)
from bayesreview.backend.sampling import data_arrays
from bayesreview.model_data import model_data, tabulate

_DOUBLES = ctypes.POINTER(ctypes.c_double)


def _call_logp(compiled, x: np.ndarray) -> tuple[int, float, np.ndarray]:
    """(return code, log-density, gradient) from the compiled C callback at the flat point x."""
    x = np.ascontiguousarray(x, dtype=float)
    grad, logp = np.zeros(compiled.n_dim), np.zeros(1)
    code = compiled.compiled_logp_func.ctypes(
        compiled.n_dim,
        x.ctypes.data_as(_DOUBLES),
        grad.ctypes.data_as(_DOUBLES),
        logp.ctypes.data_as(_DOUBLES),
        ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    return code, float(logp[0]), grad


def _point(compiled, x: np.ndarray) -> dict[str, np.ndarray]:
    """The flat point x as PyMC's dict of (transformed) values."""
    names, slices, shapes = compiled.shape_info
    return {
        name: x[part].reshape(shape)
        for name, part, shape in zip(names, slices, shapes, strict=True)
        if part.stop <= compiled.n_dim
    }


def _pymc_logp_and_gradient(model):
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    return lambda point: (logp(point), dlogp(point))


@pytest.fixture(scope="module")
def response_model():
    studies = br.load_dataset("calcinosis_cutis")
    data = model_data(studies, "response", by="group", bias="design")
    return data, build_model(data, br.load_spec("response"), tabulate(data))


def test_callbacks_equal_pymc_log_density_and_gradient(response_model):
    _, model = response_model
    compiled = compile_cached(model)
    reference = _pymc_logp_and_gradient(model)
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.normal(0.0, 1.0, compiled.n_dim)
        code, logp, grad = _call_logp(compiled, x)
        expected_logp, expected_grad = reference(_point(compiled, x))
        assert code == 0
        assert logp == pytest.approx(expected_logp, rel=1e-10)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-8, atol=1e-10)


def test_callbacks_read_new_data_swapped_in(response_model):
    # with_data (how refits reuse a compiled model) must change what the callbacks evaluate:
    # compare with PyMC's log-density after pm.set_data of the same arrays.
    data, model = response_model
    compiled = compile_cached(model)
    weights = np.ones(data.n_rows, dtype=np.int64)
    weights[:7] = 0  # leave out seven studies: other counts
    arrays = data_arrays(data, br.load_spec("response"), tabulate(replace(data, weights=weights)))
    x = np.random.default_rng(2).normal(0.0, 1.0, compiled.n_dim)
    before = _call_logp(
        compiled.with_data(**data_arrays(data, br.load_spec("response"), tabulate(data))), x
    )[1]
    after = _call_logp(compiled.with_data(**arrays), x)[1]
    lengths = {
        f"term{k.removeprefix('term_cell')}": len(v)
        for k, v in arrays.items()
        if k.startswith("term_cell")
    }
    with model:
        pm.set_data(arrays, coords={dim: range(n) for dim, n in lengths.items()})
    expected_logp, _ = _pymc_logp_and_gradient(model)(_point(compiled, x))
    assert after == pytest.approx(expected_logp, rel=1e-10)
    assert abs(after - before) > 1.0


def test_fit_uses_the_cached_callbacks(response_model):
    # compile_model falls back to nutpie's own compilation only where nutpie's internals differ;
    # with the nutpie this package is tested with, the cached callbacks must be what is used.
    _, model = response_model
    compiled = compile_model(model)
    assert compiled.compiled_logp_func._pyfunc.__name__ == "logp_callback"
    assert compiled.compiled_expand_func._pyfunc.__name__ == "expand_callback"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_failed_evaluation_reads_as_a_non_finite_log_density():
    # A numba C callback cannot raise: it prints the exception and returns 0. The log-density
    # must then be NaN (a divergent transition for the sampler), never a stale value.
    import numba

    @numba.njit
    def logp_and_gradient(x):
        if x[0] > 1.0:
            raise ValueError("outside the support")
        return -0.5 * (x**2).sum(), -x

    function = SimpleNamespace(vm=SimpleNamespace(jit_fn=logp_and_gradient), get_shared=list)
    types = numba.types
    signature = types.int64(
        types.uint64,
        types.CPointer(types.double),
        types.CPointer(types.double),
        types.CPointer(types.double),
        types.voidptr,
    )
    callback = _callback(_LOGP_TEMPLATE, function, signature, 2, 2, {}, 0)
    compiled = SimpleNamespace(
        compiled_logp_func=callback, n_dim=2, user_data=np.zeros(1, dtype=np.uint64)
    )
    code, logp, grad = _call_logp(compiled, np.array([0.5, -1.0]))
    assert (code, logp) == (0, pytest.approx(-0.625))
    np.testing.assert_array_equal(grad, [-0.5, 1.0])
    code, logp, grad = _call_logp(compiled, np.array([2.0, 0.0]))
    assert np.isnan(logp) and np.isnan(grad).all()


@pytest.mark.slow
def test_a_new_process_loads_the_callbacks_from_the_cache(tmp_path):
    # Two processes compile the same model with an empty PyTensor cache folder: the first
    # compiles and stores the callbacks, the second must load both from disk. (The first
    # compiles its expand callback in a forked child, where it can fork, and loads it from
    # the disk cache too.)
    script = textwrap.dedent(
        """
        import numpy as np, pymc as pm
        from bayesreview.backend.nutpie_cache import compile_cached
        with pm.Model(coords={"row": range(5)}) as model:
            y = pm.Data("y", np.arange(5.0), dims="row")
            mu = pm.Normal("mu", 0.0, 10.0)
            sigma = pm.HalfNormal("sigma", 5.0)
            pm.Potential("loglik", pm.logp(pm.Normal.dist(mu, sigma), y).sum())
        compiled = compile_cached(model)
        print(compiled.compiled_logp_func.cache_hits, compiled.compiled_expand_func.cache_hits)
        """
    )
    env = {"PYTENSOR_FLAGS": f"base_compiledir={tmp_path}", "PATH": "/usr/bin:/bin"}
    hits = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        hits.append(done.stdout.split()[-2:])
    first_expand = "1" if hasattr(os, "fork") else "0"
    assert hits == [["0", first_expand], ["1", "1"]]


@pytest.mark.slow
def test_the_per_study_model_has_the_same_cache_key_in_every_process(tmp_path):
    # A model is found in the disk cache only if PyTensor keys its compiled graph the same way
    # in every process. The per-study mixture model (bias levels missing) once got a different
    # node order, hence key, in each process, and a log-density (digamma) that could not be
    # cached at all: it was compiled again on every run.
    script = textwrap.dedent(
        """
        import bayesreview as br
        from bayesreview.model_data import model_data
        from bayesreview.backend.models import build_model
        from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS
        studies = br.load_dataset("calcinosis_cutis")
        data = model_data(studies, "response", by="group", bias="risk_of_bias")
        assert data.bias.n_missing > 0
        model = build_model(data, br.load_spec("response"))
        function = model.logp_dlogp_function(ravel_inputs=True, mode="NUMBA")._pytensor_function
        print(CACHED_SRC_FUNCTIONS.get(function.vm.jit_fn.py_func))
        """
    )
    env = {"PYTENSOR_FLAGS": f"base_compiledir={tmp_path}", "PATH": "/usr/bin:/bin"}
    keys = [
        subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout.split()[-1]
        for _ in range(2)
    ]
    assert keys[0] != "None" and keys[0] == keys[1]
