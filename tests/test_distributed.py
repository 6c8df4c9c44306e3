"""fnx.distributed, DistributedDataParallel and SyncBatchNorm: multi-rank checks run the scripts
in tests/distributed_scripts/ under mpiexec with 2 and 3 ranks (each rank compares itself with
a one-process reference); in-process checks cover a world of one process, the errors, the
launcher's command line and the NCCL engine's calls (with a stand-in for cupy.cuda.nccl)."""

import datetime
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import fnx
import fnx.distributed as dist
import fnx.distributed.functional as dF
from fnx import nn

pytest.importorskip("mpi4py", reason="the distributed extra (mpi4py, mpich) is not installed")
HERE = os.path.dirname(__file__)
SCRIPTS = os.path.join(HERE, "distributed_scripts")
MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")
if not os.path.exists(MPIEXEC):
    MPIEXEC = "mpiexec"


def mpirun(n, script, *args, timeout=120):
    start = time.monotonic()
    proc = subprocess.run([MPIEXEC, "-prepend-rank", "-n", str(n), sys.executable,
                           os.path.join(SCRIPTS, script), *args], capture_output=True,
                          text=True, timeout=timeout,
                          env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"))
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def passed(out, n, case):
    return all(f"[{r}] PASS {case}" in out for r in range(n))


@pytest.mark.parametrize("n", [2, 3])
def test_ddp_equals_one_process(n, tmp_path):
    rc, out, _ = mpirun(n, "equivalence.py",
                        "eager,compiled,unused,no_sync_outside,checkpoint,copy", str(tmp_path))
    assert rc == 0, out
    for case in ("sgd", "adam", "syncbn", "no_sync", "sgd compiled", "adam compiled",
                 "syncbn compiled", "no_sync compiled", "unused", "no_sync outside",
                 "checkpoint", "copy"):
        assert passed(out, n, case), (case, out)


@pytest.mark.parametrize("n", [2, 3])
def test_collectives_under_jit_grad_vmap(n):
    rc, out, _ = mpirun(n, "collectives.py")
    assert rc == 0 and passed(out, n, "collectives"), out


def test_rank_that_raises_ends_the_job_naming_it():
    rc, out, took = mpirun(2, "faults.py", "raise", timeout=60)
    assert rc != 0 and took < 30, out
    assert "rank 1 of 2 failed with ValueError: a bad batch on rank 1" in out
    assert "rank 0 finished" not in out


@pytest.mark.parametrize("mode, waiting_in", [("exit", "all_gather_object"),
                                              ("leave", "all_reduce")])
def test_rank_that_leaves_early_is_named_by_the_ranks_waiting_for_it(mode, waiting_in):
    rc, out, took = mpirun(2, "faults.py", mode, timeout=60)
    assert rc != 0 and took < 8 and "rank 0 finished" not in out, out
    assert "rank 0: rank 1 (pid" in out and "left the process group (its script ended, " \
        f"called sys.exit or destroy_process_group) while this rank waited in {waiting_in}" \
        in out, out


def test_killed_rank_ends_the_job_and_the_launcher_names_it():
    rc, out, took = mpirun(2, "faults.py", "kill", timeout=60)
    assert rc != 0 and took < 30 and "rank 0 finished" not in out, out
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "fnx.distributed.run", "--nproc", "2",
                           os.path.join(SCRIPTS, "faults.py"), "kill"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and time.monotonic() - start < 30
    assert "rank 1 (pid" in proc.stderr and "killed by signal 9" in proc.stderr, proc.stderr


def test_mismatched_shapes_and_models_are_clear_errors_on_every_rank():
    rc, out, _ = mpirun(2, "faults.py", "mismatch,model,args", timeout=60)
    assert rc == 0, out
    for r in range(2):
        for error in ("gather: rank 0 needs a gather_list of 2 arrays",
                      "scatter: rank 0 must scatter 2 arrays of shape (2,) and dtype float64",
                      "all_gather: rank 0's tensor_list has 3 arrays, the world 2 ranks",
                      "all_gather_object: rank 1's object_list has 3 entries, the world 2",
                      f"{('all_reduce', 'barrier')[r]}: ranks called different collectives "
                      f"(rank 0: all_reduce of shape (4,) dtype float32 sum; rank 1: barrier"):
            assert f"rank {r} caught: {error}" in out, (error, out)
    for r in range(2):
        assert f"rank {r} caught: all_reduce: ranks passed arrays of different shapes" in out
    assert "rank 0: all_reduce of shape (3,)" in out and "rank 1: all_reduce of shape (4,)" in out
    assert out.count("the models differ across ranks: rank 0 has parameter 'weight' of shape "
                     "(3, 4)") == 2, out
    assert out.count("rank 0 has parameter 'bias' of shape (2,) and dtype float32 where rank 1 "
                     "has frozen parameter 'bias'") == 2, out


def test_a_wait_times_out_instead_of_hanging():
    rc, out, took = mpirun(2, "faults.py", "timeout", timeout=60)
    assert "rank 0 caught: rank 0: all_reduce (shape check) did not complete within 2 s" in out
    assert took < 30, out


# --- one process ------------------------------------------------------------------------------


@pytest.fixture
def world_of_one():
    dist.init_process_group("mpi")
    yield
    dist.destroy_process_group()


def test_errors_before_init_and_bad_arguments():
    with pytest.raises(dist.DistributedError, match="all_reduce: the default process group is "
                                                    "not initialized; call fnx.distributed"):
        dist.all_reduce(fnx.ones(2))
    with pytest.raises(dist.DistributedError, match="not initialized"):
        dF.all_gather(fnx.ones(2))
    with pytest.raises(dist.DistributedError, match="unknown backend 'gloo'"):
        dist.init_process_group("gloo")


def test_world_of_one(world_of_one):
    x = fnx.tensor([1.0, -2.0])
    for op in ("sum", "mean", "max", "min", dist.ReduceOp.AVG):
        np.testing.assert_array_equal(dF.all_reduce(x, op), x)
    with pytest.raises(dist.DistributedError, match="unknown reduction 'prod'"):
        dF.all_reduce(x, "prod")
    with pytest.raises(dist.DistributedError, match="op 'mean' needs a floating-point"):
        dF.all_reduce(fnx.tensor([1, 2]), "mean")
    with pytest.raises(dist.DistributedError, match="src/dst rank 3 is outside"):
        dF.broadcast(x, src=3)
    with pytest.raises(dist.DistributedError, match="already initialized"):
        dist.init_process_group("mpi")
    with pytest.raises(dist.DistributedError, match="functional.all_reduce, which returns"):
        fnx.grad(lambda v: dist.all_reduce(v).sum())(x)
    # Work.wait takes PyTorch's timedelta as well as seconds
    never = dist.Work(lambda: False, lambda: None, "a probe", dist.process_group.default_group())
    with pytest.raises(dist.DistributedError, match="a probe did not complete within 0.05 s"):
        never.wait(timeout=datetime.timedelta(milliseconds=50))
    # a traced program knows its world size
    program = fnx.make_ir(lambda v: dF.all_gather(v))(x)
    assert "all_gather" in str(program) and "world_size=1" in str(program)


def test_sync_batchnorm_is_batchnorm_in_one_process(world_of_one):
    fnx.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(bn))[0]
    assert type(sync) is nn.SyncBatchNorm and sync.weight is bn.weight
    x = fnx.randn(4, 3, 2, 2)
    ref = nn.BatchNorm2d(3)
    np.testing.assert_allclose(sync(x), ref(x), rtol=1e-6)
    np.testing.assert_allclose(sync.running_var, ref.running_var, rtol=1e-6)


def test_data_parallel_runs_the_model():
    model = nn.Linear(3, 2)
    dp = nn.DataParallel(model)
    x = fnx.ones(4, 3)
    np.testing.assert_array_equal(dp(x), model(x))
    assert list(dp.state_dict()) == ["module.weight", "module.bias"]


def test_launcher_command_line():
    from fnx.distributed.run import mpiexec_command

    cmd = mpiexec_command(["--nproc", "3", "--hostfile", "hosts.txt", "train.py", "--lr",
                           "0.1"], python="py")
    assert cmd[0].endswith("mpiexec")
    assert cmd[1:] == ["-f", "hosts.txt", "-n", "3", "py", "-m", "fnx.distributed._launch_rank",
                       "train.py", "--lr", "0.1"]


def test_launcher_sets_torchruns_rank_variables(tmp_path):
    """Scripts written for torchrun read LOCAL_RANK etc. before any fnx call."""
    script = tmp_path / "ranks.py"
    script.write_text("import os, sys\n"
                      "import fnx.distributed as dist\n"
                      "dist.init_process_group('mpi')\n"
                      "env = [int(os.environ[k]) for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK',"
                      " 'LOCAL_WORLD_SIZE')]\n"
                      "assert env[0] == dist.get_rank() and env[1] == dist.get_world_size()\n"
                      "out = os.path.join(os.path.dirname(__file__), f'rank{env[0]}.txt')\n"
                      "open(out, 'w').write(' '.join(map(str, env + sys.argv[1:] + [__name__])))\n"
                      "dist.destroy_process_group()\n")
    proc = subprocess.run([sys.executable, "-m", "fnx.distributed.run", "--nproc", "2",
                           str(script), "--flag"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for rank in range(2):  # (files: the ranks' printed lines can interleave)
        got = (tmp_path / f"rank{rank}.txt").read_text()
        assert got == f"{rank} 2 {rank} 2 --flag __main__", got


class _FakeNccl:
    """Stands in for cupy.cuda.nccl: records each call's arguments."""

    NCCL_FLOAT32, NCCL_FLOAT64, NCCL_SUM, NCCL_MAX = 7, 8, 0, 2
    NCCL_FLOAT16 = NCCL_INT8 = NCCL_UINT8 = NCCL_INT32 = NCCL_UINT32 = NCCL_INT64 = 1
    NCCL_UINT64 = NCCL_MIN = 1
    calls = []

    @staticmethod
    def get_unique_id():
        return (1, 2, 3)

    class NcclCommunicator:
        def __init__(self, ndev, uid, rank):
            _FakeNccl.calls.append(("init", ndev, uid, rank))

        def allReduce(self, *args):
            _FakeNccl.calls.append(("allReduce",) + args)

        def allGather(self, *args):
            _FakeNccl.calls.append(("allGather",) + args)


class _FakeCupy:
    """Enough of CuPy for the engine's bookkeeping, over NumPy buffers."""

    class _Buf(np.ndarray):
        @property
        def data(self):
            return type("Mem", (), {"ptr": self.ctypes.data})()

    class cuda:
        class _Stream:
            ptr = 99

        @staticmethod
        def get_current_stream():
            return _FakeCupy.cuda._Stream()

        class Event:
            def __init__(self, disable_timing):
                self.done = True

            def record(self, stream):
                pass

    @staticmethod
    def empty_like(buf):
        return np.empty_like(buf).view(_FakeCupy._Buf)

    @staticmethod
    def empty(shape, dtype):
        return np.empty(shape, dtype).view(_FakeCupy._Buf)


def test_nccl_engine_calls(world_of_one):
    from fnx.distributed.process_group import _Nccl, default_group

    _FakeNccl.calls.clear()
    engine = _Nccl(default_group(), _FakeNccl, _FakeCupy)
    assert _FakeNccl.calls[0] == ("init", 1, (1, 2, 3), 0)
    buf = np.ones((2, 3), np.float32).view(_FakeCupy._Buf)
    out = engine.all_reduce(buf, "max", "all_reduce").wait()
    name, send, recv, count, dtype, op, stream = _FakeNccl.calls[1]
    assert (name, send, count, dtype, op, stream) == ("allReduce", buf.ctypes.data, 6, 7, 2, 99)
    assert recv == out.ctypes.data and out.shape == (2, 3)
    gathered = engine.all_gather(buf, "all_gather").wait()
    assert gathered.shape == (1, 2, 3) and _FakeNccl.calls[2][3] == 6
    with pytest.raises(dist.DistributedError, match="NCCL has no complex64 reduction"):
        engine.all_reduce(np.ones(2, np.complex64).view(_FakeCupy._Buf), "sum", "all_reduce")
    # a GPU buffer in a group without NCCL names the fix
    with pytest.raises(dist.DistributedError, match="init_process_group\\('nccl'\\)"):
        default_group().all_reduce(buf, "sum")


def test_ddp_digits_example_tiny():
    rc, out, _ = mpirun_example(2, "--epochs", "2", "--hidden", "32")
    assert rc == 0, out
    accuracy = float(out.split("test accuracy:")[1].split()[0])
    assert accuracy > 0.5, out  # ten classes: chance is 0.1


def mpirun_example(n, *args):
    proc = subprocess.run([MPIEXEC, "-n", str(n), sys.executable,
                           os.path.join(HERE, "..", "examples", "ddp_digits.py"), *args],
                          capture_output=True, text=True, timeout=180)
    return proc.returncode, proc.stdout + proc.stderr, None
