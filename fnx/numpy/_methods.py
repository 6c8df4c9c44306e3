"""Array methods beyond the operators: array-API methods and the PyTorch-style tensor API.

Each entry of ``METHODS`` becomes an attribute of ``ArrayOps``, so Arrays and tracers share
one definition. Every method is a composition of ``fnx.numpy`` functions, i.e.
of primitives, so ``x.sum(dim=0)`` or ``x.view(3, 4)`` also work under grad/vmap/jit.

Where PyTorch and the array API disagree the methods follow PyTorch (``x.std()`` is unbiased,
``x.max(1)`` returns ``(values, indices)``), because method calls on arrays are the PyTorch
surface of fnx; ``fnx.numpy`` functions follow the array API. See docs/from-pytorch.md.
"""

import collections
import math
import operator

import numpy as np

from ..core import devices, dtypes
from ..core.array import Array, ArrayOps, AutogradMeta, wrap
from ..core.errors import DTypeError, ShapeError, TraceError, normalize_axes, normalize_axis
from ..core.ops import elementwise as ew
from ..core.ops import shape as sh
from . import _creation as cr
from . import _elementwise as el
from . import _linalg as la
from . import _manipulation as man
from . import _statistical as st
from ._core import binary, is_array, to_array, unary
from ._ufunc import check_out

# --- shapes: the dual-use ``size`` and ``Size`` ------------------------------------------------


class Size(tuple):
    """A shape, as ``torch.Size``: a tuple that prints as ``fnx.Size([3, 4])``.

    >>> fnx.ones(3, 4).size()
    fnx.Size([3, 4])
    """

    __slots__ = ()

    def numel(self):
        return math.prod(self)

    def __repr__(self):
        return f"fnx.Size({list(self)})"


class SizeInt(int):
    """``x.size``: the element count (an int, as the array API's ``x.size``) that can also be
    called as PyTorch's ``x.size()`` -> shape or ``x.size(dim)`` -> the length of ``dim``.

    >>> x = fnx.ones(3, 4)
    >>> (x.size, x.size(), x.size(1))
    (12, fnx.Size([3, 4]), 4)
    """

    # int subclasses cannot have slots; the shape lives in the instance dict
    def __new__(cls, n, shape):
        self = int.__new__(cls, n)
        self._shape = shape
        return self

    def __call__(self, dim=None):
        if dim is None:
            return Size(self._shape)
        return self._shape[normalize_axis(dim, len(self._shape), "size")]

    def __repr__(self):
        return int.__repr__(self)

    __str__ = __repr__

    def __reduce__(self):
        return (int, (int(self),))


def size_of(x):
    """The value of ``x.size`` for an array or tracer (Array.size/Tracer.size call this)."""
    shape = x.shape
    return SizeInt(math.prod(shape), shape)


_size = size_of


def _numel(self):
    return math.prod(self.shape)


def _dim(self):
    return len(self.shape)


def _element_size(self):
    return self.dtype.itemsize


def _shape_args(op, args):
    """``f(3, 4)``, ``f((3, 4))`` and ``f([3, 4])`` all mean the shape ``(3, 4)``."""
    if len(args) == 1 and not isinstance(args[0], (int, np.integer)) and not (
        is_array(args[0]) and args[0].ndim == 0
    ):
        args = args[0]
    try:
        return tuple(operator.index(s) for s in args)
    except TypeError:
        raise TypeError(f"{op}: expected ints or one sequence of ints as the shape, got "
                        f"{args!r}") from None


# --- dim/axis and keepdim/keepdims aliases -------------------------------------------------


def _axis(op, dim, axis):
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: got both dim={dim!r} and axis={axis!r}; pass one of them")
        dim = axis
    return tuple(dim) if isinstance(dim, list) else dim


def _keep(keepdim, keepdims):
    return bool(keepdim if keepdims is None else keepdims)


# --- reductions ----------------------------------------------------------------------------


# The NumPy keywords (``out=None``, ``initial``, ``where``, ``ddof``) are what
# ``np.sum(fnx_array)`` and the other NumPy reductions pass on to these methods.


def _sum(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None, out=None,
         initial=None, where=None):
    """``x.sum(dim=None, keepdim=False, dtype=None)``; ``axis``/``keepdims`` are aliases."""
    if dim is None and axis is None and not keepdim and not keepdims:
        # the common x.sum(): skip the argument mapping
        return st.sum(self, dtype=dtype, out=out, initial=initial, where=where)
    return st.sum(self, axis=_axis("sum", dim, axis), keepdims=_keep(keepdim, keepdims),
                  dtype=dtype, out=out, initial=initial, where=where)


def _prod(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None, out=None,
          initial=None, where=None):
    return st.prod(self, axis=_axis("prod", dim, axis), keepdims=_keep(keepdim, keepdims),
                   dtype=dtype, out=out, initial=initial, where=where)


def _mean(self, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None, out=None,
          where=None):
    return st.mean(self, axis=_axis("mean", dim, axis), keepdims=_keep(keepdim, keepdims),
                   dtype=dtype, out=out, where=where)


def _correction(op, unbiased, correction, ddof=None):
    given = [n for n, v in (("unbiased", unbiased), ("correction", correction), ("ddof", ddof))
             if v is not None]
    if len(given) > 1:
        raise TypeError(f"{op}: pass either unbiased or correction (or NumPy's ddof), not "
                        f"several; got {', '.join(given)}")
    if correction is not None or ddof is not None:
        return ddof if correction is None else correction
    return 1 if unbiased is None or unbiased else 0


def _var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
         keepdims=None, dtype=None, out=None, ddof=None, where=None, mean=None):
    """Variance; unbiased (``correction=1``) by default, as ``torch.Tensor.var`` (NumPy's
    ``np.var(x)`` passes ``ddof=0``)."""
    if isinstance(dim, bool):  # torch's legacy x.var(unbiased) overload
        dim, unbiased = None, dim
    return st.var(self, axis=_axis("var", dim, axis), keepdims=_keep(keepdim, keepdims),
                  correction=_correction("var", unbiased, correction, ddof), dtype=dtype,
                  out=out, where=where, mean=mean)


def _std(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
         keepdims=None, dtype=None, out=None, ddof=None, where=None, mean=None):
    """Standard deviation; unbiased (``correction=1``) by default, as ``torch.Tensor.std``
    (NumPy's ``np.std(x)`` passes ``ddof=0``)."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return st.std(self, axis=_axis("std", dim, axis), keepdims=_keep(keepdim, keepdims),
                  correction=_correction("std", unbiased, correction, ddof), dtype=dtype,
                  out=out, where=where, mean=mean)


MaxResult = collections.namedtuple("max", ["values", "indices"])
MinResult = collections.namedtuple("min", ["values", "indices"])
MaxResult.__module__ = MinResult.__module__ = "fnx.return_types"


def _extremum(op, reduce, arg, elementwise, result):
    def method(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None,
               initial=None, where=None):
        check_out(op, out)
        if is_array(dim):  # x.max(other): elementwise, as torch.max(x, y)
            return elementwise(self, dim)
        keep = _keep(keepdim, keepdims)
        if axis is not None or isinstance(dim, (tuple, list)) or initial is not None or \
                where is not None:
            # NumPy-style calls (axis=, several dims, NumPy keywords) return the values only
            return reduce(self, axis=_axis(op, dim, axis), keepdims=keep, initial=initial,
                          where=where)
        if dim is None:
            return reduce(self, keepdims=keep)
        return result(reduce(self, axis=dim, keepdims=keep), arg(self, axis=dim, keepdims=keep))

    method.__name__ = op
    method.__doc__ = f"""``x.{op}()`` -> the {op} value; ``x.{op}(dim, keepdim=False)`` ->
    ``(values, indices)`` (a named tuple, as torch); ``x.{op}(other)`` -> elementwise;
    ``x.{op}(axis=...)`` -> the values only (NumPy style)."""
    return method


_max = _extremum("max", st.max, st.argmax, el.maximum, MaxResult)
_min = _extremum("min", st.min, st.argmin, el.minimum, MinResult)


def _amax(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None, initial=None,
          where=None):
    return st.max(self, axis=_axis("amax", dim, axis), keepdims=_keep(keepdim, keepdims),
                  out=out, initial=initial, where=where)


def _amin(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None, initial=None,
          where=None):
    return st.min(self, axis=_axis("amin", dim, axis), keepdims=_keep(keepdim, keepdims),
                  out=out, initial=initial, where=where)


def _argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
    return st.argmax(self, axis=_axis("argmax", dim, axis), keepdims=_keep(keepdim, keepdims),
                     out=out)


def _argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None):
    return st.argmin(self, axis=_axis("argmin", dim, axis), keepdims=_keep(keepdim, keepdims),
                     out=out)


def _all(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None, where=None):
    return st.all(self, axis=_axis("all", dim, axis), keepdims=_keep(keepdim, keepdims),
                  out=out, where=where)


def _any(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None, where=None):
    return st.any(self, axis=_axis("any", dim, axis), keepdims=_keep(keepdim, keepdims),
                  out=out, where=where)


def _float_input(x):
    return x if x.dtype.kind in "fc" else x.astype(dtypes.default_float())


def _logsumexp(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """``log(sum(exp(x), dim))`` computed stably."""
    x = _float_input(self)
    axis = _axis("logsumexp", dim, axis)
    m = st.max(x, axis=axis, keepdims=True)
    m = el.where(el.isfinite(m), m, 0)
    out = el.log(st.sum(el.exp(x - m), axis=axis, keepdims=True)) + m
    if not _keep(keepdim, keepdims):
        out = man.squeeze(out, axis=normalize_axes(axis, x.ndim, "logsumexp"))
    return out


def _softmax(self, dim=-1, *, dtype=None):
    """Softmax along ``dim`` (shifted by the max, so it does not overflow)."""
    x = _float_input(self if dtype is None else self.astype(dtype))
    e = el.exp(x - st.max(x, axis=dim, keepdims=True))
    return e / st.sum(e, axis=dim, keepdims=True)


def _log_softmax(self, dim=-1, *, dtype=None):
    x = _float_input(self if dtype is None else self.astype(dtype))
    return x - _logsumexp(x, dim, keepdim=True)


def _norm(self, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector p-norm over ``dim`` (all elements when None), as ``torch.Tensor.norm``.

    >>> fnx.tensor([3.0, 4.0]).norm().item()
    5.0
    """
    x = _float_input(self if dtype is None else self.astype(dtype))
    a = el.abs(x)
    kw = {"axis": dim if not isinstance(dim, list) else tuple(dim), "keepdims": keepdim}
    if p in ("fro", 2):
        return el.sqrt(st.sum(a * a, **kw))
    if p == math.inf:
        return st.max(a, **kw)
    if p == -math.inf:
        return st.min(a, **kw)
    if p == 0:
        return st.sum((a != 0).astype(a.dtype), **kw)
    if p == 1:
        return st.sum(a, **kw)
    if isinstance(p, str):
        raise ValueError(f"norm: p={p!r} is not supported; use a number, inf or 'fro'")
    return st.sum(a**p, **kw) ** (1.0 / p)


# --- elementwise ---------------------------------------------------------------------------


def _add(self, other, *, alpha=1):
    """``self + alpha * other``."""
    return self + (other if alpha == 1 else other * alpha)


def _sub(self, other, *, alpha=1):
    return self - (other if alpha == 1 else other * alpha)


def _mul(self, other):
    return self * other


_c_div = binary("div", ew.div_p)  # div_p promoted and broadcast: ints truncate, as C


def _div(self, other, *, rounding_mode=None):
    """True division; ``rounding_mode='trunc'`` or ``'floor'`` rounds the quotient."""
    if rounding_mode is None:
        return el.divide(self, other)
    if rounding_mode == "floor":
        return el.floor_divide(self, other)
    if rounding_mode == "trunc":
        x, y = to_array(self), other
        if x.dtype.kind in "iu" and (not is_array(y) or y.dtype.kind in "iu"):
            return _c_div(x, y)  # C integer division truncates
        return el.trunc(el.divide(x, y))
    raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")


def _pow(self, exponent):
    return self**exponent


def _float_power(self, exponent):
    """``self ** exponent`` computed in double precision (float64, or complex128), as torch.

    >>> fnx.tensor([2, 3]).float_power(2).tolist()
    [4.0, 9.0]
    """
    from ._core import to_array

    wide = "complex128" if self.dtype.kind == "c" or (
        hasattr(exponent, "dtype") and exponent.dtype.kind == "c") or isinstance(
        exponent, complex) else "float64"
    if hasattr(exponent, "dtype") or not isinstance(exponent, (int, float, complex)):
        exponent = to_array(exponent).astype(wide)
    return self.astype(wide) ** exponent


def _rpow(self, base):
    return base**self


def _sigmoid(self):
    return unary("sigmoid", ew.logistic_p, self, float_only=True)


def _relu(self):
    # gradient 0 at 0, as PyTorch (maximum would split the tie 0.5/0.5); NaN stays NaN
    return el.where((self > 0) | (self != self), self, 0)


def _erf(self):
    return unary("erf", ew.erf_p, self, float_only=True)


def _erfinv(self):
    return unary("erfinv", ew.erf_inv_p, self, float_only=True)


def _lgamma(self):
    return unary("lgamma", ew.lgamma_p, self, float_only=True)


def _clamp(self, min=None, max=None, out=None):  # noqa: A002
    """Clamp to ``[min, max]`` (either bound may be None), as ``torch.clamp``."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return el.clip(self, min, max, out)


def _where(self, condition, other):
    """``fnx.where(condition, self, other)`` (the method form of torch)."""
    return el.where(condition, self, other)


def _masked_fill(self, mask, value):
    """``self`` with ``value`` where ``mask`` is true."""
    if is_array(value):
        value = value.astype(self.dtype)
    return el.where(mask, value, self)


def _lerp(self, end, weight):
    return self + weight * (end - self)


def _addcmul(self, tensor1, tensor2, *, value=1):
    return self + value * tensor1 * tensor2


def _addcdiv(self, tensor1, tensor2, *, value=1):
    return self + value * tensor1 / tensor2


def _allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """A Python bool, as ``torch.allclose``."""
    x, y = to_array(self), to_array(other)
    close = el.abs(x - y) <= atol + rtol * el.abs(y)
    if equal_nan:
        close = close | (el.isnan(x) & el.isnan(y))
    return bool(st.all(close))


def _equal(self, other):
    """True when ``other`` has the same shape and values, as ``torch.equal``."""
    other = to_array(other)
    return self.shape == other.shape and bool(st.all(self == other))


# --- shape manipulation --------------------------------------------------------------------


def _reshape(self, *shape):
    """``x.reshape(3, 4)`` or ``x.reshape((3, 4))``; one entry may be -1."""
    return man.reshape(self, _shape_args("reshape", shape))


def _view(self, *shape):
    """Reshape (``x.view(3, 4)``) or reinterpret the bits (``x.view(fnx.int32)``). fnx arrays
    are values: the result never aliases ``x`` (an in-place op on it does not change ``x``)."""
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer, tuple, list)):
        try:
            dt = dtypes.canonicalize(shape[0])
        except DTypeError:
            pass
        else:
            if dt == self.dtype:
                return self
            return ew.bitcast_convert_type_p.bind(to_array(self), new_dtype=dt)
    return man.reshape(self, _shape_args("view", shape))


def _view_as(self, other):
    return man.reshape(self, other.shape)


def _flatten(self, start_dim=0, end_dim=-1):
    """Merge dims ``start_dim..end_dim`` into one (a 0-d array becomes shape ``(1,)``)."""
    shape = self.shape
    if not shape:
        return man.reshape(self, (1,))
    s = normalize_axis(start_dim, len(shape), "flatten")
    e = normalize_axis(end_dim, len(shape), "flatten")
    if s > e:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for "
                         f"shape {shape}")
    return man.reshape(self, shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


def _unflatten(self, dim, sizes):
    d = normalize_axis(dim, self.ndim, "unflatten")
    return man.reshape(self, self.shape[:d] + tuple(sizes) + self.shape[d + 1:])


def _squeeze(self, dim=None):
    """Drop size-1 dims (all of them, or those of ``dim`` that have size 1, as torch)."""
    if dim is None:
        return man.squeeze(self)
    axes = normalize_axes(dim, self.ndim, "squeeze")
    axes = tuple(a for a in axes if self.shape[a] == 1)
    return man.squeeze(self, axis=axes) if axes else self


def _unsqueeze(self, dim):
    return man.expand_dims(self, axis=dim)


def _t(self):
    """Transpose a 2-D array (0-D and 1-D arrays are returned as they are), as torch."""
    if self.ndim > 2:
        raise ShapeError(f"t: expects an array with at most 2 dims, got shape {self.shape}; "
                         f"use x.transpose(d0, d1), x.permute(...) or x.mT")
    return self if self.ndim < 2 else man.permute_dims(self, (1, 0))


def _transpose(self, *axes):
    """``x.transpose(d0, d1)`` swaps two dims (torch); ``x.transpose()`` reverses them and
    ``x.transpose(p0, p1, p2, ...)`` permutes (NumPy)."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    if not axes:
        return man.permute_dims(self, tuple(range(self.ndim))[::-1])
    if len(axes) == 2:
        return man.swapaxes(self, *axes)
    return man.permute_dims(self, axes)


def _permute(self, *dims):
    return man.permute_dims(self, _shape_args("permute", dims))


def _movedim(self, source, destination):
    return man.moveaxis(self, source, destination)


def _contiguous(self, memory_format=None):
    """fnx arrays have no strides to fix: returns ``self``."""
    del memory_format  # unused
    return self


def _expand(self, *sizes):
    """Broadcast to ``sizes`` (-1 keeps a dim), as ``torch.Tensor.expand``."""
    sizes = _shape_args("expand", sizes)
    lead = len(sizes) - self.ndim
    if lead < 0:
        raise ShapeError(f"expand: the target {sizes} has fewer dims than the array "
                         f"({self.shape})")
    target = []
    for i, s in enumerate(sizes):
        if s == -1:
            if i < lead:
                raise ShapeError(f"expand: -1 is not allowed for the new leading dim {i} "
                                 f"in {sizes}")
            s = self.shape[i - lead]
        target.append(s)
    return man.broadcast_to(self, tuple(target))


def _expand_as(self, other):
    return man.broadcast_to(self, other.shape)


def _broadcast_to(self, shape):
    return man.broadcast_to(self, shape)


def _repeat(self, *sizes):
    """Tile the array ``sizes[i]`` times along dim ``i`` (``torch.Tensor.repeat``, NumPy's
    ``tile``); written as broadcast + reshape so it stays differentiable."""
    reps = _shape_args("repeat", sizes)
    if len(reps) < self.ndim:
        raise ShapeError(f"repeat: needs at least one repeat count per dim ({self.ndim}), got "
                         f"{reps}")
    shape = (1,) * (len(reps) - self.ndim) + self.shape
    x = man.reshape(self, tuple(d for s in shape for d in (1, s)))
    x = man.broadcast_to(x, tuple(d for r, s in zip(reps, shape, strict=True) for d in (r, s)))
    return man.reshape(x, tuple(r * s for r, s in zip(reps, shape, strict=True)))


def _tile(self, *reps):
    reps = _shape_args("tile", reps)
    return _repeat(self, (1,) * (self.ndim - len(reps)) + reps)


def _flip(self, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return man.flip(self, axis=dims if dims else None)


def _narrow(self, dim, start, length):
    d = normalize_axis(dim, self.ndim, "narrow")
    return self[(slice(None),) * d + (slice(start, start + length),)]


def _split(self, split_size_or_sections, dim=0):
    """A tuple of pieces along ``dim``: of ``split_size`` each (the last may be smaller), or of
    the given section sizes, as ``torch.split``."""
    d = normalize_axis(dim, self.ndim, "split")
    n = self.shape[d]
    if np.ndim(split_size_or_sections) == 0:  # an int, or a 0-d integer array as torch takes
        step = operator.index(split_size_or_sections)
        if step < 0 or step == 0 and n:  # torch: size 0 splits only an empty dim (into one)
            raise ValueError(f"split: split_size must be positive, got {step}")
        sections = [min(step, n - i) for i in range(0, n, step or 1)] or [0]
    else:
        sections = [int(s) for s in split_size_or_sections]
        if sum(sections) != n:
            raise ShapeError(f"split: sections {sections} do not add up to the size {n} of "
                             f"dim {d} (shape {self.shape})")
    return tuple(sh.split(self, sections, d))


def _chunk(self, chunks, dim=0):
    """Split into ``chunks`` pieces of equal size (the last may be smaller), as torch."""
    d = normalize_axis(dim, self.ndim, "chunk")
    chunks = operator.index(chunks)  # an int (a float is a TypeError, as torch)
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = self.shape[d]
    if n == 0:  # as torch: ``chunks`` empty pieces
        return tuple(sh.split(self, (0,) * chunks, d))
    return _split(self, -(-n // chunks), dim)


def _sections(op, indices_or_sections):
    """``indices_or_sections`` as NumPy's splitters take it: an int, or a list of ints (torch
    also takes an integer array, 0-d for a count)."""
    ios = indices_or_sections
    if is_array(ios) or isinstance(ios, np.ndarray):
        ios = np.asarray(ios)
        if ios.dtype.kind not in "iu" or ios.ndim > 1:
            raise TypeError(f"{op}: an integer tensor of indices must be 0-d or 1-d integers, "
                            f"got {ios.dtype} of shape {ios.shape}")
        return int(ios) if ios.ndim == 0 else [int(i) for i in ios]
    if isinstance(ios, (list, tuple)):
        return [operator.index(i) for i in ios]
    ios = operator.index(ios)  # a float is a TypeError, as torch
    if ios <= 0:
        raise ValueError(f"{op}: number of sections must be greater than 0, got {ios}")
    return ios


def _tensor_split(self, indices_or_sections, dim=0):
    """Pieces along ``dim``, as ``torch.tensor_split``: ``n`` sections of nearly equal size
    (the first ``size % n`` one longer), or the pieces between the given indices.

    >>> [p.tolist() for p in fnx.tensor([1, 2, 3, 4, 5]).tensor_split(3)]
    [[1, 2], [3, 4], [5]]
    """
    from ._extra import array_split

    d = normalize_axis(dim, self.ndim, "tensor_split")
    return tuple(array_split(self, _sections("tensor_split", indices_or_sections), axis=d))


def _splitter(name):
    def method(self, indices_or_sections):
        from . import _extra

        return tuple(getattr(_extra, name)(self, _sections(name, indices_or_sections)))

    axis = {"hsplit": "1 (0 for 1-D tensors)", "vsplit": "0", "dsplit": "2"}[name]
    method.__name__ = name
    method.__doc__ = (f"``torch.{name}``: ``tensor_split`` along dim {axis}; an integer must "
                      f"divide that size.\n\n    >>> len(fnx.ones(4, 4, 4).{name}(2))\n    2\n")
    return method


def _unbind(self, dim=0):
    d = normalize_axis(dim, self.ndim, "unbind")
    return tuple(sh.squeeze_p.bind(p, dimensions=(d,))
                 for p in sh.split(self, (1,) * self.shape[d], d))


# --- linear algebra ------------------------------------------------------------------------


def _mm(self, mat2):
    """2-D matrix product (``torch.mm``); use ``matmul`` for batches and vectors."""
    mat2 = to_array(mat2)
    if self.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(f"mm: both operands must be 2-D, got shapes {self.shape} and "
                         f"{mat2.shape}; use matmul (@) for other ranks")
    return la.matmul(self, mat2)


def _bmm(self, mat2):
    mat2 = to_array(mat2)
    if self.ndim != 3 or mat2.ndim != 3 or self.shape[0] != mat2.shape[0]:
        raise ShapeError(f"bmm: expects two 3-D arrays with the same batch size, got shapes "
                         f"{self.shape} and {mat2.shape}")
    return la.matmul(self, mat2)


def _mv(self, vec):
    vec = to_array(vec)
    if self.ndim != 2 or vec.ndim != 1:
        raise ShapeError(f"mv: expects a matrix and a vector, got shapes {self.shape} and "
                         f"{vec.shape}")
    return la.matmul(self, vec)


def _dot(self, other):
    other = to_array(other)
    if self.ndim != 1 or other.ndim != 1:
        raise ShapeError(f"dot: expects two 1-D arrays, got shapes {self.shape} and "
                         f"{other.shape}; use matmul (@) for matrices")
    return la.matmul(self, other)


def _matmul(self, other):
    return la.matmul(self, other)


# --- dtypes, devices, copies ---------------------------------------------------------------


def _astype(self, dtype, /, *, copy=True, device=None):
    out = ew.convert_element_type(self, dtypes.canonicalize(dtype))
    return out if device is None else _put(out, device, "astype")


def _converter(name, dtype):
    def method(self):
        return ew.convert_element_type(self, dtype)

    method.__name__ = name
    method.__doc__ = f"``x.{name}()`` is ``x.astype(fnx.{dtype.name})``."
    return method


def _put(x, device, op):
    """``x`` on ``device``: the same Array when it is already there, else a copy."""
    device = devices.as_device(device)
    if type(x) is Array:
        buf = devices.put_buffer(x._buf, device)
        return x if buf is x._buf else wrap(buf)
    if device.type == "cuda":
        devices.cupy_module()  # the clear DeviceError when CUDA is missing
    if device != x.device:
        raise TraceError(f"{op}: cannot move a traced value to {device} inside an fnx "
                         f"transform; move the inputs before calling the transformed function")
    return x


def _is_device_spec(a):
    if isinstance(a, devices.Device):
        return True
    return isinstance(a, str) and a.split(":", 1)[0] in ("cpu", "cuda")


def _to(self, *args, dtype=None, device=None, non_blocking=False, copy=False,
        memory_format=None):
    """``x.to(device)``, ``x.to(dtype)``, ``x.to(device, dtype)`` or ``x.to(other)``, as torch.
    Returns ``self`` when nothing changes.

    >>> fnx.ones(2).to("cpu", fnx.float64).dtype
    dtype('float64')
    """
    del non_blocking, memory_format  # unused: transfers are synchronous, layouts are dense
    for a in args:
        if is_array(a):
            dtype = a.dtype if dtype is None else dtype
            device = a.device if device is None else device
        elif _is_device_spec(a):
            device = a
        elif isinstance(a, (int, np.integer)) and not isinstance(a, bool):
            device = devices.Device("cuda", int(a))
        else:
            dtype = a
    out = self
    if dtype is not None:
        out = ew.convert_element_type(out, dtypes.canonicalize(dtype))
    if device is not None:
        out = _put(out, device, "to")
    if copy and out is self:
        out = _clone(self)
    return out


def _to_device(self, device, /, *, stream=None):
    """The array API's ``x.to_device(device)``."""
    del stream  # unused: transfers are synchronous
    return _put(self, device, "to_device")


def _cpu(self):
    return _put(self, devices.CPU, "cpu")


def _cuda(self, device=None, non_blocking=False):
    """A copy on a CUDA GPU (``device``: an index, 'cuda:1' or a Device); a DeviceError when
    CUDA is not available."""
    del non_blocking  # unused
    if device is None:
        device = devices.Device("cuda", 0)
    elif isinstance(device, (int, np.integer)):
        device = devices.Device("cuda", int(device))
    return _put(self, device, "cuda")


def _type(self, dtype=None, non_blocking=False):
    """``x.type()`` -> the dtype's name (``'fnx.float32'``); ``x.type(dtype)`` converts."""
    del non_blocking  # unused
    if dtype is None:
        return f"fnx.{self.dtype.name}"
    if isinstance(dtype, str) and dtype.startswith("fnx."):
        dtype = dtype[4:]
    return ew.convert_element_type(self, dtypes.canonicalize(dtype))


def _type_as(self, other):
    return ew.convert_element_type(self, other.dtype)


def _clone(self, *, memory_format=None):
    """A copy that an in-place update of either side leaves alone (eagerly its own buffer,
    under a transform a new value), differentiable as torch's ``clone``: gradients flow back
    through it."""
    del memory_format  # unused
    meta = getattr(self, "_autograd", None)
    if type(self) is Array and (meta is None or not meta.requires_grad):
        return cr._copy_array(self)
    return cr._recorded_copy(self)


def _detach(self):
    """``self`` cut off from differentiation (``fnx.stop_gradient``) and from autograd
    bookkeeping. On a concrete array: a new Array sharing the buffer, as torch."""
    if type(self) is Array:
        return cr._copy_array(self, detach=True)
    from ..transforms.custom import stop_gradient

    return stop_gradient(self)


def _requires_grad(self):
    meta = getattr(self, "_autograd", None)  # staged values of a compiled step have one too
    return meta is not None and meta.requires_grad


def _requires_grad_(self, requires_grad=True):
    """Mark a concrete array as tracked by the stateful autograd layer (fnx.nn); returns it."""
    if type(self) is not Array and _host_state().active() is not None and \
            hasattr(self, "_autograd"):
        # a value of a compiled step becomes a leaf of its tape (a gradient penalty's input)
        if self._autograd is not None and self._autograd.grad_fn is not None:
            raise RuntimeError("requires_grad_: you can only change requires_grad flags of "
                               "leaf variables; use x.detach().requires_grad_()")
        self._autograd = AutogradMeta(True) if requires_grad else None
        return self
    if type(self) is not Array:
        raise TraceError("requires_grad_: traced values cannot be marked; inside transforms "
                         "use fnx.grad on a function instead")
    if requires_grad and self.dtype.kind not in "fc":
        raise TypeError(f"requires_grad_: only floating-point and complex arrays can require "
                        f"gradients, got dtype {self.dtype}; convert first, e.g. "
                        f"x.float().requires_grad_()")
    if requires_grad or self._autograd is not None:
        self._meta().requires_grad = bool(requires_grad)
    return self


def _is_cuda(self):
    return self.device.type == "cuda"


def _get_device(self):
    d = self.device
    return -1 if d.type == "cpu" else d.index


def _is_floating_point(self):
    return self.dtype.kind == "f"


def _is_complex(self):
    return self.dtype.kind == "c"


def _true(self):
    return True


def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    out = cr.full(_shape_args("new_full", (size,)), fill_value,
                  dtype=self.dtype if dtype is None else dtype)
    device = self.device if device is None else device
    out = _put(out, device, "new_full")
    return _requires_grad_(out) if requires_grad else out


def _new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
    return _new_full(self, _shape_args("new_zeros", size), 0, dtype=dtype, device=device,
                     requires_grad=requires_grad)


def _new_ones(self, *size, dtype=None, device=None, requires_grad=False):
    return _new_full(self, _shape_args("new_ones", size), 1, dtype=dtype, device=device,
                     requires_grad=requires_grad)


def _new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
    out = cr.asarray(data, dtype=self.dtype if dtype is None else dtype, copy=True)
    out = _put(out, self.device if device is None else device, "new_tensor")
    return _requires_grad_(out) if requires_grad else out


# --- in-place methods (eager arrays only) ----------------------------------------------------

MSG_INPLACE_TRACED = (
    "{op}: in-place update of a traced array. Inside fnx transforms (grad, vmap, jit) arrays "
    "are immutable values: use the out-of-place form (x = x.{base}(...), x = x + y, "
    "x.at[idx].set(v)) instead"
)


def assign(self, new, op):
    """Make ``self`` hold ``new`` (same shape; cast to ``self``'s dtype) and return ``self``:
    the body of every in-place method. The buffer is replaced, never written into, so arrays
    sharing the old buffer keep their values."""
    new_shape = new.shape if is_array(new) else np.shape(new)
    if type(self) is not Array:
        # inside a compiled step, a traced value held by tracked state (a gradient that
        # backward() produced in the same step) may be updated: the state holds the result
        journal = _host_state().active()
        if journal is not None and tuple(new_shape) == tuple(self.shape):
            new = to_array(new)
            if new.dtype != self.dtype:
                new = new.astype(self.dtype)
            if journal.replace_value(self, new):
                return new
        # a staged value (inside jit, or a custom rule's backward) stands for the result
        become = getattr(self, "_become", None)
        if become is not None and tuple(new_shape) == tuple(self.shape) and become(new):
            return self
        raise TraceError(MSG_INPLACE_TRACED.format(op=op, base=op.rstrip("_")))
    if tuple(new_shape) != self._buf.shape:
        raise ShapeError(f"{op}: the result has shape {tuple(new_shape)} but the array updated "
                         f"in place has shape {self._buf.shape}; an in-place op cannot change "
                         f"its target's shape (use the out-of-place form)")
    return self._replace(new, op)


def _host_state():
    from ..core import state

    return state


def _inplace(name, fn):
    def method(self, *args, **kwargs):
        return assign(self, fn(self, *args, **kwargs), name)

    method.__name__ = name
    method.__doc__ = f"In place: ``x.{name}(...)`` sets ``x`` to ``x.{name[:-1]}(...)`` and " \
                     f"returns ``x`` (eager arrays only; a TraceError inside transforms)."
    return method


def _fill(self, value):
    return cr.full_like(self, value)


def _zero(self):
    return cr.zeros_like(self)


def _copy(self, src, non_blocking=False):
    del non_blocking  # unused
    src = to_array(src)
    if type(src) is Array and type(self) is Array and src.device != self.device:
        src = _put(src, self.device, "copy_")
    return man.broadcast_to(src.astype(self.dtype), self.shape)


def _uniform(self, a=0.0, b=1.0, *, generator=None):
    from .._torch_api import _draw

    return _draw("uniform_", generator, self.shape, self.dtype, minval=a, maxval=b)


def _normal(self, mean=0.0, std=1.0, *, generator=None):
    from .._torch_api import _draw

    return _draw("normal_", generator, self.shape, self.dtype) * std + mean


def _bernoulli(self, p=0.5, *, generator=None):
    from .._torch_api import _draw

    u = _draw("bernoulli_", generator, self.shape, dtypes.default_float())
    return (u < p).astype(self.dtype)


# --- the method table ------------------------------------------------------------------------

_prop = property

METHODS = {
    # shape and metadata. ``size`` is found here only if Array/Tracer define no ``size``
    # property of their own (their property should return ``size_of(self)``).
    "size": _prop(size_of),
    "numel": _numel,
    "nelement": _numel,
    "dim": _dim,
    "ndimension": _dim,
    "element_size": _element_size,
    "is_floating_point": _is_floating_point,
    "is_complex": _is_complex,
    "is_contiguous": _true,
    "get_device": _get_device,
    "is_cuda": _prop(_is_cuda),
    "requires_grad": _prop(_requires_grad),
    "requires_grad_": _requires_grad_,
    # reductions
    "sum": _sum,
    "prod": _prod,
    "mean": _mean,
    "var": _var,
    "std": _std,
    "max": _max,
    "min": _min,
    "amax": _amax,
    "amin": _amin,
    "argmax": _argmax,
    "argmin": _argmin,
    "all": _all,
    "any": _any,
    "logsumexp": _logsumexp,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "norm": _norm,
    # elementwise
    "add": _add,
    "sub": _sub,
    "subtract": _sub,
    "mul": _mul,
    "multiply": _mul,
    "div": _div,
    "divide": _div,
    "true_divide": el.divide,
    "floor_divide": el.floor_divide,
    "remainder": el.remainder,
    "fmod": el.fmod,
    "pow": _pow,
    "float_power": _float_power,
    "maximum": el.maximum,
    "minimum": el.minimum,
    "eq": el.equal,
    "ne": el.not_equal,
    "lt": el.less,
    "le": el.less_equal,
    "gt": el.greater,
    "ge": el.greater_equal,
    "logical_and": el.logical_and,
    "logical_or": el.logical_or,
    "logical_xor": el.logical_xor,
    "logical_not": el.logical_not,
    "isnan": el.isnan,
    "isinf": el.isinf,
    "isfinite": el.isfinite,
    "abs": el.abs,
    "absolute": el.abs,
    "neg": el.negative,
    "negative": el.negative,
    "sign": el.sign,
    "exp": el.exp,
    "exp2": el.exp2,
    "expm1": el.expm1,
    "log": el.log,
    "log1p": el.log1p,
    "log2": el.log2,
    "log10": el.log10,
    "sqrt": el.sqrt,
    "rsqrt": el.rsqrt,
    "square": el.square,
    "reciprocal": el.reciprocal,
    "sin": el.sin,
    "cos": el.cos,
    "tan": el.tan,
    "asin": el.asin,
    "acos": el.acos,
    "atan": el.atan,
    "arcsin": el.asin,
    "arccos": el.acos,
    "arctan": el.atan,
    "atan2": el.atan2,
    "sinh": el.sinh,
    "cosh": el.cosh,
    "tanh": el.tanh,
    "sigmoid": _sigmoid,
    "relu": _relu,
    "erf": _erf,
    "erfinv": _erfinv,
    "lgamma": _lgamma,
    "floor": el.floor,
    "ceil": el.ceil,
    "round": el.round,
    "trunc": el.trunc,
    "real": el.real,
    "imag": el.imag,
    "conj": el.conj,
    "clamp": _clamp,
    "clip": _clamp,
    "where": _where,
    "masked_fill": _masked_fill,
    "lerp": _lerp,
    "addcmul": _addcmul,
    "addcdiv": _addcdiv,
    "allclose": _allclose,
    "equal": _equal,
    # shape manipulation
    "reshape": _reshape,
    "view": _view,
    "view_as": _view_as,
    "reshape_as": _view_as,
    "flatten": _flatten,
    "unflatten": _unflatten,
    "ravel": _flatten,
    "squeeze": _squeeze,
    "unsqueeze": _unsqueeze,
    "t": _t,
    "transpose": _transpose,
    "permute": _permute,
    "swapaxes": man.swapaxes,
    "swapdims": man.swapaxes,
    "movedim": _movedim,
    "moveaxis": _movedim,
    "contiguous": _contiguous,
    "expand": _expand,
    "expand_as": _expand_as,
    "broadcast_to": _broadcast_to,
    "repeat": _repeat,
    "tile": _tile,
    "flip": _flip,
    "narrow": _narrow,
    "split": _split,
    "chunk": _chunk,
    "unbind": _unbind,
    "tensor_split": _tensor_split,
    "hsplit": _splitter("hsplit"),
    "vsplit": _splitter("vsplit"),
    "dsplit": _splitter("dsplit"),
    # linear algebra
    "matmul": _matmul,
    "mm": _mm,
    "bmm": _bmm,
    "mv": _mv,
    "dot": _dot,
    # dtypes, devices, copies
    "astype": _astype,
    "float": _converter("float", dtypes.float32),
    "double": _converter("double", dtypes.float64),
    "half": _converter("half", dtypes.float16),
    "int": _converter("int", dtypes.int32),
    "long": _converter("long", dtypes.int64),
    "short": _converter("short", dtypes.int16),
    "char": _converter("char", dtypes.int8),
    "byte": _converter("byte", dtypes.uint8),
    "bool": _converter("bool", dtypes.bool_),
    "cfloat": _converter("cfloat", dtypes.complex64),
    "cdouble": _converter("cdouble", dtypes.complex128),
    "to": _to,
    "to_device": _to_device,
    "cpu": _cpu,
    "cuda": _cuda,
    "type": _type,
    "type_as": _type_as,
    "clone": _clone,
    "detach": _detach,
    "new_full": _new_full,
    "new_zeros": _new_zeros,
    "new_ones": _new_ones,
    "new_empty": _new_zeros,
    "new_tensor": _new_tensor,
    # in-place (eager only)
    "fill_": _inplace("fill_", _fill),
    "zero_": _inplace("zero_", _zero),
    "copy_": _inplace("copy_", _copy),
    "uniform_": _inplace("uniform_", _uniform),
    "normal_": _inplace("normal_", _normal),
    "bernoulli_": _inplace("bernoulli_", _bernoulli),
}

# Every elementwise/clamp/where method with an in-place twin: ``add_``, ``sqrt_``, ``clamp_``...
for _name in ("add", "sub", "mul", "div", "pow", "remainder", "fmod", "maximum", "minimum",
              "abs", "neg", "sign", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt",
              "rsqrt", "square", "reciprocal", "sin", "cos", "tan", "tanh", "sigmoid", "relu",
              "erf", "floor", "ceil", "round", "trunc", "clamp", "clip", "masked_fill", "lerp",
              "addcmul", "addcdiv", "floor_divide", "true_divide"):
    METHODS[_name + "_"] = _inplace(_name + "_", METHODS[_name])
METHODS["subtract_"], METHODS["multiply_"], METHODS["divide_"] = (
    METHODS["sub_"], METHODS["mul_"], METHODS["div_"])
del _name

# The methods become attributes of ArrayOps, shared by Arrays and tracers; what a class of
# theirs defines itself (Array's ``size`` and ``requires_grad`` properties) comes first.
for _name, _method in METHODS.items():
    if not hasattr(ArrayOps, _name):
        setattr(ArrayOps, _name, _method)
del _name, _method
