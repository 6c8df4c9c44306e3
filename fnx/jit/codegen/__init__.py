"""Code generators: ``loops`` (backend-neutral loop nests) and ``cpu`` (Numba njit source).
A CUDA generator consumes the same ``loops.LoopNest`` objects."""
