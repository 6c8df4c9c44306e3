"""Every public function of ``fnx.numpy`` (and of its ``linalg`` and ``fft`` namespaces) that
NumPy also has accepts NumPy's signature: the same positional parameters in the same order
under the same names, every keyword NumPy takes, and a default wherever NumPy has one. The
few deliberate differences are listed below, each with its reason; fnx may add parameters of
its own (with defaults, after NumPy's positional ones)."""

import inspect

import numpy as np
import pytest

import fnx.numpy as fnp

P = inspect.Parameter
POSITIONAL = (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)

# NumPy parameters fnx leaves out wherever they occur.
OMITTED = {
    "like": "NEP 35 dispatch to create another library's array type; fnx creates fnx arrays",
    "subok": "passes ndarray subclasses through; fnx has one array type",
    "casting": "fnx converts by the array API's promotion rules; use astype for other casts",
    "ndmax": "caps the depth of nested sequences, which matters for object arrays only; fnx "
             "has no object dtype",
}
# Ufunc keywords fnx leaves out (out=None and dtype= are accepted).
UFUNC_OMITTED = {
    "where": "writes only the masked elements of out (the others are uninitialized with "
             "out=None); fnx arrays are immutable: use fnp.where(mask, f(x), other)",
    "order": "memory layout of the output; fnx arrays are values with no layout to choose",
    "signature": "selects an inner loop by dtypes; use dtype= or astype",
    "axes": "gufunc axes of matmul/vecdot; move the axes with fnp.moveaxis first",
    "axis": "gufunc axis of matmul (vecdot has its own axis=)",
    "keepdims": "gufunc keepdims of matmul/vecdot",
}
# Defaults that differ on purpose: (function, parameter) -> reason.
DEFAULTS = {
    ("eye", "dtype"): "fnx's default float dtype is float32 (None picks it)",
    ("tri", "dtype"): "fnx's default float dtype is float32 (None picks it)",
    ("indices", "dtype"): "None is fnx's default integer dtype, int64",
}


def _is_ufunc(f):
    return isinstance(f, np.ufunc)


def _default_matches(fnx_p, np_p):
    if np_p.default is np._NoValue or np_p.default is P.empty:
        return True
    try:
        return bool(fnx_p.default == np_p.default)
    except Exception:
        return False


def signature_problems(name, fnx_fn, np_fn):
    """How ``fnx_fn``'s signature fails to accept every call ``np_fn``'s accepts (a list of
    messages; empty when it is compatible)."""
    fs = inspect.signature(fnx_fn).parameters
    ns = inspect.signature(np_fn).parameters
    omitted = dict(OMITTED, **(UFUNC_OMITTED if _is_ufunc(np_fn) else {}))
    problems = []
    f_pos = [p for p in fs.values() if p.kind in POSITIONAL]
    f_var = next((p for p in fs.values() if p.kind is P.VAR_POSITIONAL), None)
    n_pos = [p for p in ns.values() if p.kind in POSITIONAL]
    for i, np_p in enumerate(n_pos):
        if np_p.name in omitted:
            continue
        if i >= len(f_pos):
            if f_var is None:
                problems.append(f"positional parameter {i} ({np_p.name}) is missing")
            continue
        f_p = f_pos[i]
        if np_p.kind is P.POSITIONAL_OR_KEYWORD and (f_p.kind is not P.POSITIONAL_OR_KEYWORD
                                                     or f_p.name != np_p.name):
            problems.append(f"positional parameter {i} is {f_p} (NumPy: {np_p.name}, "
                            f"positional or keyword)")
        if np_p.default is not P.empty and f_p.default is P.empty:
            problems.append(f"{np_p.name} needs a default (NumPy: {np_p.default!r})")
        elif f_p.default is not P.empty and not _default_matches(f_p, np_p) and \
                (name, np_p.name) not in DEFAULTS:
            problems.append(f"{np_p.name} defaults to {f_p.default!r} (NumPy: "
                            f"{np_p.default!r})")
    if any(p.kind is P.VAR_POSITIONAL for p in ns.values()) and f_var is None:
        problems.append("takes no *args")
    for np_p in ns.values():
        if np_p.kind is not P.KEYWORD_ONLY or np_p.name in omitted:
            continue
        f_p = fs.get(np_p.name)
        if f_p is None or f_p.kind not in (P.KEYWORD_ONLY, P.POSITIONAL_OR_KEYWORD):
            problems.append(f"keyword {np_p.name} is not accepted")
        elif f_p.default is P.empty and np_p.default is not P.empty:
            problems.append(f"{np_p.name} needs a default")
        elif not _default_matches(f_p, np_p) and (name, np_p.name) not in DEFAULTS:
            problems.append(f"{np_p.name} defaults to {f_p.default!r} (NumPy: "
                            f"{np_p.default!r})")
    # fnx's own extra parameters must not change the meaning of NumPy's calls (a leading
    # positional-only parameter before *args, where NumPy has only *args, takes the same calls)
    leading_ok = not n_pos and f_var is not None and any(p.kind is P.VAR_POSITIONAL
                                                         for p in ns.values())
    for i, f_p in enumerate(f_pos):
        if i >= len(n_pos) and f_p.default is P.empty and not (
                leading_ok and f_p.kind is P.POSITIONAL_ONLY):
            problems.append(f"extra parameter {f_p.name} has no default")
    for f_p in fs.values():
        if f_p.kind is P.KEYWORD_ONLY and f_p.name not in ns and f_p.default is P.empty:
            problems.append(f"extra keyword {f_p.name} has no default")
    return problems


def _pairs():
    for ns_name, fnx_ns, np_ns in (("", fnp, np), ("linalg.", fnp.linalg, np.linalg),
                                   ("fft.", fnp.fft, np.fft)):
        for name in sorted(dir(fnx_ns)):
            fnx_fn = getattr(fnx_ns, name)
            if name.startswith("_") or not callable(fnx_fn) or isinstance(fnx_fn, type):
                continue
            np_fn = getattr(np_ns, name, None)
            if np_fn is None or isinstance(np_fn, type) and issubclass(np_fn, np.generic):
                continue
            yield ns_name + name, fnx_fn, np_fn


PAIRS = list(_pairs())


@pytest.mark.parametrize("name,fnx_fn,np_fn", PAIRS, ids=[p[0] for p in PAIRS])
def test_signature_accepts_numpys(name, fnx_fn, np_fn):
    problems = signature_problems(name, fnx_fn, np_fn)
    assert not problems, (f"fnp.{name}{inspect.signature(fnx_fn)} vs "
                          f"np.{name}{inspect.signature(np_fn)}: " + "; ".join(problems))


def test_the_comparison_covers_the_namespace():
    names = {p[0] for p in PAIRS}
    assert len(names) > 250
    assert {"sum", "add", "zeros", "linalg.svd", "fft.fft", "clip", "cross"} <= names


def test_the_comparison_finds_differences():
    def narrow(x, /, *, axis=None):
        """a positional-only array and keyword-only axis"""

    assert signature_problems("sum", narrow, np.sum)
    assert signature_problems("add", narrow, np.add)
    assert not signature_problems("sum", fnp.sum, np.sum)
