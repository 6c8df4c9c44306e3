"""``python -m fnx.distributed.run --nproc N script.py [args]``: start N ranks of ``script.py``
with the MPI launcher (MPICH's ``mpiexec``, installed next to ``python`` by the ``mpich``
package), as ``torchrun`` does for PyTorch, with torchrun's ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` set in each. ``--hostfile FILE`` spreads them over
machines.

When a rank dies (an exception, a signal), MPI ends the whole job; this launcher then names
the rank that failed, from the pid table rank 0 writes at ``init_process_group``.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

__all__ = ["mpiexec_command", "main"]


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m fnx.distributed.run",
        description="Run N processes of a training script under MPI (mpiexec).")
    parser.add_argument("--nproc", "--nproc-per-node", "-n", dest="nproc", type=int,
                        required=True, help="number of ranks to start")
    parser.add_argument("--hostfile", "-f", help="MPICH host file: one 'host:slots' a line")
    parser.add_argument("--mpiexec", help="the MPI launcher (default: the one next to python, "
                                          "else mpiexec on PATH)")
    parser.add_argument("script", help="the Python script to run on every rank")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    return parser


def _find_mpiexec(given):
    if given:
        return given
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.exists(beside):
        return beside
    found = shutil.which("mpiexec")
    if found is None:
        sys.exit("fnx.distributed.run: no mpiexec found; pip install -e \".[distributed]\" "
                 "(the mpich package installs one next to python)")
    return found


def mpiexec_command(argv, python="python"):
    """The launcher's command line for the arguments ``argv`` (see the module docstring).

    >>> from fnx.distributed.run import mpiexec_command
    >>> mpiexec_command(["--nproc", "4", "--hostfile", "hosts", "t.py"], python="py")[1:]
    ['-f', 'hosts', '-n', '4', 'py', '-m', 'fnx.distributed._launch_rank', 't.py']
    """
    opts = _parser().parse_args(argv)
    if opts.nproc < 1:
        raise SystemExit("fnx.distributed.run: --nproc must be at least 1")
    cmd = [_find_mpiexec(opts.mpiexec)]
    if opts.hostfile:
        cmd += ["-f", opts.hostfile]
    # each rank starts through _launch_rank, which sets torchrun's RANK/LOCAL_RANK/... first
    return cmd + ["-n", str(opts.nproc), python, "-m", "fnx.distributed._launch_rank",
                  opts.script] + opts.args


_KILLED = re.compile(r"PID (\d+) RUNNING AT (\S+)")
_CODE = re.compile(r"EXIT CODE: (\d+)")


def main(argv=None):
    """Run the job, pass its output through, and return its exit status."""
    argv = sys.argv[1:] if argv is None else argv
    cmd = mpiexec_command(argv, sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        table = os.path.join(tmp, "ranks.json")
        env = dict(os.environ, FNX_DIST_RANKS_FILE=table)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        pid = code = None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if (m := _KILLED.search(line)) and pid is None:
                pid = int(m.group(1))
            if (m := _CODE.search(line)) and code is None:
                code = int(m.group(1))
        status = proc.wait()
        if status != 0 and pid is not None:
            ranks = json.load(open(table)) if os.path.exists(table) else []
            rank = next((p["rank"] for p in ranks if p["pid"] == pid), None)
            who = f"rank {rank} (pid {pid})" if rank is not None else f"pid {pid}"
            how = f"exit code {code}" + (" (killed by signal 9)" if code == 9 else "")
            sys.stderr.write(f"fnx.distributed.run: {who} failed with {how}; MPI stopped "
                             f"the other ranks\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
