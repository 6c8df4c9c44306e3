"""Every public function of fnx has a docstring with a runnable ``>>>`` example, and every
docstring example in the package passes."""

import doctest
import importlib
import inspect
import pkgutil
import types

import numpy as np
import pytest

import fnx
import fnx.data
import fnx.lax
import fnx.numpy as fnp
import fnx.random
import fnx.scipy.special
import fnx.train
import fnx.tree

# Fewer examples than this means the doctest collection broke (a module failed to import, or
# the finder stopped seeing factory-made functions); raise it as examples are added.
MIN_EXAMPLES = 500

# Public callables that genuinely cannot carry an example, with the reason.
EXEMPT = {}


def _modules():
    for info in pkgutil.walk_packages(fnx.__path__, "fnx."):
        if "cuda" in info.name:  # needs a GPU (CuPy) to import
            continue
        yield importlib.import_module(info.name)


def _run_doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    failures, attempted, report = {}, 0, []
    for mod in _modules():
        globs = {"fnx": fnx, "np": np, "fnp": fnp}
        for test in finder.find(mod, globs=globs):
            if not test.name.startswith(mod.__name__):
                continue
            runner = doctest.DocTestRunner(optionflags=flags)
            result = runner.run(test, out=report.append)
            attempted += result.attempted
            if result.failed:
                failures[test.name] = result.failed
    return failures, attempted, "".join(report)


@pytest.fixture
def _keep_global_rng():
    # the examples of fnx.seed/manual_seed/rand draw from the global generator: restore it
    seed, state = fnx.initial_seed(), fnx.get_rng_state()
    yield
    fnx.manual_seed(seed)
    fnx.set_rng_state(state)


def test_doctests_pass(_keep_global_rng):
    failures, attempted, report = _run_doctests()
    assert not failures, f"failing docstring examples {sorted(failures)}:\n{report[:20000]}"
    assert attempted >= MIN_EXAMPLES, f"only {attempted} examples ran (< {MIN_EXAMPLES})"


def _namespaces():
    """``(prefix, namespace, names)``: ``dir(fnx)``; a module's ``__all__`` where it has one
    (so names it merely imports, like ``fnx.random.get_aval``, are not its surface)."""
    out = [("fnx", fnx, dir(fnx))]
    for prefix, ns in [("fnx.numpy", fnp), ("fnx.numpy.linalg", fnp.linalg),
                       ("fnx.numpy.fft", fnp.fft), ("fnx.lax", fnx.lax),
                       ("fnx.random", fnx.random), ("fnx.tree", fnx.tree),
                       ("fnx.scipy.special", fnx.scipy.special), ("fnx.train", fnx.train),
                       ("fnx.data", fnx.data), ("fnx.data.transforms", fnx.data.transforms)]:
        out.append((prefix, ns, getattr(ns, "__all__", None) or dir(ns)))
    return out


def _public_functions():
    """``{id: (qualified name, function)}``: each public function once (aliases count once)."""
    seen = {}
    for prefix, ns, names in _namespaces():
        for name in sorted(names):
            if name.startswith("_"):
                continue
            obj = getattr(ns, name)
            if (isinstance(obj, (types.ModuleType, np.dtype, type)) or inspect.isclass(obj)
                    or not callable(obj)):
                continue
            seen.setdefault(id(obj), (f"{prefix}.{name}", obj))
    return seen


def test_public_functions_have_examples():
    functions = _public_functions()
    assert len(functions) > 400, len(functions)
    missing = sorted(name for name, fn in functions.values()
                     if ">>>" not in (fn.__doc__ or "") and name not in EXEMPT)
    assert not missing, f"{len(missing)} public functions without a >>> example: {missing}"


def test_exempt_entries_are_real_and_still_needed():
    names = {name for name, _ in _public_functions().values()}
    assert set(EXEMPT) <= names, set(EXEMPT) - names
    for name, fn in _public_functions().values():
        if name in EXEMPT:
            assert ">>>" not in (fn.__doc__ or ""), f"{name} has an example now: drop it from EXEMPT"


def test_internal_helpers_are_not_public():
    assert not hasattr(fnp, "aval_of")
    assert "aval_of" not in fnp._creation.__all__
