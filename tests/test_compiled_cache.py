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
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pymc as pm
import pytest
from conftest import quiet_fit

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
    # compiles and stores the callbacks, the second must load both from disk.
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
    assert hits == [["0", "0"], ["1", "1"]]


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


def test_the_likelihood_ops_cache_key_does_not_depend_on_what_the_process_did_before():
    # The key of the likelihood Ops' numba code was once a hash of marshal.dumps of the
    # kernels' code objects, whose bytes depend on reference counts: once numba had compiled
    # one model, the next model got another key than in a fresh process and was compiled
    # again (the warm `analyze` recompiled). Holding more references to the kernels' code,
    # constants and names (what compiling does) must leave every Op's key unchanged.
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

    from bayesreview.backend import ops

    op_types = (ops.BetaBinomialRows, ops.LogitNormalRows, ops.TabulatedBetaBinomial)
    before = [numba_funcify_and_cache_key(op_type())[1] for op_type in op_types]
    codes = [f.py_func.__code__ for f in vars(ops).values() if hasattr(f, "py_func")]
    held = [part for code in codes for part in (*code.co_consts, *code.co_names)]
    ops._kernel_version.cache_clear()  # computed once per process: compute it again
    after = [numba_funcify_and_cache_key(op_type())[1] for op_type in op_types]
    assert held and None not in before and before == after


@pytest.mark.slow
def test_the_likelihood_ops_compile_their_kernel_for_one_type_of_inputs():
    # numba compiles a kernel once per type of its inputs, and PyTensor hands the Ops strided
    # views in some graphs and read-only constants in others: the joint response model's
    # first fit compiled the per-study kernel three times. Given such inputs, the Op's numba
    # code must call the kernel with C-contiguous, writable arrays only (a fresh process, so
    # that the kernel's signatures are those of this call alone) and give the same value.
    script = textwrap.dedent(
        """
        import numpy as np
        from pytensor.link.numba.dispatch.basic import numba_funcify
        from bayesreview.backend.ops import BetaBinomialRows, beta_binomial_rows
        from conftest import rows_op_inputs
        rng = np.random.default_rng(0)
        trials = rng.integers(1, 15, 12).astype(float)
        events = np.vstack([rng.binomial(trials.astype(int), 0.6)] * 2).astype(float)
        inputs = [
            rng.normal(0.0, 1.0, (2, 3)), rng.normal(1.0, 1.0, (2, 3)),
            np.column_stack([np.zeros(2), rng.normal(0.0, 0.5, (2, 2))]), np.zeros((2, 12)),
            np.log(np.full(3, 1 / 3)), np.zeros(0), rng.integers(0, 3, 12),
            events, np.vstack([trials, events[0]]), np.ones(12), rng.integers(0, 3, 12),
            np.ones(12), np.full(3, -1, dtype=np.int64),
        ]
        parameters, data = rows_op_inputs(inputs[:5], inputs[6:])  # no selection
        plain = [*parameters, *data]
        wide = np.zeros(6)
        wide[::2] = plain[0]
        frozen = plain[8].copy()
        frozen.flags.writeable = False
        odd = [wide[::2], *plain[1:8], frozen, *plain[9:]]
        node = numba_funcify(BetaBinomialRows(2))
        print(float(node(*odd)[0]), float(node(*plain)[0]), float(beta_binomial_rows(*inputs)[0]))
        for signature in beta_binomial_rows.signatures:
            arrays = [t for t in signature if hasattr(t, "layout")]
            print(all(t.layout == "C" and t.mutable for t in arrays), len(arrays))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    values, *signatures = done.stdout.split("\n")[:-1]
    odd_value, plain_value, kernel_value = map(float, values.split())
    assert np.isfinite(plain_value) and odd_value == plain_value == kernel_value
    assert signatures == ["True 13"]


# ---- bounded, verified, never a silent fallback (issue 16) ---------------------------------


def test_untested_versions_are_named():
    from bayesreview.backend.nutpie_cache import TESTED_VERSIONS, untested_versions

    inside = {name: low + ".3" for name, (low, _) in TESTED_VERSIONS.items()}
    assert untested_versions(inside) == []
    outside = {**inside, "nutpie": "0.17.0"}
    (reason,) = untested_versions(outside)
    assert reason.startswith("nutpie 0.17.0") and "tested: 0.16 to below 0.17" in reason
    assert untested_versions({**inside, "numba": "0.65.0rc1"}) == []


def _is_nutpie_own(compiled) -> bool:
    return compiled.compiled_logp_func._pyfunc.__name__ != "logp_callback"


def test_a_version_outside_the_tested_range_falls_back_with_a_warning(response_model, monkeypatch):
    from bayesreview.backend import nutpie_cache

    _, model = response_model
    monkeypatch.setitem(nutpie_cache.TESTED_VERSIONS, "nutpie", ("9.0", "9.1"))
    with pytest.warns(br.BackendFallbackWarning, match=r"nutpie .* \(tested: 9.0 to below 9.1\)"):
        compiled = compile_model(model)
    assert _is_nutpie_own(compiled)


def test_a_changed_private_layout_is_caught_by_the_verification(response_model, monkeypatch):
    # Simulate a nutpie whose user-data record has moved: the generated callbacks read each
    # array from the place where the next one is. Nothing raises; only the check against
    # PyTensor's own log density can notice, and it must.
    from bayesreview.backend import nutpie_cache

    _, model = response_model
    original = nutpie_cache._header_layout

    def shifted(record, shared_data):
        layout = original(record, shared_data)
        names = sorted(layout, key=lambda n: layout[n][0])
        moved = {}
        for name, other in zip(names, names[1:] + names[:1], strict=True):
            data_at, shape_at, ndim, dtype = layout[name]
            if layout[other][2] == ndim and layout[other][3] == dtype:
                data_at, shape_at = layout[other][0], layout[other][1]
            moved[name] = (data_at, shape_at, ndim, dtype)
        return moved

    monkeypatch.setattr(nutpie_cache, "_header_layout", shifted)
    monkeypatch.setattr(nutpie_cache, "_cache_key", lambda graph_key, source: None)  # no reuse
    with pytest.warns(br.BackendFallbackWarning, match="differs from PyTensor"):
        compiled = compile_model(model)
    assert _is_nutpie_own(compiled)


def test_switching_the_cache_off_is_quiet(response_model, monkeypatch, recwarn):
    _, model = response_model
    monkeypatch.setenv("BAYESREVIEW_NUTPIE_CACHE", "0")
    assert _is_nutpie_own(compile_model(model))
    assert not [w for w in recwarn if issubclass(w.category, br.BackendFallbackWarning)]


def test_cached_and_uncached_routes_give_the_same_posterior(monkeypatch):
    from bayesreview.backend.sampling import clear_compiled_models

    studies = br.load_dataset("calcinosis_cutis")
    options = {"outcome": "any", "draws": 500, "tune": 500, "chains": 2, "seed": 4}
    clear_compiled_models()
    cached = quiet_fit(studies, progressbar=False, **options)
    monkeypatch.setenv("BAYESREVIEW_NUTPIE_CACHE", "0")
    clear_compiled_models()
    plain = quiet_fit(studies, progressbar=False, **options)
    clear_compiled_models()
    a, b = cached.draws("rate", "any"), plain.draws("rate", "any")
    # two independent-looking runs of 1000 draws: means agree within 4 Monte Carlo SEs
    se = np.sqrt(a.var("sample") / 250 + b.var("sample") / 250)  # ESS >= 250 per run
    assert (np.abs(a.mean("sample") - b.mean("sample")) < 4 * se).all()


def _metadat(name: str, by: str):
    import pandas as pd

    table = pd.read_csv(Path(__file__).parent / "data" / f"{name}.csv")
    return br.read_studies(table.assign(group=table[by]))


def test_callbacks_read_a_data_set_of_another_shape(monkeypatch):
    # one compiled model serves data sets of other numbers of studies and groups: built on
    # debruin2009 (13 studies, 2 groups), evaluated on pritz1997 (14 studies, 1 group: its
    # heterogeneity is not pooled), the callbacks must equal PyMC's log-density of pritz1997
    from bayesreview.model_data import pad_groups

    spec = br.load_spec("beta_binomial")
    first, second = (
        pad_groups(model_data(_metadat(name, by), "events", by="group"), 8)
        for name, by in (("debruin2009", "ethnicity"), ("pritz1997", "modality"))
    )
    assert (first.n_rows, first.n_data_groups) != (second.n_rows, second.n_data_groups)
    model = build_model(first, spec)
    compiled = compile_cached(model)
    arrays = data_arrays(second, spec)
    assert arrays["log_phi_pooled"] == 0.0
    x = np.random.default_rng(3).normal(0.0, 1.0, compiled.n_dim)
    code, logp, grad = _call_logp(compiled.with_data(**arrays), x)
    with model:
        pm.set_data(arrays)
    expected_logp, expected_grad = _pymc_logp_and_gradient(model)(_point(compiled, x))
    assert code == 0
    assert logp == pytest.approx(expected_logp, rel=1e-10)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-8, atol=1e-10)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_data_sets_of_other_shapes_share_one_compiled_model(monkeypatch):
    # a new user's data sets: 1 or 2 groups, 13 to 35 studies, n up to 7,178; one model build
    from bayesreview.backend import sampling

    builds = []
    original = sampling.build_model
    monkeypatch.setattr(
        sampling, "build_model", lambda *args: builds.append(args[0].structure()) or original(*args)
    )
    sampling.clear_compiled_models()
    options = {"outcome": "events", "by": "group", "draws": 100, "tune": 100, "chains": 2}
    for name, by in (
        ("pritz1997", "modality"),
        ("hannum2020", "objectivity"),
        ("debruin2009", "ethnicity"),
    ):
        quiet_fit(_metadat(name, by), seed=1, progressbar=False, **options)
    sampling.clear_compiled_models()
    assert len(builds) == 1


def test_network_data_sets_of_other_shapes_share_one_compiled_model(monkeypatch):
    # hasselblad1998 (50 arms of 24 trials, 3 log odds ratios) and the same less every third
    # trial (33 arms of 16 trials): one model build, padded; each posterior holds the data's
    # own arms, studies and treatments only
    from bayesreview.backend import network, sampling

    builds = []
    original = network.network_model
    monkeypatch.setattr(
        network, "network_model", lambda *args: builds.append(args[:2]) or original(*args)
    )
    sampling.clear_compiled_models()
    trials = br.read_studies(Path(__file__).parent / "data" / "hasselblad1998.csv")
    kept = [k % 3 != 2 for k in range(trials["study"].nunique())]
    fewer = trials[trials["study"].isin(trials["study"].unique()[kept])]
    options = {"outcome": "events", "draws": 50, "tune": 50, "chains": 2}
    for table in (trials, fewer):
        fitted = quiet_fit(
            table, model="network", reference="no_contact", seed=1, progressbar=False, **options
        )
        posterior = fitted.idata.posterior
        assert posterior.sizes["arm"] == len(table)
        assert posterior.sizes["study"] == table["study"].nunique()
        assert sorted(posterior["contrast"].values) == sorted(
            set(table["modality"]) - {"no_contact"}
        )
    sampling.clear_compiled_models()
    assert len(builds) == 1


_CONTAINER_CASES = {
    "default": ({"outcome": "any"}, "beta_binomial", False),
    "logit_normal": ({"outcome": "any"}, "logit_normal", False),
    "response": ({"outcome": "response", "by": "group"}, "response", False),
    "response_tabulated": ({"outcome": "response", "by": "group"}, "response", True),
    "levels_given": ({"outcome": "any", "bias": "design"}, "beta_binomial", False),
    "levels_missing": ({"outcome": "any", "bias": "risk_of_bias"}, "beta_binomial", False),
    "known_totals": (
        {"outcome": "any", "bias": "risk_of_bias", "bias_totals": "dataset"},
        "beta_binomial",
        False,
    ),
    "selection": ({"outcome": "any"}, "selection", False),
    "numeric": ({"outcome": "any", "bias": "year"}, "logit_normal", False),
}


@pytest.mark.parametrize("case", list(_CONTAINER_CASES))
def test_refit_arrays_set_every_data_container_of_the_model(case):
    # A refit swaps data in through data_arrays: a container it left out would keep the first
    # data set's values (or fail on another number of studies), so the two must name the same
    # containers, with values of the shapes the model was built with.
    studies = br.load_dataset("calcinosis_cutis").assign(year=lambda t: np.arange(len(t)) / 10)
    kwargs, spec_name, tabulated = _CONTAINER_CASES[case]
    if kwargs.get("bias_totals") == "dataset":
        totals = br.dataset_info("calcinosis_cutis")["risk_of_bias_totals"]
        kwargs = {**kwargs, "bias_totals": totals}
    data = model_data(studies, **kwargs)
    spec = br.load_spec(spec_name)
    table = tabulate(data) if tabulated else None
    model = build_model(data, spec, table)
    containers = {variable.name: variable.get_value() for variable in model.data_vars}
    arrays = data_arrays(data, spec, table)
    assert ("bias_value" in containers) == (case == "numeric")
    assert set(arrays) == set(containers)
    for name, values in arrays.items():
        assert np.shape(values) == np.shape(containers[name]), name
        np.testing.assert_array_equal(values, containers[name], err_msg=name)


@pytest.mark.parametrize(
    "options",
    [
        {"outcome": "any", "bias": "risk_of_bias"},  # the level probabilities' simplex Ops
        {"outcome": "response", "by": "group"},  # the two-stage rows Op
    ],
)
def test_the_verification_compiles_nothing_and_agrees_with_pymc(options):
    # verify() evaluates PyTensor's graph with the Python linker: the same values as PyMC's
    # own log density (its default backend), and no numba compilation (which would cost a
    # second compile of the log density, about 1.4 s per model)
    from numba.core import event

    from bayesreview.backend.nutpie_cache import python_reference, verify

    studies = br.load_dataset("calcinosis_cutis")
    data = model_data(studies, **options)
    spec = br.load_spec("response" if options["outcome"] == "response" else "beta_binomial")
    model = build_model(data, spec)
    compiled = compile_cached(model)
    compiled.logp_func(np.zeros(compiled.n_dim))  # its numba version is compiled, whatever
    started = []

    class Compiles(event.Listener):
        def on_start(self, ev):
            started.append(ev.data.get("dispatcher"))

        def on_end(self, ev):
            pass

    listener = Compiles()
    event.register("numba:compile", listener)
    try:
        assert verify(compiled) is None
        x = np.random.default_rng(3).normal(0.0, 1.0, compiled.n_dim)
        logp, grad = python_reference(compiled.logp_func)(x)
    finally:
        event.unregister("numba:compile", listener)
    assert started == []
    expected_logp, expected_grad = _pymc_logp_and_gradient(model)(_point(compiled, x))
    assert float(logp) == pytest.approx(expected_logp, rel=1e-10)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-10)
