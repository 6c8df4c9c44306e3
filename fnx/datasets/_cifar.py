"""CIFAR-10 from its "python version" batches, read without unpickling arbitrary objects.

The batches are Python 2 pickles (protocol 2) of a dict: ``data`` a uint8 NumPy array of shape
``(10000, 3072)`` (1024 red, then green, then blue values per image, rows first), ``labels`` a
list of ints, ``batch_label`` and ``filenames`` strings; ``batches.meta`` a dict with
``label_names``. Plain ``pickle.load`` would run whatever callables a file names, so the
reader is a ``pickle.Unpickler`` whose ``find_class`` resolves only the few globals a NumPy
array pickle uses, and resolves them to small stand-ins written here rather than to NumPy's
own functions: ``_reconstruct`` and ``ndarray`` to an array placeholder whose ``__setstate__``
checks the shape, dtype and byte count and builds the array with ``np.frombuffer``; ``dtype``
to a check that allows only plain numeric type codes; ``_codecs.encode`` and ``bytes`` (how
Python 3 writes bytes in protocol 2) to a latin-1-only encoder and the empty bytes. No NumPy
``__setstate__`` ever sees file content, and any other global (``os.system``,
``builtins.eval``...) is refused. (A hand-written parser of the opcodes would be the other
choice; the restricted unpickler is the documented Python mechanism and keeps the reader
short.)
"""

import io
import os
import pickle

import numpy as np

from ..core.errors import DatasetError
from ._common import LabelledImages, check_md5s, find_files

_TYPECODES = frozenset(["b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8"])
_BYTE_ORDERS = frozenset(["<", ">", "|", "="])


class _ArrayPlaceholder:
    """What ``numpy.core.multiarray._reconstruct`` resolves to: pickle's BUILD hands it the
    array's state, from which it makes the array (``.array``)."""

    __slots__ = ("array",)

    def __setstate__(self, state):
        if len(state) == 5:  # (version, shape, dtype, fortran order, raw bytes)
            state = state[1:]
        shape, dtype, fortran, raw = state
        if not isinstance(dtype, _DTypePlaceholder):
            raise pickle.UnpicklingError("array state without a dtype")
        if isinstance(raw, str):  # a Python 2 byte string, decoded as latin-1 by the reader
            raw = raw.encode("latin-1")
        if (not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape)
                or not isinstance(raw, bytes)):
            raise pickle.UnpicklingError(f"malformed array state (shape {shape!r})")
        array = np.frombuffer(raw, dtype.dtype)
        if array.size != np.prod(shape, dtype=np.int64):
            raise pickle.UnpicklingError(f"array of shape {shape} and dtype {dtype.dtype} "
                                         f"does not match its {len(raw)} bytes")
        self.array = array.reshape(shape, order="F" if fortran else "C").copy()


class _DTypePlaceholder:
    """What ``numpy.dtype`` resolves to: a plain numeric dtype; BUILD may set its byte order."""

    __slots__ = ("dtype",)

    def __init__(self, code):
        self.dtype = np.dtype(code)

    def __setstate__(self, state):
        order = state[1]
        if order not in _BYTE_ORDERS or any(s is not None for s in state[2:5]):
            raise pickle.UnpicklingError("only plain numeric dtypes are allowed")
        if order != "|":
            self.dtype = self.dtype.newbyteorder(order)


def _reconstruct(subtype, shape, typecode):
    del shape, typecode  # unused: the state that BUILD passes describes the array
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError("only numpy.ndarray can be reconstructed")
    return _ArrayPlaceholder()


def _dtype(code, align=False, copy=False):
    del align, copy  # unused: flags of the dtype's constructor
    if isinstance(code, bytes):
        code = code.decode("latin-1")
    if code not in _TYPECODES:
        raise pickle.UnpicklingError(f"dtype {code!r} is not allowed (plain numbers only)")
    return _DTypePlaceholder(code)


def _encode(text, encoding):
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError("only latin-1 text can be encoded")
    return text.encode("latin-1")


def _bytes(*args):
    if args:
        raise pickle.UnpicklingError("only empty bytes can be made by calling bytes")
    return b""


_NDARRAY = object()  # what numpy.ndarray resolves to: only an argument of _reconstruct
_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # NumPy 2 writes this name
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
    ("__builtin__", "bytes"): _bytes,  # Python 3 writes b"" as bytes() in protocol 2
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _GLOBALS[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed: a CIFAR batch holds only dicts, "
                "lists, strings, numbers and NumPy arrays") from None


def _materialize(obj):
    """The unpickled tree with placeholders replaced by their arrays and byte-string keys and
    values decoded (files re-pickled by Python 3 with ``encoding='bytes'`` have them)."""
    if isinstance(obj, _ArrayPlaceholder):
        if not hasattr(obj, "array"):
            raise pickle.UnpicklingError("an array without its state")
        return obj.array
    if isinstance(obj, bytes):
        return obj.decode("latin-1")
    if isinstance(obj, dict):
        return {_materialize(k): _materialize(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_materialize(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialize(v) for v in obj)
    if isinstance(obj, _DTypePlaceholder):
        raise pickle.UnpicklingError("a bare dtype is not allowed")
    return obj


def read_cifar_batch(path):
    """The dict in a CIFAR "python version" file (a data batch or ``batches.meta``), read
    with a restricted unpickler that cannot run code (see the module docstring).

    >>> import os, pickle, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "batches.meta")
    >>> with open(path, "wb") as f:
    ...     pickle.dump({"label_names": ["airplane", "automobile"]}, f, protocol=2)
    >>> fnx.datasets.read_cifar_batch(path)
    {'label_names': ['airplane', 'automobile']}
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        out = _materialize(_BatchUnpickler(io.BytesIO(data), encoding="latin1").load())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
            AttributeError, KeyError, MemoryError, OverflowError, RecursionError) as err:
        raise DatasetError(f"read_cifar_batch: {path} is not a CIFAR batch, or is corrupted or "
                           f"truncated: {err}") from err
    if not isinstance(out, dict):
        raise DatasetError(f"read_cifar_batch: {path} holds a {type(out).__name__}, not the "
                           "dict of a CIFAR batch")
    return out


class CIFAR10(LabelledImages):
    """CIFAR-10 (32x32 colour images, 10 classes) from the "python version" batches in
    ``root``, as ``torchvision.datasets.CIFAR10``: sample ``i`` is ``(image, label)``, the
    image a uint8 NumPy array of shape ``(32, 32, 3)`` (what ``ToTensor`` takes), the label an
    int. The files are read without unpickling arbitrary objects (``read_cifar_batch``).

    ``root`` holds the ``cifar-10-batches-py`` folder of ``cifar-10-python.tar.gz``
    (``data_batch_1`` ... ``data_batch_5``, ``test_batch``, ``batches.meta``), or those files
    directly. ``verify=True`` checks each file's published MD5; pass ``verify=False`` for
    files you made in the same format. ``download`` is accepted for PyTorch compatibility
    (fnx downloads nothing). ``data`` is uint8 ``(N, 32, 32, 3)``, ``targets`` int64 ``(N,)``.

    >>> import os, pickle, tempfile
    >>> root = tempfile.mkdtemp()
    >>> batch = {"data": np.zeros((2, 3072), np.uint8), "labels": [3, 5]}
    >>> meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog",
    ...                         "frog", "horse", "ship", "truck"]}
    >>> for name, obj in [("test_batch", batch), ("batches.meta", meta)]:
    ...     with open(os.path.join(root, name), "wb") as f:
    ...         pickle.dump(obj, f, protocol=2)
    >>> test = fnx.datasets.CIFAR10(root, train=False, verify=False)
    >>> image, label = test[1]
    >>> len(test), image.shape, test.classes[label]
    (2, (32, 32, 3), 'dog')
    """

    _source = ("Download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract "
               "it into the root directory (tar xzf cifar-10-python.tar.gz -C root), which "
               "creates root/cifar-10-batches-py.")
    # published MD5s of the files (torchvision's resource list)
    _md5 = {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    }

    def __init__(self, root, train=True, transform=None, target_transform=None,
                 download=False, *, verify=True):
        super().__init__(root, train, transform, target_transform, download)
        batches = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        name = type(self).__name__
        paths = find_files(name, root, {f: (f,) for f in [*batches, "batches.meta"]},
                           ["cifar-10-batches-py"], self._source)
        if verify:
            check_md5s(name, paths.values(), self._md5, self._source)
        self.classes = list(read_cifar_batch(paths["batches.meta"]).get("label_names", []))
        images, labels = [], []
        for file in batches:
            x, y = self._read_batch(paths[file])
            images.append(x)
            labels.append(y)
        self.data = np.concatenate(images).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        self.targets = np.concatenate(labels)

    def _read_batch(self, path):
        batch = read_cifar_batch(path)
        data, labels = batch.get("data"), batch.get("labels")
        if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
                and data.shape[1] == 3072 and isinstance(labels, list)
                and len(labels) == len(data)
                and all(type(y) is int and 0 <= y < len(self.classes) for y in labels)):
            raise DatasetError(
                f"{type(self).__name__}: {path} is not a CIFAR-10 batch: expected 'data', a "
                f"uint8 array of shape (N, 3072), and 'labels', N ints in [0, "
                f"{len(self.classes)}); got {_describe(data)} and {_describe(labels)}")
        return data, np.asarray(labels, np.int64)


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"an array {value.dtype}{value.shape}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return type(value).__name__
