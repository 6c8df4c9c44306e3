"""The op database (R14): one record per primitive and per public differentiable ``fnx.numpy``
function. The generic tests (test_ops_reference, test_ops_grad, test_ops_vmap,
test_primitive_contract) run over it, as JAX's ``op_record`` / PyTorch's OpInfo.

A record says how to call the op (``op``: positional arrays only; params are baked in), its
NumPy reference, the input domain of each argument, the dtypes and argument shapes to sample
(scalars, empty arrays and broadcasting cases included), tolerances, and which checks apply:
``grad`` (0 = not differentiable, else the highest order ``check_grads`` verifies), ``vmap``
and ``jit``. Adding a primitive means adding a record here (test_primitive_contract fails
otherwise).
"""

import dataclasses
import functools

import numpy as np
import scipy.special

import fnx  # noqa: F401
import fnx.numpy as fnp
from fnx.core.ops import elementwise as ew
from fnx.core.ops import linalg as la
from fnx.core.ops import reduction as rd
from fnx.core.ops import shape as sh

# Primitive modules other engineers are adding: records for them are added when they import.
OPTIONAL_OP_MODULES = {}
for _mod in ("indexing", "sorting", "conv", "cumulative", "random", "normalization"):
    try:
        OPTIONAL_OP_MODULES[_mod] = __import__(f"fnx.core.ops.{_mod}", fromlist=["_"])
    except ImportError:
        pass

F32, F64 = np.dtype("float32"), np.dtype("float64")
I32, I64, BOOL = np.dtype("int32"), np.dtype("int64"), np.dtype("bool")
C64 = np.dtype("complex64")
FLOATS = (F32, F64)
INTS = (I32,)

TOL = {F32: (1e-5, 1e-5), F64: (1e-12, 1e-12), I32: (0, 0), I64: (0, 0), BOOL: (0, 0),
       C64: (1e-5, 1e-5), np.dtype("complex128"): (1e-12, 1e-12)}
LOOSE = {F32: (1e-4, 1e-4), F64: (1e-9, 1e-9)}

UNARY_SHAPES = (((),), ((3,),), ((2, 3),), ((0,),), ((2, 0, 3),))
SAME_SHAPES2 = (((), ()), ((3,), (3,)), ((2, 3), (2, 3)), ((0, 2), (0, 2)))
SAME_SHAPES3 = (((), (), ()), ((3,), (3,), (3,)), ((2, 3), (2, 3), (2, 3)))
BCAST_SHAPES2 = (((), ()), ((3,), (3,)), ((2, 3), (3,)), ((), (2, 1)), ((4, 1), (1, 3)),
                 ((0, 3), (3,)), ((2, 3), ()))


@dataclasses.dataclass(frozen=True)
class OpRecord:
    name: str
    op: object  # fnx callable on positional arrays
    ref: object  # NumPy reference on NumPy arrays (None: no reference, other checks only)
    domains: tuple  # one domain name per argument (see ``sample``)
    dtypes: tuple = FLOATS
    shapes: tuple = UNARY_SHAPES
    tol: dict = dataclasses.field(default_factory=lambda: TOL)
    grad: int = 2  # 0: not differentiable; n: check_grads up to order n in float64
    grad_domains: tuple = None  # domains away from kinks/poles for the gradient checks
    grad_dtype: np.dtype = F64
    grad_modes: tuple = ("fwd", "rev")
    vmap: bool = True
    jit: bool = True
    kind: str = "primitive"  # or "numpy"
    prims: tuple = ()  # primitives this record exercises (for the contract's coverage test)
    why: str = ""  # reason a check is off

    @property
    def nargs(self):
        return len(self.domains)

    def __repr__(self):
        return self.name


def sample(rng, domain, shape, dtype):
    """An array of ``shape``/``dtype`` drawn from ``domain``."""
    dtype = np.dtype(dtype)
    if domain == "perm":  # distinct in-range indices (rows of a permutation)
        n = int(np.prod(shape[:-1], dtype=np.int64))
        cols = [rng.permutation(3)[:n] for _ in range(shape[-1])]
        return np.stack(cols, -1).reshape(shape).astype(dtype)
    if domain == "bool" or dtype == BOOL:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        lo, hi = {"shift": (0, 8), "positive": (1, 6), "nonzero": (1, 6), "index": (0, 3)
                  }.get(domain, (-5, 6))
        out = rng.integers(lo, hi, shape).astype(dtype)
        if domain == "nonzero":
            out = out * np.where(rng.random(shape) < 0.5, -1, 1).astype(dtype)
        return out
    if domain == "any":
        x = rng.standard_normal(shape) * 1.5
    elif domain == "positive":
        x = rng.uniform(0.5, 2.5, shape)
    elif domain == "nonzero":
        x = rng.uniform(0.5, 2.0, shape) * np.where(rng.random(shape) < 0.5, -1, 1)
    elif domain == "unit":  # (-1, 1), away from the poles
        x = rng.uniform(-0.9, 0.9, shape)
    elif domain == "gt1":
        x = rng.uniform(1.2, 3.0, shape)
    elif domain == "noninteger":  # floor/round/...: finite differences must not cross a jump
        x = rng.integers(-3, 3, shape) + rng.uniform(0.2, 0.4, shape)
    elif domain == "small":  # exp2, cosh...: keep values moderate
        x = rng.uniform(-2.0, 2.0, shape)
    elif domain in ("wellcond", "spd", "sym"):  # stacks of square matrices (last two dims)
        a = rng.uniform(-1.0, 1.0, shape)
        n = shape[-1]
        x = {"wellcond": lambda: a + (n + 1) * np.eye(n),  # diagonally dominant: |eig| >= 1
             "spd": lambda: a @ np.swapaxes(a, -1, -2) + np.eye(n),
             # eigenvalues about 3 apart, so eigenvectors are well defined
             "sym": lambda: a + np.swapaxes(a, -1, -2) + np.diag(3.0 * np.arange(n))}[domain]()
    else:
        raise ValueError(f"unknown domain {domain!r}")
    if dtype.kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return np.asarray(x).astype(dtype)


def sample_args(rng, rec, shapes, dtype, domains=None):
    domains = domains or rec.domains
    return [sample(rng, d, s, _arg_dtype(d, dtype)) for d, s in zip(domains, shapes, strict=True)]


def _arg_dtype(domain, dtype):
    if domain == "bool":
        return BOOL
    if domain in ("index", "perm"):
        return I32
    return dtype


RECORDS = []


def rec(name, op, ref, domains, **kw):
    r = OpRecord(name, op, ref, tuple(domains), **kw)
    RECORDS.append(r)
    return r


def _bind(prim, **params):
    def op(*args):
        return prim.bind(*args, **params)

    op.__name__ = prim.name
    return op


# ============================================================================================
# Primitives
# ============================================================================================

_PRIM_UNARY = [
    # name, numpy reference, domain, grad domain, grad order, dtypes
    ("neg", np.negative, "any", None, 2),
    ("exp", np.exp, "small", None, 2),
    ("exp2", np.exp2, "small", None, 2),
    ("log", np.log, "positive", None, 2),
    ("expm1", np.expm1, "small", None, 2),
    ("log1p", np.log1p, "positive", None, 2),
    ("tanh", np.tanh, "any", None, 2),
    ("logistic", scipy.special.expit, "any", None, 2),
    ("sin", np.sin, "any", None, 2),
    ("cos", np.cos, "any", None, 2),
    ("tan", np.tan, "unit", None, 2),
    ("asin", np.arcsin, "unit", None, 2),
    ("acos", np.arccos, "unit", None, 2),
    ("atan", np.arctan, "any", None, 2),
    ("sinh", np.sinh, "small", None, 2),
    ("cosh", np.cosh, "small", None, 2),
    ("asinh", np.arcsinh, "any", None, 2),
    ("acosh", np.arccosh, "gt1", None, 2),
    ("atanh", np.arctanh, "unit", None, 2),
    ("sqrt", np.sqrt, "positive", None, 2),
    ("rsqrt", lambda x: 1 / np.sqrt(x), "positive", None, 2),
    ("cbrt", np.cbrt, "nonzero", None, 2),
    ("erf", scipy.special.erf, "any", None, 2),
    ("erf_inv", scipy.special.erfinv, "unit", None, 2),
    ("lgamma", scipy.special.gammaln, "positive", None, 1),  # digamma has no JVP yet
    ("digamma", scipy.special.digamma, "positive", None, 0),
    ("sign", np.sign, "nonzero", None, 2),
    ("floor", np.floor, "any", "noninteger", 2),
    ("ceil", np.ceil, "any", "noninteger", 2),
    ("round", np.rint, "any", "noninteger", 2),
    ("trunc", np.trunc, "any", "noninteger", 2),
    ("abs", np.abs, "any", "nonzero", 2),
]
for _name, _ref, _dom, _gdom, _order in _PRIM_UNARY:
    _prim = getattr(ew, f"{_name}_p")
    rec(_name, _bind(_prim), _ref, (_dom,), grad=_order,
        grad_domains=(_gdom,) if _gdom else None, prims=(_name,),
        tol=LOOSE if _name in ("erf_inv", "lgamma", "digamma", "tan") else TOL)

_PRIM_BINARY = [
    ("add", np.add, ("any", "any"), None, 2),
    ("sub", np.subtract, ("any", "any"), None, 2),
    ("mul", np.multiply, ("any", "any"), None, 2),
    ("div", np.divide, ("any", "nonzero"), None, 2),
    ("rem", np.fmod, ("any", "nonzero"), ("positive", "gt1"), 2),
    ("pow", np.power, ("positive", "any"), None, 2),
    ("max", np.maximum, ("any", "any"), None, 2),
    ("min", np.minimum, ("any", "any"), None, 2),
    ("atan2", np.arctan2, ("nonzero", "nonzero"), None, 2),
    ("copysign", np.copysign, ("nonzero", "nonzero"), None, 2),
    ("nextafter", np.nextafter, ("any", "any"), None, 0),
]
for _name, _ref, _doms, _gdoms, _order in _PRIM_BINARY:
    rec(_name, _bind(getattr(ew, f"{_name}_p")), _ref, _doms, shapes=SAME_SHAPES2, grad=_order,
        grad_domains=_gdoms, prims=(_name,))

# integer arithmetic goes through the same primitives
rec("add_int", _bind(ew.add_p), np.add, ("any", "any"), dtypes=INTS, shapes=SAME_SHAPES2,
    grad=0, prims=("add",))
rec("div_int", _bind(ew.div_p), lambda x, y: np.trunc(x / y).astype(x.dtype),
    ("any", "nonzero"), dtypes=INTS, shapes=SAME_SHAPES2, grad=0, prims=("div",))
rec("rem_int", _bind(ew.rem_p), np.fmod, ("any", "nonzero"), dtypes=INTS, shapes=SAME_SHAPES2,
    grad=0, prims=("rem",))

for _y in (0, 1, 2, 3, -2):
    rec(f"integer_pow_{_y}".replace("-", "m"), _bind(ew.integer_pow_p, y=_y),
        functools.partial(lambda x, y: np.power(x, y), y=_y),
        ("nonzero" if _y < 0 else "any",), prims=("integer_pow",))

for _name, _ref in [("is_finite", np.isfinite), ("is_nan", np.isnan), ("is_inf", np.isinf)]:
    rec(_name, _bind(getattr(ew, f"{_name}_p")), _ref, ("any",), grad=0, prims=(_name,))
for _name, _ref in [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less),
                    ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal)]:
    rec(_name, _bind(getattr(ew, f"{_name}_p")), _ref, ("any", "any"), shapes=SAME_SHAPES2,
        dtypes=FLOATS + INTS, grad=0, prims=(_name,))
for _name, _ref in [("and", np.bitwise_and), ("or", np.bitwise_or), ("xor", np.bitwise_xor)]:
    rec(_name, _bind(getattr(ew, f"{_name}_p")), _ref, ("any", "any"), shapes=SAME_SHAPES2,
        dtypes=INTS + (BOOL,), grad=0, prims=(_name,))
rec("not", _bind(ew.not_p), lambda x: np.logical_not(x) if x.dtype == BOOL else np.invert(x),
    ("any",), dtypes=INTS + (BOOL,), grad=0, prims=("not",))
rec("shift_left", _bind(ew.shift_left_p), np.left_shift, ("any", "shift"), dtypes=INTS,
    shapes=SAME_SHAPES2, grad=0, prims=("shift_left",))
rec("shift_right", _bind(ew.shift_right_p), np.right_shift, ("any", "shift"), dtypes=INTS,
    shapes=SAME_SHAPES2, grad=0, prims=("shift_right",))
rec("population_count", _bind(ew.population_count_p),
    lambda x: np.bitwise_count(x).astype(x.dtype), ("any",), dtypes=INTS, grad=0,
    prims=("population_count",))

# complex parts: reference only (complex cotangent conventions are tested in test_transforms)
rec("real", _bind(ew.real_p), np.real, ("any",), dtypes=(C64,), grad=0, prims=("real",),
    why="complex input")
rec("imag", _bind(ew.imag_p), np.imag, ("any",), dtypes=(C64,), grad=0, prims=("imag",),
    why="complex input")
rec("conj", _bind(ew.conj_p), np.conj, ("any",), dtypes=(C64,), grad=0, prims=("conj",),
    why="complex input")
rec("complex", _bind(ew.complex_p), lambda x, y: x + 1j * y, ("any", "any"),
    shapes=SAME_SHAPES2, dtypes=(F32,), grad=0, prims=("complex",), why="complex output")

rec("select", _bind(ew.select_p), np.where, ("bool", "any", "any"), shapes=SAME_SHAPES3,
    prims=("select",))
rec("convert_element_type", _bind(ew.convert_element_type_p, new_dtype=F64),
    lambda x: x.astype(F64), ("any",), dtypes=FLOATS, prims=("convert_element_type",))
rec("convert_element_type_f32", _bind(ew.convert_element_type_p, new_dtype=F32),
    lambda x: x.astype(F32), ("any",), dtypes=(F64,), grad=0, prims=("convert_element_type",),
    why="float32 output is too coarse for float64 finite differences")
rec("convert_element_type_int", _bind(ew.convert_element_type_p, new_dtype=I32),
    lambda x: x.astype(I32), ("any",), dtypes=(F64,), grad=0, prims=("convert_element_type",))
rec("bitcast_convert_type", _bind(ew.bitcast_convert_type_p, new_dtype=I32),
    lambda x: x.view(I32), ("any",), dtypes=(F32,), grad=0, prims=("bitcast_convert_type",))

# --- shape primitives ----------------------------------------------------------------------
rec("broadcast_in_dim", _bind(sh.broadcast_in_dim_p, shape=(2, 3), broadcast_dimensions=(1,)),
    lambda x: np.broadcast_to(x, (2, 3)), ("any",), shapes=(((3,),), ((1,),)),
    prims=("broadcast_in_dim",))
rec("broadcast_in_dim_scalar", _bind(sh.broadcast_in_dim_p, shape=(2, 0), broadcast_dimensions=()),
    lambda x: np.broadcast_to(x, (2, 0)), ("any",), shapes=(((),),), prims=("broadcast_in_dim",))
rec("broadcast_in_dim_middle",
    _bind(sh.broadcast_in_dim_p, shape=(2, 4, 3), broadcast_dimensions=(0, 2)),
    lambda x: np.broadcast_to(x[:, None, :], (2, 4, 3)), ("any",), shapes=(((2, 3),), ((2, 1),)),
    prims=("broadcast_in_dim",))
rec("reshape", _bind(sh.reshape_p, new_sizes=(3, 2)), lambda x: x.reshape(3, 2), ("any",),
    shapes=(((2, 3),), ((6,),)), prims=("reshape",))
rec("reshape_empty", _bind(sh.reshape_p, new_sizes=(3, 0)), lambda x: x.reshape(3, 0), ("any",),
    shapes=(((0, 3),),), prims=("reshape",))
rec("reshape_scalar", _bind(sh.reshape_p, new_sizes=(1, 1)), lambda x: x.reshape(1, 1),
    ("any",), shapes=(((),),), prims=("reshape",))
rec("transpose", _bind(sh.transpose_p, permutation=(2, 0, 1)),
    lambda x: np.transpose(x, (2, 0, 1)), ("any",), shapes=(((2, 3, 4),), ((0, 2, 1),)),
    prims=("transpose",))
rec("squeeze", _bind(sh.squeeze_p, dimensions=(0, 2)), lambda x: np.squeeze(x, (0, 2)),
    ("any",), shapes=(((1, 3, 1),), ((1, 0, 1),)), prims=("squeeze",))
rec("concatenate", _bind(sh.concatenate_p, dimension=1),
    lambda *xs: np.concatenate(xs, axis=1), ("any", "any", "any"),
    shapes=(((2, 1), (2, 3), (2, 0)), ((0, 2), (0, 1), (0, 1))), prims=("concatenate",))
rec("split", lambda x: tuple(sh.split_p.bind(x, sizes=(1, 0, 2), axis=1)),
    lambda x: tuple(np.split(x, [1, 1], axis=1)), ("any",),
    shapes=(((2, 3),), ((0, 3),), ((2, 3, 2),)), prims=("split",))
rec("pad", _bind(sh.pad_p, padding_config=((1, 2, 0), (0, 1, 1))),
    lambda x, v: _np_pad(x, v, ((1, 2, 0), (0, 1, 1))), ("any", "any"),
    shapes=(((2, 3), ()), ((0, 2), ())), prims=("pad",))
rec("pad_negative", _bind(sh.pad_p, padding_config=((-1, 1, 0), (1, -2, 2))),
    lambda x, v: _np_pad(x, v, ((-1, 1, 0), (1, -2, 2))), ("any", "any"),
    shapes=(((3, 3), ()),), prims=("pad",))
rec("slice", _bind(sh.slice_p, start_indices=(1, 0), limit_indices=(3, 4), strides=None),
    lambda x: x[1:3, 0:4], ("any",), shapes=(((3, 4),), ((4, 5),)), prims=("slice",))
rec("slice_strided", _bind(sh.slice_p, start_indices=(0, 1), limit_indices=(4, 5), strides=(2, 3)),
    lambda x: x[0:4:2, 1:5:3], ("any",), shapes=(((4, 5),), ((5, 6),)), prims=("slice",))
rec("rev", _bind(sh.rev_p, dimensions=(0, 2)), lambda x: np.flip(x, (0, 2)), ("any",),
    shapes=(((2, 3, 4),), ((0, 1, 2),)), prims=("rev",))
rec("iota", lambda: sh.iota_p.bind(dtype=I32, shape=(2, 3), dimension=1),
    lambda: np.broadcast_to(np.arange(3, dtype=I32), (2, 3)), (), shapes=((),), dtypes=(I32,),
    grad=0, vmap=False, prims=("iota",), why="iota has no operands, so vmap never batches it")


def _np_pad(x, v, config):
    return np.asarray(sh.pad_p.impl(np.asarray(x), np.asarray(v), padding_config=config))


# --- reductions --------------------------------------------------------------------------------
_RED_SHAPES = (((2, 3, 4),), ((3, 0, 2),), ((1, 1, 1),))
for _name, _ref, _order, _dts in [
    ("reduce_sum", np.sum, 2, FLOATS + INTS),
    ("reduce_max", np.max, 2, FLOATS + INTS),
    ("reduce_min", np.min, 2, FLOATS + INTS),
    ("reduce_prod", np.prod, 2, FLOATS),
]:
    for _axes in ((1,), (0, 2)):
        _empty_ok = _name in ("reduce_sum", "reduce_prod")
        rec(f"{_name}_{''.join(map(str, _axes))}", _bind(getattr(rd, f"{_name}_p"), axes=_axes),
            functools.partial(lambda x, ref, axes: ref(x, axis=axes).astype(x.dtype),
                              ref=_ref, axes=_axes),
            ("any",), dtypes=_dts, shapes=_RED_SHAPES if _empty_ok else _RED_SHAPES[::2],
            grad=_order, prims=(_name,))
rec("reduce_sum_all", _bind(rd.reduce_sum_p, axes=()), lambda x: x, ("any",),
    shapes=(((),), ((2,),)), prims=("reduce_sum",))
for _name, _ref in [("reduce_and", np.all), ("reduce_or", np.any)]:
    rec(_name, _bind(getattr(rd, f"{_name}_p"), axes=(1,)),
        functools.partial(lambda x, ref: ref(x, axis=1), ref=_ref), ("bool",), dtypes=(BOOL,),
        shapes=_RED_SHAPES, grad=0, prims=(_name,))
for _name, _ref in [("argmax", np.argmax), ("argmin", np.argmin)]:
    rec(_name, _bind(getattr(rd, f"{_name}_p"), axis=1, index_dtype=I32),
        functools.partial(lambda x, ref: ref(x, axis=1).astype(I32), ref=_ref), ("any",),
        dtypes=FLOATS + INTS, shapes=(((2, 3, 4),), ((3, 1),)), grad=0, prims=(_name,))

# --- dot_general ---------------------------------------------------------------------------
_MATMUL = (((1,), (0,)), ((), ()))
rec("dot_general_matmul", _bind(la.dot_general_p, dimension_numbers=_MATMUL),
    lambda a, b: a @ b, ("any", "any"),
    shapes=(((2, 3), (3, 4)), ((0, 3), (3, 2)), ((2, 0), (0, 3))), tol=LOOSE,
    prims=("dot_general",))
rec("dot_general_batched", _bind(la.dot_general_p, dimension_numbers=(((2,), (1,)), ((0,), (0,)))),
    lambda a, b: np.einsum("bij,bjk->bik", a, b), ("any", "any"),
    shapes=(((2, 3, 4), (2, 4, 5)),), tol=LOOSE, prims=("dot_general",))
rec("dot_general_vec", _bind(la.dot_general_p, dimension_numbers=(((0,), (0,)), ((), ()))),
    lambda a, b: np.asarray(a @ b), ("any", "any"), shapes=(((3,), (3,)), ((0,), (0,))),
    tol=LOOSE, prims=("dot_general",))
rec("dot_general_outer", _bind(la.dot_general_p, dimension_numbers=(((), ()), ((), ()))),
    np.multiply.outer, ("any", "any"), shapes=(((2,), (3,)), ((2, 2), (3,))), tol=LOOSE,
    prims=("dot_general",))
rec("dot_general_perm",
    _bind(la.dot_general_p, dimension_numbers=(((0, 2), (2, 1)), ((1,), (0,)))),
    lambda a, b: np.einsum("ibj,bji->b", a, b),
    ("any", "any"), shapes=(((2, 3, 4), (3, 4, 2)),), tol=LOOSE, prims=("dot_general",))
rec("dot_general_int", _bind(la.dot_general_p, dimension_numbers=_MATMUL), lambda a, b: a @ b,
    ("any", "any"), dtypes=INTS, shapes=(((2, 3), (3, 4)),), grad=0, prims=("dot_general",))


# --- primitives other engineers are landing ------------------------------------------------
if "indexing" in OPTIONAL_OP_MODULES:
    _ix = OPTIONAL_OP_MODULES["indexing"]

    def _gather_ref(x, idx):
        clipped = np.clip(idx, 0, np.array(x.shape[: idx.shape[-1]]) - 1)
        return x[tuple(np.moveaxis(clipped, -1, 0))].reshape(
            idx.shape[:-1] + x.shape[idx.shape[-1]:])

    def _scatter_add_ref(x, idx, upd):
        out = x.copy()
        np.add.at(out, tuple(np.clip(idx, 0, np.array(x.shape[: idx.shape[-1]]) - 1).reshape(
            -1, idx.shape[-1]).T), upd.reshape((-1,) + x.shape[idx.shape[-1]:]))
        return out

    if hasattr(_ix, "gather_p"):
        rec("gather", lambda x, i: _ix.gather_p.bind(x, i, oob="clip"), _gather_ref,
            ("any", "index"), shapes=(((4, 3), (5, 1)), ((3, 2), (2, 2, 1)), ((3, 3), (4, 2))),
            prims=("gather",))
    for _mode, _ufunc in [("add", np.add), ("mul", np.multiply), ("min", np.minimum),
                          ("max", np.maximum), ("set", None)]:
        _sp = getattr(_ix, "scatter_p" if _mode == "set" else f"scatter_{_mode}_p", None)
        if _sp is None:
            continue

        def _scatter_ref(x, idx, upd, ufunc=_ufunc):
            out = x.copy()
            k = idx.shape[-1]
            rows = idx.reshape(-1, k)
            vals = upd.reshape((-1,) + x.shape[k:])
            for r, v in zip(rows, vals):  # in order, so the last duplicate wins for "set"
                r = tuple(np.clip(r, 0, np.array(x.shape[:k]) - 1))
                out[r] = v if ufunc is None else ufunc(out[r], v)
            return out

        # unique rows for the non-additive modes: their derivative at duplicates is a
        # convention, not a function of the inputs
        rec(f"scatter_{_mode}", functools.partial(
            lambda x, i, u, p: p.bind(x, i, u, oob="clip"), p=_sp), _scatter_ref,
            ("any", "perm" if _mode != "add" else "index", "any"),
            shapes=(((4, 3), (3, 1), (3, 3)), ((3, 3), (2, 2), (2,))),
            grad=2 if _mode in ("add", "set", "mul") else 1, prims=(_sp.name,))
    # more updates than rows: every row receives several (duplicate indices accumulate)
    rec("scatter_add_duplicates", lambda x, i, u: _ix.scatter_add_p.bind(x, i, u, oob="clip"),
        _scatter_add_ref, ("any", "index", "any"),
        shapes=(((4, 3), (5, 1), (5, 3)), ((3, 3), (4, 2), (4,))), prims=("scatter_add",))

    def _onehot_pick_ref(x, idx):
        n = x.shape[-1]
        ok = (idx >= 0) & (idx < n)
        picked = np.take_along_axis(x, np.where(ok, idx, 0)[..., None].astype(np.int64), -1)
        return np.where(ok, picked[..., 0], 0).astype(x.dtype)

    rec("onehot_pick", lambda x, i: _ix.onehot_pick_p.bind(x, i), _onehot_pick_ref,
        ("any", "index"), shapes=(((4, 3), (4,)), ((2, 3, 5), (2, 3)), ((3,), ())),
        prims=("onehot_pick",))
    if hasattr(_ix, "dynamic_slice_p"):
        rec("dynamic_slice",
            lambda x, i: _ix.dynamic_slice_p.bind(x, i, i, slice_sizes=(2, 2)),
            lambda x, i: x[min(int(i), x.shape[0] - 2):][:2, min(int(i), x.shape[1] - 2):][:, :2],
            ("any", "index"), shapes=(((4, 3), ()),), prims=("dynamic_slice",))
    if hasattr(_ix, "dynamic_update_slice_p"):
        def _dus_ref(x, u, i):
            out = x.copy()
            a, b = min(int(i), x.shape[0] - u.shape[0]), min(int(i), x.shape[1] - u.shape[1])
            out[a:a + u.shape[0], b:b + u.shape[1]] = u
            return out

        rec("dynamic_update_slice",
            lambda x, u, i: _ix.dynamic_update_slice_p.bind(x, u, i, i), _dus_ref,
            ("any", "any", "index"), shapes=(((4, 3), (2, 2), ()),),
            prims=("dynamic_update_slice",))


if "sorting" in OPTIONAL_OP_MODULES:
    _so = OPTIONAL_OP_MODULES["sorting"]
    if hasattr(_so, "sort_p"):
        rec("sort", lambda x: tuple(_so.sort_p.bind(x, dimension=1)),
            lambda x: (np.sort(x, axis=1, kind="stable"),), ("any",),
            shapes=(((2, 5),), ((3, 1, 2),), ((0, 3),)), prims=("sort",))
        rec("sort_2ops", lambda x, y: tuple(_so.sort_p.bind(x, y, dimension=0)),
            lambda x, y: (np.sort(x, axis=0, kind="stable"),
                          np.take_along_axis(y, np.argsort(x, axis=0, kind="stable"), 0)),
            ("any", "any"), shapes=(((4, 2), (4, 2)),), prims=("sort",))
    for _name, _ref in [("cumsum", np.cumsum), ("cumprod", np.cumprod),
                        ("cummax", np.maximum.accumulate), ("cummin", np.minimum.accumulate)]:
        if hasattr(_so, f"{_name}_p"):
            for _rev in (False, True):
                rec(f"{_name}{'_rev' if _rev else ''}",
                    _bind(getattr(_so, f"{_name}_p"), axis=1, reverse=_rev),
                    functools.partial(
                        lambda x, ref, rev: np.flip(ref(np.flip(x, 1), axis=1), 1).astype(x.dtype)
                        if rev else np.asarray(ref(x, axis=1)).astype(x.dtype),
                        ref=_ref, rev=_rev),
                    ("any",), dtypes=FLOATS + INTS, shapes=(((2, 4),), ((3, 1, 2),), ((2, 0),)),
                    prims=(_name,), tol=LOOSE)

if "conv" in OPTIONAL_OP_MODULES and hasattr(OPTIONAL_OP_MODULES["conv"], "conv_general_dilated"):
    _cv = OPTIONAL_OP_MODULES["conv"]

    def _conv_ref(lhs, rhs, strides, padding, rhs_dilation, groups):
        # direct loop definition of cross-correlation in NCHW / OIHW
        n, c, h, w = lhs.shape
        o, cg, kh, kw = rhs.shape
        x = np.pad(lhs, ((0, 0), (0, 0)) + tuple(padding))
        eh, ew_ = (kh - 1) * rhs_dilation[0] + 1, (kw - 1) * rhs_dilation[1] + 1
        oh = (x.shape[2] - eh) // strides[0] + 1
        ow = (x.shape[3] - ew_) // strides[1] + 1
        out = np.zeros((n, o, oh, ow), lhs.dtype)
        og = o // groups
        for oc in range(o):
            g = oc // og
            for i in range(oh):
                for j in range(ow):
                    patch = x[:, g * cg:(g + 1) * cg,
                              i * strides[0]:i * strides[0] + eh:rhs_dilation[0],
                              j * strides[1]:j * strides[1] + ew_:rhs_dilation[1]]
                    out[:, oc, i, j] = np.sum(patch * rhs[oc], axis=(1, 2, 3))
        return out

    for _tag, _st, _pad, _rd, _g, _shp in [
        ("", (1, 1), ((0, 0), (0, 0)), (1, 1), 1, ((2, 3, 5, 4), (4, 3, 2, 2))),
        ("_strided_padded", (2, 1), ((1, 1), (2, 0)), (1, 1), 1, ((1, 2, 5, 5), (3, 2, 3, 2))),
        ("_dilated_grouped", (1, 1), ((1, 0), (0, 1)), (2, 1), 2, ((2, 4, 5, 4), (4, 2, 2, 2))),
    ]:
        rec(f"conv_general_dilated{_tag}",
            functools.partial(lambda x, k, st, pad, rd, g: _cv.conv_general_dilated(
                x, k, st, pad, rhs_dilation=rd, feature_group_count=g),
                st=_st, pad=_pad, rd=_rd, g=_g),
            functools.partial(_conv_ref, strides=_st, padding=_pad, rhs_dilation=_rd, groups=_g),
            ("any", "any"), shapes=(_shp,), tol=LOOSE, prims=("conv_general_dilated",))

    def _conv_frame(lhs_shape, rhs_shape, strides, padding, rhs_dilation, groups):
        # the padded input, and for each (output channel, position) the window slices into it
        h, w = lhs_shape[2:]
        o, cg, kh, kw = rhs_shape
        (plh, phh), (plw, phw) = padding
        eh, ew_ = (kh - 1) * rhs_dilation[0] + 1, (kw - 1) * rhs_dilation[1] + 1
        oh = (h + plh + phh - eh) // strides[0] + 1
        ow = (w + plw + phw - ew_) // strides[1] + 1
        og = o // groups
        frame = (lhs_shape[0], lhs_shape[1], h + plh + phh, w + plw + phw)
        windows = [(oc, i, j, (slice(None), slice(oc // og * cg, (oc // og + 1) * cg),
                               slice(i * strides[0], i * strides[0] + eh, rhs_dilation[0]),
                               slice(j * strides[1], j * strides[1] + ew_, rhs_dilation[1])))
                   for oc in range(o) for i in range(oh) for j in range(ow)]
        crop = (slice(None), slice(None), slice(plh, plh + h), slice(plw, plw + w))
        return frame, windows, crop

    def _conv_lhs_grad_ref(ct, rhs, lhs_shape, strides, padding, rhs_dilation, groups):
        # every output's cotangent spread over its window, weighted by the kernel
        shape = (ct.shape[0], rhs.shape[1] * groups) + lhs_shape
        frame, windows, crop = _conv_frame(shape, rhs.shape, strides, padding, rhs_dilation,
                                           groups)
        out = np.zeros(frame, ct.dtype)
        for oc, i, j, where in windows:
            out[where] += ct[:, oc, i, j][:, None, None, None] * rhs[oc]
        return out[crop]

    def _conv_rhs_grad_ref(lhs, ct, rhs_shape, strides, padding, rhs_dilation, groups):
        # every output's cotangent times its input patch, summed over images and positions
        shape = (ct.shape[1], lhs.shape[1] // groups) + rhs_shape
        _, windows, _ = _conv_frame(lhs.shape, shape, strides, padding, rhs_dilation, groups)
        x = np.pad(lhs, ((0, 0), (0, 0)) + tuple(padding))
        out = np.zeros(shape, lhs.dtype)
        for oc, i, j, where in windows:
            out[oc] += np.tensordot(ct[:, oc, i, j], x[where], axes=(0, 0))
        return out

    for _tag, _st, _pad, _rd, _g, (_xs, _ws) in [
        ("", (1, 1), ((1, 1), (1, 1)), (1, 1), 1, ((2, 3, 5, 4), (4, 3, 3, 3))),
        ("_strided_dilated_grouped", (2, 1), ((1, 0), (0, 1)), (1, 2), 2,
         ((2, 4, 6, 5), (4, 2, 2, 2))),
    ]:
        _cp = dict(window_strides=_st, padding=_pad, lhs_dilation=(1, 1), rhs_dilation=_rd,
                   feature_group_count=_g)
        _os = (_xs[0], _ws[0]) + _cv.conv_output_shape(_xs, _ws, _st, _pad, (1, 1), _rd)
        rec(f"conv_lhs_grad{_tag}",
            functools.partial(lambda ct, k, lhs_shape, cp: _cv.conv_lhs_grad_p.bind(
                ct, k, lhs_shape=lhs_shape, **cp), lhs_shape=_xs[2:], cp=_cp),
            functools.partial(_conv_lhs_grad_ref, lhs_shape=_xs[2:], strides=_st, padding=_pad,
                              rhs_dilation=_rd, groups=_g),
            ("any", "any"), shapes=((_os, _ws),), tol=LOOSE, prims=("conv_lhs_grad",))
        rec(f"conv_rhs_grad{_tag}",
            functools.partial(lambda x, ct, rhs_shape, cp: _cv.conv_rhs_grad_p.bind(
                x, ct, rhs_shape=rhs_shape, **cp), rhs_shape=_ws[2:], cp=_cp),
            functools.partial(_conv_rhs_grad_ref, rhs_shape=_ws[2:], strides=_st, padding=_pad,
                              rhs_dilation=_rd, groups=_g),
            ("any", "any"), shapes=((_xs, _os),), tol=LOOSE, prims=("conv_rhs_grad",))

# --- pooling: max/avg over fixed and adaptive windows, and their derivative primitives -------
from fnx.core.ops import pooling as _pl  # noqa: E402


def _pool_ref(x, kind, window=None, strides=None, padding=None, dilation=None, ceil_mode=False,
              output_size=None, count_include_pad=True, divisor_override=None):
    """Loop reference from PyTorch's definitions: (values, flat indices) for ``kind='max'``
    (first maximum wins, the last NaN of a window wins), the average for ``'avg'``."""
    nsp = len(window or output_size)
    sp = x.shape[x.ndim - nsp:]
    planes = x.reshape((-1,) + sp)
    spans = []  # per dim, per output: (the window's in-bounds positions, its padded size)
    for j, n in enumerate(sp):
        if window is None:
            o = output_size[j]
            spans.append([(list(range(i * n // o, -(-(i + 1) * n // o))), None)
                          for i in range(o)])
            continue
        k, s, p, d = window[j], strides[j], padding[j], (dilation or (1,) * nsp)[j]
        o = _pl.pool_output_size(n, k, s, p, d, ceil_mode)
        spans.append([([i * s - p + t * d for t in range(k) if 0 <= i * s - p + t * d < n],
                       min(i * s - p + k, n + p) - (i * s - p)) for i in range(o)])
    shape = tuple(len(sp_) for sp_ in spans)
    vals = np.zeros((len(planes),) + shape, x.dtype)
    idx = np.zeros((len(planes),) + shape, np.int64)
    for o in np.ndindex(*shape):
        pos = [spans[j][o[j]][0] for j in range(nsp)]
        flat = np.ravel_multi_index(np.ix_(*pos), sp).reshape(-1)
        win = planes.reshape(len(planes), -1)[:, flat]
        if kind == "max":
            nan = np.isnan(win)
            k = np.where(nan.any(1), win.shape[1] - 1 - np.argmax(nan[:, ::-1], 1),
                         np.argmax(win, 1))
            vals[(slice(None),) + o] = win[np.arange(len(win)), k]
            idx[(slice(None),) + o] = flat[k]
            continue
        if divisor_override is not None:
            div = divisor_override
        elif window is None or not count_include_pad:
            div = win.shape[1]
        else:
            div = np.prod([spans[j][o[j]][1] for j in range(nsp)])
        vals[(slice(None),) + o] = win.sum(1) / div
    lead = x.shape[:x.ndim - nsp]
    vals, idx = vals.reshape(lead + shape), idx.reshape(lead + shape)
    return (vals, idx) if kind == "max" else vals


for _tag, _geo, _shp in [
    ("2d_padded_ceil", dict(window=(3, 2), strides=(2, 1), padding=(1, 1), ceil_mode=True),
     ((2, 3, 6, 7),)),
    ("1d_dilated", dict(window=(2,), strides=(1,), padding=(1,), dilation=(2,)), ((3, 7),)),
    ("2d_adaptive", dict(output_size=(3, 2)), ((2, 7, 5),)),
    ("3d_adaptive_up", dict(output_size=(2, 3, 4)), ((1, 2, 3, 3),)),
]:
    _ref = functools.partial(_pool_ref, kind="max", **_geo)
    _op = functools.partial(lambda x, g: _pl.max_pool(x, **{
        "window": None, "strides": None, "padding": None, **g}), g=_geo)
    # values: differentiable, so grad/jvp/vmap/jit exercise pool_gather and pool_scatter_add
    rec(f"max_pool{_tag}", functools.partial(lambda x, op: op(x)[0], op=_op),
        functools.partial(lambda x, r: r(x)[0], r=_ref), ("any",), shapes=(_shp,),
        prims=("max_pool", "pool_gather", "pool_scatter_add"))
    rec(f"max_pool{_tag}_indices", functools.partial(lambda x, op: op(x)[1], op=_op),
        functools.partial(lambda x, r: r(x)[1], r=_ref), ("any",), shapes=(_shp,),
        dtypes=FLOATS + INTS, grad=0, prims=("max_pool",))
for _tag, _geo, _shp in [
    ("2d_padded_ceil", dict(window=(3, 2), strides=(2, 1), padding=(1, 1), ceil_mode=True,
                            count_include_pad=False), ((2, 3, 6, 7),)),
    ("1d_count_pad", dict(window=(3,), strides=(2,), padding=(1,)), ((3, 8),)),
    ("2d_divisor", dict(window=(2, 2), strides=(1, 2), padding=(0, 1), divisor_override=3),
     ((2, 5, 5),)),
    ("2d_adaptive", dict(output_size=(3, 2)), ((2, 7, 5),)),
]:
    rec(f"avg_pool{_tag}", functools.partial(lambda x, g: _pl.avg_pool(x, **{
        "window": None, "strides": None, "padding": None, **g}), g=_geo),
        functools.partial(_pool_ref, kind="avg", **_geo), ("any",), shapes=(_shp,),
        tol=LOOSE, prims=("avg_pool", "avg_pool_transpose"))
_AVG_T = dict(in_spatial=(5, 6), window=(3, 2), strides=(2, 2), padding=(1, 0),
              ceil_mode=True, output_size=None, count_include_pad=True, divisor_override=None)


def _avg_pool_transpose_ref(ct):
    # <ct, avg_pool(e_i)> for every basis input e_i
    n = int(np.prod(_AVG_T["in_spatial"]))
    geo = {k: v for k, v in _AVG_T.items() if k != "in_spatial"}
    basis = np.eye(n).reshape((n,) + _AVG_T["in_spatial"])
    pooled = _pool_ref(basis, "avg", **geo).reshape(n, -1)
    lead = ct.shape[:-2]
    flat = ct.reshape(-1, pooled.shape[1]) @ pooled.T
    return flat.reshape(lead + _AVG_T["in_spatial"]).astype(ct.dtype)


rec("avg_pool_transpose", _bind(_pl.avg_pool_transpose_p, **_AVG_T), _avg_pool_transpose_ref,
    ("any",), shapes=(((2, 3, 3),), ((3, 3),)), tol=LOOSE, prims=("avg_pool_transpose",
                                                                     "avg_pool"))


def _pool_scatter_add_ref(ct, idx):
    out = np.zeros(ct.shape[:-1] + (4,), ct.dtype)
    for lead in np.ndindex(*ct.shape[:-1]):
        np.add.at(out[lead], idx[lead], ct[lead])
    return out


# duplicate indices accumulate; the indices are cast to int64 inside the op (domain "index"
# draws int32)
rec("pool_scatter_add", lambda c, i: _pl.pool_scatter_add_p.bind(
    c, i.astype(fnp.int64), in_spatial=(4,)), _pool_scatter_add_ref, ("any", "index"),
    shapes=(((2, 5), (2, 5)), ((3, 2, 6), (3, 2, 6))), prims=("pool_scatter_add", "pool_gather"))
rec("pool_gather", lambda t, i: _pl.pool_gather_p.bind(t, i.astype(fnp.int64), nsp=1),
    lambda t, i: np.take_along_axis(t, i.astype(np.int64), -1), ("any", "index"),
    shapes=(((2, 4), (2, 5)), ((3, 2, 3), (3, 2, 6))), prims=("pool_gather", "pool_scatter_add"))


if "normalization" in OPTIONAL_OP_MODULES:
    _nm = OPTIONAL_OP_MODULES["normalization"]

    def _np_normalize(x, w, b, layout, dims, eps, center):
        # the definition: statistics of x viewed as dims over the layout's axes, in float64
        axes = (0, 2) if layout == "channel" else (2, 3)
        xv = x.reshape(dims).astype(np.float64)
        m = xv.mean(axes, keepdims=True) if center else np.zeros_like(xv.mean(axes, keepdims=True))
        v = ((xv - m) ** 2).mean(axes, keepdims=True)
        view = (1, dims[1], 1) if layout == "channel" else (1, dims[1], dims[2], 1)
        y = (xv - m) / np.sqrt(v + eps) * w.reshape(view) + b.reshape(view)
        stat = (dims[1],) if layout == "channel" else dims[:2]
        return (y.reshape(x.shape).astype(x.dtype), m.reshape(stat).astype(x.dtype),
                v.reshape(stat).astype(x.dtype))

    # (tag, layout, dims, x shape, weight shape, center): BatchNorm 2-d and 1-d, LayerNorm with a
    # 2-d normalized shape, GroupNorm, RMSNorm, and an empty batch
    for _tag, _lay, _dims, _xs, _ws, _ctr in [
        ("channel", "channel", (3, 2, 4), (3, 2, 2, 2), (2,), True),
        ("channel_rows", "channel", (4, 3, 1), (4, 3), (3,), True),
        ("group_rows", "group", (3, 1, 6, 1), (3, 2, 3), (2, 3), True),
        ("group", "group", (2, 2, 2, 3), (2, 4, 3), (4,), True),
        ("group_rms", "group", (3, 1, 4, 1), (3, 4), (4,), False),
        ("group_empty", "group", (0, 1, 3, 1), (0, 3), (3,), True),
    ]:
        _p = dict(layout=_lay, dims=_dims, eps=1e-5, center=_ctr)
        _stat = (_dims[1],) if _lay == "channel" else _dims[:2]
        rec(f"normalize_{_tag}", lambda x, w, b, p=_p: tuple(_nm.normalize_p.bind(x, w, b, **p)),
            functools.partial(_np_normalize, **_p), ("any", "any", "any"),
            shapes=((_xs, _ws, _ws),), tol=LOOSE, prims=("normalize",))
        # the tangent and its transpose: checked by finite differences (to first order: the
        # second-order checks of normalize go through their derivatives), vmap and jit;
        # normalize_vjp's fused kernel against the array-code formula the CuPy path runs
        rec(f"normalize_jvp_{_tag}",
            lambda *a, p=_p: tuple(_nm.normalize_jvp_p.bind(*a, **p)), None, ("any",) * 5,
            shapes=((_xs, _ws, _ws, _xs, _ws),), tol=LOOSE, grad=1, prims=("normalize_jvp",))
        rec(f"normalize_vjp_{_tag}",
            lambda *a, p=_p: tuple(_nm.normalize_vjp_p.bind(*a, **p)),
            lambda *a, p=_p: tuple(_nm._backward(np, *a, **p)), ("any",) * 5,
            shapes=((_xs, _stat, _stat, _xs, _ws),), tol=LOOSE, grad=1, prims=("normalize_vjp",))

# --- higher-order primitives (control flow, custom rules, jit), through their public APIs ---
_lax = getattr(fnx, "lax", None)
if _lax is not None and hasattr(_lax, "cond"):
    def _np_body(c, x):
        return c * x + np.sin(c), c + x

    def _scan_ref(c, xs):
        ys = []
        for x in xs:
            c, y = _np_body(c, x)
            ys.append(y)
        return c, np.stack(ys) if ys else np.zeros((0,) + np.shape(c), c.dtype)

    rec("lax.cond", lambda p, x: _lax.cond(p, lambda v: fnp.sin(v) * 2.0, fnp.cos, x),
        lambda p, x: np.where(p, np.sin(x) * 2.0, np.cos(x)).astype(x.dtype), ("bool", "any"),
        shapes=(((), (3,)), ((), ())), prims=("cond",))
    rec("lax.switch", lambda x: _lax.switch(fnp.asarray(1), [fnp.sin, fnp.cos, fnp.tanh], x),
        np.cos, ("any",), prims=("cond",))
    rec("lax.scan", lambda c, xs: tuple(_lax.scan(lambda c, x: (c * x + fnp.sin(c), c + x),
                                                  c, xs)),
        _scan_ref, ("unit", "unit"), shapes=(((2,), (4, 2)), ((), (3,))), tol=LOOSE,
        prims=("scan",))
    rec("lax.fori_loop", lambda x: _lax.fori_loop(0, 3, lambda i, c: fnp.sin(c) * x, x),
        lambda x: np.sin(np.sin(np.sin(x) * x) * x) * x, ("any",), tol=LOOSE, prims=("scan",))
    rec("lax.while_loop",
        lambda x: _lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, fnp.sin(c[1]) + c[1]),
                                  (fnp.asarray(0), x))[1],
        lambda x: (lambda a: (lambda b: np.sin(b) + b)(np.sin(a) + a))(np.sin(x) + x),
        ("any",), tol=LOOSE, grad_modes=("fwd",), prims=("while",),
        why="reverse mode of while_loop is undefined (run-time trip count)")

if hasattr(fnx, "custom_jvp"):
    @fnx.custom_jvp
    def _softplus(x):
        return fnp.log1p(fnp.exp(x))

    @_softplus.defjvp
    def _softplus_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return _softplus(x), t / (1 + fnp.exp(-x))

    rec("custom_jvp", _softplus, lambda x: np.log1p(np.exp(x)), ("any",), tol=LOOSE,
        prims=("custom_jvp_call",))

if hasattr(fnx, "custom_vjp"):
    @fnx.custom_vjp
    def _sin_times(x, y):
        return fnp.sin(x) * y

    _sin_times.defvjp(lambda x, y: (fnp.sin(x) * y, (x, y)),
                      lambda res, g: (g * fnp.cos(res[0]) * res[1], g * fnp.sin(res[0])))
    rec("custom_vjp", _sin_times, lambda x, y: np.sin(x) * y, ("any", "any"),
        shapes=SAME_SHAPES2, grad_modes=("rev",), prims=("custom_vjp_call", "custom_lin"),
        why="custom_vjp defines reverse mode only")

if hasattr(fnx, "checkpoint"):
    rec("checkpoint", fnx.checkpoint(lambda x, y: fnp.sin(x) * y + x),
        lambda x, y: np.sin(x) * y + x, ("any", "any"), shapes=SAME_SHAPES2,
        prims=("checkpoint",))
if hasattr(fnx, "stop_gradient"):
    rec("stop_gradient", fnx.stop_gradient, lambda x: x, ("any",), grad=0,
        prims=("stop_gradient",),
        why="its derivative is zero by definition, finite differences see the identity "
            "(tested in test_transforms_compose / test_custom_rules)")
if hasattr(fnx.transforms.custom, "recorded_value_p"):
    rec("recorded_value", _bind(fnx.transforms.custom.recorded_value_p),
        lambda x, saved: saved, ("any", "any"), shapes=SAME_SHAPES2, grad=0,
        prims=("recorded_value",),
        why="the value is the saved operand, the derivative x's by design (the eager tape's "
            "backward reuses recorded buffers; tested in test_autograd)")
if hasattr(fnx, "jit"):
    rec("jit", fnx.jit(lambda x, y: fnp.sin(x) * y + x), lambda x, y: np.sin(x) * y + x,
        ("any", "any"), shapes=SAME_SHAPES2, tol=LOOSE, prims=("jit_call",))

# ============================================================================================
# fnx.numpy functions
# ============================================================================================


def _np_rec(name, op, ref, domains, **kw):
    kw.setdefault("kind", "numpy")
    return rec(f"fnp.{name}", op, ref, domains, **kw)


_FNP_UNARY = [
    # name, numpy name (None = same), domain, grad domain, grad order
    ("negative", None, "any", None, 2), ("positive", None, "any", None, 2),
    ("abs", None, "any", "nonzero", 2), ("exp", None, "small", None, 2),
    ("exp2", None, "small", None, 2), ("expm1", None, "small", None, 2),
    ("log", None, "positive", None, 2), ("log2", None, "positive", None, 2),
    ("log10", None, "positive", None, 2), ("log1p", None, "positive", None, 2),
    ("sqrt", None, "positive", None, 2), ("cbrt", None, "nonzero", None, 2),
    ("square", None, "any", None, 2), ("reciprocal", None, "nonzero", None, 2),
    ("rsqrt", lambda x: 1 / np.sqrt(x), "positive", None, 2),
    ("sin", None, "any", None, 2), ("cos", None, "any", None, 2), ("tan", None, "unit", None, 2),
    ("arcsin", None, "unit", None, 2), ("arccos", None, "unit", None, 2),
    ("arctan", None, "any", None, 2), ("sinh", None, "small", None, 2),
    ("cosh", None, "small", None, 2), ("tanh", None, "any", None, 2),
    ("arcsinh", None, "any", None, 2), ("arccosh", None, "gt1", None, 2),
    ("arctanh", None, "unit", None, 2), ("asin", np.arcsin, "unit", None, 2),
    ("acos", np.arccos, "unit", None, 2), ("atan", np.arctan, "any", None, 2),
    ("asinh", np.arcsinh, "any", None, 2), ("acosh", np.arccosh, "gt1", None, 2),
    ("atanh", np.arctanh, "unit", None, 2),
    ("floor", None, "any", "noninteger", 2), ("ceil", None, "any", "noninteger", 2),
    ("trunc", None, "any", "noninteger", 2), ("round", None, "any", "noninteger", 2),
    ("sign", None, "nonzero", None, 2), ("deg2rad", None, "any", None, 2),
    ("rad2deg", None, "any", None, 2), ("degrees", None, "any", None, 2),
    ("radians", None, "any", None, 2), ("sinc", None, "any", None, 2),
    ("conj", None, "any", None, 2), ("conjugate", None, "any", None, 2),
    ("real", None, "any", None, 2), ("imag", None, "any", None, 0),
    ("nan_to_num", None, "any", None, 2), ("signbit", None, "nonzero", None, 0),
    ("isfinite", None, "any", None, 0), ("isnan", None, "any", None, 0),
    ("isinf", None, "any", None, 0),
    ("ravel", None, "any", None, 2), ("copy", None, "any", None, 2),
    ("atleast_2d", None, "any", None, 2), ("matrix_transpose", lambda x: np.swapaxes(x, -1, -2),
                                           "any", None, 2),
    ("fliplr", None, "any", None, 2), ("flipud", None, "any", None, 2),
    ("tril", None, "any", None, 2), ("triu", None, "any", None, 2),
    ("diagonal", None, "any", None, 2), ("trace", None, "any", None, 2),
]
_MAT_ONLY = {"matrix_transpose", "fliplr", "flipud", "tril", "triu", "diagonal", "trace"}
for _name, _ref, _dom, _gdom, _order in _FNP_UNARY:
    _shapes = (((2, 3),), ((3, 3),), ((0, 2),), ((2, 3, 4),)) if _name in _MAT_ONLY \
        else UNARY_SHAPES
    _np_rec(_name, getattr(fnp, _name), _ref or getattr(np, _name), (_dom,), shapes=_shapes,
            grad=_order, grad_domains=(_gdom,) if _gdom else None,
            tol=LOOSE if _name in ("tan", "sinc", "log10", "log2") else TOL)
_np_rec("logaddexp", fnp.logaddexp, np.logaddexp, ("any", "any"), shapes=BCAST_SHAPES2)
_np_rec("logaddexp2", fnp.logaddexp2, np.logaddexp2, ("any", "any"), shapes=BCAST_SHAPES2)
_np_rec("fabs", fnp.fabs, np.fabs, ("any",), grad_domains=("nonzero",))
_np_rec("angle", fnp.angle, np.angle, ("nonzero",))
_np_rec("angle_deg", lambda z: fnp.angle(z, deg=True), lambda z: np.angle(z, deg=True),
        ("nonzero",), dtypes=(C64,), grad=0, why="complex input: grads are checked for reals")
for _name in ("fmax", "fmin"):
    _np_rec(_name, getattr(fnp, _name), getattr(np, _name), ("any", "any"),
            shapes=BCAST_SHAPES2)

_FNP_BINARY = [
    ("add", "any", "any"), ("subtract", "any", "any"), ("multiply", "any", "any"),
    ("divide", "any", "nonzero"), ("true_divide", "any", "nonzero"),
    ("power", "positive", "any"), ("pow", "positive", "any"),
    ("maximum", "any", "any"), ("minimum", "any", "any"), ("arctan2", "nonzero", "nonzero"),
    ("atan2", "nonzero", "nonzero"), ("hypot", "nonzero", "nonzero"),
    ("copysign", "nonzero", "nonzero"), ("fmod", "positive", "gt1"),
    ("remainder", "positive", "gt1"), ("mod", "positive", "gt1"),
    ("floor_divide", "any", "nonzero"),
]
for _name, _d0, _d1 in _FNP_BINARY:
    _ref = getattr(np, _name, None) or {"pow": np.power, "atan2": np.arctan2}[_name]
    _np_rec(_name, getattr(fnp, _name), _ref, (_d0, _d1), shapes=BCAST_SHAPES2,
            grad=0 if _name == "floor_divide" else 2)
for _name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
              "logical_and", "logical_or", "logical_xor"):
    _np_rec(_name, getattr(fnp, _name), getattr(np, _name), ("any", "any"), shapes=BCAST_SHAPES2,
            grad=0)
for _name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
    _np_rec(_name, getattr(fnp, _name), getattr(np, _name), ("any", "any"), shapes=BCAST_SHAPES2,
            dtypes=INTS, grad=0)
_np_rec("where", fnp.where, np.where, ("bool", "any", "any"),
        shapes=(((2, 3), (2, 3), (2, 3)), ((2, 1), (3,), ()), ((), (2,), (2,))))
_np_rec("clip", lambda x: fnp.clip(x, -0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), ("any",))
_np_rec("heaviside", fnp.heaviside, np.heaviside, ("nonzero", "any"), shapes=BCAST_SHAPES2,
        grad=0)

# reductions: axis=None, an int, a negative int, a tuple; keepdims
_RED_CASES = [dict(), dict(axis=1), dict(axis=-1), dict(axis=(0, 2)), dict(axis=0, keepdims=True)]
for _name, _order, _empty in [("sum", 2, True), ("prod", 2, True), ("mean", 2, False),
                              ("max", 2, False), ("min", 2, False), ("amax", 2, False),
                              ("amin", 2, False), ("var", 2, False), ("std", 2, False),
                              ("nansum", 2, True), ("nanmean", 2, False), ("nanmax", 2, False),
                              ("nanmin", 2, False)]:
    for _kw in _RED_CASES:
        _tag = "_".join(f"{k}{v}" for k, v in _kw.items()).replace(" ", "")
        _shapes = (((2, 3, 4),), ((3, 1, 2),)) + ((((2, 0, 3),),) if _empty else ())
        _np_rec(f"{_name}[{_tag}]", functools.partial(getattr(fnp, _name), **_kw),
                functools.partial(getattr(np, _name), **_kw), ("any",), shapes=_shapes,
                grad=_order, tol=LOOSE)
for _name in ("argmax", "argmin"):
    _np_rec(_name, functools.partial(getattr(fnp, _name), axis=1),
            functools.partial(getattr(np, _name), axis=1), ("any",),
            shapes=(((2, 3, 4),), ((3, 2),)), grad=0)
for _name in ("all", "any"):
    _np_rec(_name, functools.partial(getattr(fnp, _name), axis=0),
            functools.partial(getattr(np, _name), axis=0), ("bool",), dtypes=(BOOL,),
            shapes=(((2, 3),), ((0, 2),)), grad=0)
_np_rec("average", lambda x, w: fnp.average(x, axis=0, weights=w),
        lambda x, w: np.average(x, axis=0, weights=w), ("any", "positive"),
        shapes=(((3, 2), (3,)),), tol=LOOSE)
_np_rec("cov", fnp.cov, np.cov, ("any",), shapes=(((3, 5),),), tol=LOOSE)
_np_rec("corrcoef", fnp.corrcoef, np.corrcoef, ("any",), shapes=(((3, 5),),), tol=LOOSE)

# linear algebra
_np_rec("matmul", fnp.matmul, np.matmul, ("any", "any"),
        shapes=(((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)),
                ((2, 2, 3), (3, 4)), ((5, 1, 2, 3), (4, 3, 2)), ((0, 3), (3, 2))), tol=LOOSE)
_np_rec("dot", fnp.dot, np.dot, ("any", "any"),
        shapes=(((2, 3), (3, 4)), ((3,), (3,)), ((), (2,)), ((2, 3, 4), (4, 2))), tol=LOOSE)
_np_rec("vdot", fnp.vdot, np.vdot, ("any", "any"), shapes=(((2, 3), (3, 2)),), tol=LOOSE)
_np_rec("inner", fnp.inner, np.inner, ("any", "any"), shapes=(((2, 3), (4, 3)), ((3,), (3,))),
        tol=LOOSE)
# NumPy's outer flattens N-d inputs; fnp.outer only takes vectors (ShapeError otherwise)
_np_rec("outer", fnp.outer, np.outer, ("any", "any"), shapes=(((2,), (3,)), ((0,), (3,))),
        tol=LOOSE)
_np_rec("vecdot", fnp.vecdot, lambda a, b: np.sum(a * b, axis=-1), ("any", "any"),
        shapes=(((2, 3), (3,)), ((4, 3), (4, 3))), tol=LOOSE)
_np_rec("tensordot", lambda a, b: fnp.tensordot(a, b, axes=([1, 0], [0, 2])),
        lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 2])), ("any", "any"),
        shapes=(((2, 3, 4), (3, 5, 2)),), tol=LOOSE)
_np_rec("einsum", lambda a, b: fnp.einsum("ij,jk->ik", a, b),
        lambda a, b: np.einsum("ij,jk->ik", a, b), ("any", "any"),
        shapes=(((2, 3), (3, 4)),), tol=LOOSE)
_np_rec("einsum_batch", lambda a, b: fnp.einsum("bij,bkj->bik", a, b),
        lambda a, b: np.einsum("bij,bkj->bik", a, b), ("any", "any"),
        shapes=(((2, 3, 4), (2, 5, 4)),), tol=LOOSE)
_np_rec("einsum_trace", lambda a: fnp.einsum("ii->", a), lambda a: np.einsum("ii->", a),
        ("any",), shapes=(((3, 3),),), tol=LOOSE)
_np_rec("kron", fnp.kron, np.kron, ("any", "any"), shapes=(((2, 2), (3, 1)),), tol=LOOSE)
_np_rec("cross", fnp.cross, np.cross, ("any", "any"), shapes=(((3,), (3,)), ((2, 3), (3,))),
        tol=LOOSE)
_L = fnp.linalg


def _qr_canonical(q, r, xp):
    # Q and R up to the signs of R's diagonal (NumPy's LAPACK and fnx pick differently)
    sign = xp.sign(xp.diagonal(r, axis1=-2, axis2=-1))
    return q * sign[..., None, :], r * sign[..., :, None]


def _vectors_canonical(v, xp):
    # eigen/singular vectors up to sign: make each column's first entry positive
    return v * xp.sign(v[..., :1, :])


# Linear algebra is built from primitives by loops (Gauss-Jordan, Householder, Jacobi
# sweeps): order 1 here (order 2 follows from the primitives' rules and takes seconds per
# draw), vmap on the factorizations, not again on what is built from them.
_LA = dict(grad=1, tol=LOOSE)
_NO_VMAP = dict(vmap=False, why="built from a factorization whose record checks vmap")
_SQUARE = (((3, 3),), ((2, 2, 2),))
for _name, _op, _ref, _dom, _kw in [
    ("det", _L.det, np.linalg.det, "wellcond", {}),
    ("slogdet", lambda x: tuple(_L.slogdet(x)), lambda x: tuple(np.linalg.slogdet(x)),
     "wellcond", _NO_VMAP),
    ("inv", _L.inv, np.linalg.inv, "wellcond", _NO_VMAP),
    ("cholesky", _L.cholesky, np.linalg.cholesky, "spd", {}),
    ("matrix_power_3", lambda x: _L.matrix_power(x, 3), lambda x: np.linalg.matrix_power(x, 3),
     "any", _NO_VMAP),
    ("matrix_power_m2", lambda x: _L.matrix_power(x, -2),
     lambda x: np.linalg.matrix_power(x, -2), "wellcond", _NO_VMAP),
]:
    _np_rec(f"linalg.{_name}", _op, _ref, (_dom,), shapes=_SQUARE, **_LA, **_kw)
_np_rec("linalg.solve", _L.solve, np.linalg.solve, ("wellcond", "any"),
        shapes=(((3, 3), (3, 2)), ((2, 2), (2,)), ((2, 2, 2), (2, 2, 1))), **_LA,
        vmap=False, why="Gauss-Jordan, as det, whose record checks vmap")
_np_rec("linalg.qr", lambda x: _qr_canonical(*_L.qr(x), fnp),
        lambda x: _qr_canonical(*np.linalg.qr(x), np), ("any",),
        shapes=(((4, 3),), ((3, 3),), ((2, 3, 2),)), **_LA)
_np_rec("linalg.eigh", lambda x: (lambda w, v: (w, _vectors_canonical(v, fnp)))(*_L.eigh(x)),
        lambda x: (lambda w, v: (w, _vectors_canonical(v, np)))(*np.linalg.eigh(x)), ("sym",),
        shapes=(((2, 2, 2),),), **_LA, vmap=False, why="svd is built on it and checks vmap")
_np_rec("linalg.svd", lambda x: (lambda u, s, vh: (_vectors_canonical(u, fnp), s))(
            *_L.svd(x, full_matrices=False)),
        lambda x: (lambda u, s, vh: (_vectors_canonical(u, np), s))(
            *np.linalg.svd(x, full_matrices=False)),
        ("any",), shapes=(((3, 2),),), **_LA)
for _name, _op, _ref in [
    ("pinv", _L.pinv, np.linalg.pinv),
    ("matrix_norm[nuc]", functools.partial(_L.matrix_norm, ord="nuc"),
     functools.partial(np.linalg.matrix_norm, ord="nuc")),
]:
    _np_rec(f"linalg.{_name}", _op, _ref, ("any",), shapes=(((3, 2),),), **_LA, **_NO_VMAP)
for _ord in (2, 1, 3, np.inf, -np.inf):
    _np_rec(f"linalg.vector_norm[{_ord}]",
            functools.partial(_L.vector_norm, axis=-1, ord=_ord),
            functools.partial(np.linalg.vector_norm, axis=-1, ord=_ord), ("nonzero",),
            shapes=(((3,),), ((2, 3),)), tol=LOOSE)
_np_rec("linalg.norm", _L.norm, np.linalg.norm, ("any",), shapes=(((3,),), ((2, 3),)), tol=LOOSE)
for _ord in ("fro", 1, np.inf):
    _np_rec(f"linalg.matrix_norm[{_ord}]", functools.partial(_L.matrix_norm, ord=_ord),
            functools.partial(np.linalg.matrix_norm, ord=_ord), ("any",),
            shapes=(((2, 3),), ((2, 3, 3),)), tol=LOOSE)

# sorting, cumulative ops and indexing, through fnx.numpy
_np_rec("sort", functools.partial(fnp.sort, axis=-1), functools.partial(np.sort, axis=-1),
        ("any",), shapes=(((2, 4),), ((5,),)))
_np_rec("sort_descending", functools.partial(fnp.sort, axis=0, descending=True),
        lambda x: np.flip(np.sort(x, axis=0), axis=0), ("any",), shapes=(((3, 2),),))
_np_rec("take_along_axis_argsort",
        lambda x: fnp.take_along_axis(x, fnp.argsort(x, axis=1), axis=1),
        lambda x: np.take_along_axis(x, np.argsort(x, axis=1), axis=1), ("any",),
        shapes=(((2, 4),),))
for _name, _ref in [("cumsum", np.cumsum), ("cumprod", np.cumprod),
                    ("cummax", np.maximum.accumulate), ("cummin", np.minimum.accumulate)]:
    _np_rec(_name, functools.partial(getattr(fnp, _name), axis=-1),
            functools.partial(_ref, axis=-1), ("any",), shapes=(((2, 4),), ((3,),)), tol=LOOSE)
_np_rec("cumsum_flat", fnp.cumsum, np.cumsum, ("any",), shapes=(((2, 3),),))
_np_rec("take", lambda x, i: fnp.take(x, i, axis=0), lambda x, i: np.take(x, i, axis=0),
        ("any", "index"), shapes=(((3, 2), (4,)), ((3,), ())))
_np_rec("take_along_axis", lambda x, i: fnp.take_along_axis(x, i, axis=1),
        lambda x, i: np.take_along_axis(x, i, axis=1), ("any", "index"),
        shapes=(((2, 3), (2, 4)),))

# FFTs (real inputs; complex outputs are compared whole)
for _name in ("fft", "ifft", "rfft", "fftn", "rfftn"):
    _np_rec(f"fft.{_name}", getattr(fnp.fft, _name), getattr(np.fft, _name), ("any",),
            shapes=(((4,),), ((2, 3),)) if _name.endswith("n") else (((5,),), ((2, 4),)),
            tol=LOOSE)
_np_rec("fft.irfft", lambda x: fnp.fft.irfft(x + 0j), lambda x: np.fft.irfft(x + 0j),
        ("any",), shapes=(((4,),), ((2, 3),)), tol=LOOSE)

# shape manipulation
_np_rec("reshape", lambda x: fnp.reshape(x, (3, -1)), lambda x: np.reshape(x, (3, -1)),
        ("any",), shapes=(((2, 3),), ((6, 1),)))
_np_rec("transpose", lambda x: fnp.permute_dims(x, (1, 2, 0)),
        lambda x: np.transpose(x, (1, 2, 0)), ("any",), shapes=(((2, 3, 4),),))
_np_rec("moveaxis", lambda x: fnp.moveaxis(x, 0, -1), lambda x: np.moveaxis(x, 0, -1),
        ("any",), shapes=(((2, 3, 4),), ((0, 2),)))
_np_rec("swapaxes", lambda x: fnp.swapaxes(x, 0, 1), lambda x: np.swapaxes(x, 0, 1), ("any",),
        shapes=(((2, 3, 4),),))
_np_rec("squeeze", lambda x: fnp.squeeze(x, axis=1), lambda x: np.squeeze(x, axis=1), ("any",),
        shapes=(((2, 1, 3),),))
_np_rec("expand_dims", lambda x: fnp.expand_dims(x, axis=-1),
        lambda x: np.expand_dims(x, axis=-1), ("any",))
_np_rec("broadcast_to", lambda x: fnp.broadcast_to(x, (4, 2, 3)),
        lambda x: np.broadcast_to(x, (4, 2, 3)), ("any",), shapes=(((3,),), ((2, 1),), ((),)))
_np_rec("concatenate", lambda a, b: fnp.concatenate([a, b], axis=-1),
        lambda a, b: np.concatenate([a, b], axis=-1), ("any", "any"),
        shapes=(((2, 3), (2, 1)), ((0, 1), (0, 2))))
_np_rec("stack", lambda a, b: fnp.stack([a, b], axis=1), lambda a, b: np.stack([a, b], axis=1),
        ("any", "any"), shapes=(((2, 3), (2, 3)), ((0,), (0,))))
_np_rec("vstack", lambda a, b: fnp.vstack([a, b]), lambda a, b: np.vstack([a, b]),
        ("any", "any"), shapes=(((2, 3), (1, 3)), ((3,), (3,))))
_np_rec("hstack", lambda a, b: fnp.hstack([a, b]), lambda a, b: np.hstack([a, b]),
        ("any", "any"), shapes=(((2, 3), (2, 1)), ((3,), (2,))))
_np_rec("flip", lambda x: fnp.flip(x, axis=0), lambda x: np.flip(x, axis=0), ("any",),
        shapes=(((3, 2),), ((0,),)))
_np_rec("roll", lambda x: fnp.roll(x, 2, axis=-1), lambda x: np.roll(x, 2, axis=-1), ("any",),
        shapes=(((2, 5),), ((3,),)))
_np_rec("roll_flat", lambda x: fnp.roll(x, -1), lambda x: np.roll(x, -1), ("any",),
        shapes=(((2, 3),),))
_np_rec("tile", lambda x: fnp.tile(x, (2, 1)), lambda x: np.tile(x, (2, 1)), ("any",),
        shapes=(((2, 3),), ((3,),)))
_np_rec("repeat", lambda x: fnp.repeat(x, 2, axis=0), lambda x: np.repeat(x, 2, axis=0),
        ("any",), shapes=(((2, 3),), ((3,),)))
_np_rec("rot90", fnp.rot90, np.rot90, ("any",), shapes=(((2, 3),),))
_np_rec("diag", fnp.diag, np.diag, ("any",), shapes=(((3,),), ((3, 3),), ((2, 4),)))
_np_rec("diagflat", fnp.diagflat, np.diagflat, ("any",), shapes=(((3,),), ((2, 2),)))
_np_rec("diff", lambda x: fnp.diff(x, axis=-1), lambda x: np.diff(x, axis=-1), ("any",),
        shapes=(((2, 4),), ((3,),)))
_np_rec("pad", lambda x: fnp.pad(x, ((1, 0), (2, 1))), lambda x: np.pad(x, ((1, 0), (2, 1))),
        ("any",), shapes=(((2, 3),),))
_np_rec("pad_reflect", lambda x: fnp.pad(x, 1, mode="reflect"),
        lambda x: np.pad(x, 1, mode="reflect"), ("any",), shapes=(((3, 4),),))
_np_rec("getitem_basic", lambda x: x[1:, ::2, None, -1], lambda x: x[1:, ::2, None, -1],
        ("any",), shapes=(((3, 4, 2),),))
_np_rec("split", lambda x: tuple(fnp.split(x, 3, axis=1)),
        lambda x: tuple(np.split(x, 3, axis=1)), ("any",), shapes=(((2, 6),),))
_np_rec("append", fnp.append, np.append, ("any", "any"),
        shapes=(((2, 3), (4,)), ((), (2,)), ((0,), (3,))))
_np_rec("append_axis", lambda a, b: fnp.append(a, b, axis=1),
        lambda a, b: np.append(a, b, axis=1), ("any", "any"), shapes=(((2, 3), (2, 1)),))
_np_rec("select", lambda c1, c2, x, y: fnp.select([c1, c2], [x, y], 0.5),
        lambda c1, c2, x, y: np.select([c1, c2], [x, y], 0.5), ("bool", "bool", "any", "any"),
        shapes=(((2, 3), (3,), (2, 3), ()), ((4,), (4,), (4,), (4,))))
_np_rec("rollaxis", lambda x: fnp.rollaxis(x, 2, 0), lambda x: np.rollaxis(x, 2, 0), ("any",),
        shapes=(((2, 3, 4),), ((2, 0, 1),)))
# fnx's partition is the sorted array (one valid partition; NumPy's arrangement of the two
# sides is unspecified), so the reference is the sort; test_numpy_compat checks the property
_np_rec("partition", lambda x: fnp.partition(x, 1), lambda x: np.sort(x, axis=-1), ("any",),
        shapes=(((2, 4),), ((3,),)))
_np_rec("argpartition", lambda x: fnp.argpartition(x, 1, axis=0),
        lambda x: np.argsort(x, axis=0, kind="stable"), ("any",), shapes=(((4, 2),),), grad=0)
_np_rec("gradient", lambda f: fnp.gradient(f, 0.5, axis=1), lambda f: np.gradient(f, 0.5, axis=1),
        ("any",), shapes=(((3, 4),), ((2, 2),)))
_np_rec("gradient_edge2", lambda f: fnp.gradient(f, edge_order=2),
        lambda f: np.gradient(f, edge_order=2), ("any",), shapes=(((3, 4),),), tol=LOOSE)
# coordinates: a cumulative sum of positive steps is increasing (and differentiable)
_np_rec("gradient_coordinates",
        lambda f, h: fnp.gradient(f, fnp.cumsum(h), axis=0, edge_order=2),
        lambda f, h: np.gradient(f, np.cumsum(h), axis=0, edge_order=2), ("any", "positive"),
        shapes=(((4, 2), (4,)), ((3,), (3,))), tol=LOOSE)



# --- attention: softmax(q k^T * scale + mask) v fused, its tangent and its backward ----------
from fnx.core.ops import attention as _at  # noqa: E402


def _attention_ref(q, k, v, mask=None, *, scale, causal=False, weights=False):
    s = q @ np.swapaxes(k, -1, -2) * scale
    if mask is not None:
        s = s + mask
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    e = np.exp(s - s.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    return p if weights else p @ v


_ATT_SHAPES = (((2, 3, 4), (2, 5, 4), (2, 5, 3)), ((3, 2), (4, 2), (4, 1)),
               ((2, 1, 3, 2), (2, 1, 3, 2), (2, 1, 3, 2)))
rec("attention", lambda q, k, v: _at.attention(q, k, v, scale=0.4)[0],
    functools.partial(_attention_ref, scale=0.4), ("any",) * 3, shapes=_ATT_SHAPES, tol=LOOSE,
    prims=("attention", "attention_jvp", "attention_vjp"))
rec("attention_weights", lambda q, k, v: _at.attention(q, k, v, scale=0.4)[1],
    functools.partial(_attention_ref, scale=0.4, weights=True), ("any",) * 3,
    shapes=_ATT_SHAPES, tol=LOOSE, prims=("attention",))
# a mask broadcast over the leading dim, and the causal bound with more keys than queries
rec("attention_causal_masked",
    lambda q, k, v, m: _at.attention(q, k, v, m, scale=0.6, causal=True)[0],
    functools.partial(_attention_ref, scale=0.6, causal=True), ("any",) * 4,
    shapes=(((2, 3, 4), (2, 5, 4), (2, 5, 3), (1, 3, 5)), ((3, 2), (3, 2), (3, 2), (1, 3))),
    tol=LOOSE, prims=("attention", "attention_jvp", "attention_vjp"))


# --- recurrences (fnx.core.ops.rnn: rnn, rnn_lin, rnn_bwd): one layer and direction ---------
try:
    from fnx.core.ops import rnn as _rnn
except ImportError:  # pragma: no cover
    _rnn = None


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_recurrence(mode, x, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr=None, mask=None,
                   reverse=False):
    """NumPy reference of ``recurrence``: (ys, h_T[, c_T]) concatenated flat."""
    gi = x @ w_ih.T + b_ih
    T, H = gi.shape[0], w_hh.shape[0] // _rnn.MODES[mode]
    h, c, ys = h0, c0, np.zeros(gi.shape[:2] + h0.shape[1:], gi.dtype)
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        gh = h @ w_hh.T + b_hh
        pre = gi[t] + gh
        if mode == "LSTM":
            i, f, o = (_np_sigmoid(pre[:, k * H:(k + 1) * H]) for k in (0, 1, 3))
            c_new = f * c + i * np.tanh(pre[:, 2 * H:3 * H])
            h_new = o * np.tanh(c_new)
            h_new = h_new @ w_hr.T if w_hr is not None else h_new
        elif mode == "GRU":
            r, z = (_np_sigmoid(pre[:, k * H:(k + 1) * H]) for k in (0, 1))
            n = np.tanh(gi[t][:, 2 * H:] + r * gh[:, 2 * H:])
            h_new = (1 - z) * n + z * h
        else:
            h_new = np.tanh(pre)
        m = np.ones((gi.shape[1], 1), bool) if mask is None else mask[t][:, None] > 0
        ys[t] = np.where(m, h_new, 0)
        h = np.where(m, h_new, h)
        if mode == "LSTM":
            c = np.where(m, c_new, c)
    return ys, h, c


def _rnn_rec(name, mode, shapes, proj=False, masked=False, reverse=False, batch_first=False):
    def op(*args):
        a = list(args)
        c0 = a.pop(4) if mode == "LSTM" else None
        x, w_ih, b_ih, h0, w_hh, b_hh = a[:6]
        w_hr = a[6] if proj else None
        mask = (fnp.asarray(_RNN_MASK[:x.shape[0], :x.shape[1]], dtype=x.dtype)
                if masked else None)
        ys, h, c = _rnn.recurrence(x, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr, mask, mode=mode,
                                   reverse=reverse, batch_first=batch_first)
        return (ys, h) if c is None else (ys, h, c)

    def ref(*args):
        a = list(args)
        c0 = a.pop(4) if mode == "LSTM" else None
        x, w_ih, b_ih, h0, w_hh, b_hh = a[:6]
        x = np.swapaxes(x, 0, 1) if batch_first else x
        mask = _RNN_MASK[:x.shape[0], :x.shape[1]].astype(x.dtype) if masked else None
        ys, h, c = _np_recurrence(mode, x, w_ih, b_ih, h0, c0, w_hh, b_hh,
                                  a[6] if proj else None, mask, reverse)
        ys = np.swapaxes(ys, 0, 1) if batch_first else ys
        return (ys, h) if c is None else (ys, h, c)

    rec(name, op, ref, ("unit",) * len(shapes[0]), shapes=shapes, tol=LOOSE,
        prims=("rnn", "rnn_lin", "rnn_bwd"))


# rows 1 and 2 end early (a packed batch's mask): their state is kept through the padding
_RNN_MASK = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 0, 0]], np.float32)

if _rnn is not None:
    # shapes: x (T, B, I), w_ih (G, I), b_ih (G,), h0 (B, P)[, c0 (B, H)], w_hh (G, P),
    # b_hh (G,)[, w_hr (P, H)]
    _rnn_rec("rnn.lstm", "LSTM", (((3, 2, 2), (8, 2), (8,), (2, 2), (2, 2), (8, 2), (8,)),
                                  ((1, 1, 1), (4, 1), (4,), (1, 1), (1, 1), (4, 1), (4,))))
    _rnn_rec("rnn.lstm_proj_masked_reverse", "LSTM",
             (((4, 3, 2), (12, 2), (12,), (3, 2), (3, 3), (12, 2), (12,), (2, 3)),), proj=True,
             masked=True, reverse=True)
    _rnn_rec("rnn.lstm_batch_first_reverse", "LSTM",
             (((2, 3, 2), (8, 2), (8,), (2, 2), (2, 2), (8, 2), (8,)),), reverse=True,
             batch_first=True)
    _rnn_rec("rnn.gru_masked", "GRU", (((4, 3, 2), (6, 2), (6,), (3, 2), (6, 2), (6,)),),
             masked=True)
    # one input feature: with two, the first draw's second derivatives carry a central
    # difference truncation error of 1.3e-5 at eps 1e-4 (1e-7 at eps 1e-5)
    _rnn_rec("rnn.rnn_tanh_reverse", "RNN_TANH",
             (((3, 2, 1), (3, 1), (3,), (2, 3), (3, 3), (3,)),), reverse=True)



# --- embedding rows: lookup and its transpose, the row scatter-add ----------------------------
from fnx.core.ops import embedding as _em  # noqa: E402


def _embedding_scatter_ref(ct, idx, num_rows):
    out = np.zeros((num_rows, ct.shape[-1]), ct.dtype)
    np.add.at(out, idx.reshape(-1), ct.reshape(-1, ct.shape[-1]))
    return out


rec("embedding_lookup", lambda w, i: _em.embedding_lookup_p.bind(w, i), lambda w, i: w[i],
    ("any", "index"), shapes=(((4, 3), (2, 5)), ((3, 2), (4,)), ((3, 1), ())),
    prims=("embedding_lookup", "embedding_scatter"))
# duplicate indices accumulate
rec("embedding_scatter", lambda c, i: _em.embedding_scatter_p.bind(c, i, num_rows=4),
    functools.partial(_embedding_scatter_ref, num_rows=4), ("any", "index"),
    shapes=(((2, 5, 3), (2, 5)), ((6, 2), (6,))), prims=("embedding_scatter", "embedding_lookup"))

def by_name(name):
    for r in RECORDS:
        if r.name == name:
            return r
    raise KeyError(name)


def covered_primitives():
    return {p for r in RECORDS for p in r.prims}


# Primitives with no record, each with the reason (the contract test reports any others).
UNRECORDED = {
    name: "a collective (fnx/distributed/ops.py): checked with 2 and 3 ranks under mpiexec "
          "against NumPy, float64 central differences of the whole job, vmap vs a loop and jit "
          "vs eager (tests/distributed_scripts/collectives.py)"
    for name in ("all_reduce_sum", "all_reduce_max", "all_reduce_min", "all_gather",
                 "reduce_scatter", "collective_broadcast", "process_rank")}
