"""fnx.datasets: the digits data set, and the MNIST / Fashion-MNIST / CIFAR-10 readers on small
files written here in the official formats (IDX, gzipped or not; CIFAR batches as Python 2's
cPickle wrote them and as Python 3's pickle protocol 2 writes them), the MD5 and format checks,
the errors that say which files to put where, and the restricted unpickler refusing code."""

import gzip
import hashlib
import os
import pickle
import struct
import sys

import numpy as np
import pytest

import fnx
from fnx.datasets import CIFAR10, MNIST, DatasetError, FashionMNIST, read_cifar_batch, read_idx

# --- digits --------------------------------------------------------------------------------------


def test_digits_arrays_and_split():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    bunch = sklearn_datasets.load_digits()
    full = fnx.datasets.digits()
    x, y = full.tensors
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(np.asarray(x).reshape(-1, 64) * 16, bunch.data)
    np.testing.assert_array_equal(np.asarray(y), bunch.target)

    train, test = fnx.datasets.digits(train=True), fnx.datasets.digits(train=False)
    rows = {r.tobytes() + bytes([t]) for r, t in zip(bunch.data.astype(np.float32) / 16,
                                                     bunch.target, strict=True)}
    train_rows = [np.asarray(a).reshape(-1).tobytes() + bytes([int(b)]) for a, b in
                  zip(*train.tensors, strict=True)]
    test_rows = [np.asarray(a).reshape(-1).tobytes() + bytes([int(b)]) for a, b in
                 zip(*test.tensors, strict=True)]
    assert len(train_rows) + len(test_rows) == 1797
    assert set(train_rows) | set(test_rows) == rows
    # every class holds out round(0.2 * its size)
    counts = np.bincount(bunch.target)
    np.testing.assert_array_equal(np.bincount(np.asarray(test.tensors[1])),
                                  np.round(0.2 * counts).astype(int))
    again = fnx.datasets.digits(train=False)
    np.testing.assert_array_equal(np.asarray(again.tensors[0]), np.asarray(test.tensors[0]))
    other = fnx.datasets.digits(train=False, seed=1)
    assert not np.array_equal(np.asarray(other.tensors[0]), np.asarray(test.tensors[0]))
    flat = fnx.datasets.digits(train=True, flatten=True, test_fraction=0.5)
    assert flat.tensors[0].shape[1:] == (64,)
    assert len(flat) == 1797 - sum(round(0.5 * c) for c in counts)


def test_digits_without_sklearn_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import of it now fails
    with pytest.raises(ImportError, match=r"needs scikit-learn.*pip install scikit-learn"):
        fnx.datasets.digits()


def test_digits_bad_fraction():
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\), got 1.5"):
        fnx.datasets.digits(train=True, test_fraction=1.5)


# --- IDX and MNIST -------------------------------------------------------------------------------
_IDX_CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D,
              "float64": 0x0E}


def _idx_bytes(array):
    header = bytes([0, 0, _IDX_CODES[array.dtype.name], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write(path, data, gz):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if gz:
        path += ".gz"
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)
    return path


@pytest.mark.parametrize("dtype", sorted(_IDX_CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_every_type(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = _write(str(tmp_path / "x-idx3"), _idx_bytes(array), gz)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, array)


def test_read_idx_errors(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x42\x01" + bytes(8))
    with pytest.raises(DatasetError, match="is not an IDX file"):
        read_idx(path)
    data = _idx_bytes(np.zeros((2, 3), np.uint8))
    path.write_bytes(data[:-1])
    with pytest.raises(DatasetError, match=r"truncated or corrupted: its header describes a "
                                           r"uint8 array of shape \(2, 3\) \(18 bytes"):
        read_idx(path)
    path.write_bytes(data[:6])
    with pytest.raises(DatasetError, match="ends inside its header"):
        read_idx(path)
    path.write_bytes(gzip.compress(data)[:-5])
    with pytest.raises(DatasetError, match="corrupted or truncated gzip file"):
        read_idx(path)


def _mnist_files(directory, n_train=5, n_test=3, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        _write(os.path.join(directory, f"{split}-images-idx3-ubyte"), _idx_bytes(images), gz)
        _write(os.path.join(directory, f"{split}-labels-idx1-ubyte"), _idx_bytes(labels), gz)
        arrays[split] = (images, labels)
    return arrays


@pytest.mark.parametrize("layout", ["root", "torchvision", "gzipped"])
def test_mnist_reads_the_idx_files(tmp_path, layout):
    directory = str(tmp_path / "MNIST" / "raw") if layout == "torchvision" else str(tmp_path)
    arrays = _mnist_files(directory, gz=layout == "gzipped")
    for train, split in ((True, "train"), (False, "t10k")):
        ds = MNIST(tmp_path, train=train, verify=False)
        images, labels = arrays[split]
        assert len(ds) == len(images)
        np.testing.assert_array_equal(ds.data, images)
        assert ds.targets.dtype == np.int64
        np.testing.assert_array_equal(ds.targets, labels)
        image, label = ds[1]
        assert image.shape == (28, 28) and image.dtype == np.uint8 and type(label) is int
        np.testing.assert_array_equal(image, images[1])
        assert label == labels[1]
    assert ds.class_to_idx["3 - three"] == 3
    assert "Number of datapoints: 3" in repr(ds) and "Split: Test" in repr(ds)


def test_mnist_transforms_and_data_loader(tmp_path):
    arrays = _mnist_files(str(tmp_path), n_train=6)
    ds = MNIST(tmp_path, transform=lambda im: im.astype(np.float32) / 255,
               target_transform=lambda t: t + 100, verify=False)
    image, label = ds[0]
    assert image.dtype == np.float32 and label == arrays["train"][1][0] + 100
    xb, yb = next(iter(fnx.data.DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 28, 28) and yb.tolist() == [int(t) + 100 for t in
                                                       arrays["train"][1][:4]]


def test_mnist_missing_files_say_what_to_put_where(tmp_path):
    with pytest.raises(DatasetError, match=r"MNIST: missing file\(s\) train-images-idx3-ubyte.gz "
                                           r"or train-images-idx3-ubyte, train-labels-idx1-ubyte"
                                           r".gz or train-labels-idx1-ubyte; looked in .*MNIST/"
                                           r"raw.*ossci-datasets.*downloads nothing"):
        MNIST(tmp_path, download=True)
    with pytest.raises(DatasetError, match="fashion-mnist.*FashionMNIST/raw"):
        FashionMNIST(tmp_path, train=False)


def test_mnist_verify(tmp_path):
    _mnist_files(str(tmp_path), gz=True)
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz has MD5 [0-9a-f]{32}, "
                                           r"the official file f68b3c2dcbeaaa9fbdd348bbdeb94873:"
                                           r" it is corrupted.*Pass verify=False"):
        MNIST(tmp_path)

    class Known(MNIST):  # these files, as if their MD5s and sizes were the published ones
        _md5 = {name: hashlib.md5((tmp_path / name).read_bytes()).hexdigest()
                for name in os.listdir(tmp_path)}
        _official_sizes = {True: 5, False: 3}

    assert len(Known(tmp_path)) == 5
    Known._official_sizes = {True: 60000, False: 10000}
    with pytest.raises(DatasetError, match=r"has 5 images, the official file 60000; pass "
                                           r"verify=False"):
        Known(tmp_path)


def test_mnist_inconsistent_files(tmp_path):
    _mnist_files(str(tmp_path))
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(_idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DatasetError, match="has 5 images but .* has 4 labels"):
        MNIST(tmp_path, verify=False)
    labels.write_bytes(_idx_bytes(np.full(5, 10, np.uint8)))
    with pytest.raises(DatasetError, match="has label 10; the 10 classes are numbered from 0"):
        MNIST(tmp_path, verify=False)
    labels.write_bytes(_idx_bytes(np.zeros(5, np.int32)))
    with pytest.raises(DatasetError, match=r"expected uint8 images .* got .*int32\(5,\)"):
        MNIST(tmp_path, verify=False)


def test_fashion_mnist_layout_and_classes(tmp_path):
    arrays = _mnist_files(str(tmp_path / "FashionMNIST" / "raw"), gz=True)
    ds = FashionMNIST(tmp_path, train=False, verify=False)
    np.testing.assert_array_equal(ds.data, arrays["t10k"][0])
    assert ds.classes[9] == "Ankle boot"
    with pytest.raises(DatasetError, match="the official file bef4ecab320f06d8554ea6380940ec79"):
        FashionMNIST(tmp_path, train=False)


# --- CIFAR-10 ------------------------------------------------------------------------------------
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]


def _py2_pickle(obj):
    """``obj`` pickled with the opcodes Python 2's cPickle (protocol 2) wrote for the CIFAR
    batches: byte strings as SHORT_BINSTRING/BINSTRING, arrays through
    ``numpy.core.multiarray._reconstruct`` with a ``numpy.dtype`` and its state."""
    out = bytearray(b"\x80\x02")

    def emit(o):
        if isinstance(o, dict):
            out.extend(b"}(")
            for k, v in o.items():
                emit(k)
                emit(v)
            out.extend(b"u")
        elif isinstance(o, list):
            out.extend(b"](")
            for v in o:
                emit(v)
            out.extend(b"e")
        elif isinstance(o, tuple):
            out.extend(b"(")
            for v in o:
                emit(v)
            out.extend(b"t")
        elif isinstance(o, (str, bytes)):
            s = o.encode("latin-1") if isinstance(o, str) else o
            out.extend(b"U" + bytes([len(s)]) if len(s) < 256 else b"T" + struct.pack("<I", len(s)))
            out.extend(s)
        elif o is None:
            out.extend(b"N")
        elif isinstance(o, bool):
            out.extend(b"\x88" if o else b"\x89")
        elif isinstance(o, int):
            out.extend(b"K" + bytes([o]) if 0 <= o < 256 else
                       b"M" + struct.pack("<H", o) if 0 <= o < 65536 else b"J" + struct.pack("<i", o))
        elif isinstance(o, np.ndarray):
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            emit((0,))
            emit("b")
            out.extend(b"\x87R(")  # TUPLE3, REDUCE; the state follows
            emit(1)
            emit(o.shape)
            out.extend(b"cnumpy\ndtype\n")
            emit(o.dtype.str[1:])
            emit(0)
            emit(1)
            out.extend(b"\x87R")
            emit((3, o.dtype.str[0], None, None, None, -1, -1, 0))
            out.extend(b"b")  # BUILD the dtype
            emit(False)
            emit(o.tobytes())
            out.extend(b"tb")  # the array's state tuple; BUILD
        else:
            raise TypeError(type(o))

    emit(obj)
    out.extend(b".")
    return bytes(out)


def _cifar_files(directory, sizes=(3, 2, 2, 1, 2), n_test=4, style="py2", seed=0):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    dump = _py2_pickle if style == "py2" else (lambda o: pickle.dumps(o, protocol=2))
    batches = {}
    for name, n in [*((f"data_batch_{i + 1}", n) for i, n in enumerate(sizes)),
                    ("test_batch", n_test)]:
        batch = {"batch_label": f"{name} of 5", "labels": rng.integers(0, 10, n).tolist(),
                 "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "filenames": [f"img_{i}.png" for i in range(n)]}
        with open(os.path.join(directory, name), "wb") as f:
            f.write(dump(batch))
        batches[name] = batch
    with open(os.path.join(directory, "batches.meta"), "wb") as f:
        f.write(dump({"num_cases_per_batch": 10000, "label_names": LABEL_NAMES,
                      "num_vis": 3072}))
    return batches


def test_py2_style_pickles_are_real_pickles(tmp_path):
    # the generator above writes what pickle itself reads back (checked with the real thing)
    batch = _cifar_files(str(tmp_path))["data_batch_1"]
    with open(tmp_path / "data_batch_1", "rb") as f:
        real = pickle.load(f, encoding="latin1")
    np.testing.assert_array_equal(real["data"], batch["data"])
    assert real["labels"] == batch["labels"] and real["filenames"] == batch["filenames"]


@pytest.mark.parametrize("style", ["py2", "py3"])
@pytest.mark.parametrize("in_folder", [True, False])
def test_cifar10_reads_the_batches(tmp_path, style, in_folder):
    directory = str(tmp_path / "cifar-10-batches-py") if in_folder else str(tmp_path)
    batches = _cifar_files(directory, style=style)
    train = CIFAR10(tmp_path, verify=False)
    assert len(train) == 10 and train.data.shape == (10, 32, 32, 3)
    assert train.data.dtype == np.uint8 and train.targets.dtype == np.int64
    assert train.classes == LABEL_NAMES and train.class_to_idx["ship"] == 8
    flat = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)])
    labels = sum((batches[f"data_batch_{i}"]["labels"] for i in range(1, 6)), [])
    np.testing.assert_array_equal(train.targets, labels)
    # pixel (row r, column c, channel ch) of image i is byte ch * 1024 + r * 32 + c of its row
    for i, r, c, ch in [(0, 0, 0, 0), (3, 5, 7, 1), (9, 31, 30, 2)]:
        assert train.data[i, r, c, ch] == flat[i, ch * 1024 + r * 32 + c]
    image, label = train[4]
    assert image.shape == (32, 32, 3) and label == labels[4] and type(label) is int
    test = CIFAR10(tmp_path, train=False, verify=False, transform=lambda im: im.mean())
    assert len(test) == 4
    assert test[0][0] == batches["test_batch"]["data"][0].mean()


def test_cifar10_missing_files_and_verify(tmp_path):
    with pytest.raises(DatasetError, match=r"CIFAR10: missing file\(s\) data_batch_1, data_batch"
                                           r"_2, .*batches.meta; looked in .*cifar-10-batches-py"
                                           r"\. Download https://www.cs.toronto.edu/~kriz/cifar-"
                                           r"10-python.tar.gz and extract it"):
        CIFAR10(tmp_path)
    directory = tmp_path / "cifar-10-batches-py"
    _cifar_files(str(directory))
    with pytest.raises(DatasetError, match=r"test_batch has MD5 [0-9a-f]{32}, the official file "
                                           r"40351d587109b95175f43aff81a1287e"):
        CIFAR10(tmp_path, train=False)

    class Known(CIFAR10):  # these files, as if their MD5s were the published ones
        _md5 = {name: hashlib.md5((directory / name).read_bytes()).hexdigest()
                for name in os.listdir(directory)}

    assert len(Known(tmp_path, train=False)) == 4


def test_cifar10_malformed_batches(tmp_path):
    _cifar_files(str(tmp_path))
    path = tmp_path / "test_batch"
    for batch, match in [
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [1]}, "a list of 1"),
        ({"data": np.zeros((2, 100), np.uint8), "labels": [1, 2]}, r"uint8\(2, 100\)"),
        ({"data": np.zeros((1, 3072), np.uint8), "labels": [10]}, r"N ints in \[0, 10\)"),
        ({"labels": [1]}, "got NoneType"),
    ]:
        path.write_bytes(pickle.dumps(batch, protocol=2))
        with pytest.raises(DatasetError, match=f"is not a CIFAR-10 batch.*{match}"):
            CIFAR10(tmp_path, train=False, verify=False)
    path.write_bytes(pickle.dumps(batch, protocol=2)[:-3])
    with pytest.raises(DatasetError, match="is not a CIFAR batch, or is corrupted or truncated"):
        CIFAR10(tmp_path, train=False, verify=False)
    path.write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(DatasetError, match="holds a list, not the dict of a CIFAR batch"):
        CIFAR10(tmp_path, train=False, verify=False)


class _RunsCode:
    def __init__(self, call, arg):
        self.call, self.arg = call, arg

    def __reduce__(self):
        return self.call, (self.arg,)


def test_the_cifar_reader_refuses_pickles_that_run_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    attacks = [
        (_RunsCode(os.system, f"touch {marker}"), r"global (posix|nt)\.system is not allowed"),
        (_RunsCode(eval, "1"), r"global (__builtin__|builtins)\.eval is not allowed"),
        (_RunsCode(np.load, "x.npy"), r"global numpy\..*load is not allowed"),
    ]
    for payload, match in attacks:
        path.write_bytes(pickle.dumps({"data": payload, "labels": []}, protocol=2))
        with pytest.raises(DatasetError, match=match):
            read_cifar_batch(path)
    assert not marker.exists()
    # an object array would make NumPy unpickle its elements: its dtype is refused
    path.write_bytes(pickle.dumps(np.array([None], dtype=object), protocol=2))
    with pytest.raises(DatasetError, match="dtype 'O8' is not allowed"):
        read_cifar_batch(path)
    # bytes from any codec but latin-1 are refused
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00utf16\x86R.")
    with pytest.raises(DatasetError, match="only latin-1 text can be encoded"):
        read_cifar_batch(path)


def test_restricted_reader_matches_pickle_on_numeric_arrays(tmp_path):
    path = tmp_path / "arrays"
    arrays = {"f": np.arange(6.0).reshape(2, 3), "i": np.arange(4, dtype=">i4"),
              "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
              "b": np.array([True, False]), "nested": [np.zeros((0, 2), np.uint8), ("x", 1)]}
    path.write_bytes(pickle.dumps(arrays, protocol=2))
    out = read_cifar_batch(path)
    for key in ("f", "i", "fortran", "b"):
        assert out[key].dtype == arrays[key].dtype
        np.testing.assert_array_equal(out[key], arrays[key])
    assert out["nested"][0].shape == (0, 2) and out["nested"][1] == ("x", 1)
