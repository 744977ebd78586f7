"""Everything that touches PyMC, PyTensor and nutpie.

:mod:`~bayesreview.backend.models` builds the PyMC model of a :class:`~bayesreview.model_data.
ModelData` under a :class:`~bayesreview.spec.ModelSpec` (priors as PyMC variables:
:mod:`~bayesreview.backend.priors`), :mod:`~bayesreview.backend.ops` holds its likelihood Ops
(numba kernels with their gradients), :mod:`~bayesreview.backend.sampling` compiles, keeps and
samples models, and :mod:`~bayesreview.backend.nutpie_cache` keeps nutpie's compiled code on
disk. The statistics above this package (data, model arrays, quantities, checks, comparisons)
read as plain numpy, pandas and xarray.
"""
