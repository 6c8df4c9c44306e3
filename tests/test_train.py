"""fnx.train (progress bar, early stopping, running metrics, evaluate, CSV log, curves),
fnx.utils.tensorboard, and reproducibility (docs/training.md's blocks run in tests/test_docs.py):
``fnx.manual_seed`` fixes every draw of a training run, so two runs agree bit for bit."""

import io
import math
import pathlib
import re
import struct
import sys

import numpy as np
import pytest

import fnx
from fnx import nn, train
from fnx.core.array import Array


def _weights(model):
    return {name: value.numpy().copy() for name, value in model.state_dict().items()}


def _sgd_steps(model, steps, seed=0):
    """``steps`` SGD updates on random data: the optimizer writes in place (Array._replace)."""
    rng = np.random.default_rng(seed)
    opt = fnx.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        x = fnx.tensor(rng.normal(size=(8, 3)).astype(np.float32))
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()


# --- EarlyStopping ------------------------------------------------------------------------

def test_early_stopping_min_mode_patience_and_min_delta():
    stopper = train.EarlyStopping(patience=2, min_delta=0.1, restore_best_weights=False)
    # 0.95 and 0.92 are not below 1.0 - 0.1; 0.85 is; then two more without improvement
    decisions = [stopper.step(v) for v in [1.0, 0.95, 0.85, 0.8, 0.9]]
    assert decisions == [False, False, False, False, True]
    assert (stopper.best, stopper.best_step, stopper.num_bad_steps) == (0.85, 2, 2)
    assert stopper.should_stop


def test_early_stopping_counter_resets_on_improvement():
    stopper = train.EarlyStopping(patience=2, restore_best_weights=False)
    decisions = [stopper.step(v) for v in [1.0, 1.0, 0.9, 1.0, 0.8, 0.8, 0.8]]
    # equal is not better (min_delta=0 needs strictly lower)
    assert decisions == [False, False, False, False, False, False, True]
    assert stopper.best == 0.8 and stopper.best_step == 4


def test_early_stopping_max_mode_and_nan_never_improves():
    stopper = train.EarlyStopping(patience=3, min_delta=0.01, mode="max",
                                  restore_best_weights=False)
    decisions = [stopper.step(v) for v in [0.5, 0.505, 0.52, math.nan, 0.52, 0.515]]
    assert decisions == [False, False, False, False, False, True]
    assert stopper.best == 0.52 and stopper.best_step == 2
    first_nan = train.EarlyStopping(patience=1, restore_best_weights=False)
    assert first_nan.step(float("nan")) is True and first_nan.best is None


def test_early_stopping_accepts_0d_arrays():
    stopper = train.EarlyStopping(patience=1, mode="max", restore_best_weights=False)
    assert not stopper.step(fnx.tensor(0.5))
    assert stopper.step(fnx.tensor(0.25)) and stopper.best == 0.5


def test_early_stopping_keeps_copies_not_references_and_restores_the_best_weights():
    fnx.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    stopper = train.EarlyStopping(patience=2)
    assert not stopper.step(1.0, model)
    best = _weights(model)
    _sgd_steps(model, 3)  # in-place updates after the snapshot
    with fnx.no_grad():
        model[0].weight.mul_(3.0)
    assert not np.array_equal(_weights(model)["0.weight"], best["0.weight"])
    for name, value in stopper.best_state.items():  # the stored copy did not move
        np.testing.assert_array_equal(value.numpy(), best[name])
    assert not stopper.step(1.5, model)
    params = list(model.parameters())
    assert stopper.step(1.2, model)  # stop: the best weights are back, in the same arrays
    after = _weights(model)
    assert set(after) == set(best) and "1.running_mean" in after
    for name in best:
        np.testing.assert_array_equal(after[name], best[name])
    assert all(a is b for a, b in zip(params, model.parameters(), strict=True))


def test_early_stopping_restore_by_hand_and_errors():
    fnx.manual_seed(1)
    model = nn.Linear(3, 2)
    stopper = train.EarlyStopping(patience=5, mode="max")
    stopper.step(0.1, model)
    _sgd_steps(model, 1)
    stopper.step(0.3, model)
    best = _weights(model)
    _sgd_steps(model, 2)
    stopper.step(0.2, model)  # no stop yet: restore by hand at the end of the loop
    stopper.restore(model)
    for name, value in _weights(model).items():
        np.testing.assert_array_equal(value, best[name])

    with pytest.raises(ValueError, match="pass the model"):
        train.EarlyStopping().step(1.0)
    with pytest.raises(RuntimeError, match="restore_best_weights=False"):
        train.EarlyStopping(restore_best_weights=False).restore(model)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        train.EarlyStopping(mode="lower")
    with pytest.raises(ValueError, match="patience must be a positive int"):
        train.EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="min_delta must be >= 0"):
        train.EarlyStopping(min_delta=-0.1)


def test_early_stopping_state_dict_resumes_the_same_decisions():
    model = nn.Linear(2, 1)
    values = [1.0, 0.7, 0.8, 0.75, 0.72, 0.9]
    whole = train.EarlyStopping(patience=3)
    expected = [whole.step(v, model) for v in values]
    first = train.EarlyStopping(patience=3)
    got = [first.step(v, model) for v in values[:3]]
    resumed = train.EarlyStopping(patience=3)
    resumed.load_state_dict(first.state_dict())
    got += [resumed.step(v, model) for v in values[3:]]
    assert got == expected == [False, False, False, False, True, True]
    assert resumed.best == 0.7 and resumed.best_step == 1


# --- metrics ------------------------------------------------------------------------------

def test_mean_matches_numpy_weighted_average(rng):
    values = [rng.normal(size=()) for _ in range(4)]
    weights = [5, 3, 8, 1]
    m = train.Mean()
    for v, w in zip(values, weights, strict=True):
        m.update(fnx.tensor(np.float32(v)), weight=w)
    expected = np.average(np.float32(values).astype(np.float64), weights=weights)
    np.testing.assert_allclose(m.compute(), expected, rtol=1e-12)

    per_example = rng.normal(size=(6,)).astype(np.float32)
    w = rng.uniform(0.5, 2.0, size=(6,)).astype(np.float32)
    m.reset()
    assert math.isnan(m.compute())
    m.update(fnx.tensor(per_example), weight=fnx.tensor(w))
    m.update(2.0, weight=2)
    expected = ((per_example.astype(np.float64) * w).sum() + 4.0) / (w.astype(np.float64).sum() + 2)
    np.testing.assert_allclose(m.compute(), expected, rtol=1e-6)


def test_mean_of_a_tracked_loss_does_not_extend_the_tape():
    w = fnx.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    m = train.Mean()
    m.update(loss, weight=4)
    assert m._total.grad_fn is None
    loss.backward()  # the graph is intact
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 4.0])
    assert m.compute() == 5.0


def test_accuracy_and_top_k_match_numpy(rng):
    acc, top1, top3 = train.Accuracy(), train.TopKAccuracy(1), train.TopKAccuracy(3)
    all_logits, all_labels = [], []
    for n in (16, 16, 5):  # a short last batch
        logits = rng.normal(size=(n, 10)).astype(np.float32)
        labels = rng.integers(0, 10, size=n)
        for metric in (acc, top1, top3):
            metric.update(fnx.tensor(logits), fnx.tensor(labels))
        all_logits.append(logits)
        all_labels.append(labels)
    logits, labels = np.concatenate(all_logits), np.concatenate(all_labels)
    expected_acc = np.mean(logits.argmax(-1) == labels)
    top = np.argsort(-logits, axis=-1)[:, :3]
    expected_top3 = np.mean((top == labels[:, None]).any(-1))
    assert acc.compute() == pytest.approx(expected_acc, abs=1e-12)
    assert top1.compute() == pytest.approx(expected_acc, abs=1e-12)
    assert top3.compute() == pytest.approx(expected_top3, abs=1e-12)
    assert expected_top3 > expected_acc  # the test tells k apart
    acc.reset()
    assert math.isnan(acc.compute())


def test_accuracy_on_sequences_and_binary_logits(rng):
    logits = rng.normal(size=(4, 7, 5)).astype(np.float32)  # (batch, time, classes)
    labels = rng.integers(0, 5, size=(4, 7))
    acc = train.Accuracy()
    acc.update(fnx.tensor(logits), fnx.tensor(labels))
    assert acc.compute() == pytest.approx(np.mean(logits.argmax(-1) == labels), abs=1e-12)

    binary_logits = rng.normal(size=(20,)).astype(np.float32)
    targets = rng.integers(0, 2, size=20).astype(np.float32)
    binary = train.Accuracy()
    binary.update(fnx.tensor(binary_logits), fnx.tensor(targets))
    assert binary.compute() == pytest.approx(np.mean((binary_logits > 0) == (targets == 1)))
    probs = train.Accuracy(threshold=0.5)
    probs.update(fnx.tensor([0.2, 0.7, 0.6]), fnx.tensor([0, 1, 0]))
    assert probs.compute() == pytest.approx(2 / 3)


def test_metric_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"logits of shape \(4, 3\) and labels of shape \(5,\)"):
        train.Accuracy().update(fnx.zeros((4, 3)), fnx.zeros(5, dtype=fnx.int64))
    with pytest.raises(ValueError, match="labels must be integer class indices"):
        train.TopKAccuracy(2).update(fnx.zeros((4, 3)), fnx.zeros(4))
    with pytest.raises(ValueError, match="k=4 is more than the 3 classes"):
        train.TopKAccuracy(4).update(fnx.zeros((4, 3)), fnx.zeros(4, dtype=fnx.int64))
    with pytest.raises(ValueError, match="k must be a positive int"):
        train.TopKAccuracy(0)


def test_nan_scores_are_never_correct():
    nan = float("nan")
    diverged = fnx.full((4, 10), nan)
    labels = fnx.tensor([0, 3, 5, 9])  # label 0 included: argmax of a NaN row is 0
    for metric in (train.Accuracy(), train.TopKAccuracy(1), train.TopKAccuracy(5)):
        metric.update(diverged, labels)
        assert metric.compute() == 0.0, metric
    # a NaN at the label's position is wrong; a NaN elsewhere ranks above every number
    logits, label = fnx.tensor([[nan, 5.0, 9.0]]), fnx.tensor([0])
    for metric in (train.Accuracy(), train.TopKAccuracy(1), train.TopKAccuracy(3)):
        metric.update(logits, label)
        assert metric.compute() == 0.0, metric
    scores = fnx.tensor([[nan, 5.0, 9.0, 1.0]] * 3)
    expected = {1: [0, 0, 0], 2: [0, 0, 1], 3: [0, 1, 1]}  # labels 3, 1, 2 (torch.topk ranks)
    for k, correct in expected.items():
        top = train.TopKAccuracy(k)
        top.update(scores, fnx.tensor([3, 1, 2]))
        assert top.compute() == pytest.approx(np.mean(correct)), k
    binary = train.Accuracy()
    binary.update(fnx.tensor([nan, nan, 1.0]), fnx.tensor([0, 1, 1]))
    assert binary.compute() == pytest.approx(1 / 3)


def test_binary_head_and_same_shape_labels(rng):
    # nn.Linear(h, 1) logits (N, 1) with (N,) labels, the BCEWithLogitsLoss setup: by sign
    logits = rng.normal(size=(30, 1)).astype(np.float32)
    labels = rng.integers(0, 2, size=30)
    for targets in (labels, labels.astype(np.float32), labels[:, None]):
        acc = train.Accuracy()
        acc.update(fnx.tensor(logits), fnx.tensor(targets))
        assert acc.compute() == pytest.approx(np.mean((logits[:, 0] > 0) == (labels == 1)))
    sign_right = train.Accuracy()
    sign_right.update(fnx.tensor([[2.0], [-1.0], [3.0], [-2.0]]), fnx.tensor([1, 0, 1, 0]))
    assert sign_right.compute() == 1.0
    # (N, C) scores with (N, C) labels: one-hot labels or multi-label targets? Say so.
    probs = fnx.tensor([[0.1, 0.9, 0.3], [0.8, 0.1, 0.2]])
    onehot = fnx.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"both have shape \(2, 3\).*pass labels.argmax\(-1\)"
                                         r".*Accuracy\(multilabel=True\)"):
        train.Accuracy().update(probs, onehot)
    one_hot_as_indices = train.Accuracy()
    one_hot_as_indices.update(probs, onehot.argmax(-1))
    assert one_hot_as_indices.compute() == 1.0
    tags = train.Accuracy(threshold=0.5, multilabel=True)
    tags.update(probs, onehot)
    assert tags.compute() == pytest.approx(np.mean((probs.numpy() > 0.5) == (onehot.numpy() == 1)))
    masks = rng.normal(size=(2, 1, 4, 4)).astype(np.float32)  # binary segmentation
    truth = rng.integers(0, 2, size=(2, 1, 4, 4))
    with pytest.raises(ValueError, match="multilabel=True"):
        train.Accuracy().update(fnx.tensor(masks), fnx.tensor(truth))
    per_pixel = train.Accuracy(multilabel=True)
    per_pixel.update(fnx.tensor(masks), fnx.tensor(truth))
    assert per_pixel.compute() == pytest.approx(np.mean((masks > 0) == (truth == 1)))


# --- evaluate -----------------------------------------------------------------------------

class _ModeProbe(nn.Module):
    """Records the training flag and grad mode each forward ran under."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, fnx.is_grad_enabled()))
        return x


def _classifier():
    fnx.manual_seed(3)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5),
                         _ModeProbe(), nn.Linear(8, 3))


def test_evaluate_matches_numpy_and_restores_each_modules_mode(rng):
    model = _classifier()
    model.train()
    model[1].eval()  # a frozen BatchNorm stays frozen afterwards
    x = rng.normal(size=(23, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=23)
    loader = [(fnx.tensor(x[i:i + 10]), fnx.tensor(y[i:i + 10])) for i in range(0, 23, 10)]
    outputs_seen = []

    def loss_fn(outputs, targets):
        outputs_seen.append(outputs)
        return nn.functional.cross_entropy(outputs, targets)

    running_mean = model[1].running_mean.numpy().copy()
    result = train.evaluate(model, loader, loss_fn,
                            metrics={"accuracy": train.Accuracy(),
                                     "top2": train.TopKAccuracy(2),
                                     "max_logit": lambda out, t: out.amax(-1),
                                     "mean_logit": lambda out, t: out.mean()})
    assert list(result) == ["loss", "accuracy", "top2", "max_logit", "mean_logit"]
    assert all(isinstance(v, float) for v in result.values())
    assert [m.training for m in model.modules()] == [True, True, False, True, True, True, True]
    assert model[4].seen == [(False, False)] * 3  # eval mode, no grad, every batch
    assert all(o.grad_fn is None and not o.requires_grad for o in outputs_seen)
    np.testing.assert_array_equal(model[1].running_mean.numpy(), running_mean)

    model.eval()
    with fnx.no_grad():
        logits = model(fnx.tensor(x)).numpy().astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    assert result["loss"] == pytest.approx(-log_probs[np.arange(23), y].mean(), rel=1e-5)
    assert result["accuracy"] == pytest.approx(np.mean(logits.argmax(-1) == y), abs=1e-12)
    top2 = np.argsort(-logits, -1)[:, :2]
    assert result["top2"] == pytest.approx(np.mean((top2 == y[:, None]).any(-1)), abs=1e-12)
    assert result["max_logit"] == pytest.approx(logits.max(-1).mean(), rel=1e-5)
    assert result["mean_logit"] == pytest.approx(logits.mean(), rel=1e-5)

    model.train()  # outside evaluate the same model records on the tape (the check above bites)
    assert model(fnx.tensor(x)).grad_fn is not None


def test_evaluate_restores_the_mode_after_an_error_and_checks_its_input():
    model = _classifier()

    def failing(outputs, targets):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train.evaluate(model, [(fnx.zeros((2, 4)), fnx.zeros(2, dtype=fnx.int64))], failing)
    assert all(m.training for m in model.modules()) and fnx.is_grad_enabled()
    with pytest.raises(ValueError, match="nothing to compute"):
        train.evaluate(model, [])
    with pytest.raises(ValueError, match="yielded no batches"):
        train.evaluate(model, [], nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match=r"a batch must be an \(inputs, targets\) pair"):
        train.evaluate(model, [fnx.zeros((3, 4))], nn.CrossEntropyLoss())
    # a 2-key dict unpacks into its key strings: refused, naming the keys and the fix
    batch = {"x": fnx.zeros((2, 4)), "y": fnx.zeros(2, dtype=fnx.int64)}
    with pytest.raises(ValueError, match=r"got a dict with keys \['x', 'y'\]; pass the pairs"):
        train.evaluate(model, [batch], nn.CrossEntropyLoss())
    pairs = ((b["x"], b["y"]) for b in [batch])  # the fix the message gives works
    assert set(train.evaluate(model, pairs, nn.CrossEntropyLoss())) == {"loss"}


# --- CSVLogger ----------------------------------------------------------------------------

def test_csv_logger_header_once_rows_flushed_and_resume(tmp_path):
    path = tmp_path / "log.csv"
    logger = train.CSVLogger(path)
    logger.log(epoch=1, loss=fnx.tensor(0.5), acc=0.75)
    assert path.read_text() == "epoch,loss,acc\n1,0.5,0.75\n"  # on disk before any close
    logger.log({"epoch": 2, "loss": 0.25})  # a left-out cell stays empty
    resumed = train.CSVLogger(path)  # a rerun with the same path continues the file
    resumed.log(epoch=3, acc=0.9, loss=0.125)
    assert path.read_text() == "epoch,loss,acc\n1,0.5,0.75\n2,0.25,\n3,0.125,0.9\n"
    assert resumed.read() == [{"epoch": 1, "loss": 0.5, "acc": 0.75},
                              {"epoch": 2, "loss": 0.25, "acc": None},
                              {"epoch": 3, "loss": 0.125, "acc": 0.9}]
    with pytest.raises(ValueError, match=r"columns \['lr'\] are not among"):
        resumed.log(epoch=4, lr=0.1)
    with pytest.raises(ValueError, match=r"has columns \['epoch', 'loss', 'acc'\], but this "
                                         r"run logs \['epoch', 'lr'\]"):
        train.CSVLogger(path, fieldnames=["epoch", "lr"])
    fresh = train.CSVLogger(path, fieldnames=["epoch", "lr"], append=False)
    fresh.log(epoch=1, lr=0.1)
    assert path.read_text() == "epoch,lr\n1,0.1\n"


# --- ProgressBar --------------------------------------------------------------------------

def _batches(sizes):
    return [(fnx.ones((n, 2)), fnx.zeros(n, dtype=fnx.int64)) for n in sizes]


def test_progress_bar_renders_running_metrics_and_throughput():
    out = io.StringIO()
    bar = train.ProgressBar(_batches([4, 4, 2]), desc="epoch 3", file=out, mininterval=0)
    losses = [1.0, 0.5, 0.25]
    for (x, _), loss in zip(bar, losses, strict=True):
        bar.update_metrics(loss=fnx.tensor(loss), acc=fnx.tensor(0.5) + loss / 10)
    text = out.getvalue()
    # running means weighted by batch size: (4 * 1 + 4 * 0.5 + 2 * 0.25) / 10
    assert bar.metrics() == pytest.approx({"loss": 0.65, "acc": 0.565})
    final = text.rstrip().splitlines()[-1].split("\r")[-1]
    assert final.startswith("epoch 3: 100%") and "3/3" in final
    assert re.search(r"loss=0\.65, acc=0\.565, samples/s=[\d.]+[kMG]?\]$", final), final
    assert bar.samples_per_second > 0 and bar._samples == 10


def test_progress_bar_n_overrides_the_batch_size_and_break_closes_it():
    out = io.StringIO()
    bar = train.ProgressBar(iter(_batches([3, 3, 3])), total=3, file=out, mininterval=0)
    for i, _ in enumerate(bar):
        bar.update_metrics(loss=float(i + 1), n=1 + i)
        if i == 1:
            break
    assert bar.metrics() == {"loss": pytest.approx((1 * 1 + 2 * 2) / 3)}
    final = out.getvalue().rstrip().split("\r")[-1]  # closed at the break, final values shown
    assert "2/3" in final and "loss=1.67, samples/s=" in final, final


def test_progress_bar_reads_the_device_at_most_once_per_interval(monkeypatch):
    reads = []
    host = Array._host

    def counting_host(self):
        reads.append(self.shape)
        return host(self)

    out = io.StringIO()
    bar = train.ProgressBar(_batches([2] * 20), file=out, mininterval=3600)
    monkeypatch.setattr(Array, "_host", counting_host)
    for _ in bar:
        bar.update_metrics(loss=fnx.tensor(2.0), acc=fnx.tensor(1.0))
        # the first batch renders (the interval starts at -inf), then none until close
    monkeypatch.setattr(Array, "_host", host)
    assert reads == [(2,), (2,)], reads  # one stacked read of both metrics, twice
    assert "loss=2, acc=1" in out.getvalue()


def test_progress_bar_disabled_prints_and_reads_nothing(monkeypatch):
    out = io.StringIO()
    bar = train.ProgressBar(_batches([2, 2]), file=out, disable=True)
    monkeypatch.setattr(Array, "_host", lambda self: pytest.fail("host read while disabled"))
    for _ in bar:
        bar.update_metrics(loss=fnx.tensor(3.0))
    monkeypatch.undo()
    assert out.getvalue() == "" and bar.metrics() == {"loss": 3.0} and len(bar) == 2


# --- plot_history -------------------------------------------------------------------------

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_history_writes_a_png_from_a_dict_or_csv_rows(tmp_path):
    pytest.importorskip("matplotlib")
    history = {"epoch": [1, 2, 3], "loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7],
               "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.4, 0.6, fnx.tensor(0.65)]}
    fig = train.plot_history(history, tmp_path / "curves.png")
    data = (tmp_path / "curves.png").read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk: 2 panels of 5x4 in
    assert (width, height) == (1000, 400)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
    assert [line.get_label() for line in fig.axes[0].lines] == ["train", "validation"]
    np.testing.assert_allclose(fig.axes[1].lines[1].get_ydata(), [0.4, 0.6, 0.65])

    logger = train.CSVLogger(tmp_path / "log.csv")
    logger.log(epoch=1, train_loss=0.9, val_loss=1.0)
    logger.log(epoch=2, train_loss=0.5)  # no validation this epoch: a gap in the curve
    train.plot_history(logger.read(), tmp_path / "from_csv.png")
    assert (tmp_path / "from_csv.png").read_bytes()[:8] == PNG_MAGIC


def test_plot_history_without_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        train.plot_history({"loss": [1.0]}, tmp_path / "x.png")


# --- tensorboard --------------------------------------------------------------------------

def _events(log_dir):
    """The (tag, step, simple_value) of every scalar in the TFRecord event files."""
    from tensorboardX.proto import event_pb2

    found = []
    for path in sorted(pathlib.Path(log_dir).rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):  # record: u64 length, u32 crc, payload, u32 crc
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 16 + length
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                found.append((value.tag, event.step, value.simple_value if kind ==
                              "simple_value" else kind))
    return found


def test_summary_writer_converts_fnx_arrays(tmp_path):
    pytest.importorskip("tensorboardX")
    from fnx.utils.tensorboard import SummaryWriter

    with SummaryWriter(tmp_path) as writer:
        assert writer.log_dir == str(tmp_path)
        writer.add_scalar("train/loss", fnx.tensor(0.25), global_step=1)
        writer.add_scalar("train/loss", 0.125, global_step=2)
        writer.add_scalars("acc", {"train": fnx.tensor(0.75), "val": 0.5}, 3)
        writer.add_histogram("weights", fnx.randn(50), global_step=1)
        writer.add_image("image", fnx.rand(3, 4, 4), global_step=1)
    events = _events(tmp_path)
    scalars = {(tag, step): value for tag, step, value in events if not isinstance(value, str)}
    assert scalars[("train/loss", 1)] == 0.25 and scalars[("train/loss", 2)] == 0.125
    assert ("weights", 1, "histo") in events and ("image", 1, "image") in events
    # add_scalars writes one run per key (acc/train, acc/val), each with the tag "acc"
    assert sorted(v for tag, step, v in events if tag == "acc") == [0.5, 0.75]


def test_summary_writer_add_graph_says_it_is_not_supported(tmp_path):
    pytest.importorskip("tensorboardX")
    from fnx.utils.tensorboard import SummaryWriter

    with SummaryWriter(tmp_path) as writer:
        # tensorboardX would import torch to trace the model: "No module named 'torch'"
        with pytest.raises(NotImplementedError, match=r"add_graph is not supported in fnx: .*"
                                                      r"torch.jit.trace.*fnx.make_ir"):
            writer.add_graph(nn.Linear(2, 2), fnx.ones(1, 2))
        writer.add_scalar("still/works", 1.0, global_step=0)
    assert ("still/works", 0, 1.0) in _events(tmp_path)


def test_summary_writer_without_tensorboardx_says_what_to_install(monkeypatch):
    from fnx.utils.tensorboard import SummaryWriter

    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match="pip install tensorboardX"):
        SummaryWriter()


# --- reproducibility ----------------------------------------------------------------------

def _data():
    rng = np.random.default_rng(5)  # the data itself is fixed, independent of fnx's seed
    x = rng.normal(size=(40, 4)).astype(np.float32)
    return fnx.tensor(x), fnx.tensor((x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0))


def _train_run(seed, epochs=2):
    """A small loop drawing from every source fnx has: init, dropout, shuffling."""
    from fnx.data import DataLoader, TensorDataset

    fnx.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    loader = DataLoader(TensorDataset(*_data()), batch_size=8, shuffle=True)
    opt = fnx.optim.Adam(model.parameters(), lr=0.01)
    criterion = nn.CrossEntropyLoss()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            criterion(model(x), y).backward()
            opt.step()
    return _weights(model)


def test_manual_seed_fixes_init_dropout_and_shuffling_separately():
    from fnx.data import DataLoader, TensorDataset

    def draws(seed):
        fnx.manual_seed(seed)
        init = nn.Linear(4, 3).weight.numpy().copy()
        mask = nn.functional.dropout(fnx.ones(64), 0.5, training=True).numpy()
        before = fnx.get_rng_state().numpy().copy()
        order = [y.tolist() for _, y in DataLoader(TensorDataset(fnx.arange(10), fnx.arange(10)),
                                                   batch_size=4, shuffle=True)]
        moved = not np.array_equal(fnx.get_rng_state().numpy(), before)
        return init, mask, order, moved

    a, b, c = draws(0), draws(0), draws(1)
    # each source repeats under the same seed and changes with another
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])  # init
    assert np.array_equal(a[1], b[1]) and not np.array_equal(a[1], c[1])  # dropout
    assert a[2] == b[2] != c[2] and sorted(sum(a[2], [])) == list(range(10))  # shuffling
    assert a[3] and b[3]  # the shuffle drew from the global generator


def test_same_seed_gives_bit_identical_weights_on_the_cpu():
    import random

    np.random.seed(1)
    random.seed(1)
    first = _train_run(0)
    np.random.seed(2)  # fnx never draws from NumPy's or Python's global generators
    random.seed(2)
    second = _train_run(0)
    assert list(first) == list(second)
    for name in first:
        assert first[name].tobytes() == second[name].tobytes(), name
    other = _train_run(1)
    assert all(not np.array_equal(first[name], other[name]) for name in first)
