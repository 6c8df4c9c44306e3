"""The README's code blocks and the examples run as written."""

import os
import re
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python_blocks(path):
    with open(path) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_readme_python_blocks_run(capsys):
    blocks = _python_blocks(os.path.join(ROOT, "README.md"))
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_readme_taste_computes_the_gradient_numpy_gets():
    import fnx
    import fnx.numpy as fnp

    def loss(w, x, y):
        return fnp.mean((fnp.tanh(x @ w) - y) ** 2)

    rng = np.random.default_rng(0)
    w, x, y = (rng.normal(size=s).astype(np.float32) for s in ((3, 1), (8, 3), (8, 1)))
    g = fnx.grad(loss)(fnp.asarray(w), fnp.asarray(x), fnp.asarray(y))
    t = np.tanh(x @ w)
    expected = x.T @ (2 * (t - y) * (1 - t * t) / t.size)
    np.testing.assert_allclose(g.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_quickstart_example_fits_the_line():
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "quickstart.py")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    w = float(re.search(r"fitted w=([-+0-9.]+)", out.stdout).group(1))
    b = float(re.search(r"b=([-+0-9.]+)", out.stdout).group(1))
    assert abs(w - 3.0) < 0.05 and abs(b + 0.5) < 0.05
    assert "reduce_sum" in out.stdout  # the printed program


# --- the research examples: each runs with a tiny setting, and its metric moved the right way --


def _run_example(script, *args):
    """Run ``examples/<script>`` in a subprocess (the environment passes through, so it shares
    the kernel cache); return its stdout lines and the value of its last ``<metric>: <value>``
    line."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script), *args],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    name, value = lines[-1].rsplit(": ", 1)
    return lines, name, float(value)


def _metric(lines, name):
    """The value of the line ``<name>: <value>``."""
    (value,) = [line.rsplit(": ", 1)[1] for line in lines if line.startswith(name + ": ")]
    return float(value.split()[0])


def test_lstm_sequence_example_learns_the_order():
    lines, name, acc = _run_example("lstm_sequence.py", "--train-size", "1024", "--test-size",
                                    "256", "--epochs", "1", "--seq-len", "12")
    assert name == "test accuracy"
    assert _metric(lines, "chance level") == 0.5
    assert acc > 0.7


def test_transformer_classifier_example_learns_the_order():
    lines, name, acc = _run_example(
        "transformer_classifier.py", "--train-size", "1536", "--test-size", "256", "--epochs",
        "1", "--seq-len", "8", "--markers", "2", "--vocab", "8", "--layers", "1",
        "--warmup-steps", "5", "--lr", "5e-3")
    assert name == "test accuracy"
    assert _metric(lines, "chance level") == 0.5
    assert acc > 0.75


def test_per_example_gradients_example_matches_the_loop_and_learns():
    lines, name, acc = _run_example(
        "per_example_gradients.py", "--train-size", "1024", "--test-size", "512", "--steps",
        "150", "--batch-size", "32", "--timing-repeats", "1")
    assert name == "test accuracy"
    assert _metric(lines, "max abs diff vs loop") < 1e-5
    module_diff = re.search(r"max abs diff vs the params dict (\S+)", "\n".join(lines)).group(1)
    assert float(module_diff) < 1e-5
    assert acc > _metric(lines, "chance level") + 0.2


def test_maml_sine_example_adaptation_lowers_the_error():
    lines, name, after = _run_example("maml_sine.py", "--steps", "300", "--test-tasks", "100")
    assert name == "meta-test mse after adaptation"
    assert after < 0.9 * _metric(lines, "meta-test mse before adaptation")


def test_hessian_vector_products_example_matches_the_hessian():
    lines, name, diff = _run_example(
        "hessian_vector_products.py", "--samples", "32", "--dim", "4", "--hidden", "8",
        "--vectors", "2", "--power-iterations", "100", "--timing-repeats", "2")
    assert name == "max abs diff hvp vs hessian"
    assert diff < 1e-10
    power, eigvalsh = re.search(r"with HVPs ([-0-9.]+), eigvalsh of the full Hessian ([-0-9.]+)",
                                "\n".join(lines)).groups()
    assert abs(float(power) - float(eigvalsh)) < 1e-3 * abs(float(eigvalsh))


def test_custom_function_example_gradients_match_finite_differences():
    lines, name, error = _run_example("custom_function.py", "--size", "3")
    assert name == "max gradient error"
    assert error < 1e-6
    assert "automatic gradient [nan nan], custom_vjp [0. 1.]" in "\n".join(lines)


def test_train_digits_example_learns_and_writes_its_curves(tmp_path):
    plot, log = tmp_path / "curves.png", tmp_path / "log.csv"
    lines, name, acc = _run_example("train_digits.py", "--epochs", "2", "--quiet", "--plot",
                                    str(plot), "--log", str(log))
    assert name == "test accuracy" and re.fullmatch(r"test accuracy: [01]\.\d{3}", lines[-1])
    assert acc > 0.5  # chance is 0.1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line.split(",") for line in log.read_text().splitlines()]
    assert rows[0] == ["epoch", "loss", "acc", "val_loss", "val_acc"] and len(rows) == 3
    assert float(rows[2][1]) < float(rows[1][1])  # the training loss fell


def test_train_digits_example_eager_step_learns():
    lines, name, acc = _run_example("train_digits.py", "--epochs", "1", "--quiet", "--eager")
    assert name == "test accuracy" and acc > 0.5


def _arrays(path):
    import fnx

    return [np.asarray(leaf) for leaf in fnx.tree.leaves(fnx.load(str(path)))]


def test_train_digits_example_resumes_bit_identically_after_sigkill(tmp_path):
    import fnx

    script = os.path.join(ROOT, "examples", "train_digits.py")
    env = dict(os.environ, PYTHONPATH=ROOT)
    epochs = ["--epochs", "5", "--quiet"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    _run_example("train_digits.py", *epochs, "--checkpoint", str(straight), "--save-final",
                 str(tmp_path / "a.pth"))

    # kill the second run with SIGKILL as soon as its first checkpoint is on disk
    checkpoint = resumed / "checkpoint.pth"
    proc = subprocess.Popen([sys.executable, script, *epochs, "--checkpoint", str(resumed)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not checkpoint.exists():
            assert proc.poll() is None, "the run ended before writing a checkpoint"
            time.sleep(0.02)
        running = proc.poll() is None
        proc.kill()
    finally:
        proc.wait(timeout=60)
    assert running
    assert fnx.load(str(checkpoint))["epoch"] < 5  # killed mid-training

    lines, _, _ = _run_example("train_digits.py", *epochs, "--checkpoint", str(resumed),
                               "--save-final", str(tmp_path / "b.pth"))
    assert any(line.startswith("resumed from") for line in lines)
    a, b = fnx.load(str(tmp_path / "a.pth")), fnx.load(str(tmp_path / "b.pth"))
    assert list(a) == list(b)
    for name in a:
        assert np.array_equal(a[name].numpy(), b[name].numpy()), name
    # the last checkpoints too: weights, Adam's moments, the scheduler, the stopper, the RNG
    final_a, final_b = _arrays(straight / "checkpoint.pth"), _arrays(checkpoint)
    assert len(final_a) == len(final_b)
    assert all(np.array_equal(x, y) for x, y in zip(final_a, final_b, strict=True))


def test_digits_functional_example_learns():
    lines, name, acc = _run_example("digits_functional.py", "--epochs", "2")
    assert name == "test accuracy" and acc > 0.8


def test_train_digits_rejects_bad_flags_before_training():
    script = os.path.join(ROOT, "examples", "train_digits.py")
    for flags in (["--epochs", "0"], ["--lr", "nan"], ["--save-final", "/nonexistent/x/w"],
                  ["--checkpoint", os.path.join(ROOT, "README.md")]):
        run = subprocess.run([sys.executable, script, *flags], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 2 and "error:" in run.stderr, (flags, run.stderr)


def test_cnn_digits_example_learns_and_its_compiled_step_matches_eager():
    tiny = ("--epochs", "2", "--width", "8")
    lines, name, acc = _run_example("cnn_digits.py", *tiny)
    assert name == "test accuracy" and acc > 0.6  # chance: 0.1
    eager, _, _ = _run_example("cnn_digits.py", *tiny, "--eager")

    def first_loss(out):
        return float(re.search(r"epoch 1: train loss ([0-9.]+)", "\n".join(out)).group(1))

    assert abs(first_loss(lines) - first_loss(eager)) < 1e-3 * first_loss(eager)


def test_resnet_small_example_learns():
    lines, name, acc = _run_example("resnet_small.py", "--epochs", "2", "--width", "4")
    assert name == "test accuracy" and acc > 0.6  # chance: 0.1
    assert "widths [4, 8, 16, 32]" in lines[0]


def test_distillation_example_trains_teacher_and_both_students():
    lines, name, distilled = _run_example("distillation.py", "--teacher-epochs", "2",
                                          "--student-epochs", "3")
    assert name == "distilled student test accuracy"
    assert _metric(lines, "teacher test accuracy") > 0.5  # chance: 0.1
    assert _metric(lines, "student alone test accuracy") > 0.5
    assert distilled > 0.5


def test_fine_tune_example_keeps_frozen_layers_and_learns_the_new_digits(tmp_path):
    import fnx

    checkpoint = tmp_path / "pretrained.safetensors"
    lines, name, acc = _run_example("fine_tune.py", "--pretrain-epochs", "2",
                                    "--finetune-epochs", "15", "--checkpoint", str(checkpoint))
    assert name == "fine-tuned test accuracy" and acc > 0.5  # chance: 0.2 (five digits)
    # the script asserts that the frozen parameters are bit-identical and got no gradient
    assert "frozen parameters unchanged: 6 arrays checked" in lines
    assert any(line.startswith("frozen: conv1.weight, bn1.weight") for line in lines)
    assert "groups with lr [0.001, 0.01]" in "\n".join(lines)
    pretrained = fnx.load(str(checkpoint))  # the 0-4 model, with its 5-way head
    assert pretrained["fc.weight"].shape == (5, 256) and "layer1.1.running_mean" in pretrained
