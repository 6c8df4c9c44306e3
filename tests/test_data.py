"""fnx.data: datasets, samplers, default_collate and the DataLoader, against PyTorch's
documented semantics (hand-derived expectations; torch itself is not needed). The blocks of
docs/data.md run in tests/test_docs.py."""

import collections
import threading
import time

import numpy as np
import pytest

import fnx
import fnx.data as data
from fnx.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, DistributedSampler,
                      IterableDataset, RandomSampler, SequentialSampler, Subset,
                      SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
                      default_collate, default_convert, get_worker_info, random_split)
from fnx.data import transforms as T


def labels_dataset(n=23):
    return TensorDataset(fnx.asarray(np.arange(n * 2, dtype=np.float32).reshape(n, 2)),
                         fnx.arange(n))


def epoch_labels(loader):
    return [y.tolist() for _, y in loader]


# --- the import paths ----------------------------------------------------------------------------


def test_torch_style_import_paths_name_one_module():
    import fnx.utils.data
    from fnx.utils.data import DataLoader as DL
    from fnx.utils.data.sampler import RandomSampler as RS

    assert fnx.utils.data is fnx.data is data
    assert DL is DataLoader and RS is RandomSampler
    assert fnx.data.transforms.Compose is T.Compose


# --- DataLoader: order, shuffling, batching --------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 4, 23, 50])
def test_every_sample_once_per_epoch(batch_size):
    loader = DataLoader(labels_dataset(), batch_size=batch_size, shuffle=True)
    for _ in range(2):
        batches = epoch_labels(loader)
        assert sorted(sum(batches, [])) == list(range(23))
        assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
        assert len(batches) == len(loader)


def test_shuffle_is_reproducible_with_a_seed_and_differs_across_epochs():
    ds = labels_dataset()
    a = DataLoader(ds, batch_size=5, shuffle=True, generator=fnx.Generator().manual_seed(3))
    b = DataLoader(ds, batch_size=5, shuffle=True, generator=fnx.Generator().manual_seed(3))
    a1, a2 = epoch_labels(a), epoch_labels(a)
    assert a1 == epoch_labels(b) and a2 == epoch_labels(b)
    assert a1 != a2  # a new permutation each epoch
    assert sum(a1, []) != list(range(23))
    # the default draws from the global generator: fnx.manual_seed fixes it
    fnx.manual_seed(11)
    g1 = epoch_labels(DataLoader(ds, batch_size=5, shuffle=True))
    fnx.manual_seed(11)
    assert epoch_labels(DataLoader(ds, batch_size=5, shuffle=True)) == g1
    fnx.manual_seed(12)
    assert epoch_labels(DataLoader(ds, batch_size=5, shuffle=True)) != g1


def test_without_shuffle_the_order_is_sequential():
    assert sum(epoch_labels(DataLoader(labels_dataset(), batch_size=4)), []) == list(range(23))


@pytest.mark.parametrize("n,batch_size,drop_last,sizes", [
    (10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]), (9, 3, True, [3, 3, 3]),
    (2, 3, True, []), (2, 3, False, [2])])
def test_drop_last_lengths(n, batch_size, drop_last, sizes):
    loader = DataLoader(labels_dataset(n), batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == len(sizes)
    assert [len(b) for b in epoch_labels(loader)] == sizes
    assert len(BatchSampler(range(n), batch_size, drop_last)) == len(sizes)


def test_batch_size_none_yields_converted_samples():
    class Pairs(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full(2, i), i

    out = list(DataLoader(Pairs(), batch_size=None))
    assert len(out) == 3 and isinstance(out[1], list)
    assert isinstance(out[1][0], fnx.Array) and out[1][0].tolist() == [1, 1] and out[1][1] == 1


def test_sampler_and_batch_sampler_arguments():
    ds = labels_dataset(6)
    loader = DataLoader(ds, batch_size=2, sampler=[5, 4, 3, 2, 1, 0])
    assert epoch_labels(loader) == [[5, 4], [3, 2], [1, 0]]
    loader = DataLoader(ds, batch_sampler=[[0, 5], [1], [2, 3, 4]])
    assert epoch_labels(loader) == [[0, 5], [1], [2, 3, 4]] and len(loader) == 3


def test_custom_collate_fn_gets_the_list_of_samples():
    loader = DataLoader(labels_dataset(5), batch_size=2, collate_fn=lambda s: len(s))
    assert list(loader) == [2, 2, 1]


def test_pin_memory_and_persistent_workers_are_accepted():
    loader = DataLoader(labels_dataset(6), batch_size=3, pin_memory=True, num_workers=1,
                        persistent_workers=True, prefetch_factor=4)
    assert epoch_labels(loader) == epoch_labels(loader) == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("kwargs,match", [
    (dict(shuffle=True, sampler=[0]), "mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_size=None, drop_last=True), "batch_size=None option disables auto-batching"),
    (dict(num_workers=-1), "num_workers option should be non-negative"),
    (dict(timeout=-1), "timeout option should be non-negative"),
    (dict(prefetch_factor=2), "prefetch_factor option could only be specified"),
    (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
    (dict(batch_size=0), "batch_size should be a positive integer"),
])
def test_dataloader_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(labels_dataset(4), **kwargs)


# --- default_collate / default_convert ---------------------------------------------------------


def test_default_collate_structure_and_dtypes():
    Point = collections.namedtuple("Point", "x y")
    batch = [{"img": np.zeros((2, 3), np.float64), "label": 1, "w": 0.5, "ok": True,
              "name": "a", "pt": Point(np.int32(1), 2.0), "pair": (1, [2.5, 3])},
             {"img": np.ones((2, 3), np.float64), "label": 7, "w": 1.5, "ok": False,
              "name": "b", "pt": Point(np.int32(3), 4.0), "pair": (2, [4.5, 5])}]
    out = default_collate(batch)
    assert list(out) == list(batch[0])
    assert out["img"].shape == (2, 2, 3) and out["img"].dtype == np.float64
    np.testing.assert_array_equal(out["img"].numpy(), np.stack([b["img"] for b in batch]))
    assert out["label"].dtype == np.int64 and out["label"].tolist() == [1, 7]
    assert out["w"].dtype == np.float32 and out["w"].tolist() == [0.5, 1.5]
    assert out["ok"].dtype == np.bool_ and out["ok"].tolist() == [True, False]
    assert out["name"] == ["a", "b"]
    assert type(out["pt"]) is Point and out["pt"].x.dtype == np.int32
    assert out["pt"].x.tolist() == [1, 3] and out["pt"].y.tolist() == [2.0, 4.0]
    # tuples become lists, as PyTorch; nested lists are collated element-wise
    assert isinstance(out["pair"], list) and out["pair"][0].tolist() == [1, 2]
    assert out["pair"][1][0].tolist() == [2.5, 4.5] and out["pair"][1][1].tolist() == [3, 5]


def test_default_collate_of_fnx_arrays_and_numpy_scalars():
    out = default_collate([fnx.tensor([1.0, 2.0]), fnx.tensor([3.0, 4.0])])
    assert isinstance(out, fnx.Array) and out.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert default_collate([np.float64(1.5), np.float64(2.5)]).dtype == np.float64
    # tracked arrays stay tracked: the batch is part of the autograd graph
    w = fnx.ones(2, requires_grad=True)
    batch = default_collate([w * 2, w * 3])
    batch.sum().backward()
    assert w.grad.tolist() == [5.0, 5.0]


def test_default_collate_floats_follow_the_default_dtype():
    fnx.set_default_dtype(fnx.float64)
    try:
        assert default_collate([0.5, 1.0]).dtype == np.float64
    finally:
        fnx.set_default_dtype(fnx.float32)


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal"):
        default_collate([[1, 2], [3]])
    with pytest.raises(ValueError, match=r"different shapes \[\(2,\), \(3,\)\]"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="batch must contain .* found <class 'object'>"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="found <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])


def test_default_convert_keeps_numbers_and_converts_numpy():
    out = default_convert({"a": np.arange(3), "b": (1.5, "s")})
    assert isinstance(out["a"], fnx.Array) and out["a"].tolist() == [0, 1, 2]
    assert out["b"] == [1.5, "s"]


# --- datasets ----------------------------------------------------------------------------------


def test_tensor_dataset_batched_fetch_matches_indexing():
    x = fnx.asarray(np.arange(12.0).reshape(6, 2))
    ds = TensorDataset(x, np.arange(6) * 10)
    one = [ds[i] for i in [4, 0, 5]]
    many = ds.__getitems__([4, 0, 5])
    for (a, b), (c, d) in zip(one, many, strict=True):
        assert a.tolist() == c.tolist() and int(b) == int(d)
    with pytest.raises(ValueError, match="size mismatch between tensors"):
        TensorDataset(fnx.zeros(3), fnx.zeros(4))


def test_tensor_dataset_of_tracked_arrays_keeps_autograd_through_the_loader():
    w = fnx.ones(4, 2, requires_grad=True)
    (xb,) = next(iter(DataLoader(TensorDataset(w * 3), batch_size=4)))
    xb.sum().backward()
    assert w.grad.tolist() == [[3.0, 3.0]] * 4


def test_subset_concat_and_chain():
    ds = labels_dataset(5)
    sub = Subset(ds, [3, 1])
    assert [sub[i][1].item() for i in range(2)] == [3, 1]
    assert [int(y) for _, y in sub.__getitems__([1, 0])] == [1, 3]
    cat = ds + labels_dataset(3)
    assert isinstance(cat, ConcatDataset) and len(cat) == 8
    assert [cat[i][1].item() for i in (0, 4, 5, 7, -1, -8)] == [0, 4, 0, 2, 2, 0]
    with pytest.raises(IndexError, match="out of range"):
        cat[-9]
    with pytest.raises(ValueError, match="should not be an empty iterable"):
        ConcatDataset([])

    class Stream(IterableDataset):
        def __iter__(self):
            return iter([1, 2])

    assert list(Stream() + Stream()) == [1, 2, 1, 2]
    with pytest.raises(TypeError, match="does not support IterableDataset"):
        ConcatDataset([Stream()])


def test_random_split_lengths_fractions_and_reproducibility():
    ds = labels_dataset(10)
    parts = random_split(ds, [3, 7], generator=fnx.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    again = random_split(ds, [3, 7], generator=fnx.Generator().manual_seed(0))
    assert again[0].indices == parts[0].indices
    # fractions: floor(10 * f) = [3, 3, 3], the remainder goes to the first split (PyTorch)
    assert [len(p) for p in random_split(ds, [0.33, 0.33, 0.34])] == [4, 3, 3]
    with pytest.warns(UserWarning, match="length of split at index 1 is 0"):
        random_split(labels_dataset(2), [1.0, 0.0])
    with pytest.raises(ValueError, match="sum to 9, not to the dataset's length 10"):
        random_split(ds, [4, 5])
    with pytest.raises(ValueError, match="fraction at index 0 is 1.5, not between 0 and 1"):
        random_split(ds, [1.5, -0.5])


# --- samplers ----------------------------------------------------------------------------------


def test_sequential_and_random_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    g = fnx.Generator().manual_seed(0)
    s = RandomSampler(range(7), generator=g)
    a, b = list(s), list(s)
    assert sorted(a) == sorted(b) == list(range(7)) and a != b
    # more samples than items without replacement: whole permutations, then part of one
    long = list(RandomSampler(range(4), num_samples=10, generator=g))
    assert len(long) == 10 and sorted(long[:4]) == sorted(long[4:8]) == [0, 1, 2, 3]
    assert len(set(long[8:])) == 2
    draws = list(RandomSampler(range(3), replacement=True, num_samples=300, generator=g))
    assert len(draws) == 300 and set(draws) == {0, 1, 2}
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(range(3), replacement=1)


def test_subset_random_sampler():
    g = fnx.Generator().manual_seed(1)
    s = SubsetRandomSampler([10, 20, 30, 40], generator=g)
    orders = [list(s) for _ in range(4)]
    assert all(sorted(o) == [10, 20, 30, 40] for o in orders)
    assert len({tuple(o) for o in orders}) > 1


def test_weighted_random_sampler_frequencies():
    weights = [1.0, 2.0, 3.0, 4.0]
    s = WeightedRandomSampler(weights, num_samples=20000,
                              generator=fnx.Generator().manual_seed(0))
    counts = np.bincount(list(s), minlength=4)
    expected = 20000 * np.asarray(weights) / 10
    # chi-square with 3 degrees of freedom: 16.3 is its 0.999 quantile
    assert ((counts - expected) ** 2 / expected).sum() < 16.3
    no_repeat = list(WeightedRandomSampler(weights, 4, replacement=False))
    assert sorted(no_repeat) == [0, 1, 2, 3]
    assert set(WeightedRandomSampler(fnx.tensor([0.0, 5.0, 0.0]), 10)) == {1}
    with pytest.raises(ValueError, match="cannot draw 3 samples without replacement from 2"):
        WeightedRandomSampler([1.0, 0.0, 1.0], 3, replacement=False)
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        WeightedRandomSampler([[1.0]], 1)


def test_distributed_sampler_partitions_like_torch():
    # shuffle=False: padding repeats the first indices; rank r takes r, r + R, ...
    shares = [list(DistributedSampler(range(10), num_replicas=3, rank=r, shuffle=False))
              for r in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]
    # drop_last: ceil((10 - 3) / 3) = 3 samples each, the tail index 9 dropped
    shares = [list(DistributedSampler(range(10), num_replicas=3, rank=r, shuffle=False,
                                      drop_last=True)) for r in range(3)]
    assert shares == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    # padding larger than the dataset repeats it
    assert [list(DistributedSampler(range(2), 5, r, shuffle=False)) for r in range(5)] == \
        [[0], [1], [0], [1], [0]]


def test_distributed_sampler_shuffles_the_same_on_every_rank_per_epoch():
    samplers = [DistributedSampler(range(11), num_replicas=4, rank=r, seed=5) for r in range(4)]
    seen = []
    for epoch in range(2):
        for s in samplers:
            s.set_epoch(epoch)
        shares = [list(s) for s in samplers]
        assert all(len(sh) == 3 == len(s) for sh, s in zip(shares, samplers, strict=True))
        union = sum(shares, [])
        assert set(union) == set(range(11)) and len(union) == 12
        seen.append(shares)
    assert seen[0] != seen[1]
    repeat = DistributedSampler(range(11), num_replicas=4, rank=2, seed=5)
    repeat.set_epoch(1)
    assert list(repeat) == seen[1][2]
    assert DistributedSampler(range(3)).num_replicas == 1  # no process group: one replica
    with pytest.raises(ValueError, match=r"invalid rank 2, rank should be in the interval"):
        DistributedSampler(range(3), num_replicas=2, rank=2)


# --- worker threads ----------------------------------------------------------------------------


class Augmented(Dataset):
    """Random augmentation inside __getitem__, with a variable delay so workers finish out of
    order."""

    def __init__(self, n=40):
        self.images = np.random.default_rng(0).random((n, 1, 6, 6)).astype(np.float32)
        self.t = T.Compose([T.RandomCrop(6, padding=1), T.RandomHorizontalFlip()])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        time.sleep(0.002 * (i % 3))
        return self.t(fnx.asarray(self.images[i])), i


def test_workers_give_the_same_batches_in_the_same_order():
    results = {}
    for workers in (0, 1, 3):
        fnx.manual_seed(7)
        loader = DataLoader(Augmented(), batch_size=4, shuffle=True, num_workers=workers)
        results[workers] = [(x.numpy(), y.tolist()) for _ in range(2) for x, y in loader]
    for workers in (1, 3):
        for (xa, ya), (xb, yb) in zip(results[0], results[workers], strict=True):
            assert ya == yb
            np.testing.assert_array_equal(xa, xb)
    # the augmentation did something, and the second epoch differs from the first
    assert any(not np.array_equal(x[0], Augmented().images[y[0]]) for x, y in results[0])
    assert results[0][0][1] != results[0][10][1]


def test_worker_info_and_worker_init_fn():
    calls, seen = [], set()
    lock = threading.Lock()

    class Probe(Dataset):
        def __len__(self):
            return 12

        def __getitem__(self, i):
            info = get_worker_info()
            with lock:
                seen.add((info.id, info.num_workers, info.seed - info.id))
            return i

    def init(worker_id):
        with lock:
            calls.append((worker_id, get_worker_info().id, threading.current_thread().name))

    loader = DataLoader(Probe(), batch_size=2, num_workers=3, worker_init_fn=init)
    assert sum((b.tolist() for b in loader), []) == list(range(12))
    assert sorted(c[0] for c in calls) == [0, 1, 2] and all(c[0] == c[1] for c in calls)
    assert all("DataLoader-worker" in c[2] for c in calls)
    assert {s[:2] for s in seen} <= {(0, 3), (1, 3), (2, 3)}
    assert len({s[2] for s in seen}) == 1  # one base seed per epoch, plus the worker id
    assert get_worker_info() is None


def test_worker_exceptions_reach_the_main_thread():
    class Broken(Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            if i == 5:
                raise KeyError(f"bad sample {i}")
            return i

    for workers in (0, 2):
        loader = DataLoader(Broken(), batch_size=2, num_workers=workers)
        got = []
        with pytest.raises(KeyError, match="bad sample 5"):
            for b in loader:
                got.append(b.tolist())
        assert got == [[0, 1], [2, 3]]

    def failing_init(worker_id):
        raise RuntimeError(f"init failed in {worker_id}")

    with pytest.raises(RuntimeError, match="init failed in"):
        list(DataLoader(labels_dataset(4), num_workers=2, worker_init_fn=failing_init))


def _worker_threads():
    return [t for t in threading.enumerate() if t.name.startswith("fnx-DataLoader-worker")]


def test_breaking_out_of_an_epoch_stops_the_workers():
    loader = DataLoader(Augmented(), batch_size=2, num_workers=2)
    for _ in loader:
        break
    deadline = time.monotonic() + 5
    while _worker_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _worker_threads()


def test_timeout_raises():
    class Slow(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            time.sleep(1.0)
            return i

    class SlowStream(IterableDataset):
        def __iter__(self):
            time.sleep(1.0)
            yield 1

    for ds in (Slow(), SlowStream()):
        with pytest.raises(RuntimeError, match="DataLoader timed out after 0.1 seconds"):
            list(DataLoader(ds, num_workers=1, timeout=0.1))


# --- iterable datasets ---------------------------------------------------------------------------


class RangeStream(IterableDataset):
    """PyTorch's documented example: workers split [start, end) in worker_init_fn."""

    def __init__(self, start, end):
        self.start, self.end = start, end

    def __iter__(self):
        return iter(range(self.start, self.end))


def split_range(worker_id):
    info = get_worker_info()
    ds = info.dataset  # this worker's copy
    per_worker = -(-(ds.end - ds.start) // info.num_workers)
    ds.start = ds.start + worker_id * per_worker
    ds.end = min(ds.start + per_worker, ds.end)


def test_iterable_dataset_batching_and_len():
    ds = RangeStream(0, 7)
    assert [b.tolist() for b in DataLoader(ds, batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in DataLoader(ds, batch_size=3, drop_last=True)] == [[0, 1, 2],
                                                                                   [3, 4, 5]]
    assert list(DataLoader(ds, batch_size=None)) == list(range(7))
    with pytest.raises(TypeError):
        len(DataLoader(ds, batch_size=3))  # RangeStream has no __len__
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(ds, shuffle=True)

    class Sized(RangeStream):
        def __len__(self):
            return self.end - self.start

    assert len(DataLoader(Sized(0, 7), batch_size=3)) == 3
    assert len(DataLoader(Sized(0, 7), batch_size=3, drop_last=True)) == 2


def test_iterable_dataset_with_workers_is_sharded_and_round_robin():
    loader = DataLoader(RangeStream(0, 9), batch_size=2, num_workers=2,
                        worker_init_fn=split_range)
    batches = [b.tolist() for b in loader]
    # worker 0 reads 0..4, worker 1 reads 5..8; batches alternate between the workers
    assert batches == [[0, 1], [5, 6], [2, 3], [7, 8], [4]]
    assert batches == [b.tolist() for b in loader]  # and again next epoch
    # each worker iterated a copy: the loader's dataset is untouched
    assert (loader.dataset.start, loader.dataset.end) == (0, 9)


def test_iterable_worker_errors_propagate():
    class Fails(IterableDataset):
        def __iter__(self):
            yield 1
            raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(DataLoader(Fails(), batch_size=1, num_workers=2))
