"""Run under ``mpiexec -n N`` by tests/test_distributed.py: the failure modes named in the
first argument (comma-separated).

raise      rank 1 raises while rank 0 waits in an all-reduce: the job ends naming rank 1
kill       rank 1 is killed (SIGKILL) while rank 0 waits in an all-reduce
exit       rank 1 calls sys.exit(3) (no excepthook runs) while rank 0 builds a
           DistributedDataParallel (which compares the ranks' models)
leave      rank 1 runs out of batches and destroys the group while rank 0 waits in an all-reduce
mismatch   the ranks pass different shapes to one all-reduce: every rank gets the same error
model      the ranks build different models: DistributedDataParallel names the difference
args       one rank passes wrong arguments (gather_list, scatter_list, tensor_list): every rank
           gets the error
timeout    rank 1 never joins the collective: rank 0's wait times out with an error
"""

import os
import signal
import sys
import time

import fnx
import fnx.distributed as dist
from fnx.nn.parallel import DistributedDataParallel

modes = sys.argv[1].split(",")
mode = modes[0]  # raise, kill, exit, leave and timeout run alone; mismatch, model, args share
dist.init_process_group("mpi", timeout=2 if mode == "timeout" else 60)
rank = dist.get_rank()
dist.all_reduce(fnx.ones(3))  # everyone is up
if mode == "raise":
    if rank == 1:
        time.sleep(0.2)
        raise ValueError("a bad batch on rank 1")
    dist.all_reduce(fnx.ones(3))
elif mode == "exit":
    if rank == 1:
        time.sleep(0.2)
        sys.exit(3)
    DistributedDataParallel(fnx.nn.Linear(2, 2))
elif mode == "leave":
    if rank == 1:
        dist.destroy_process_group()
        time.sleep(10)  # still alive: only the notice tells rank 0
        sys.exit(0)
    dist.all_reduce(fnx.ones(3))
elif mode == "kill":
    if rank == 1:
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)
    dist.all_reduce(fnx.ones(3))
if "mismatch" in modes:
    try:
        dist.all_reduce(fnx.ones(3 + rank))
    except dist.DistributedError as err:
        print(f"rank {rank} caught: {err}", flush=True)
if "model" in modes:
    try:
        DistributedDataParallel(fnx.nn.Linear(4, 3 + rank))
    except dist.DistributedError as err:
        print(f"rank {rank} caught: {err}", flush=True)
    frozen = fnx.nn.Linear(2, 2)
    frozen.bias.requires_grad_(rank == 0)  # the ranks would average different gradients
    try:
        DistributedDataParallel(frozen)
    except dist.DistributedError as err:
        print(f"rank {rank} caught: {err}", flush=True)
if "args" in modes:
    # wrong arguments on one rank only are an error on every rank, which then go on together
    wrong = {"gather": lambda: dist.gather(fnx.ones(2), None, dst=0),
             "scatter": lambda: dist.scatter(fnx.zeros(2, dtype=fnx.float64),
                                             [fnx.ones(2)] * 2 if rank == 0 else None),
             "all_gather": lambda: dist.all_gather([fnx.zeros(2)] * (2 + (rank == 0)),
                                                   fnx.ones(2)),
             "all_gather_object": lambda: dist.all_gather_object([None] * (2 + rank), rank),
             # rank 0 has one more step than rank 1, which went on to a barrier
             "steps": lambda: dist.all_reduce(fnx.ones(4)) if rank == 0 else dist.barrier()}
    for name, call in wrong.items():
        try:
            call()
        except dist.DistributedError as err:
            print(f"rank {rank} caught: {err}", flush=True)
        assert dist.all_reduce(fnx.ones(1)).tolist() == [2.0], name
if mode == "timeout":
    if rank == 1:
        time.sleep(5)  # long past rank 0's 2 s limit
        os._exit(0)
    try:
        dist.all_reduce(fnx.ones(3))
    except dist.DistributedError as err:
        print(f"rank {rank} caught: {err}", flush=True)
        os._exit(0)
print(f"rank {rank} finished", flush=True)
