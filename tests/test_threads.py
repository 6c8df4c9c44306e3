"""Trace state is per thread: transforms running in several threads at once never see each
other's traces (servers, data-loader threads and notebooks do this)."""

import threading

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.core.errors import TraceError


def run_threads(*targets, timeout=120):
    """Run each target in its own thread; re-raise the first exception any of them raised."""
    errors = []

    def wrap(target):
        def run():
            try:
                target()
            except BaseException as err:  # noqa: BLE001 - handed to the main thread
                errors.append(err)
        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


def test_jit_call_from_another_thread_while_one_traces():
    # thread A pauses in the middle of tracing; thread B's jitted call must run eagerly
    inside_trace, b_done = threading.Event(), threading.Event()
    results = {}

    def slow_body(x):
        y = fnp.sin(x) * 2.0
        inside_trace.set()
        assert b_done.wait(60)
        return y + 1.0

    def a():
        results["a"] = fnx.jit(slow_body)(fnp.arange(4.0))

    def b():
        assert inside_trace.wait(60)
        try:
            results["b"] = fnx.jit(lambda x: x * 3.0)(fnp.ones(3))
            results["b_eager"] = fnp.ones(2) + 1.0
        finally:
            b_done.set()

    run_threads(a, b)
    assert type(results["b"]) is fnx.Array and type(results["b_eager"]) is fnx.Array
    np.testing.assert_allclose(results["b"].numpy(), [3.0, 3.0, 3.0])
    np.testing.assert_allclose(results["a"].numpy(), np.sin(np.arange(4.0)) * 2 + 1, rtol=1e-6)


def test_nested_transforms_interleaved_across_threads():
    # vmap(grad) in one thread and grad in another, forced to interleave inside their traces
    barrier = threading.Barrier(2)
    out = {}

    def f(w, x):
        barrier.wait(60)  # both threads are now inside their transforms
        y = fnp.tanh(w * x)
        barrier.wait(60)
        return fnp.sum(y * y)

    w = fnp.asarray(np.linspace(-1, 1, 5), dtype=fnp.float64)
    xs = fnp.asarray(np.linspace(0.5, 2, 15).reshape(3, 5), dtype=fnp.float64)

    def a():
        out["vg"] = fnx.vmap(fnx.grad(f), in_axes=(None, 0))(w, xs)

    def b():
        out["g"] = fnx.grad(f)(w, xs[0])

    run_threads(a, b)

    def ref_grad(w, x):
        t = np.tanh(w * x)
        return 2 * t * (1 - t * t) * x

    np.testing.assert_allclose(out["g"].numpy(), ref_grad(w.numpy(), xs[0].numpy()), rtol=1e-12)
    np.testing.assert_allclose(out["vg"].numpy(),
                               np.stack([ref_grad(w.numpy(), x) for x in xs.numpy()]),
                               rtol=1e-12)


def test_many_threads_share_one_jitted_function():
    step = fnx.jit(fnx.value_and_grad(lambda w, x: fnp.mean((x @ w) ** 2)))
    w = fnp.asarray(np.arange(6.0).reshape(3, 2) / 10)

    def worker(seed):
        def run():
            rng = np.random.default_rng(seed)
            for _ in range(20):
                x = rng.normal(size=(int(rng.integers(1, 5)), 3))
                value, g = step(w, fnp.asarray(x, dtype=fnp.float32))
                ref = x @ w.numpy()
                np.testing.assert_allclose(value.item(), np.mean(ref ** 2), rtol=1e-5)
                np.testing.assert_allclose(g.numpy(), 2 * x.T @ ref / ref.size, rtol=1e-4,
                                           atol=1e-6)
        return run

    run_threads(*[worker(s) for s in range(4)])


def test_tracer_handed_to_another_thread_is_an_error():
    handed, used = threading.Event(), threading.Event()
    box = {}

    def a():
        def f(x):
            box["tracer"] = x
            handed.set()
            assert used.wait(60)
            return x * 2.0
        fnx.grad(f)(fnp.asarray(1.0))

    def b():
        assert handed.wait(60)
        try:
            with pytest.raises(TraceError, match="another thread"):
                fnp.sin(box["tracer"])
        finally:
            used.set()

    run_threads(a, b)


def test_leaked_tracer_is_an_error_not_a_constant():
    box = {}

    def f(x):
        box["leak"] = x
        return x * 2.0

    fnx.grad(f)(fnp.asarray(1.0))
    with pytest.raises(TraceError, match="leaked tracer"):
        fnx.grad(lambda y: y * box["leak"])(fnp.asarray(3.0))


def test_backward_in_several_threads_accumulates_every_gradient():
    """Concurrent backward passes on one model add all their gradients into ``.grad``
    (the read-add-write is locked, as PyTorch's engine locks per variable)."""
    import sys

    m = fnx.nn.Linear(3, 4)
    x = fnx.ones(2, 3)
    m(x).sum().backward()
    one = m.weight.grad.numpy().copy()
    m.zero_grad()

    def work():
        for _ in range(100):
            m(x).sum().backward()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, to interleave the accumulations
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    np.testing.assert_allclose(m.weight.grad.numpy(), 400 * one, rtol=1e-6)
