"""Buffer donation in compiled programs: a fused kernel that reads a value for the last time,
element by element where it stores a same-shaped output, stores that output into the value's
buffer (``Executable._buffer_lives``, ``loops.donatable_pairs``). Every case compares jit
against eager, and checks that nothing the caller holds (inputs, other results) changes."""

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.core.ir import make_program, to_shaped
from fnx.jit.executable import Executable


def _exe(f, *xs):
    program, consts = make_program(lambda *a: list(f(*a)), [to_shaped(fnp.asarray(x))
                                                           for x in xs])
    return Executable(program, consts)


def _run(f, *xs):
    """jit result, eager result and the executable, with the inputs checked unchanged."""
    kept = [np.array(x, copy=True) for x in xs]
    exe = _exe(f, *xs)
    got = exe.run(*xs)
    want = [np.asarray(w) for w in f(*[fnp.asarray(x) for x in xs])]
    for x, k in zip(xs, kept, strict=True):
        np.testing.assert_array_equal(x, k)  # a program's inputs are never written
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    return got, exe


rng = np.random.default_rng(0)
A = rng.standard_normal((64, 48))
B = rng.standard_normal((48, 32))
BIAS = rng.standard_normal(32)


def _allocations(exe):
    return exe.orchestrator.count("np.empty(")


def test_bias_relu_after_a_product_reuses_the_product_buffer():
    def f(a, b, bias):
        return [fnp.maximum(a @ b + bias, 0.0)]

    (out,), exe = _run(f, A, B, BIAS)
    assert _allocations(exe) == 0  # the product's buffer holds the result
    assert out.flags.c_contiguous and out.shape == (64, 32)


def test_a_value_read_later_is_not_donated():
    def f(a, b, bias):
        u = a @ b
        z = fnp.tanh(u + bias)
        return [(z @ b.T) @ b + u]  # u is read again after two products

    _run(f, A, B, BIAS)


def test_a_program_output_is_never_overwritten():
    def f(a, b, bias):
        u = a @ b
        return [u, fnp.exp(u) + bias]

    (u, e), exe = _run(f, A, B, BIAS)
    np.testing.assert_allclose(u, A @ B, rtol=1e-12)
    assert not np.shares_memory(u, e)


def test_a_value_an_opaque_step_reads_is_not_donated():
    """The cumulative sum runs as its eager impl, whose result could alias its operand."""
    def f(a, b, bias):
        u = a @ b
        c = fnp.cumsum(u, axis=0)
        return [fnp.tanh(u + bias) @ b.T, c * 2.0]

    _run(f, A, B, BIAS)


def test_inputs_are_never_donated():
    x = rng.standard_normal((128, 64))
    before = x.copy()
    (y,), exe = _run(lambda x: [fnp.sin(x) * 2.0], x)
    np.testing.assert_array_equal(x, before)
    assert _allocations(exe) == 1


def test_a_reshaped_view_read_later_keeps_its_source():
    """u's reshape is read after the kernel that reads u last directly."""
    def f(a, b, bias):
        u = a @ b
        z = fnp.maximum(u + bias, 0.0)
        return [z, fnp.reshape(u, (32, 64)).T * 2.0]

    _run(f, A, B, BIAS)


def test_transposed_and_repeated_reads_are_not_donated():
    s = rng.standard_normal((40, 40))

    def f(a):
        u = a @ a
        return [u + u.T, fnp.exp(u) * u]

    _run(f, s)


def test_chains_donate_through_several_kernels():
    def f(a, b, bias):
        u = a @ b
        v = fnp.tanh(u + bias)
        w = fnp.sum(v, axis=1, keepdims=True)
        return [fnp.exp(v - w) * 0.5]

    _, exe = _run(f, A, B, BIAS)
    assert _allocations(exe) <= 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mixed_dtypes_only_donate_matching_buffers(dtype):
    a, b = A.astype(dtype), B.astype(dtype)

    def f(a, b):
        u = a @ b
        return [(u > 0.0), (u * 2.0).astype(np.float32)]

    _run(f, a, b)


def test_split_and_concatenate_round_trip_under_jit():
    """A joined concatenate (views of one buffer) read by a kernel that writes in place must
    not corrupt the pieces it was joined from when they are read again."""
    def f(a, b):
        u = a @ b
        p, q = fnp.split(u, 2, axis=1)
        j = fnp.concatenate([p * 2.0, q * 2.0], axis=1)
        return [fnp.exp(j), p + 1.0]

    _run(f, A, B)


def test_compiled_training_step_matches_eager():
    """A PyTorch-style MLP step with bias + ReLU after each product (the donation pattern),
    compiled against eager over several steps."""
    def make():
        fnx.manual_seed(0)
        model = fnx.nn.Sequential(fnx.nn.Linear(20, 64), fnx.nn.ReLU(), fnx.nn.Linear(64, 64),
                                  fnx.nn.Tanh(), fnx.nn.Linear(64, 5))
        opt = fnx.optim.AdamW(model.parameters(), lr=1e-2)

        def step(x, y):
            opt.zero_grad()
            loss = fnx.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
        return model, step

    x = fnx.tensor(rng.standard_normal((256, 20)).astype(np.float32))
    y = fnx.tensor(rng.integers(0, 5, 256))
    m1, s1 = make()
    m2, s2 = make()
    s2 = fnx.compile(s2)
    for _ in range(5):
        np.testing.assert_allclose(s2(x, y).item(), s1(x, y).item(), rtol=1e-4)
    for p1, p2 in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(np.asarray(p2), np.asarray(p1), rtol=1e-3, atol=1e-5)


def test_results_of_fresh_impls_are_donated():
    """An embedding lookup's result (``fresh_results``: np.take makes a new array) is taken
    by the kernel that adds the positions; the table it was gathered from is untouched."""
    table = rng.standard_normal((50, 16))
    pos = rng.standard_normal((1, 12, 16))
    idx = rng.integers(0, 50, (4, 12))

    def f(table, pos, idx):
        return [fnx.nn.functional.embedding(fnx.asarray(idx), table) + pos]

    (out,), exe = _run(f, table, pos, idx)
    assert _allocations(exe) == 0
    np.testing.assert_allclose(out, table[idx] + pos, rtol=1e-12)
