"""``fnx.Array``: an immutable value over a backend buffer (NumPy on CPU, CuPy on CUDA).

Operators and methods are defined once, in ``ArrayOps``, and shared by ``Array`` and every
``Tracer``; each one calls (or, for the arithmetic and comparison operators, is) a
``fnx.numpy`` function, which is written in primitives, so the same expression works eagerly
and under every transform.
"""

import weakref

import numpy as np

from . import devices, dtypes
from .errors import TraceError

_fnp = None  # fnx.numpy, bound on first use (it imports this module)


def _np():
    global _fnp
    if _fnp is None:
        import fnx.numpy as mod

        _fnp = mod
    return _fnp


def asarray_buffer(x, dtype=None):
    """A NumPy buffer for host data. Python scalars and lists take fnx's default dtypes
    (float32, int64); NumPy arrays keep theirs."""
    if isinstance(x, np.ndarray):
        buf = x
    elif isinstance(x, np.generic):
        buf = np.asarray(x)
    else:
        buf = np.asarray(x)
        if dtype is None:
            if buf.dtype == np.float64:
                buf = buf.astype(dtypes.default_float())
            elif buf.dtype.kind == "i":
                buf = buf.astype(dtypes.default_int())
            elif buf.dtype == np.complex128:
                buf = buf.astype(dtypes.default_complex())
    if dtype is not None and buf.dtype != dtype:
        buf = buf.astype(dtype)
    if buf.dtype not in dtypes._SUPPORTED:
        raise dtypes.DTypeError(
            f"asarray: cannot make an fnx array from data of NumPy dtype {buf.dtype}; "
            f"supported dtypes are {[str(d) for d in dtypes.ALL]}"
        )
    return buf


class _ArrayMeta(type):
    # Tracers count as Arrays, as in JAX, so user code can check isinstance(x, fnx.Array).
    def __instancecheck__(cls, inst):
        return type.__instancecheck__(cls, inst) or getattr(type(inst), "_fnx_tracer", False)


class ArrayOps:
    """Python operators and array methods, shared by concrete Arrays and tracers."""

    __slots__ = ()
    __array_priority__ = 100

    # --- operators -------------------------------------------------------------------------
    # ``+ - * / & | ^ << >>`` (and their reflected forms) and the comparisons are the
    # fnx.numpy functions themselves (add, subtract, multiply, divide, bitwise_and/or/xor,
    # bitwise_left/right_shift, less, ...: fnx.numpy._elementwise sets them on this class, as
    # this module cannot import it), so ``x + y`` runs one Python frame before its primitive.
    def __floordiv__(self, other): return _np().floor_divide(self, other)
    def __rfloordiv__(self, other): return _np().floor_divide(other, self)
    def __mod__(self, other): return _np().remainder(self, other)
    def __rmod__(self, other): return _np().remainder(other, self)
    def __pow__(self, other): return _np().pow(self, other)
    def __rpow__(self, other): return _np().pow(other, self)
    def __matmul__(self, other): return _np().matmul(self, other)
    def __rmatmul__(self, other): return _np().matmul(other, self)
    def __neg__(self): return _np().negative(self)
    def __pos__(self): return _np().positive(self)
    def __abs__(self): return _np().abs(self)
    def __invert__(self): return _np().bitwise_invert(self)
    __hash__ = None

    def __getitem__(self, idx):
        return _np()._getitem(self, idx)

    def __setitem__(self, idx, value):
        # Array overrides this (eager item assignment rebinds its buffer); a tracer is a value
        raise TraceError(
            f"x[{_show_index(idx)}] = ...: in-place update of a traced array. Inside fnx "
            f"transforms (grad, vmap, jit) arrays are immutable values: use the out-of-place "
            f"form x = x.at[{_show_index(idx)}].set({_show_value(value)}) instead")

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    # --- conversion to Python values ---------------------------------------------------------
    def concrete_value(self):
        return self

    def __bool__(self): return bool(self.concrete_value()._host_scalar("bool"))
    def __int__(self): return int(self.concrete_value()._host_scalar("int"))
    def __float__(self): return float(self.concrete_value()._host_scalar("float"))
    def __complex__(self): return complex(self.concrete_value()._host_scalar("complex"))

    def __index__(self):
        value = self.concrete_value()
        if value.dtype.kind not in "iub":
            raise TypeError(f"only integer arrays can be used as an index, not {value.dtype}")
        return int(value._host_scalar("index"))

    def item(self, *args):
        """The single element as a Python scalar, as ``torch.Tensor.item``."""
        return self.concrete_value()._host().item(*args)

    def tolist(self):
        return self.concrete_value()._host().tolist()

    def numpy(self):
        """A NumPy array with this array's values (copied from the GPU if needed)."""
        return self.concrete_value()._host()

    def __array__(self, dtype=None, copy=None):
        host = self.concrete_value()._host()
        if dtype is not None:
            return host.astype(dtype, copy=bool(copy))
        return host.copy() if copy else host

    # --- properties --------------------------------------------------------------------------
    @property
    def size(self):
        # an int that is also callable, so torch's x.size() / x.size(dim) work too
        return _np()._methods.size_of(self)

    T = property(lambda self: _np().permute_dims(self, tuple(range(self.ndim))[::-1]))
    mT = property(lambda self: _np().matrix_transpose(self))

    @property
    def at(self):
        """Functional updates: ``x.at[idx].set(v)``, ``.add``, ``.mul``, ``.min``, ``.max``, ``.get``."""
        return _np()._IndexUpdateHelper(self)

    def __array_namespace__(self, api_version=None):
        if api_version not in (None, "2021.12", "2022.12", "2023.12"):
            raise ValueError(f"fnx.numpy does not implement array API version {api_version}")
        return _np()

    # The torch-style and array methods (x.sum(), x.view(...)) are set on this class by
    # fnx.numpy._methods, which this module cannot import. Not through ``__getattr__``: a class
    # with one makes CPython take its slow path for every attribute read of its instances,
    # ``x._buf`` in each eager op included.


def _show_index(idx):
    """``idx`` as written between brackets (``0``, ``1:3``, ``..., 0``), for messages."""
    def one(i):
        if isinstance(i, slice):
            parts = ["" if v is None else str(v) for v in (i.start, i.stop, i.step)]
            return ":".join(parts[:2] if i.step is None else parts)
        if i is Ellipsis:
            return "..."
        return repr(i) if isinstance(i, (int, type(None))) else "idx"

    return ", ".join(one(i) for i in idx) if isinstance(idx, tuple) else one(idx)


def _show_value(value):
    return repr(value) if type(value) in (int, float, complex, bool) else "v"


class AutogradMeta:
    """What the eager autograd layer knows about one concrete Array; ``Array._autograd`` is
    ``None`` for the (common) arrays it knows nothing about, so they pay nothing.

    ``is_parameter`` marks ``fnx.nn.Parameter``s (an Array, so every fast path keeps working);
    ``grad_fn`` is the tape node that produced the array (``None`` for leaves).
    """

    __slots__ = ("requires_grad", "is_parameter", "grad", "grad_fn", "output_nr",
                 "retains_grad", "hooks")

    def __init__(self, requires_grad, is_parameter=False):
        self.requires_grad, self.is_parameter = requires_grad, is_parameter
        self.grad = self.grad_fn = self.hooks = None
        self.output_nr = 0
        self.retains_grad = False


class AutogradSurface:
    """The eager autograd surface shared by concrete Arrays and the staged values of a
    compiled step (fnx.core.state): both keep an ``AutogradMeta`` (or ``None``) in
    ``_autograd``, which fnx.autograd records and differentiates."""

    __slots__ = ()

    @property
    def grad(self):
        """The accumulated gradient (``None`` until a backward pass or an assignment)."""
        meta = self._autograd
        if meta is None:
            return None
        return meta.grad if _active_journal() is None else _state().get(meta, "grad")

    @property
    def grad_fn(self):
        """The tape node that produced this array (``None`` for leaves and untracked arrays)."""
        meta = self._autograd
        return None if meta is None else meta.grad_fn

    @property
    def is_leaf(self):
        """True unless this array was computed from arrays that require grad."""
        return self.grad_fn is None

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (``torch.Tensor.backward``).

        >>> w = fnx.tensor([1.0, 2.0], requires_grad=True); (3 * w).sum().backward()
        >>> w.grad.tolist()
        [3.0, 3.0]
        """
        from fnx.autograd import backward

        backward(self, gradient, retain_graph, create_graph, inputs)

    def retain_grad(self):
        """Keep ``.grad`` for this non-leaf array after ``backward`` (leaves always do)."""
        meta = self._autograd
        if meta is None or not meta.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if meta.grad_fn is not None:
            meta.retains_grad = True

    def register_hook(self, hook):
        """``hook(grad) -> None or new grad`` runs when this array's gradient is computed,
        before it is accumulated; returns a handle with ``.remove()``."""
        from fnx.autograd import register_hook

        return register_hook(self, hook)

    def _check_leaf_update(self, new, op):
        mine, theirs = self._autograd, getattr(new, "_autograd", None)
        if theirs is not None and theirs.grad_fn is not None and mine is not None and \
                mine.grad_fn is None and mine.requires_grad:
            raise RuntimeError(
                f"{op}: a leaf array that requires grad is being used in an in-place "
                f"operation; wrap the update in `with fnx.no_grad():` (as optimizers do)")


class Array(ArrayOps, AutogradSurface, metaclass=_ArrayMeta):
    """An fnx array. Create one with ``fnx.asarray``/``fnx.tensor``/``fnp.zeros``...

    >>> x = fnx.asarray([1.0, 2.0]); (x * 2).tolist()
    [2.0, 4.0]
    """

    # ``_version`` counts in-place updates (every replacement of ``_buf``): jit re-reads
    # closed-over arrays whose version moved, and the eager tape detects modified saved values.
    # ``_weak``: weakly typed (a Python scalar at a transform boundary, or computed only from
    # weak values); it promotes like a Python scalar of its kind (docs/transforms.md).
    __slots__ = ("_buf", "_autograd", "_version", "_weak", "__weakref__")

    def __init__(self, data, dtype=None, device=None):
        buf = asarray_buffer(data._buf if type(data) is Array else data,
                             None if dtype is None else dtypes.canonicalize(dtype))
        if device is not None:
            buf = devices.put_buffer(buf, device)
        self._buf = buf
        self._autograd = None
        self._version = 0
        self._weak = False

    shape = property(lambda self: self._buf.shape)
    dtype = property(lambda self: self._buf.dtype)
    ndim = property(lambda self: self._buf.ndim)

    @property
    def size(self):
        buf = self._buf
        return _np()._methods.SizeInt(buf.size, buf.shape)

    @property
    def requires_grad(self):
        meta = self._autograd
        return meta is not None and meta.requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        _np()._methods.METHODS["requires_grad_"](self, value)

    @AutogradSurface.grad.setter
    def grad(self, value):
        journal = _active_journal()
        traced = journal is not None and getattr(type(value), "_fnx_tracer", False)
        if value is not None and type(value) is not Array and not traced:
            raise TypeError(f"assigned grad must be an fnx Array or None, got "
                            f"{type(value).__name__}")
        if value is not None and (value.shape != self.shape or value.dtype != self.dtype):
            raise ValueError(f"assigned grad has shape {value.shape} and dtype {value.dtype}, "
                             f"but the array has shape {self.shape} and dtype {self.dtype}")
        if journal is None:
            self._meta().grad = value
        else:
            _state().set(self._meta(), "grad", value)

    # --- the eager autograd surface: AutogradSurface, plus what only concrete arrays have ---
    def _meta(self):
        """This array's autograd record, created on first need."""
        if self._autograd is None:
            self._autograd = AutogradMeta(False)
        return self._autograd

    @property
    def device(self):
        return devices.device_of_buffer(self._buf)

    @property
    def aval(self):
        from .abstract import ShapedArray

        return ShapedArray(self._buf.shape, self._buf.dtype, self._weak)

    def _host(self):
        if _on_host_read is not None:
            _on_host_read(self)
        buf = self._buf
        return buf if isinstance(buf, np.ndarray) else buf.get()

    def _host_scalar(self, what):
        if self._buf.size != 1:
            raise TypeError(
                f"converting an array of shape {self.shape} to a Python {what}: only arrays "
                f"with one element can be converted; use .tolist() or index it first"
            )
        return self._host().reshape(()).item()

    def __dlpack__(self, /, *, stream=None, max_version=None, dl_device=None, copy=None):
        buf = self._buf
        if isinstance(buf, np.ndarray) and not buf.flags.writeable and (
                max_version is None or max_version[0] < 1):
            # legacy DLPack has no read-only flag: export a copy of broadcast/immutable views
            buf = buf.copy()
        kwargs = {"stream": stream} if stream is not None else {}
        if max_version is not None:
            kwargs.update(max_version=max_version, dl_device=dl_device, copy=copy)
        return buf.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._buf.__dlpack_device__()

    def __repr__(self):
        body = np.array2string(self._host(), separator=", ", prefix="Array(")
        suffix = f", dtype={self.dtype.name}"
        if self.device.type != "cpu":
            suffix += f", device='{self.device}'"
        return f"Array({body}{suffix})"

    def __str__(self):
        return str(self._host())

    def __format__(self, spec):
        if self._buf.ndim == 0:
            return format(self._host().item(), spec)
        return format(str(self), spec)

    # Augmented assignment updates in place, as PyTorch and NumPy (``p -= lr * g`` changes
    # the parameter every holder sees); inside transforms, tracers rebind as plain values.
    def __iadd__(self, other): return self._augment(self + other, "+=")
    def __isub__(self, other): return self._augment(self - other, "-=")
    def __imul__(self, other): return self._augment(self * other, "*=")
    def __itruediv__(self, other): return self._augment(self / other, "/=")
    def __ifloordiv__(self, other): return self._augment(self // other, "//=")
    def __imod__(self, other): return self._augment(self % other, "%=")
    def __ipow__(self, other): return self._augment(self ** other, "**=")
    def __iand__(self, other): return self._augment(self & other, "&=")
    def __ior__(self, other): return self._augment(self | other, "|=")
    def __ixor__(self, other): return self._augment(self ^ other, "^=")
    def __ilshift__(self, other): return self._augment(self << other, "<<=")
    def __irshift__(self, other): return self._augment(self >> other, ">>=")

    def _augment(self, new, op):
        return _np()._methods.assign(self, new, f"x {op} y")

    @property
    def data(self):
        """The values without autograd history (``torch.Tensor.data``): an untracked alias,
        and an in-place update of it updates this array, untracked (``p.data.mul_(0.5)`` on
        a parameter needs no ``no_grad``; in a compiled step too: ``p.data.clamp_(-c, c)``
        after ``opt.step()``). An array without a record is its own ``data``.

        >>> p = fnx.nn.Parameter(fnx.ones(2))
        >>> _ = p.data.mul_(3); p.tolist(), p.requires_grad
        ([3.0, 3.0], True)
        """
        if self._autograd is None:
            return self
        alias = wrap(self._buf, self._weak)
        key = id(alias)
        _DATA_BASES[key] = (weakref.ref(alias, lambda _, k=key: _DATA_BASES.pop(k, None)), self)
        journal = _active_journal()
        if journal is not None:  # in a compiled step: the value this array has in the trace now
            journal.alias(alias, self)
        return alias

    @data.setter
    def data(self, value):
        """``p.data = t`` replaces the values in place (shape and dtype kept, as torch)."""
        _np()._methods.assign(self, value if isinstance(value, Array) else Array(value),
                              "x.data = y")

    def __setitem__(self, idx, value):
        """Eager item assignment, as in PyTorch: replaces this array's buffer with the update."""
        self._replace(self.at[idx].set(value), "__setitem__")

    def _replace(self, new, op):
        if type(new) is not Array:
            journal = _active_journal()
            if journal is not None:
                # inside a compiled PyTorch-style step: the update is staged (fnx.core.state)
                if new.dtype != self._buf.dtype:
                    new = new.astype(self._buf.dtype)
                self._check_leaf_update(new, op)
                journal.rebind(self, new, op)
                base = _data_base(self)
                if base is not None:  # an update through ``base.data``: the base's value too
                    journal.rebind(base, new, op)
                return self
            raise TraceError(
                f"{op}: an in-place update of a concrete array with a traced value; inside "
                f"fnx transforms arrays are immutable: use the out-of-place form (x = x + y, "
                f"x.at[idx].set(v)) instead"
            )
        self._take_history(new, op)
        if new._buf.dtype != self._buf.dtype:
            new = Array(new._buf.astype(self._buf.dtype))
        self._set_buffer(new._buf)
        return self

    def _take_history(self, new, op):
        """The autograd record an in-place update leaves, as PyTorch: the array now stands
        for the recorded result; a leaf that requires grad may only be updated untracked
        (under ``fnx.no_grad()``, as an optimizer does)."""
        mine, theirs = self._autograd, new._autograd
        if theirs is not None and theirs.grad_fn is not None:
            self._check_leaf_update(new, op)
            if new._buf.dtype == self._buf.dtype:
                self._autograd = theirs
                return
        if mine is not None and mine.grad_fn is not None:
            self._autograd = None  # overwritten by an untracked value: no history left

    def _set_buffer(self, buf):
        """Replace the buffer in place (every holder of this Array sees the new value)."""
        self._buf = buf
        self._version += 1
        base = _data_base(self)
        if base is not None:  # an update through ``base.data``: the base's values, not history
            base._set_buffer(buf)

    def __reduce__(self):
        return (Array, (self._host(),))

    def __deepcopy__(self, memo):
        """A copy with its own buffer that keeps ``requires_grad``, the parameter mark and a
        copy of ``.grad`` (as ``copy.deepcopy`` of a torch leaf tensor). Inside ``fnx.jit`` or
        a compiled step: this call's value, cut from differentiation (the buffer holds the value
        the array had when the step was traced)."""
        from .tracing import current_dynamic

        if current_dynamic() is not None:
            from fnx.numpy._creation import _copy_array

            memo[id(self)] = new = _copy_array(self)
            return new
        new = wrap(self._buf.copy())
        meta = self._autograd
        if meta is not None:
            new._autograd = AutogradMeta(meta.requires_grad, meta.is_parameter)
            if meta.grad is not None:
                new._autograd.grad = meta.grad.__deepcopy__(memo)
        memo[id(self)] = new
        return new

    # Arrays are leaves for pytrees, hashable by identity only where needed (e.g. weakrefs)


def _active_journal():
    return _trace_state.journal


_trace_state = None  # fnx.core.tracing's per-thread state, set by that module

# ``base.data`` aliases alive: id(alias) -> (weak reference to the alias, base)
_DATA_BASES = {}


def _data_base(x):
    """The array ``x`` is the ``.data`` alias of, or None."""
    if not _DATA_BASES:
        return None
    link = _DATA_BASES.get(id(x))
    return link[1] if link is not None and link[0]() is x else None


def _state():
    from . import state

    return state


# Set by fnx.core.tracing: a jit being traced that reads a concrete array's VALUE in Python
# (int(n), if flag:, x.item(), table[step]) depends on it, and must re-trace when it changes.
_on_host_read = None


def wrap(buf, weak=False):
    """Wrap a backend buffer as an Array without copying (the hot path of eager ops)."""
    if not isinstance(buf, np.ndarray):
        if isinstance(buf, np.generic) or not hasattr(buf, "__cuda_array_interface__"):
            buf = np.asarray(buf)
    a = object.__new__(Array)
    a._buf = buf
    a._autograd = None
    a._version = 0
    a._weak = weak
    return a


def wrap_weak(buf):
    """``wrap`` for a weakly typed value (one made from a Python scalar)."""
    return wrap(buf, True)


def from_dlpack(x, /, *, device=None, copy=None):
    """An Array from any DLPack-capable array (NumPy, CuPy, PyTorch...)."""
    if hasattr(x, "__cuda_array_interface__") or (
        hasattr(x, "__dlpack_device__") and x.__dlpack_device__()[0] == 2
    ):
        buf = devices.cupy_module().from_dlpack(x)
    else:
        buf = np.from_dlpack(x)
        if copy:
            buf = buf.copy()
    out = wrap(buf)
    return out if device is None else Array(out, device=device)
