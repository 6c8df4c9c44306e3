"""fnx.save / fnx.load (fnx/serialization.py, docs/data.md "Checkpoints"): exact round trips of
state dicts and plain values, resuming training bit-identically, the file being a standard
safetensors file, atomic writes (a killed writer leaves the previous checkpoint), and clear
errors for truncated, altered and foreign files."""

import collections
import io
import json
import math
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import safetensors
import safetensors.numpy as stn

import fnx
import fnx.numpy as fnp
from fnx import nn, optim

Point = collections.namedtuple("Point", "x y")


def _same(a, b):
    """Exact equality of two loaded trees: types, dtypes, shapes, bits (NaN equals NaN)."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, (fnx.Array, np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    elif isinstance(a, dict):
        assert list(a) == list(b) and all(type(x) is type(y) for x, y in zip(a, b, strict=True))
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))


def _round_trip(obj, tmp_path):
    path = tmp_path / "ckpt.fnx"
    fnx.save(obj, path)
    return fnx.load(path)


def test_plain_values_and_containers_round_trip_exactly(tmp_path):
    obj = {
        "none": None, "bools": [True, False], "ints": [0, -7, 2**70], "str": "héllo",
        "floats": [1.0, -0.0, 1e-310, float("inf"), float("-inf"), float("nan"), 0.1],
        "complex": 1.5 - 2j, "tuple": (1, (2.0, "x"), []), "list_of_tuple": [(1,), ()],
        "int_keys": {0: "a", 1: "b"}, "str_keys": {"0": "a", "1": "b"},
        "mixed_keys": {None: 1, True: 2, 2.5: 3, (1, "a"): 4, np.int64(5): 6},
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "counter": collections.Counter({3: 1, 1: 2}),
        "point": Point(1, [2]),
        "np_scalars": [np.float32(0.1), np.float16(-1.5), np.int8(-3), np.uint64(2**64 - 1),
                       np.bool_(True), np.complex64(1 + 2j), np.float64("nan")],
        "empty": {},
    }
    out = _round_trip(obj, tmp_path)
    _same(obj, out)
    assert type(out["point"]) is Point  # the class is imported: the same class comes back


def test_arrays_keep_type_dtype_shape_and_values(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        **{f"fnx_{d}": fnp.asarray((rng.standard_normal((2, 3)) * 50).astype(d))
           for d in ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
                     "uint8", "uint16", "uint32", "uint64")},
        "fnx_bool": fnp.asarray([True, False]), "fnx_0d": fnp.asarray(3.5),
        "fnx_c64": fnp.asarray(np.array([1 + 2j, -3j], np.complex64)),
        "fnx_c128_0d": fnp.asarray(np.array(1e-300 + 2j, np.complex128)),
        "np_empty": np.zeros((2, 0, 3), np.float32), "np_transposed": np.arange(6.0).reshape(2, 3).T,
        "np_big_endian": np.arange(4, dtype=">i4"), "np_c128": np.array([[1 + 1j]]),
        "np_bool_0d": np.array(True), "np_nan": np.array([np.nan, -np.inf, -0.0]),
    }
    out = _round_trip(arrays, tmp_path)
    for key, value in arrays.items():
        loaded = out[key]
        assert type(loaded) is type(value), key
        assert loaded.shape == value.shape and loaded.dtype == value.dtype.newbyteorder("="), key
        np.testing.assert_array_equal(np.asarray(loaded), np.asarray(value))
        assert np.asarray(loaded).tobytes() == np.asarray(value).astype(loaded.dtype).tobytes()
    assert out["fnx_0d"].device == fnx.device("cpu")
    assert np.asarray(out["np_nan"])[2] == 0 and np.signbit(np.asarray(out["np_nan"])[2])


def test_an_array_held_twice_comes_back_as_one_array(tmp_path):
    w = fnx.ones(3)
    out = _round_trip({"a": w, "b": [w], "c": fnx.ones(3)}, tmp_path)
    assert out["a"] is out["b"][0] and out["a"] is not out["c"]
    assert len(stn.load_file(tmp_path / "ckpt.fnx")) == 2  # stored once


def test_parameters_and_requires_grad_are_kept(tmp_path):
    p = nn.Parameter(fnx.ones(2))
    frozen = nn.Parameter(fnx.ones(2), requires_grad=False)
    leaf = fnx.tensor([1.0], requires_grad=True)
    out = _round_trip([p, frozen, leaf, fnx.ones(1)], tmp_path)
    assert isinstance(out[0], nn.Parameter) and out[0].requires_grad
    assert isinstance(out[1], nn.Parameter) and not out[1].requires_grad
    assert not isinstance(out[2], nn.Parameter) and out[2].requires_grad
    assert not out[3].requires_grad


def test_optax_style_state_comes_back_with_its_classes(tmp_path):
    params = {"w": fnx.ones((2, 2)), "b": fnx.zeros(2)}
    tx = optim.adam(1e-2)
    state = tx.init(params)
    out = _round_trip(state, tmp_path)
    assert fnx.tree.structure(out) == fnx.tree.structure(state)
    _same(state, out)


def test_a_named_tuple_whose_class_is_not_imported_comes_back_as_one(tmp_path):
    cls = collections.namedtuple("Gone", "a b")
    cls.__module__ = "a_module_nobody_imported"
    out = _round_trip([cls(1, 2), cls(3, 4)], tmp_path)
    assert type(out[0]).__name__ == "Gone" and out[0]._fields == ("a", "b")
    assert out[0] == (1, 2) and type(out[0]) is type(out[1])


def _mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def _train(model, opt, sched, data, steps):
    x, y = data
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
    return loss


def test_guide_checkpoint_resumes_bit_identically(tmp_path):
    rng = np.random.default_rng(1)
    data = (fnp.asarray(rng.standard_normal((16, 4)).astype(np.float32)),
            fnp.asarray(rng.integers(0, 3, 16)))

    def fresh(seed):
        fnx.manual_seed(seed)
        model = _mlp()
        opt = optim.Adam(model.parameters(), lr=1e-2)
        return model, opt, optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

    model, opt, sched = fresh(0)
    loss = _train(model, opt, sched, data, 5)
    path = tmp_path / "checkpoint.pth"
    fnx.save({"epoch": 5, "model_state_dict": model.state_dict(),
              "optimizer_state_dict": opt.state_dict(), "scheduler": sched.state_dict(),
              "loss": loss.item()}, path)
    _train(model, opt, sched, data, 4)

    model2, opt2, sched2 = fresh(123)  # other weights, until the checkpoint is loaded
    checkpoint = fnx.load(path)
    model2.load_state_dict(checkpoint["model_state_dict"])
    opt2.load_state_dict(checkpoint["optimizer_state_dict"])
    sched2.load_state_dict(checkpoint["scheduler"])
    assert checkpoint["epoch"] == 5 and checkpoint["loss"] == loss.item()
    _train(model2, opt2, sched2, data, 4)
    for (name, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items(),
                                 strict=True):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), name
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_the_file_is_a_standard_safetensors_file(tmp_path):
    model = _mlp()
    path = tmp_path / "weights.safetensors"
    fnx.save(model.state_dict(), path)
    tensors = stn.load_file(path)  # another tool: tensor names are the state dict's keys
    assert sorted(tensors) == sorted(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(tensors[key], np.asarray(value))
    with safetensors.safe_open(path, "np") as f:
        meta = f.metadata()
    assert meta["format"] == "fnx" and meta["fnx.checkpoint"] == "1"
    manifest = json.loads(meta["fnx.manifest"])
    assert manifest["tensors"]["0.weight"]["dtype"] == "float32"
    # and fnx loads what safetensors writes, as a state dict
    other = _mlp()
    other.load_state_dict(fnx.load(path))
    plain = tmp_path / "plain.safetensors"
    stn.save_file({k: np.asarray(v) for k, v in model.state_dict().items()}, plain)
    loaded = fnx.load(plain)
    assert isinstance(loaded, collections.OrderedDict)
    assert all(type(v) is fnx.Array for v in loaded.values())
    other.load_state_dict(loaded)


def test_file_objects_and_paths(tmp_path):
    buf = io.BytesIO()
    fnx.save({"w": fnx.ones(2)}, buf)
    buf.seek(0)
    assert fnx.load(buf)["w"].tolist() == [1.0, 1.0]
    fnx.save([1], str(tmp_path / "s"))
    assert fnx.load(str(tmp_path / "s")) == [1]
    with pytest.raises(FileNotFoundError):
        fnx.load(tmp_path / "missing.fnx")


def _rewrite_manifest(path, edit):
    """Re-write ``path`` with ``edit(manifest)`` applied and a matching digest (a file made by
    another writer: the tensors are unchanged)."""
    with safetensors.safe_open(path, "np") as f:
        meta = f.metadata()
    tensors = stn.load_file(path)
    manifest = json.loads(meta["fnx.manifest"])
    edit(manifest)
    meta["fnx.manifest"] = json.dumps(manifest)
    import hashlib

    meta["fnx.manifest.sha256"] = hashlib.sha256(meta["fnx.manifest"].encode()).hexdigest()
    stn.save_file(tensors, path, metadata=meta)


def test_map_location(tmp_path):
    path = tmp_path / "gpu.fnx"
    fnx.save({"w": fnx.ones(2), "n": np.ones(2)}, path)

    def to_cuda(manifest):
        manifest["root"]["dict"][0][1]["device"] = "cuda:0"

    _rewrite_manifest(path, to_cuda)  # as if saved on a GPU
    if not fnx.cuda.is_available():
        with pytest.raises(fnx.CheckpointError, match=r"saved on cuda:0 but CUDA is not "
                                                      r"available; pass map_location='cpu'"):
            fnx.load(path)
    for ml in ("cpu", fnx.device("cpu"), {"cuda:0": "cpu"}, {fnx.device("cuda:0"): "cpu"}):
        out = fnx.load(path, map_location=ml)
        assert out["w"].device == fnx.device("cpu") and isinstance(out["n"], np.ndarray)
    seen = []
    out = fnx.load(path, map_location=lambda a, loc: seen.append(loc) or a * 2)
    assert seen == ["cuda:0"] and out["w"].tolist() == [2.0, 2.0]
    with pytest.raises(fnx.CheckpointError, match="map_location raised for tensor 'w'"):
        fnx.load(path, map_location=lambda a, loc: 1 / 0)


@pytest.mark.parametrize("obj, match", [
    (nn.Linear(1, 1), r"type fnx\.nn\..*Linear; save its state instead: fnx\.save\(obj\.state_dict"),
    ({"f": lambda: 0}, r"cannot store the object\['f'\], an object of type builtins\.function"),
    ({1, 2}, "an object of type builtins.set"),
    ({"a": [np.array(["x"])]}, r"the array at the object\['a'\]\[0\] has dtype <U1"),
    ({"a": np.datetime64("2020")}, "NumPy scalar of dtype datetime64"),
    ({frozenset(): 1}, "has a key of type frozenset"),
])
def test_unsupported_values_are_named(obj, match):
    with pytest.raises(fnx.CheckpointError, match=match):
        fnx.save(obj, io.BytesIO())


def test_cycles_and_traced_values_are_errors():
    loop = [1]
    loop.append(loop)
    with pytest.raises(fnx.CheckpointError, match=r"the object\[1\] contains itself"):
        fnx.save(loop, io.BytesIO())

    def f(x):
        fnx.save({"x": x}, io.BytesIO())
        return x

    with pytest.raises(fnx.CheckpointError, match=r"the object\['x'\] is a traced value"):
        fnx.vmap(f)(fnx.ones((2, 2)))


def _small_checkpoint(path):
    fnx.save({"epoch": 2, "w": fnx.arange(6.0).reshape(2, 3), "n": np.int32([7]),
              "lr": [0.1, float("inf")]}, path)
    return path.read_bytes()


def test_truncated_files_are_errors_naming_the_file(tmp_path):
    path = tmp_path / "ckpt.fnx"
    data = _small_checkpoint(path)
    header_end = 8 + int.from_bytes(data[:8], "little")
    for cut in sorted({0, 3, 8, 20, header_end - 1, header_end, header_end + 5, len(data) - 1}):
        path.write_bytes(data[:cut])
        with pytest.raises(fnx.CheckpointError, match=f"{path}.*(truncated|too short)"):
            fnx.load(path)


def test_every_flipped_byte_is_detected(tmp_path):
    path = tmp_path / "ckpt.fnx"
    data = _small_checkpoint(path)
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            corrupt = bytearray(data)
            corrupt[i] ^= bit
            path.write_bytes(corrupt)
            with pytest.raises(fnx.CheckpointError, match=str(path)):
                fnx.load(path)
    path.write_bytes(data)
    assert fnx.load(path)["epoch"] == 2


def test_a_flipped_data_byte_names_the_tensor(tmp_path):
    path = tmp_path / "ckpt.fnx"
    data = bytearray(_small_checkpoint(path))
    data[-1] ^= 0x10  # the last byte of the data section
    path.write_bytes(data)
    with pytest.raises(fnx.CheckpointError, match=r"corrupted: the bytes of tensor '.*' do not "
                                                  r"match their SHA-256 checksum"):
        fnx.load(path)


@pytest.mark.parametrize("content, match", [
    (b"PK\x03\x04" + bytes(100), "PyTorch \\(torch.save\\) zip file"),
    (b"\x80\x02}q\x00." + bytes(10), "it looks like a pickle"),
    (b"hello world, not a checkpoint", "truncated or not a checkpoint"),
    (b"", "too short"),
    (len(b"[1, 2]").to_bytes(8, "little") + b"[1, 2]", "header is not a JSON object"),
])
def test_foreign_files_are_errors(tmp_path, content, match):
    path = tmp_path / "model.pth"
    path.write_bytes(content)
    with pytest.raises(fnx.CheckpointError, match=match):
        fnx.load(path)


def test_a_newer_format_version_is_an_error(tmp_path):
    path = tmp_path / "ckpt.fnx"
    fnx.save([1], path)
    with safetensors.safe_open(path, "np") as f:
        meta = f.metadata()
    meta["fnx.checkpoint"] = "99"
    stn.save_file({}, path, metadata=meta)
    with pytest.raises(fnx.CheckpointError, match="format version '99'; this fnx reads version 1"):
        fnx.load(path)


def test_malformed_manifest_is_an_error(tmp_path):
    path = tmp_path / "ckpt.fnx"
    fnx.save({"a": 1}, path)
    _rewrite_manifest(path, lambda m: m["root"].update({"dict": [[{"weird": 1}, 2]]}))
    with pytest.raises(fnx.CheckpointError, match="malformed manifest"):
        fnx.load(path)


def _deep(levels):
    obj = cur = []
    for _ in range(levels - 1):
        cur.append([])
        cur = cur[0]
    return obj


def _with_manifest_text(path, text):
    """A file whose manifest is ``text`` with a matching digest (a hand-made file)."""
    import hashlib

    stn.save_file({}, path, metadata={
        "format": "fnx", "fnx.checkpoint": "1", "fnx.manifest": text,
        "fnx.manifest.sha256": hashlib.sha256(text.encode()).hexdigest()})


def test_nesting_is_bounded_on_save_and_on_load(tmp_path):
    path = tmp_path / "deep.fnx"
    assert fnx.save.__module__ == "fnx.serialization" and fnx.serialization.MAX_DEPTH == 100
    # 100 levels of containers round trip at the default recursion limit
    _same(_round_trip({"deep": _deep(99)}, tmp_path), {"deep": _deep(99)})
    _same(_round_trip(_deep(100), tmp_path), _deep(100))
    # 101 are refused when saving, with a short path, and nothing is written
    with pytest.raises(fnx.CheckpointError, match=r"the object\['deep'\]\[0\]\[0\]\[0\]"
                                                  r"\.\.\.\[0\]\[0\] is nested more than 100 "
                                                  r"levels deep"):
        fnx.save({"deep": _deep(100)}, tmp_path / "new.fnx")
    assert not (tmp_path / "new.fnx").exists()
    key = ()
    for _ in range(100):
        key = (key,)
    with pytest.raises(fnx.CheckpointError, match=r"a key of the object is nested more than"):
        fnx.save({key: 1}, io.BytesIO())
    # a hand-made manifest nested deeper than fnx.save writes: CheckpointError, never a
    # RecursionError, whatever the depth (JSON's own parser gives up past ~1000)
    for text in ['{"root":' + "[" * n + "]" * n + ',"tensors":{}}' for n in (101, 500, 10**5)]:
        _with_manifest_text(path, text)
        with pytest.raises(fnx.CheckpointError, match="malformed manifest"):
            fnx.load(path)
    nested_complex = '{"complex": [0, 0]}'
    for _ in range(2000):
        nested_complex = '{"complex": [' + nested_complex + ', 0]}'
    _with_manifest_text(path, '{"root":' + nested_complex + ',"tensors":{}}')
    with pytest.raises(fnx.CheckpointError, match="malformed manifest"):
        fnx.load(path)
    path.write_bytes(struct.pack("<Q", 2 * 10**5) + b"[" * 10**5 + b"]" * 10**5)
    with pytest.raises(fnx.CheckpointError, match="header is not a JSON object"):
        fnx.load(path)


def test_saving_to_a_directory_is_an_error_naming_it(tmp_path, monkeypatch):
    missing = tmp_path / "ckpts"
    opened, real_open = [], os.open
    monkeypatch.setattr(os, "open", lambda path, *a: opened.append(path) or real_open(path, *a))
    for target in (str(tmp_path), str(tmp_path) + os.sep, str(missing) + os.sep, tmp_path):
        with pytest.raises(fnx.CheckpointError, match=r"(is|names) a directory; give a file "
                                                      r"path, such as .*checkpoint.pth"):
            fnx.save({"a": 1}, target)
    with pytest.raises(fnx.CheckpointError, match=r"ckpts/' ends with a separator, so it names a "
                                                  r"directory"):
        fnx.save({"a": 1}, f"{missing}/")
    # refused before any file is made: the temporary file used to go into the parent
    # directory, and the rename failed with an OS error naming it
    assert opened == [] and os.listdir(tmp_path) == []
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError, match=r"fnx.save: the directory .*ckpts' to save "
                                                r".*w.pth' in does not exist; create it first"):
        fnx.save({"a": 1}, missing / "w.pth")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_saving_to_a_symlink_writes_through_it(tmp_path):
    target = tmp_path / "epoch_10.pth"
    fnx.save({"epoch": 9}, target)
    os.makedirs(tmp_path / "links")
    link = tmp_path / "links" / "latest.pth"
    os.symlink(os.path.relpath(target, link.parent), link)  # a relative link, as ln -s makes
    fnx.save({"epoch": 10}, link)  # torch.save's open(path, "wb") writes through the link
    assert os.path.islink(link) and fnx.load(target) == {"epoch": 10} == fnx.load(link)
    chain = tmp_path / "links" / "chain.pth"
    os.symlink(link, chain)
    fnx.save({"epoch": 11}, chain)
    assert os.path.islink(chain) and os.path.islink(link) and fnx.load(target) == {"epoch": 11}
    dangling = tmp_path / "links" / "next.pth"
    os.symlink(tmp_path / "epoch_12.pth", dangling)
    fnx.save({"epoch": 12}, dangling)  # creates the file the link names
    assert fnx.load(tmp_path / "epoch_12.pth") == {"epoch": 12}
    # the temporary files went beside the real files and are gone
    assert sorted(os.listdir(tmp_path)) == ["epoch_10.pth", "epoch_12.pth", "links"]
    assert sorted(os.listdir(tmp_path / "links")) == ["chain.pth", "latest.pth", "next.pth"]
    os.symlink(tmp_path / "links", tmp_path / "dir_link")
    with pytest.raises(fnx.CheckpointError, match="is a directory"):
        fnx.save({}, tmp_path / "dir_link")


def test_a_failed_replace_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.fnx"
    fnx.save({"version": 1}, path)

    def failing_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        fnx.save({"version": 2, "w": fnx.ones(10)}, path)
    monkeypatch.undo()
    assert fnx.load(path) == {"version": 1}
    assert sorted(os.listdir(tmp_path)) == ["ckpt.fnx"]  # the temporary file is gone


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.fnx"
    fnx.save({"version": 1}, path)
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("no space")))
    with pytest.raises(OSError, match="no space"):
        fnx.save({"version": 2}, path)
    monkeypatch.undo()
    assert fnx.load(path) == {"version": 1}
    assert sorted(os.listdir(tmp_path)) == ["ckpt.fnx"]


WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import fnx

    path, big = sys.argv[1], np.zeros(2_000_000, np.float32)  # 8 MB a save
    i = 0
    while True:
        big[:] = i
        fnx.save({"version": i, "data": big, "tail": fnx.full((3,), float(i))}, path)
        if i == 0:
            print("saved", flush=True)
        i += 1
""")


def test_a_writer_killed_mid_save_leaves_a_complete_checkpoint(tmp_path):
    path = tmp_path / "ckpt.fnx"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fnx.__file__)))
    rng = np.random.default_rng(0)
    versions = []
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline() == "saved\n"
            time.sleep(rng.uniform(0.05, 0.4))  # somewhere in the middle of a later save
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        ckpt = fnx.load(path)
        v = ckpt["version"]
        assert (ckpt["data"] == v).all() and ckpt["tail"].tolist() == [float(v)] * 3
        versions.append(v)
    assert max(versions) > 0  # the writer got past its first save before being killed


DIES_MID_WRITE = textwrap.dedent("""
    import os, signal, sys
    import fnx

    path = sys.argv[1]
    fnx.save({"version": 1}, path)
    real_fdopen = os.fdopen

    class HalfThenDie:  # the process is killed with half of the new checkpoint written
        def __init__(self, fh):
            self.fh = fh
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return False
        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            self.fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    os.fdopen = lambda fd, mode: HalfThenDie(real_fdopen(fd, mode))
    fnx.save({"version": 2, "w": fnx.ones(1000)}, path)
""")


def test_a_writer_killed_halfway_through_its_write_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt.fnx"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fnx.__file__)))
    proc = subprocess.run([sys.executable, "-c", DIES_MID_WRITE, str(path)], env=env,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL
    (tmp,) = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert 0 < os.path.getsize(tmp_path / tmp) < 5000  # the half-written new checkpoint
    assert fnx.load(path) == {"version": 1}
