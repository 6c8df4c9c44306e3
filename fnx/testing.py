"""Numerical checks of fnx's derivatives, for tests (ours and users').

``check_grads`` compares forward mode against central finite differences along random
directions, and reverse mode against forward mode through the inner-product identity
``<u, J v> = <J^T u, v>`` -- the method of JAX's ``public_test_util.check_grads`` and
autograd's ``test_util.check_grads``. Higher orders recurse on the derivative functions, so
``order=2`` also checks the derivative rules' own derivatives.

>>> import fnx, fnx.numpy as fnp
>>> fnx.testing.check_grads(lambda x: fnp.sin(x) * x, (fnp.asarray([0.5, 1.0], dtype="float64"),))
"""

import numpy as np

__all__ = ["check_grads", "check_jvp", "check_vjp", "numerical_jvp"]

_DEFAULT_EPS = {np.dtype("float64"): 1e-4, np.dtype("float32"): 1e-2, np.dtype("float16"): 1e-1}
_DEFAULT_TOL = {np.dtype("float64"): 1e-5, np.dtype("float32"): 2e-2, np.dtype("float16"): 1e-1}


def _tree():
    from fnx.core import pytree

    return pytree


def _to_np(x):
    return np.asarray(x)


def _dtype(x):
    from fnx.core.tracing import get_aval

    return get_aval(x).dtype


def _is_inexact(x):
    return _dtype(x).kind in "fc"


def _random_like(rng, x):
    x = np.asarray(x)
    if x.dtype.kind == "c":
        return (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape)).astype(x.dtype)
    return rng.standard_normal(x.shape).astype(x.dtype)


def _inner(a_leaves, b_leaves):
    # The real part of the bilinear sum(a * b), without conjugation: fnx's cotangents follow
    # JAX's convention (the VJP of a holomorphic f multiplies by f'(z), grad of |z|^2 is
    # 2 conj(z)), for which <u, J v> = <J^T u, v> holds in this pairing.
    total = 0.0
    for a, b in zip(a_leaves, b_leaves, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind not in "fc":
            continue
        total = total + np.sum(np.real(a * b))
    return total


def _assert_close(actual, expected, atol, rtol, what):
    a_leaves = [np.asarray(x) for x in _tree().tree_leaves(actual)]
    e_leaves = [np.asarray(x) for x in _tree().tree_leaves(expected)]
    if len(a_leaves) != len(e_leaves):
        raise AssertionError(f"{what}: {len(a_leaves)} outputs vs {len(e_leaves)} expected")
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        if a.shape != e.shape:
            raise AssertionError(f"{what}: output {i} has shape {a.shape}, expected {e.shape}")
        if e.dtype.kind not in "fc":
            continue
        np.testing.assert_allclose(a, e, atol=atol, rtol=rtol, err_msg=f"{what} (output {i})")


def _split(args):
    """Differentiable (inexact) leaves of ``args`` and a function rebuilding the args."""
    leaves, tree = _tree().tree_flatten(tuple(args))
    import fnx.numpy as fnp

    leaves = [x if hasattr(x, "_fnx_tracer") else fnp.asarray(x) for x in leaves]
    diff_idx = [i for i, x in enumerate(leaves) if _is_inexact(x)]

    def rebuild(diff_leaves):
        full = list(leaves)
        for i, v in zip(diff_idx, diff_leaves, strict=True):
            full[i] = v
        return _tree().tree_unflatten(tree, full)

    return [leaves[i] for i in diff_idx], rebuild


def numerical_jvp(f, args, tangents, eps):
    """Central difference ``(f(x + eps t) - f(x - eps t)) / (2 eps)`` over pytree args."""
    import fnx.numpy as fnp

    diff, rebuild = _split(args)
    plus = [fnp.asarray(np.asarray(x) + eps * t) for x, t in zip(diff, tangents, strict=True)]
    minus = [fnp.asarray(np.asarray(x) - eps * t) for x, t in zip(diff, tangents, strict=True)]
    f_plus = _tree().tree_leaves(f(*rebuild(plus)))
    f_minus = _tree().tree_leaves(f(*rebuild(minus)))
    return [(np.asarray(p).astype(np.result_type(np.asarray(p).dtype, np.float64))
             - np.asarray(m)) / (2 * eps) if _is_inexact(p) else np.zeros(np.shape(p))
            for p, m in zip(f_plus, f_minus, strict=True)]


def _jvp_of(f, diff, rebuild, tangents):
    """``(f(x), J v)`` with only the inexact leaves of the arguments perturbed."""
    import fnx
    import fnx.numpy as fnp

    def g(*d):
        return f(*rebuild(list(d)))

    out, t_out = fnx.jvp(g, tuple(fnp.asarray(x) for x in diff),
                         tuple(fnp.asarray(t) for t in tangents))
    return out, t_out


def check_jvp(f, args, *, eps, atol, rtol, rng):
    """Forward mode vs central differences along one random direction."""
    diff, rebuild = _split(args)
    tangents = [_random_like(rng, x) for x in diff]
    _, t_out = _jvp_of(f, diff, rebuild, tangents)
    expected = numerical_jvp(f, args, tangents, eps)
    _assert_close(_tree().tree_leaves(t_out), expected, atol, rtol, "JVP vs finite differences")


def check_vjp(f, args, *, eps, atol, rtol, rng):
    """Reverse mode through ``<u, J v> = <J^T u, v>`` against the numerical ``J v``."""
    import fnx
    import fnx.numpy as fnp

    diff, rebuild = _split(args)

    def g(*d):
        return f(*rebuild(list(d)))

    out, f_vjp = fnx.vjp(g, *[fnp.asarray(x) for x in diff])
    out_leaves, out_tree = _tree().tree_flatten(out)
    cts = [_random_like(rng, o) if _is_inexact(o) else np.zeros(np.shape(o), np.asarray(o).dtype)
           for o in out_leaves]
    ct_in = f_vjp(_tree().tree_unflatten(out_tree, [fnp.asarray(c) for c in cts]))
    tangents = [_random_like(rng, x) for x in diff]
    num = numerical_jvp(f, args, tangents, eps)
    ip_num = _inner(cts, num)
    ip_vjp = _inner([np.asarray(c) for c in ct_in], tangents)
    scale = max(1.0, abs(ip_num))
    np.testing.assert_allclose(ip_vjp, ip_num, atol=atol * scale, rtol=rtol,
                               err_msg="VJP inner-product identity <u, Jv> = <J^T u, v>")


def check_grads(f, args, order=2, modes=("fwd", "rev"), eps=None, atol=None, rtol=None,
                seed=0):
    """Check the derivatives of ``f`` at ``args`` up to ``order`` in the given ``modes``.

    ``args`` is a tuple of arrays/pytrees; only their floating-point leaves are perturbed (integer
    leaves are held fixed). Use float64 inputs: finite differences are too noisy in float32.
    ``order=2`` checks the JVP of the JVP (``"fwd"``) and the VJP of the VJP (``"rev"``), i.e.
    that derivative rules are themselves differentiable. Raises ``AssertionError`` on mismatch.

    >>> fnx.testing.check_grads(fnx.numpy.tanh, (fnx.numpy.asarray(0.3, dtype="float64"),), order=1)
    """
    import fnx
    import fnx.numpy as fnp

    if not isinstance(args, (tuple, list)):
        raise TypeError("check_grads: args must be a tuple of arguments")
    for m in modes:
        if m not in ("fwd", "rev"):
            raise ValueError(f"check_grads: unknown mode {m!r}; use 'fwd' and/or 'rev'")
    diff, rebuild = _split(args)
    dt = np.result_type(*[_dtype(x) for x in diff]) if diff else np.dtype("float64")
    if dt.kind == "c":
        dt = np.dtype("float64") if dt == np.complex128 else np.dtype("float32")
    eps = _DEFAULT_EPS.get(dt, 1e-4) if eps is None else eps
    atol = _DEFAULT_TOL.get(dt, 1e-5) if atol is None else atol
    rtol = _DEFAULT_TOL.get(dt, 1e-5) if rtol is None else rtol
    rng = np.random.default_rng(seed)

    def _check(f, args, order):
        if order == 0:
            return
        diff, rebuild = _split(args)
        if not diff:
            return
        if "fwd" in modes:
            check_jvp(f, args, eps=eps, atol=atol, rtol=rtol, rng=rng)
            if order > 1:
                tangents = [fnp.asarray(_random_like(rng, x)) for x in diff]

                def f_jvp(*a):
                    d, rb = _split(a)
                    return fnx.jvp(lambda *dd: f(*rb(list(dd))), tuple(d), tuple(tangents))[1]

                _check(f_jvp, args, order - 1)
        if "rev" in modes:
            check_vjp(f, args, eps=eps, atol=atol, rtol=rtol, rng=rng)
            if order > 1:
                out = f(*args)
                out_leaves, out_tree = _tree().tree_flatten(out)
                cts = _tree().tree_unflatten(out_tree, [
                    fnp.asarray(_random_like(rng, o)) for o in out_leaves])

                def f_vjp(*a):
                    d, rb = _split(a)
                    _, pullback = fnx.vjp(lambda *dd: f(*rb(list(dd))), *d)
                    return pullback(cts)

                _check(f_vjp, args, order - 1)

    _check(f, tuple(args), order)
