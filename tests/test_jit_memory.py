"""Compiled programs allocate 64-byte aligned buffers (fnx.jit.memory) inside a scope that
leaves NumPy's memory handler as it was: after a run, after an error, in other threads, and
where the program installed its own handler."""

import ctypes
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.core.ir import make_program, to_shaped
from fnx.jit import memory
from fnx.jit.executable import Executable

try:
    from numpy._core.multiarray import get_handler_name
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import get_handler_name

pytestmark = pytest.mark.skipif(not memory.aligned_available(),
                                reason="NumPy's memory handler cannot be set here (not glibc)")


def _executable(f, *xs):
    program, consts = make_program(lambda *a: [f(*a)], [to_shaped(fnp.asarray(x)) for x in xs])
    return Executable(program, consts)


def _ptr(a):
    return np.asarray(a).ctypes.data


def _handler_of(a):
    """The name of the handler that allocated ``a``'s data (a view asks its base)."""
    a = np.asarray(a)
    while isinstance(a.base, np.ndarray):
        a = a.base
    return get_handler_name(a)


def test_large_program_results_are_aligned_and_match_eager():
    x = np.random.default_rng(0).standard_normal((300, 70)).astype(np.float32)
    f = fnx.jit(lambda a: fnp.tanh(a) @ a.T + 1.0)
    outs = [f(x) for _ in range(4)]
    want = np.tanh(x) @ x.T + 1.0
    for out in outs:
        np.testing.assert_allclose(np.asarray(out), want, rtol=1e-5, atol=1e-4)
        assert _ptr(out) % memory.ALIGNMENT == 0
    assert get_handler_name() == "default_allocator"  # restored after the runs
    assert _handler_of(outs[0]) == "fnx_aligned_64"


def test_small_program_runs_without_the_scope():
    exe = _executable(lambda a: a * 2.0, np.ones(8, np.float32))
    assert "_set_handler" not in exe.orchestrator
    big = _executable(lambda a: a * 2.0, np.ones(1 << 14, np.float32))
    lines = big.orchestrator.splitlines()
    # interrupt-safe: the token is read before the try, and the finally is one C call
    assert lines[1:3] == ["    _token = _get_handler()", "    try:"]
    assert lines[-2:] == ["    finally:", "        _set_handler(_token)"]


def test_handler_restored_when_a_run_raises():
    exe = _executable(lambda a: fnp.sin(a) * 2.0, np.ones((128, 64), np.float32))
    with pytest.raises(AttributeError):
        exe.run("not a buffer")  # the orchestrator raises on its first line
    assert get_handler_name() == "default_allocator"
    out = exe.run(np.ones((128, 64), np.float32))[0]
    np.testing.assert_allclose(out, np.sin(1.0) * 2.0, rtol=1e-6)


def test_other_threads_keep_numpys_handler():
    f = fnx.jit(lambda a: fnp.exp(a) + a)
    x = np.ones((256, 64), np.float32)
    f(x)
    seen, stop = [], threading.Event()

    def watch():  # NumPy's handler is per context: runs in the main thread never leak here
        while not stop.is_set():
            seen.append(get_handler_name())

    t = threading.Thread(target=watch)
    t.start()
    try:
        for _ in range(50):
            f(x)
    finally:
        stop.set()
        t.join()
    assert seen and set(seen) == {"default_allocator"}

    results = []
    worker = threading.Thread(target=lambda: results.append((_ptr(f(x)), get_handler_name())))
    worker.start()
    worker.join()
    assert results[0][0] % memory.ALIGNMENT == 0 and results[0][1] == "default_allocator"


def _user_handler():
    """A handler of the program's own (NumPy's default allocator under another name), built
    once and kept for the process: arrays made under it free through it."""
    if not _USER:
        handler = memory._aligned()
        default = memory._Handler.from_address(
            ctypes.pythonapi.PyCapsule_GetPointer(handler.default, b"mem_handler"))
        own = memory._Handler(b"user_handler", default.version, default.allocator)
        name = ctypes.create_string_buffer(b"mem_handler")
        capsule = ctypes.pythonapi.PyCapsule_New(ctypes.addressof(own), ctypes.addressof(name),
                                                 None)
        _USER.extend([capsule, own, name])
    return _USER[0]


_USER = []


def test_a_programs_own_handler_stays_in_force():
    """A handler the user installed is neither replaced during a run nor lost after it."""
    handler = memory._aligned()
    previous = handler.set(_user_handler())
    try:
        f = fnx.jit(lambda a: a * 3.0)
        out = f(np.ones((256, 64), np.float32))
        assert _handler_of(out) == "user_handler"
        assert get_handler_name() == "user_handler"
    finally:
        handler.set(previous)
    assert get_handler_name() == "default_allocator"


def test_one_handler_when_threads_make_their_first_runs_together():
    """Threads that build the handler at once get one (a second would replace a handler
    that arrays already use, freeing it under them)."""
    script = textwrap.dedent("""
        import threading
        from fnx.jit import memory
        barrier = threading.Barrier(8)
        got = []
        def first():
            barrier.wait()
            got.append(memory._aligned())
        threads = [threading.Thread(target=first) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(memory._built) == 1 and all(h is memory._built[0] for h in got), got
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.parametrize("value, aligned", [("1", False), ("yes", False), ("0", True)])
def test_opt_out(monkeypatch, value, aligned):
    monkeypatch.setenv("FNX_NO_MALLOPT", value)
    memory._enabled.cache_clear()
    try:
        assert memory.aligned_available() == aligned
        assert (memory.scope_globals() is not None) == aligned
        exe = _executable(lambda a: a + 1.0, np.ones(1 << 14, np.float32))
        assert ("_set_handler" in exe.orchestrator) == aligned
    finally:
        monkeypatch.delenv("FNX_NO_MALLOPT")
        memory._enabled.cache_clear()
    assert memory.aligned_available()
