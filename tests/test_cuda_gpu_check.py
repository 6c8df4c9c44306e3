"""benchmarks/gpu_check.py without a GPU: the targets table, the report, the refusal."""

import importlib.util
import os
import subprocess
import sys

import pytest

import fnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def gc():
    spec = importlib.util.spec_from_file_location(
        "gpu_check", os.path.join(ROOT, "benchmarks", "gpu_check.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # a fresh module: its ROWS/TIMES start empty
    return mod


def test_targets_compare_against_torch_in_the_same_run(gc):
    gc.TIMES.update({
        ("launch", "fnx"): 4e-6,
        ("tiny call", "fnx"): 35e-6, ("tiny call", "torch"): 9e-6,
        ("P1 fused elementwise (16777216 f32)", "fnx"): 0.30e-3,
        ("P1 fused elementwise (16777216 f32)", "torch"): 0.43e-3,
        ("softmax xent (4096x1000)", "fnx"): 0.09e-3,
        ("softmax xent (4096x1000)", "torch"): 0.04e-3,
        ("softmax xent (4096x1000)", "jax"): 0.07e-3,
        ("MLP fwd+bwd step (1024x784->1024->10)", "fnx"): 0.6e-3,
    })
    got = {r[0]: r for r in gc.targets()}
    assert got["launch"][4:] == ("<= 10 us", "met")
    assert got["tiny call"][5] == "missed (3.89x torch)"
    assert got["P1 fused elementwise (16777216 f32)"][5] == "met (0.70x torch)"
    xent = got["softmax xent (4096x1000)"]
    assert xent[1:4] == ("90.0 us", "40.0 us", "70.0 us") and xent[5] == "missed (2.25x torch)"
    assert got["MLP fwd+bwd step (1024x784->1024->10)"][5] == "no torch"


def test_unmeasured_targets_say_not_run(gc):
    assert [r[5] for r in gc.targets()] == ["not run"] * len(gc.TARGETS)


def test_markdown_report(gc):
    gc.row("3 timing", "a | b", "1.000 ms", "note")
    md = gc.markdown("fnx gpu_check: test")
    assert md.startswith("# fnx gpu_check: test\n")
    assert "| 3 timing | a \\| b | 1.000 ms | note |" in md
    assert "## Targets (issue 12)" in md and "| launch |  |  |  | <= 10 us | not run |" in md


def test_report_path(gc):
    p = gc.report_path("NVIDIA H100 80GB HBM3", day="2026-12-06")
    assert p == os.path.join(ROOT, "docs", "gpu-runs",
                             "2026-12-06-nvidia-h100-80gb-hbm3-gpu-check.md")


@pytest.mark.skipif(fnx.cuda.is_available(), reason="a GPU is present")
def test_without_a_gpu_it_refuses_with_a_clear_message():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu_check.py")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "gpu_check: no usable NVIDIA GPU" in r.stderr and "--tiny" in r.stderr
    assert not r.stdout.strip()


def test_dispatcher_only_switches_the_launch_path_and_restores_it(gc, monkeypatch):
    from fnx.jit import cuda_runtime as crt

    driver = object()
    monkeypatch.setattr(crt, "_raw", [driver])  # as decided on a GPU machine
    assert gc.launch_path_on()
    with gc.dispatcher_only():
        assert crt.raw_driver() is None and not gc.launch_path_on()
    assert crt.raw_driver() is driver
