import math

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
import fnx.random as R

N = 100_000


def a(x):
    return np.asarray(x)


def u32(v):
    return fnp.asarray(np.uint32(v))


# --- the generator -------------------------------------------------------------------------


@pytest.mark.parametrize("key, counter, expected", [
    # Random123 known-answer tests for threefry2x32_20 (kat_vectors)
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
])
def test_threefry_known_answers(key, counter, expected):
    out = R.threefry2x32(u32(key[0]), u32(key[1]), u32(counter[0]), u32(counter[1]))
    assert (int(out[0]), int(out[1])) == expected


def test_threefry_vectorized_matches_scalar():
    x0 = fnp.asarray(np.array([0, 0xFFFFFFFF, 0x243F6A88], dtype=np.uint32))
    x1 = fnp.asarray(np.array([0, 0xFFFFFFFF, 0x85A308D3], dtype=np.uint32))
    b0, b1 = R.threefry2x32(u32(0x13198A2E), u32(0x03707344), x0, x1)
    for i in range(3):
        s0, s1 = R.threefry2x32(u32(0x13198A2E), u32(0x03707344), u32(a(x0)[i]), u32(a(x1)[i]))
        assert (a(b0)[i], a(b1)[i]) == (int(s0), int(s1))
    assert int(b0[2]) == 0xC4923A9C


def test_threefry_dtype_error():
    with pytest.raises(TypeError, match="threefry2x32: k1 must be uint32"):
        R.threefry2x32(fnp.asarray(0), u32(0), u32(0), u32(0))


# --- keys ------------------------------------------------------------------------------------


def test_key_layout():
    k = R.key(0)
    assert k.dtype == np.uint32 and k.shape == (2,)
    assert a(k).tolist() == [0, 0]
    assert a(R.key(42)).tolist() == [0, 42]
    assert a(R.key(2 ** 40 + 5)).tolist() == [256, 5]
    assert a(R.key(-1)).tolist() == [0xFFFFFFFF, 0xFFFFFFFF]
    assert a(R.PRNGKey(7)).tolist() == [0, 7]
    assert a(R.key(fnp.asarray(2 ** 40 + 5))).tolist() == [256, 5]  # the traced-seed path
    assert a(R.key(fnp.asarray(np.int32(-2)))).tolist() == [0, 0xFFFFFFFE]
    with pytest.raises(OverflowError, match="does not fit in 64 bits"):
        R.key(2 ** 64)
    with pytest.raises(TypeError, match="integer scalar"):
        R.key(fnp.asarray([1, 2]))


def test_split_and_fold_in_are_threefry_of_counters():
    k = R.key(0)
    ks = R.split(k)
    assert ks.shape == (2, 2) and ks.dtype == np.uint32
    # split(key)[i] = threefry(key, (0, i)), so row 0 is the first known answer
    assert a(ks).tolist() == [[0x6B200159, 0x99BA4EFE], [928981903, 3453687069]]
    assert a(R.fold_in(k, 1)).tolist() == a(ks[1]).tolist()  # fold_in(k, d) = threefry(k, (0, d))
    assert a(R.fold_in(k, 2 ** 32 + 1)).tolist() == a(ks[1]).tolist()  # data mod 2**32
    assert a(R.fold_in(k, fnp.asarray(1))).tolist() == a(ks[1]).tolist()
    many = a(R.split(R.key(5), 1000))
    assert many.shape == (1000, 2) and len({tuple(r) for r in many}) == 1000
    assert a(R.split(k, 3)[:2]).tolist() == a(ks).tolist()  # prefix-stable (counter based)
    assert R.split(k, (2, 3)).shape == (2, 3, 2)


def test_key_errors():
    with pytest.raises(TypeError, match=r"uniform: expected a key .* got int"):
        R.uniform(0, (2,))
    with pytest.raises(TypeError, match=r"shape \(3, 2\).*vmap"):
        R.normal(R.split(R.key(0), 3))
    with pytest.raises(TypeError, match="fold_in: data must be an integer scalar"):
        R.fold_in(R.key(0), 1.5)


def test_determinism_and_distinct_keys():
    k1, k2 = R.split(R.key(123))
    assert np.array_equal(a(R.uniform(k1, (50,))), a(R.uniform(k1, (50,))))
    assert np.array_equal(a(R.normal(k1, (50,))), a(R.normal(k1, (50,))))
    assert not np.array_equal(a(R.uniform(k1, (50,))), a(R.uniform(k2, (50,))))
    assert not np.array_equal(a(R.uniform(R.key(0), (50,))), a(R.uniform(R.key(1), (50,))))
    # the value at an index does not depend on the requested shape
    assert np.array_equal(a(R.bits(k1, (6,))), a(R.bits(k1, (2, 3))).ravel())


def test_split_keys_independent():
    ks = R.split(R.key(7), 3)
    x, y, z = (a(R.uniform(ks[i], (N,))) for i in range(3))
    for p, q in ((x, y), (x, z), (y, z)):
        assert abs(np.corrcoef(p, q)[0, 1]) < 0.015
    # neighbouring elements of one draw are uncorrelated too
    assert abs(np.corrcoef(x[:-1], x[1:])[0, 1]) < 0.015


# --- bits and continuous distributions --------------------------------------------------------


def test_bits_dtypes():
    k = R.key(3)
    b32 = R.bits(k, (4, 5))
    assert b32.dtype == np.uint32 and b32.shape == (4, 5)
    for dt in (np.uint8, np.uint16, np.uint64):
        b = R.bits(k, (1000,), dt)
        assert b.dtype == dt and b.shape == (1000,)
    b8 = a(R.bits(k, (N,), np.uint8))
    assert b8.min() == 0 and b8.max() == 255 and abs(b8.mean() - 127.5) < 1.0
    b64 = a(R.bits(k, (N,), np.uint64))
    assert (b64 >> np.uint64(63)).mean() == pytest.approx(0.5, abs=0.01)  # the top bit is used
    with pytest.raises(TypeError, match="unsigned integer dtype"):
        R.bits(k, (2,), np.int32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_moments_and_bounds(dtype):
    x = a(R.uniform(R.key(1), (N,), dtype))
    assert x.dtype == dtype and x.shape == (N,)
    assert x.min() >= 0.0 and x.max() < 1.0
    assert x.mean() == pytest.approx(0.5, abs=0.005)
    assert x.var() == pytest.approx(1 / 12, abs=0.002)
    assert np.histogram(x, bins=10, range=(0, 1))[0].min() > N / 10 * 0.95
    y = a(R.uniform(R.key(1), (N,), dtype, minval=-3.0, maxval=-1.0))
    assert y.min() >= -3.0 and y.max() < -1.0
    assert y.mean() == pytest.approx(-2.0, abs=0.01)


def test_uniform_bounds_broadcast_and_edge_cases():
    lo = fnp.asarray([0.0, 10.0, 100.0])
    x = a(R.uniform(R.key(2), (1000, 3), minval=lo, maxval=lo + 1))
    assert (x >= a(lo)).all() and (x < a(lo) + 1).all()
    # rounding can never give maxval, even for a tiny interval
    t = a(R.uniform(R.key(2), (N,), minval=1.0, maxval=float(np.nextafter(np.float32(1), 2))))
    assert (t == 1.0).all()
    assert (a(R.uniform(R.key(2), (5,), minval=2.0, maxval=2.0)) == 2.0).all()
    h = a(R.uniform(R.key(2), (1000,), np.float16))
    assert h.dtype == np.float16 and h.min() >= 0 and h.max() < 1
    with pytest.raises(TypeError, match="dtype must be a float dtype"):
        R.uniform(R.key(0), (2,), np.int32)
    with pytest.raises(ValueError, match=r"minval of shape \(2,\) does not broadcast"):
        R.uniform(R.key(0), (3,), minval=fnp.asarray([0.0, 1.0]))


def _phi(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_moments_and_cdf(dtype):
    x = a(R.normal(R.key(11), (N,), dtype))
    assert x.dtype == dtype and np.isfinite(x).all()
    assert x.mean() == pytest.approx(0.0, abs=0.01)
    assert x.var() == pytest.approx(1.0, abs=0.015)
    assert ((x - x.mean()) ** 3).mean() == pytest.approx(0.0, abs=0.03)
    assert ((x - x.mean()) ** 4).mean() == pytest.approx(3.0, abs=0.08)
    for z in (-2.0, -1.0, 0.0, 0.5, 1.5):
        assert (x < z).mean() == pytest.approx(_phi(z), abs=0.005)


def test_truncated_normal():
    x = a(R.truncated_normal(R.key(4), -1.0, 2.0, (N,)))
    assert x.min() > -1.0 and x.max() < 2.0
    # mean of N(0,1) truncated to (a, b): (phi(a) - phi(b)) / (Phi(b) - Phi(a))
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    mean = (pdf(-1.0) - pdf(2.0)) / (_phi(2.0) - _phi(-1.0))
    assert x.mean() == pytest.approx(mean, abs=0.01)
    half = a(R.truncated_normal(R.key(4), 0.0, np.inf, (N,)))
    assert half.min() > 0 and half.mean() == pytest.approx(math.sqrt(2 / math.pi), abs=0.01)
    # per-element bounds broadcast; default shape is their broadcast
    lo, hi = fnp.asarray([[-5.0], [-4.5]]), fnp.asarray([-4.0, 0.5, 1.0])
    y = R.truncated_normal(R.key(5), lo, hi)
    assert y.shape == (2, 3)
    y = a(y)
    assert (y > a(lo)).all() and (y < a(hi)).all()


def test_gumbel_and_exponential_moments():
    g = a(R.gumbel(R.key(8), (N,)))
    assert np.isfinite(g).all()
    assert g.mean() == pytest.approx(0.5772157, abs=0.015)
    assert g.var() == pytest.approx(math.pi ** 2 / 6, abs=0.05)
    e = a(R.exponential(R.key(9), (N,)))
    assert e.min() >= 0
    assert e.mean() == pytest.approx(1.0, abs=0.015) and e.var() == pytest.approx(1.0, abs=0.04)


# --- discrete distributions -------------------------------------------------------------------


def test_bernoulli():
    b = a(R.bernoulli(R.key(1), 0.3, (N,)))
    assert b.dtype == np.bool_ and b.mean() == pytest.approx(0.3, abs=0.005)
    p = fnp.asarray([0.0, 0.5, 1.0])
    c = a(R.bernoulli(R.key(2), p))
    assert c.shape == (3,) and not c[0] and c[2]
    d = a(R.bernoulli(R.key(3), p, (20000, 3)))
    assert d[:, 0].sum() == 0 and d[:, 2].all() and d[:, 1].mean() == pytest.approx(0.5, abs=0.02)


def test_randint_range_and_frequencies():
    x = a(R.randint(R.key(0), (N,), 3, 13))
    assert x.dtype == np.int64 and x.min() == 3 and x.max() == 12
    counts = np.bincount(x - 3, minlength=10)
    expected = N / 10
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 30  # 9 degrees of freedom: p < 0.001 at 27.9
    y = a(R.randint(R.key(1), (N,), -128, 128, dtype=np.int8))
    assert y.dtype == np.int8 and y.min() == -128 and y.max() == 127
    z = a(R.randint(R.key(2), (N,), 0, 256, dtype=np.uint8))
    assert z.dtype == np.uint8 and z.min() == 0 and z.max() == 255
    z = a(R.randint(R.key(2), (N,), 250, 300, dtype=np.uint8))
    assert z.min() == 250 and z.max() == 255
    full = a(R.randint(R.key(2), (N,), -(2 ** 63), 2 ** 63))  # the whole int64 range
    assert full.min() < -(2 ** 62) and full.max() > 2 ** 62
    big = a(R.randint(R.key(3), (N,), -(2 ** 62), 2 ** 62))
    assert big.min() >= -(2 ** 62) and big.max() < 2 ** 62 and big.min() < -(2 ** 61)
    assert (a(R.randint(R.key(4), (5,), 7, 7)) == 7).all()  # maxval <= minval -> minval
    lo, hi = fnp.asarray([0, 100]), fnp.asarray([2, 105])
    w = a(R.randint(R.key(5), (1000, 2), lo, hi))
    assert set(w[:, 0]) == {0, 1} and set(w[:, 1]) == set(range(100, 105))
    with pytest.raises(TypeError, match="dtype must be an integer dtype"):
        R.randint(R.key(0), (2,), 0, 5, dtype=np.float32)


def test_categorical_frequencies():
    p = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    s = a(R.categorical(R.key(6), fnp.log(fnp.asarray(p)), shape=(N,)))
    assert s.shape == (N,) and s.min() >= 0 and s.max() <= 3
    assert np.allclose(np.bincount(s, minlength=4) / N, p, atol=0.006)
    # a batch of distributions along axis 0, with leading sample dims
    logits = fnp.asarray(np.log(np.array([[0.9, 0.01], [0.1, 0.99]], np.float32)))
    t = a(R.categorical(R.key(7), logits, axis=0, shape=(20000, 2)))
    assert t.shape == (20000, 2)
    assert t[:, 0].mean() == pytest.approx(0.1, abs=0.01)
    assert t[:, 1].mean() == pytest.approx(0.99, abs=0.005)
    assert R.categorical(R.key(7), logits).shape == (2,)
    with pytest.raises(ValueError, match=r"shape \(3,\) is not compatible with the batch shape"):
        R.categorical(R.key(7), logits, shape=(3,))


def test_permutation():
    k = R.key(10)
    p = a(R.permutation(k, 50))
    assert sorted(p.tolist()) == list(range(50)) and p.tolist() != list(range(50))
    x = fnp.reshape(fnp.arange(12.0), (3, 4))
    rows = a(R.permutation(k, x))
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, a(x).tolist()))
    cols = a(R.permutation(k, x, axis=1))
    assert sorted(map(tuple, cols.T.tolist())) == sorted(map(tuple, a(x).T.tolist()))
    assert np.array_equal(a(R.permutation(k, 50)), p)
    assert a(R.permutation(k, 1)).tolist() == [0]
    with pytest.raises(ValueError, match="rank >= 1"):
        R.permutation(k, fnp.asarray(3.0))


def test_permutation_uniform():
    # all 3! orders about equally often over many keys
    counts = {}
    for kk in a(R.split(R.key(0), 1200)):
        perm = tuple(a(R.permutation(fnp.asarray(kk), 3)).tolist())
        counts[perm] = counts.get(perm, 0) + 1
    assert len(counts) == 6
    assert min(counts.values()) > 150 and max(counts.values()) < 250


def test_choice():
    k = R.key(12)
    c = a(R.choice(k, 5, (N,)))
    assert np.allclose(np.bincount(c, minlength=5) / N, 0.2, atol=0.006)
    p = fnp.asarray([0.0, 0.25, 0.75])
    d = a(R.choice(k, fnp.asarray([10.0, 20.0, 30.0]), (20000,), p=p))
    assert set(np.unique(d)) <= {20.0, 30.0} and (d == 30.0).mean() == pytest.approx(0.75, abs=0.01)
    e = a(R.choice(k, 10, (2, 3), replace=False))
    assert e.shape == (2, 3) and len(set(e.ravel().tolist())) == 6
    f = a(R.choice(k, 4, (2,), replace=False, p=fnp.asarray([0.5, 0.5, 0.0, 0.0])))
    assert sorted(f.tolist()) == [0, 1]
    rows = a(R.choice(k, fnp.reshape(fnp.arange(6), (3, 2)), (4,)))
    assert rows.shape == (4, 2) and all(r[1] == r[0] + 1 and r[0] % 2 == 0 for r in rows)
    with pytest.raises(ValueError, match="cannot take 11 samples without replacement from 10"):
        R.choice(k, 10, (11,), replace=False)
    with pytest.raises(ValueError, match=r"p must have shape \(3,\)"):
        R.choice(k, 3, (2,), p=fnp.asarray([0.5, 0.5]))


# --- transforms -------------------------------------------------------------------------------


def test_vmap_over_keys_matches_loop():
    ks = R.split(R.key(3), 5)

    def draw(k):
        k1, k2 = R.split(k)
        return (R.normal(k1, (4,)) + R.uniform(k2, (4,)), R.randint(k2, (3,), 0, 100),
                R.fold_in(k, 9))

    batched = fnx.vmap(draw)(ks)
    for i in range(5):
        single = draw(ks[i])
        for b, s in zip(batched, single):
            np.testing.assert_array_equal(a(b)[i], a(s))
    seeds = fnx.vmap(R.key)(fnp.arange(3))
    assert a(seeds).tolist() == [[0, 0], [0, 1], [0, 2]]
    perms = a(fnx.vmap(lambda k: R.permutation(k, 6))(ks))
    for i in range(5):
        assert perms[i].tolist() == a(R.permutation(ks[i], 6)).tolist()


def test_jit_matches_eager():
    k = R.key(21)

    def draw(k):
        return R.normal(k, (8,)), R.randint(k, (8,), -5, 5), R.split(k, 3)

    for j, e in zip(fnx.jit(draw)(k), draw(k)):
        np.testing.assert_array_equal(a(j), a(e))
