"""Everything that touches PyMC, PyTensor and nutpie.

:mod:`~bayesreview.backend.models` builds the PyMC model of a :class:`~bayesreview.model_data.
ModelData` under a :class:`~bayesreview.spec.ModelSpec` (priors as PyMC variables:
:mod:`~bayesreview.backend.priors`), :mod:`~bayesreview.backend.ops` holds its likelihood Ops
(numba kernels with their gradients), :mod:`~bayesreview.backend.sampling` compiles, keeps and
samples models, and :mod:`~bayesreview.backend.nutpie_cache` keeps nutpie's compiled code on
disk; :func:`compiled_for` names the processor that numba compiles for, on which the draws
depend. The statistics above this package (data, model arrays, quantities, checks,
comparisons) read as plain numpy, pandas and xarray.
"""


def compiled_for() -> str:
    """The processor that numba compiles the likelihoods for: ``NUMBA_CPU_NAME`` where it is
    set, else this machine's, as LLVM names it (``"znver3"``, ``"skylake-avx512"``, ...).

    The draws depend on it: code compiled for another processor may round differently in the
    last bits, and over thousands of iterations the chains then part, so the same seed gives
    other draws of the same posterior (equal up to Monte Carlo error). ``NUMBA_CPU_NAME=generic``
    compiles for any processor of the architecture (more slowly), which takes the compiler's
    part out of such differences; the system's maths library may still differ between
    machines.
    """
    import numba
    from llvmlite import binding

    return numba.config.CPU_NAME or binding.get_host_cpu_name()
