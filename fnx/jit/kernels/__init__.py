"""Hand-written Numba kernels for layer primitives (convolution, pooling, normalization,
recurrences, attention). Never imported as a package: ``fnx.jit.cache.load_library(name)``
loads each file as content-keyed generated code, so ``import fnx`` stays free of Numba."""
