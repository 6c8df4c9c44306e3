"""``fnx.save`` / ``fnx.load``: checkpoints in one safetensors file that loads without running
code (no pickle).

The layout (docs/data.md, "Checkpoints (the file format)"): a standard safetensors file. Each
array of the saved object is one tensor, named by its path in the object
(``model_state_dict.0.weight``), so any safetensors reader opens the weights. The header's
``__metadata__`` holds

* ``format``: ``"fnx"``, and ``fnx.checkpoint``: the format version (``"1"``);
* ``fnx.manifest``: JSON describing the object: its structure and plain values, and for each
  array the tensor that holds it, whether it was an fnx or a NumPy array, its device, its
  dtype and shape, and the SHA-256 of the tensor's bytes;
* ``fnx.manifest.sha256``: the SHA-256 of the manifest text.

Every byte of the file is thus checked on load, by the header parse, the manifest digest or a
tensor digest: a truncated or altered file is a ``CheckpointError``, never wrong values.
Writes go to a temporary file in the same directory, are flushed and fsynced, and replace the
target with ``os.replace`` (then the directory is fsynced): a process killed mid-save leaves
the previous checkpoint intact.
"""

import collections
import errno
import inspect
import math
import os
import struct
import sys

import numpy as np

from .core import devices
from .core.array import Array, wrap
from .core.errors import CheckpointError

FORMAT_VERSION = "1"
# containers in containers: state dicts nest 3-4 levels; the bound keeps save and load far
# from Python's recursion limit, so a crafted deep file is a CheckpointError, not a crash
MAX_DEPTH = 100

_STORED_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                  "uint64", "float16", "float32", "float64")
# safetensors has no complex128 (and older readers no complex64): complex arrays are stored as
# their real view with a trailing axis of 2, and the manifest keeps the real dtype
_COMPLEX = {"complex64": np.dtype("float32"), "complex128": np.dtype("float64")}
_DTYPES = frozenset(_STORED_DTYPES) | frozenset(_COMPLEX)
_DICTS = {dict: "dict", collections.OrderedDict: "OrderedDict", collections.Counter: "Counter"}
_MAGIC_HINTS = (
    (b"PK\x03\x04", "it looks like a PyTorch (torch.save) zip file; load it with torch and "
                    "save the state dict with fnx.save"),
    (b"\x80", "it looks like a pickle; fnx.load never unpickles (that can run code)"),
    (b"\x93NUMPY", "it looks like a NumPy .npy file; read it with numpy.load"),
)

_UNSUPPORTED = (
    "a checkpoint holds arrays (fnx and NumPy), None, bool, int, float, complex, str, NumPy "
    "scalars, and lists, tuples, named tuples, dicts, OrderedDicts and Counters of them"
)


def save(obj, f):
    """Save ``obj`` to the path or binary file object ``f`` as a safetensors file that
    ``fnx.load`` reads back without running code (``torch.save`` for state dicts).

    ``obj``: model, optimizer and scheduler state dicts, pytrees of fnx arrays, NumPy arrays
    and plain Python values, nested at most ``MAX_DEPTH`` (100) levels (see docs/data.md for
    the exact list and the file format). Writing to a path is atomic: a crash mid-save leaves
    the previous file intact. A symbolic link is written through, as ``torch.save`` does.

    >>> import io
    >>> buf = io.BytesIO()
    >>> fnx.save({"epoch": 3, "w": fnx.ones(2), "best": float("inf")}, buf)
    >>> ckpt = fnx.load(io.BytesIO(buf.getvalue()))
    >>> ckpt["epoch"], ckpt["w"].tolist(), ckpt["best"]
    (3, [1.0, 1.0], inf)
    """
    import json  # noqa: PLC0415 (json and hashlib are imported on first use: import time)

    encoder = _Encoder()
    root = encoder.encode(obj, ())
    manifest = json.dumps({"root": root, "tensors": encoder.table}, allow_nan=False,
                          separators=(",", ":"))
    metadata = {"format": "fnx", "fnx.checkpoint": FORMAT_VERSION, "fnx.manifest": manifest,
                "fnx.manifest.sha256": _sha256(manifest.encode())}
    from safetensors.numpy import save as safetensors_save  # noqa: PLC0415 (import time)

    data = safetensors_save(encoder.tensors, metadata=metadata)
    if hasattr(f, "write"):
        f.write(data)
    else:
        _atomic_write(os.fspath(f), data)


def load(f, map_location=None, *, weights_only=True):
    """Load what ``fnx.save`` wrote to the path or binary file object ``f``; never runs code.

    Arrays come back as they were saved (fnx arrays on their saved device, NumPy arrays as
    NumPy arrays); ``map_location`` moves the fnx arrays as ``torch.load``'s does: a device
    (``"cpu"``, ``"cuda:0"``, ``fnx.device(...)``) for all of them, a dict from saved to new
    device names, or a callable ``(array, saved_device_name) -> array or None`` (``None``: the
    default placement). A plain safetensors file without an fnx manifest loads as a dict of fnx
    arrays by tensor name. ``weights_only`` is accepted for PyTorch compatibility: loading is
    always code-free. A truncated, corrupted or foreign file raises ``fnx.CheckpointError``.

    >>> import io
    >>> buf = io.BytesIO()
    >>> fnx.save([fnx.arange(3), (1, "a")], buf); _ = buf.seek(0)
    >>> fnx.load(buf, map_location="cpu")
    [Array([0, 1, 2], dtype=int64), (1, 'a')]
    """
    del weights_only  # unused: there is no code-running mode to opt out of
    if hasattr(f, "read"):
        where = getattr(f, "name", "<file object>")
        data = f.read()
    else:
        where = os.fspath(f)
        with open(where, "rb") as fh:
            data = fh.read()
    header = _read_header(data, where)
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not _is_fnx(metadata):
        # a safetensors file from another tool: its tensors, as a state dict
        arrays = _load_tensors(data, where)
        decoder = _Decoder(arrays, map_location, where)
        return collections.OrderedDict(
            (name, decoder.place(arrays[name], "cpu", name))
            for name in header if name != "__metadata__")
    manifest = _read_manifest(metadata, where)
    tensors = _load_tensors(data, where)
    try:
        arrays = _verified_arrays(tensors, manifest["tensors"], where)
        return _Decoder(arrays, map_location, where).decode(manifest["root"])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        # the manifest's digest matched, so only a hand-made file gets here
        raise CheckpointError(f"fnx.load: {where} has a malformed manifest "
                              f"({type(err).__name__}: {err})") from err


# --- writing ------------------------------------------------------------------------------------
class _Encoder:
    """Turns an object into manifest nodes (plain JSON), collecting its arrays as tensors."""

    def __init__(self):
        self.tensors = {}  # tensor name -> contiguous little-endian NumPy array, as stored
        self.table = {}  # tensor name -> {"dtype", "shape", "sha256"} (the logical array)
        self._names = {}  # id(array) -> tensor name: an array held twice is stored once
        self._held = []  # keeps those arrays alive, so their ids stay theirs while encoding
        self._open = set()  # ids of the containers being encoded: a cycle is an error

    def encode(self, obj, path):
        kind = type(obj)
        if obj is None or kind in (bool, int, str):
            return obj
        if kind is float:
            return obj if math.isfinite(obj) else {"float": repr(obj)}  # nan, inf, -inf
        if kind is complex:
            return {"complex": [self.encode(obj.real, path), self.encode(obj.imag, path)]}
        if isinstance(obj, np.generic):
            if obj.dtype.name not in _DTYPES:
                raise CheckpointError(f"fnx.save: {_where(path)} is a NumPy scalar of dtype "
                                      f"{obj.dtype}; {_UNSUPPORTED}")
            return {"numpy": obj.dtype.name, "value": self.encode(obj.item(), path)}
        if kind is np.ndarray or isinstance(obj, Array):
            return self._array(obj, path)
        if kind in (list, tuple) or kind in _DICTS or _is_namedtuple(kind):
            if len(path) >= MAX_DEPTH:
                raise _too_deep(_where(path))
            if id(obj) in self._open:
                raise CheckpointError(f"fnx.save: {_where(path)} contains itself (a reference "
                                      "cycle); a checkpoint holds a tree")
            self._open.add(id(obj))
            try:
                return self._container(obj, kind, path)
            finally:
                self._open.discard(id(obj))
        raise CheckpointError(f"fnx.save: cannot store {_where(path)}, an object of type "
                              f"{kind.__module__}.{kind.__qualname__}{_hint(obj)}; "
                              f"{_UNSUPPORTED}")

    def _container(self, obj, kind, path):
        if kind is list:
            return [self.encode(v, (*path, i)) for i, v in enumerate(obj)]
        if kind is tuple:
            return {"tuple": [self.encode(v, (*path, i)) for i, v in enumerate(obj)]}
        if kind in _DICTS:
            return {_DICTS[kind]: [[self._key(k, path, len(path) + 1),
                                    self.encode(v, (*path, k))] for k, v in obj.items()]}
        return {"namedtuple": f"{kind.__module__}:{kind.__qualname__}",
                "fields": list(kind._fields),
                "values": [self.encode(v, (*path, name))
                           for name, v in zip(kind._fields, obj, strict=True)]}

    def _key(self, key, path, depth):
        """A dict key, at the nesting depth of the dict's values: a tuple key nests deeper."""
        if type(key) is tuple:
            if depth >= MAX_DEPTH:
                raise _too_deep(f"a key of {_where(path)}")
            return {"tuple": [self._key(k, path, depth + 1) for k in key]}
        if type(key) in (type(None), bool, int, float, complex, str) or isinstance(
                key, np.generic):
            return self.encode(key, path)
        raise CheckpointError(f"fnx.save: {_where(path)} has a key of type "
                              f"{type(key).__name__}; dict keys must be None, bool, numbers, "
                              "str, NumPy scalars or tuples of them")

    def _array(self, x, path):
        if type(x) is not Array and type(x) is not np.ndarray:
            raise CheckpointError(f"fnx.save: {_where(path)} is a traced value (a "
                                  f"{type(x).__name__}); save concrete arrays, outside "
                                  "jit/grad/vmap")
        name = self._names.get(id(x))
        if name is None:
            host = x if type(x) is np.ndarray else devices.put_buffer(x._buf, devices.CPU)
            name = self._store(host, path)
            self._names[id(x)] = name
            self._held.append(x)
        if type(x) is np.ndarray:
            return {"array": name, "type": "numpy"}
        node = {"array": name, "type": "fnx", "device": str(x.device)}
        meta = x._autograd
        if meta is not None and meta.is_parameter:
            node["parameter"] = True
        if x.requires_grad:
            node["requires_grad"] = True
        if x._weak:
            node["weak"] = True
        return node

    def _store(self, host, path):
        dtype = host.dtype
        if dtype.name not in _DTYPES:
            raise CheckpointError(f"fnx.save: the array at {_where(path)} has dtype {dtype}; "
                                  f"a checkpoint holds arrays of dtype "
                                  f"{', '.join(sorted(_DTYPES))}")
        stored = host if host.flags.c_contiguous else host.copy(order="C")
        if not dtype.isnative:
            stored = stored.astype(dtype.newbyteorder("="))
        if dtype.name in _COMPLEX:
            stored = stored.reshape(-1).view(_COMPLEX[dtype.name]).reshape(*host.shape, 2)
        name = _tensor_name(path, self.tensors)
        self.tensors[name] = stored
        self.table[name] = {"dtype": dtype.name, "shape": list(host.shape),
                            "sha256": _array_sha256(stored)}
        return name


def _tensor_name(path, taken):
    """The array's path joined by dots (``model_state_dict.0.weight``: a state dict saved alone
    keeps its own keys as tensor names), made unique with a ``#n`` suffix."""
    base = ".".join(str(k) for k in path) or "array"
    name, n = base, 1
    while name in taken or name == "__metadata__":
        n += 1
        name = f"{base}#{n}"
    return name


def _is_namedtuple(kind):
    return issubclass(kind, tuple) and isinstance(getattr(kind, "_fields", None), tuple)


def _where(path):
    keys = [f"[{k!r}]" for k in path]
    if len(keys) > 8:  # the path of a deep object: its start and end say where it is
        keys[4:-2] = ["..."]
    return "the object" + "".join(keys)


def _too_deep(where):
    return CheckpointError(f"fnx.save: {where} is nested more than {MAX_DEPTH} levels deep "
                           f"(containers in containers); a checkpoint holds at most "
                           f"{MAX_DEPTH} levels")


def _hint(obj):
    if hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict"):
        return "; save its state instead: fnx.save(obj.state_dict(), path)"
    return ""


def _sha256(data):
    import hashlib  # noqa: PLC0415 (import time)

    return hashlib.sha256(data).hexdigest()


def _array_sha256(stored):
    return _sha256(stored.reshape(-1).view(np.uint8))


def _atomic_write(path, data):
    """Write ``data`` to a new file beside ``path``, fsync it, rename it over ``path`` and
    fsync the directory, so ``path`` always holds either the old or the new complete file.

    A symbolic link is written through, as ``torch.save``'s ``open(path, "wb")`` does: the
    file it points to is replaced (atomically, from a temporary file beside it) and the link
    keeps pointing at it."""
    # else the temporary file would go into the parent directory and the rename fail with an
    # OS error naming that file
    slash = path.endswith(tuple(filter(None, (os.sep, os.altsep))))
    if slash or os.path.isdir(path):
        what = "ends with a separator, so it names a directory" if slash else "is a directory"
        raise CheckpointError(f"fnx.save: {path!r} {what}; give a file path, such as "
                              f"{os.path.join(path, 'checkpoint.pth')!r}")
    real = os.path.realpath(path)
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"fnx.save: the directory {directory!r} to save "
                                f"{path!r} in does not exist; create it first "
                                f"(os.makedirs)", directory)
    tmp = os.path.join(directory, f".{os.path.basename(real)}.{os.urandom(6).hex()}.tmp")
    # O_EXCL: never write into someone else's file; 0o666 lets the umask decide, as open() does
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, real)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:  # a platform that cannot open directories (Windows): the rename stands
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# --- reading ------------------------------------------------------------------------------------
def _read_header(data, where):
    import json  # noqa: PLC0415 (import time)

    if len(data) < 8:
        raise CheckpointError(f"fnx.load: {where} is not a checkpoint: {len(data)} bytes is too "
                              "short for a safetensors header (an empty or truncated file)")
    (size,) = struct.unpack("<Q", data[:8])
    if 8 + size > len(data):
        hint = next((h for magic, h in _MAGIC_HINTS if data.startswith(magic)), None)
        if hint is not None:
            raise CheckpointError(f"fnx.load: {where} is not an fnx or safetensors file: {hint}")
        raise CheckpointError(f"fnx.load: {where} is truncated or not a checkpoint: its "
                              f"header claims {size} bytes but the file has {len(data)}")
    try:
        header = json.loads(data[8:8 + size])
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: crafted nesting
        header = None
    if not isinstance(header, dict):
        raise CheckpointError(f"fnx.load: {where} is corrupted or not a checkpoint: its "
                              "safetensors header is not a JSON object")
    return header


def _is_fnx(metadata):
    # any one fnx marker: a flipped byte in another one must not make the file a plain one
    return metadata.get("format") == "fnx" or any(str(k).startswith("fnx.") for k in metadata)


def _read_manifest(metadata, where):
    import json  # noqa: PLC0415 (import time)

    text = metadata.get("fnx.manifest")
    if (not isinstance(text, str) or metadata.get("format") != "fnx"
            or _sha256(text.encode()) != metadata.get("fnx.manifest.sha256")):
        raise CheckpointError(f"fnx.load: {where} is corrupted: its manifest does not match its "
                              "SHA-256 checksum")
    version = metadata.get("fnx.checkpoint")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"fnx.load: {where} has checkpoint format version {version!r}; "
                              f"this fnx reads version {FORMAT_VERSION} (upgrade fnx)")
    try:
        manifest = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: crafted nesting
        manifest = None
    if not (isinstance(manifest, dict) and isinstance(manifest.get("tensors"), dict)
            and "root" in manifest):
        raise CheckpointError(f"fnx.load: {where} has a malformed manifest")
    return manifest


def _load_tensors(data, where):
    from safetensors import SafetensorError  # noqa: PLC0415 (import time)
    from safetensors.numpy import load as safetensors_load  # noqa: PLC0415

    try:
        return safetensors_load(data)
    except KeyError as err:  # a dtype safetensors.numpy does not map (bfloat16, float8)
        raise CheckpointError(f"fnx.load: {where} holds tensors of dtype {err}, which NumPy "
                              "and fnx do not have") from err
    except (SafetensorError, ValueError) as err:
        raise CheckpointError(f"fnx.load: {where} is corrupted or truncated: safetensors "
                              f"cannot read it ({err})") from err


def _verified_arrays(tensors, table, where):
    """The tensors as the arrays the manifest describes, after checking each one's dtype,
    shape and SHA-256: flipped bytes anywhere in the data are caught here."""
    extra = sorted(set(tensors) - set(table))
    if extra:
        raise CheckpointError(f"fnx.load: {where} is corrupted: it holds tensors its manifest "
                              f"does not list ({', '.join(extra[:5])})")
    arrays = {}
    for name, info in table.items():
        stored = tensors.get(name)
        if stored is None:
            raise CheckpointError(f"fnx.load: {where} is corrupted or truncated: tensor "
                                  f"{name!r} of its manifest is missing")
        if info.get("dtype") not in _DTYPES:
            raise CheckpointError(f"fnx.load: {where} has a malformed manifest (tensor "
                                  f"{name!r} has dtype {info.get('dtype')!r})")
        dtype = np.dtype(info["dtype"])
        shape = tuple(info["shape"])
        stored_dtype, stored_shape = dtype, shape
        if dtype.name in _COMPLEX:
            stored_dtype, stored_shape = _COMPLEX[dtype.name], (*shape, 2)
        if stored.dtype != stored_dtype or stored.shape != stored_shape:
            raise CheckpointError(
                f"fnx.load: {where} is corrupted: tensor {name!r} is {stored.dtype}"
                f"{list(stored.shape)} in the file but {stored_dtype}{list(stored_shape)} in "
                "its manifest")
        if _array_sha256(stored) != info.get("sha256"):
            raise CheckpointError(f"fnx.load: {where} is corrupted: the bytes of tensor "
                                  f"{name!r} do not match their SHA-256 checksum")
        if dtype.name in _COMPLEX:
            stored = stored.reshape(-1).view(dtype).reshape(shape)
        arrays[name] = stored
    return arrays


def _inner(depth):
    """The depth of the items of a container at ``depth``: ``fnx.save``'s bound, a container
    at depth ``MAX_DEPTH`` (the level above the limit) is refused even when empty."""
    if depth >= MAX_DEPTH:
        raise ValueError(f"containers nested deeper than {MAX_DEPTH} levels, which fnx.save "
                         f"never writes")
    return depth + 1


def _number(node):
    """A real number node (a NumPy scalar's value, a complex number's part): never a
    container, so decoding it cannot recurse."""
    if type(node) in (bool, int, float):
        return node
    if type(node) is dict and type(node.get("float")) is str:
        return float(node["float"])
    raise ValueError(f"expected a number, got {type(node).__name__}")


def _complex(node):
    re, im = node["complex"]
    return complex(_number(re), _number(im))


class _Decoder:
    """Rebuilds the saved object from manifest nodes; an array held twice comes back as one
    object, as it was saved."""

    def __init__(self, arrays, map_location, where):
        self.arrays, self.map_location, self.where = arrays, map_location, where
        self._made = {}
        self._classes = {}

    def decode(self, node, depth=0):
        """The value of ``node``, inside ``depth`` containers (a file nested deeper than
        ``fnx.save`` writes is refused long before Python's recursion limit)."""
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is list:
            inner = _inner(depth)
            return [self.decode(v, inner) for v in node]
        if "array" in node:
            return self._array(node)
        if "float" in node:
            return _number(node)
        if "complex" in node:
            return _complex(node)
        if "numpy" in node:
            if node["numpy"] not in _DTYPES:
                raise ValueError(f"unknown NumPy scalar dtype {node['numpy']!r}")
            value = node["value"]
            is_complex = type(value) is dict and "complex" in value
            return np.dtype(node["numpy"]).type(_complex(value) if is_complex else _number(value))
        if "tuple" in node:
            inner = _inner(depth)
            return tuple(self.decode(v, inner) for v in node["tuple"])
        if "namedtuple" in node:
            inner = _inner(depth)
            cls = self._namedtuple_class(node["namedtuple"], tuple(node["fields"]))
            return tuple.__new__(cls, [self.decode(v, inner) for v in node["values"]])
        for kind, tag in _DICTS.items():
            if tag in node:
                inner = _inner(depth)
                pairs = {self.decode(k, inner): self.decode(v, inner) for k, v in node[tag]}
                return pairs if kind is dict else kind(pairs)
        raise ValueError(f"unknown node {sorted(node)}")

    def _namedtuple_class(self, spec, fields):
        """The saved named tuple's class when its module is already imported and its fields
        match (looked up in ``__dict__``s: no import, no attribute hook runs), else one
        ``collections.namedtuple`` of the same name and fields per checkpoint."""
        if spec not in self._classes:
            module, _, qualname = spec.partition(":")
            obj = sys.modules.get(module)
            for part in qualname.split("."):
                try:
                    obj = vars(obj).get(part)
                except TypeError:
                    obj = None
            if not (isinstance(obj, type) and issubclass(obj, tuple)
                    and inspect.getattr_static(obj, "_fields", None) == fields):
                obj = collections.namedtuple(qualname.rpartition(".")[2], fields)
            self._classes[spec] = obj
        return self._classes[spec]

    def _array(self, node):
        name = node["array"]
        if name not in self._made:
            host = self.arrays[name]
            if node["type"] == "numpy":
                out = host
            elif node["type"] == "fnx":
                out = self.place(host, node["device"], name)
                if node.get("parameter"):
                    from .nn import Parameter  # noqa: PLC0415 (fnx.nn loads on first use)

                    out = Parameter(out, requires_grad=bool(node.get("requires_grad")))
                elif node.get("requires_grad"):
                    out.requires_grad_(True)
                out._weak = bool(node.get("weak"))
            else:
                raise ValueError(f"unknown array type {node['type']!r}")
            self._made[name] = out
        return self._made[name]

    def place(self, host, location, name):
        """``host`` as an fnx array where ``map_location`` sends arrays saved on ``location``."""
        target, ml = location, self.map_location
        if callable(ml):
            try:
                out = ml(wrap(host), location)
            except Exception as err:
                raise CheckpointError(f"fnx.load: map_location raised for tensor {name!r} "
                                      f"(saved on {location}): {err}") from err
            if out is not None:
                return out
        elif isinstance(ml, dict):
            mapping = {str(devices.as_device(k)): v for k, v in ml.items()}
            target = mapping.get(location, location)
        elif ml is not None:
            target = ml
        device = devices.as_device(target)
        if device.type == "cuda" and not devices.cuda.is_available():
            raise CheckpointError(f"fnx.load: {self.where}: tensor {name!r} was saved on "
                                  f"{location} but CUDA is not available; pass "
                                  "map_location='cpu' to load it on the CPU")
        return wrap(devices.put_buffer(host, device))
