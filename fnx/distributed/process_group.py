"""The process group: ranks, the MPI and NCCL engines, blocking waits with timeouts, faults.

fnx does no networking of its own. ``init_process_group("mpi")`` wraps ``MPI.COMM_WORLD``
(mpi4py, MPICH from the ``mpich`` package) and runs every collective on the arrays' NumPy
buffers through mpi4py's buffer-protocol calls (``Iallreduce`` and friends: no pickling, no
Python lists). ``init_process_group("nccl")`` adds a NCCL communicator (CuPy's
``cupy.cuda.nccl``) for CuPy buffers, bootstrapped over MPI; NumPy buffers still go through MPI.

Every wait polls a non-blocking request with a deadline (``timeout``), so a peer that stops
answering is an error, not a hang; a rank whose script raises calls ``MPI_Abort`` with a
message naming itself, which ends every rank of the job.
"""

import atexit
import dataclasses
import os
import socket
import sys
import threading
import time
import zlib

import numpy as np

from ..core.errors import FnxError

__all__ = ["DistributedError", "ReduceOp", "ProcessGroup", "Work", "default_group",
           "init_process_group", "destroy_process_group", "is_initialized"]

BACKENDS = ("mpi", "nccl")
DEFAULT_TIMEOUT = float(os.environ.get("FNX_DIST_TIMEOUT", "300"))
# Each collective first checks that every rank passes the same shape and dtype (one 16-byte
# all-reduce): a mismatch is then a clear error instead of a crash or garbage.
CHECK_COLLECTIVES = os.environ.get("FNX_DIST_CHECK", "1") not in ("", "0")


class DistributedError(FnxError, RuntimeError):
    """A collective called before ``init_process_group``, arrays that differ across ranks,
    a peer that failed or timed out."""


class ReduceOp:
    """Reduction operators of ``all_reduce`` (``torch.distributed.ReduceOp``); the strings
    ``"sum"``, ``"mean"``, ``"max"``, ``"min"`` are accepted too.

    >>> fnx.distributed.ReduceOp.SUM, fnx.distributed.ReduceOp.AVG
    ('sum', 'mean')
    """

    SUM = "sum"
    AVG = "mean"
    MAX = "max"
    MIN = "min"


_OPS = {"sum": "sum", "mean": "mean", "avg": "mean", "max": "max", "min": "min"}


def reduce_op(op, what):
    """``op`` as one of 'sum', 'mean', 'max', 'min', or a DistributedError naming ``what``."""
    name = _OPS.get(str(op).lower().removeprefix("reduceop."))
    if name is None:
        raise DistributedError(f"{what}: unknown reduction {op!r}; use ReduceOp.SUM, AVG, MAX "
                               f"or MIN ('sum', 'mean', 'max', 'min')")
    return name


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise DistributedError(
            "fnx.distributed needs mpi4py and an MPI library: pip install -e \".[distributed]\" "
            "(brings mpi4py and mpich, whose mpiexec lands next to python)") from err
    return MPI


def _seconds(timeout):
    """A timeout in seconds from seconds or a ``datetime.timedelta`` (PyTorch's); None stays."""
    return timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout


def _reducible(buf, op, what):
    """The buffer and op that MPI and NCCL reduce for ``op`` over ``buf``: bool arrays as
    bytes, where sum and max are a logical or and min a logical and (PyTorch's results; MPI
    defines no sum, max or min of C bools); complex arrays are summed only."""
    if buf.dtype == np.bool_:
        return buf.view(np.uint8), "min" if op == "min" else "max"
    if buf.dtype.kind == "c" and op != "sum":
        raise DistributedError(f"{what}: op {op!r} is not defined for {buf.dtype} arrays "
                               f"(complex numbers have no order); reduce the real and "
                               f"imaginary parts or the magnitudes")
    return buf, op


def _viewed_as(work, dtype):
    """``work`` whose result buffer is viewed as ``dtype`` (a bool reduction's bytes)."""
    finish = work._finish
    work._finish = lambda: finish().view(dtype)
    return work


def _contiguous(buf):
    # (np.ascontiguousarray would turn a 0-d array into a 1-d one)
    return buf if buf.flags.c_contiguous else buf.copy(order="C")


class Work:
    """The handle of a non-blocking collective (``async_op=True``): ``wait()`` blocks until it
    finished (or raises after the group's timeout) and returns its result; ``is_completed()``
    polls.

    >>> w = fnx.distributed.Work.done(fnx.ones(2))
    >>> w.is_completed(), w.wait().tolist()
    (True, [1.0, 1.0])
    """

    def __init__(self, test, finish, what, group):
        self._test, self._finish, self._what, self._group = test, finish, what, group
        self._result, self._finished = None, False

    @classmethod
    def done(cls, result):
        """A handle whose collective already ran (traced code binds the primitive at once)."""
        work = cls(None, None, "", None)
        work._result, work._finished = result, True
        return work

    def is_completed(self):
        return self._finished or self._test()

    def wait(self, timeout=None):
        """The result, once the collective finished; ``timeout`` (seconds or a
        ``datetime.timedelta``, default the group's) bounds the wait."""
        if not self._finished:
            self._group.wait_until(self._test, self._what, _seconds(timeout))
            self._result, self._finished = self._finish(), True
            self._test = self._finish = None
        return self._result

    def result(self):
        return self.wait()


@dataclasses.dataclass
class _Peer:
    rank: int
    host: str
    pid: int


class ProcessGroup:
    """All the ranks of a job (``MPI.COMM_WORLD``): rank, size and the collectives on buffers.

    The collectives here take and return buffers (NumPy, or CuPy with NCCL) and always write a
    new output buffer: fnx arrays are values, so an input buffer another array shares is never
    overwritten. ``fnx.distributed`` wraps them for arrays.

    >>> fnx.distributed.init_process_group("mpi")   # world size 1 without mpiexec
    >>> group = fnx.distributed.process_group.default_group()
    >>> group.all_reduce(np.ones(2, np.float32), "sum").tolist(), group.size
    ([1.0, 1.0], 1)
    >>> fnx.distributed.destroy_process_group()
    """

    def __init__(self, backend, timeout=DEFAULT_TIMEOUT):
        MPI = _mpi()
        self.MPI = MPI
        if not MPI.Is_initialized():
            MPI.Init_thread()
        self.comm = MPI.COMM_WORLD.Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.backend, self.timeout = backend, float(timeout)
        me = _Peer(self.rank, socket.gethostname(), os.getpid())
        self.peers = [_Peer(**p) for p in self.comm.allgather(dataclasses.asdict(me))]
        self.nccl = _Nccl(self) if backend == "nccl" else None
        self._next_probe = 0.0
        # a collective is two MPI calls (the check, then the operation): threads of one rank
        # start them one collective at a time, or one thread's check meets another's data
        self._starting = threading.RLock()
        # leaving notices (_announce_leaving): a rank that leaves the group (its script ends,
        # or it destroys the group) tells the others, so one left waiting for it in a
        # collective fails at once, naming it
        self._notices = self.comm.Dup() if self.size > 1 else None

    # --- waiting ------------------------------------------------------------------------------

    def wait_until(self, test, what, timeout=None):
        """Poll ``test()`` until it is true, or raise a DistributedError naming the rank and
        the collective when the deadline passes or a peer process on this host is gone.

        MPI makes progress on a non-blocking collective only while a rank calls into it, so
        the first second polls without pause (as MPI's own blocking calls spin, but letting
        other processes run between batches of polls: ranks often share cores); a longer wait
        means a peer is still computing, and polls every 100 us from then on."""
        timeout = self.timeout if timeout is None else timeout
        start = time.monotonic()
        spins = 0
        while not test():
            spins += 1
            if spins % 512:
                continue
            now = time.monotonic()
            if now - start > timeout:
                raise DistributedError(
                    f"rank {self.rank}: {what} did not complete within {timeout:g} s; another "
                    f"rank failed, is stuck or did not call the same collective (set the "
                    f"limit with init_process_group(timeout=...) or FNX_DIST_TIMEOUT)")
            if now > self._next_probe:
                self._next_probe = now + 0.5
                self._check_peers(what)
                self._check_exits(test, what)
            if now - start > 1.0:
                time.sleep(1e-4)
            else:
                os.sched_yield()

    def _check_peers(self, what):
        host = socket.gethostname()
        for peer in self.peers:
            if peer.host != host or peer.rank == self.rank:
                continue
            try:
                os.kill(peer.pid, 0)
            except ProcessLookupError:
                raise DistributedError(
                    f"rank {self.rank}: rank {peer.rank} (pid {peer.pid} on {peer.host}) exited "
                    f"while this rank waited in {what}") from None
            except PermissionError:
                pass

    def _check_exits(self, test, what):
        """Raise if a peer has left the group (its notice is here) and the collective still
        does not complete within a second (the peer may have done its part first)."""
        status = self.MPI.Status()
        if self._notices is None or not self._notices.Iprobe(
                source=self.MPI.ANY_SOURCE, tag=_EXIT_TAG, status=status):
            return
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            if test():
                return
            os.sched_yield()
        peer = self.peers[status.Get_source()]
        raise DistributedError(
            f"rank {self.rank}: rank {peer.rank} (pid {peer.pid} on {peer.host}) left the "
            f"process group (its script ended, called sys.exit or destroy_process_group) "
            f"while this rank waited in {what}; every rank must run the same collectives "
            f"(the same number of steps: give every rank as many batches)")

    def _request(self, req, what):
        """Wait for an MPI request (blocking calls cannot time out)."""
        self.wait_until(req.Test, what)

    # --- checks -------------------------------------------------------------------------------

    def check_same(self, what, shape, dtype, extra="", error=None):
        """Raise the same DistributedError on every rank unless all ranks pass the same
        shape and dtype (and ``extra``) to the collective ``what``, and none found its own
        arguments wrong (``error``: a message, such as a missing ``gather_list`` on the
        root). A rank that raised alone would leave the others waiting in the collective."""
        if not CHECK_COLLECTIVES or self.size == 1:
            if error is not None:
                raise DistributedError(error)
            return
        text = f"{what}|{tuple(shape)}|{np.dtype(dtype).str}|{extra}"
        code = zlib.crc32(text.encode())
        mine = np.array([code, -code, error is not None], np.int64)
        both = np.empty_like(mine)
        self._request(self.comm.Iallreduce(mine, both, self.MPI.MAX), f"{what} (shape check)")
        if both[2]:
            errors = self.comm.allgather(error)
            raise DistributedError("; ".join(e if e.startswith(f"{what}: ") else f"{what}: {e}"
                                             for e in errors if e is not None))
        if both[0] == -both[1]:
            return
        seen = self.comm.allgather((what, f"{what} of shape {tuple(shape)} dtype "
                                          f"{np.dtype(dtype)} {extra}"))
        listing = "; ".join(f"rank {r}: {s.strip()}" for r, (_, s) in enumerate(seen))
        if len({w for w, _ in seen}) > 1:  # a rank with more steps than another, say
            raise DistributedError(
                f"{what}: ranks called different collectives ({listing}); every rank must call "
                f"the same collectives in the same order (as many steps on every rank)")
        raise DistributedError(
            f"{what}: ranks passed arrays of different shapes or dtypes ({listing}); every rank "
            f"must call the same collective with the same shape and dtype, in the same order")

    # --- collectives on buffers ---------------------------------------------------------------

    def _engine(self, buf, what):
        if type(buf) is np.ndarray:
            return None
        if self.nccl is None:
            raise DistributedError(
                f"{what}: a {type(buf).__module__}.{type(buf).__name__} buffer needs the NCCL "
                f"engine: init_process_group('nccl') (the 'mpi' backend reduces NumPy arrays)")
        return self.nccl

    def iall_reduce(self, buf, op, what="all_reduce"):
        """Start an all-reduce (op 'sum', 'max' or 'min'); returns a ``Work`` whose result is a
        new buffer."""
        with self._starting:
            self.check_same(what, buf.shape, buf.dtype, op)
            send, op = _reducible(buf, op, what)
            engine = self._engine(buf, what)
            if engine is not None:
                return _viewed_as(engine.all_reduce(send, op, what), buf.dtype)
            send = _contiguous(send)
            out = np.empty_like(send)
            req = self.comm.Iallreduce(send, out, self._mpi_op(op))
        return Work(req.Test, lambda: out.view(buf.dtype), what, self)

    def all_reduce(self, buf, op, what="all_reduce"):
        return self.iall_reduce(buf, op, what).wait()

    def iall_gather(self, buf, what="all_gather"):
        """Start an all-gather: the result stacks every rank's buffer, shape ``(size, *shape)``."""
        with self._starting:
            self.check_same(what, buf.shape, buf.dtype)
            engine = self._engine(buf, what)
            if engine is not None:
                return engine.all_gather(buf, what)
            send = _contiguous(buf)
            out = np.empty((self.size,) + send.shape, send.dtype)
            req = self.comm.Iallgather(send, out)
        return Work(req.Test, lambda: out, what, self)

    def all_gather(self, buf, what="all_gather"):
        return self.iall_gather(buf, what).wait()

    def ireduce_scatter(self, buf, op, what="reduce_scatter"):
        """Start a reduce-scatter of ``buf`` (shape ``(size, *rest)``): rank r gets the
        reduction over ranks of ``buf[r]``."""
        with self._starting:
            self.check_same(what, buf.shape, buf.dtype, op)
            if buf.ndim == 0 or buf.shape[0] != self.size:
                raise DistributedError(f"{what}: the input's leading axis must have the world "
                                       f"size {self.size}, got shape {tuple(buf.shape)}")
            send, op = _reducible(buf, op, what)
            engine = self._engine(buf, what)
            if engine is not None:
                return _viewed_as(engine.reduce_scatter(send, op, what), buf.dtype)
            send = _contiguous(send)
            out = np.empty(send.shape[1:], send.dtype)
            req = self.comm.Ireduce_scatter_block(send, out, self._mpi_op(op))
        return Work(req.Test, lambda: out.view(buf.dtype), what, self)

    def reduce_scatter(self, buf, op, what="reduce_scatter"):
        return self.ireduce_scatter(buf, op, what).wait()

    def _mpi_op(self, op):
        return {"sum": self.MPI.SUM, "max": self.MPI.MAX, "min": self.MPI.MIN}[op]

    def ibroadcast(self, buf, root, what="broadcast"):
        """Start a broadcast of rank ``root``'s buffer; every rank gets a new buffer."""
        self._check_root(root, what)
        with self._starting:
            self.check_same(what, buf.shape, buf.dtype, root)
            engine = self._engine(buf, what)
            if engine is not None:
                return engine.broadcast(buf, root, what)
            out = np.array(buf, copy=True, order="C")
            req = self.comm.Ibcast(out, root=root)
        return Work(req.Test, lambda: out, what, self)

    def broadcast(self, buf, root, what="broadcast"):
        return self.ibroadcast(buf, root, what).wait()

    def igather(self, buf, root, what="gather", error=None):
        """Start a gather to ``root``: its result is ``(size, *shape)`` there, None elsewhere.
        ``error``: what is wrong with this rank's arguments (raised on every rank)."""
        self._check_root(root, what)
        with self._starting:
            self.check_same(what, buf.shape, buf.dtype, root, error)
            if self._engine(buf, what) is not None:  # NCCL has no gather: all-gather, keep
                work = self.nccl.all_gather(buf, what)  # the result on the root
                return Work(work.is_completed,
                            lambda: work.wait() if self.rank == root else None, what, self)
            send = _contiguous(buf)
            out = np.empty((self.size,) + send.shape, send.dtype) if self.rank == root else None
            req = self.comm.Igather(send, out, root=root)
        return Work(req.Test, lambda: out, what, self)

    def iscatter(self, bufs, shape, dtype, root, what="scatter"):
        """Start a scatter from ``root``'s list ``bufs`` of ``size`` host buffers of ``shape``
        and ``dtype`` (ignored elsewhere): rank r gets ``bufs[r]``. Wrong buffers on the root
        are an error on every rank."""
        self._check_root(root, what)
        error = None
        if self.rank == root:
            if bufs is None or len(bufs) != self.size:
                error = f"rank {root} needs a scatter_list of {self.size} arrays"
            elif any(type(b) is not np.ndarray for b in bufs):
                error = (f"rank {root}: scatter runs on host (NumPy) arrays; move the arrays "
                         f"to the CPU first or broadcast them")
            elif any(tuple(b.shape) != tuple(shape) or b.dtype != dtype for b in bufs):
                error = (f"rank {root} must scatter {self.size} arrays of shape "
                         f"{tuple(shape)} and dtype {np.dtype(dtype)} (the output's), got "
                         f"{[(tuple(b.shape), str(b.dtype)) for b in bufs]}")
        with self._starting:
            self.check_same(what, shape, dtype, root, error)
            send = np.stack(bufs) if self.rank == root else None
            out = np.empty(tuple(shape), dtype)
            req = self.comm.Iscatter(send, out, root=root)
        return Work(req.Test, lambda: out, what, self)

    def ibarrier(self):
        """Start a barrier: its ``Work`` completes once every rank has started one. It takes
        part in the collectives' check, so a barrier on one rank facing another collective
        elsewhere is an error (MPI would let the one complete the other)."""
        with self._starting:
            self.check_same("barrier", (), np.uint8)
            req = self.comm.Ibarrier()
        return Work(req.Test, lambda: None, "barrier", self)

    def barrier(self):
        self.ibarrier().wait()

    def _check_root(self, root, what):
        if not 0 <= root < self.size:
            raise DistributedError(f"{what}: src/dst rank {root} is outside the group's ranks "
                                   f"0..{self.size - 1}")

    def abort(self, code=1):
        self.comm.Abort(code)


class _Nccl:
    """NCCL collectives on CuPy buffers (``cupy.cuda.nccl``), on the current CUDA stream, so
    they are ordered with the kernels that produced their inputs; a handle's ``wait`` polls a
    CUDA event recorded after the call (so NCCL waits time out too)."""

    DTYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
              "int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32",
              "uint32": "NCCL_UINT32", "int64": "NCCL_INT64", "uint64": "NCCL_UINT64"}
    OPS = {"sum": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN"}

    def __init__(self, group, nccl=None, cupy=None):
        if nccl is None:
            try:
                import cupy
                from cupy.cuda import nccl
            except ImportError as err:
                raise DistributedError(
                    "init_process_group('nccl') needs CuPy with NCCL: pip install -e "
                    "\".[cuda,distributed]\" on a machine with NVIDIA GPUs") from err
            # one GPU per rank: the ranks on one host take its GPUs in turn
            local = group.comm.Split_type(group.MPI.COMM_TYPE_SHARED)
            cupy.cuda.Device(local.Get_rank() % cupy.cuda.runtime.getDeviceCount()).use()
            local.Free()
        self.nccl, self.cupy, self.group = nccl, cupy, group
        uid = group.comm.bcast(nccl.get_unique_id() if group.rank == 0 else None, root=0)
        self.comm = nccl.NcclCommunicator(group.size, uid, group.rank)

    def _args(self, buf, what):
        name = self.DTYPES.get(np.dtype(buf.dtype).name)
        if name is None:
            raise DistributedError(f"{what}: NCCL has no {np.dtype(buf.dtype)} reduction; "
                                   f"use one of {sorted(self.DTYPES)}")
        if not buf.flags.c_contiguous:
            buf = self.cupy.ascontiguousarray(buf)
        return buf, getattr(self.nccl, name), self.cupy.cuda.get_current_stream()

    def _work(self, stream, out, what):
        event = self.cupy.cuda.Event(disable_timing=True)
        event.record(stream)
        return Work(lambda: event.done, lambda: out, what, self.group)

    def all_reduce(self, buf, op, what):
        buf, dtype, stream = self._args(buf, what)
        out = self.cupy.empty_like(buf)
        self.comm.allReduce(buf.data.ptr, out.data.ptr, buf.size, dtype,
                            getattr(self.nccl, self.OPS[op]), stream.ptr)
        return self._work(stream, out, what)

    def all_gather(self, buf, what):
        buf, dtype, stream = self._args(buf, what)
        out = self.cupy.empty((self.group.size,) + buf.shape, buf.dtype)
        self.comm.allGather(buf.data.ptr, out.data.ptr, buf.size, dtype, stream.ptr)
        return self._work(stream, out, what)

    def reduce_scatter(self, buf, op, what):
        buf, dtype, stream = self._args(buf, what)
        out = self.cupy.empty(buf.shape[1:], buf.dtype)
        self.comm.reduceScatter(buf.data.ptr, out.data.ptr, out.size, dtype,
                                getattr(self.nccl, self.OPS[op]), stream.ptr)
        return self._work(stream, out, what)

    def broadcast(self, buf, root, what):
        buf, dtype, stream = self._args(buf, what)
        out = buf.copy()
        self.comm.bcast(out.data.ptr, out.size, dtype, root, stream.ptr)
        return self._work(stream, out, what)


# --- the default group ----------------------------------------------------------------------

_default = None
_previous_excepthook = None
_EXIT_TAG = 7
_exit_hook_registered = False
_sent_notices = []  # the buffers of leaving notices in flight (MPI reads them after we return)


def default_group(what="a collective"):
    """The group ``init_process_group`` made, or a DistributedError naming ``what``."""
    if _default is None:
        raise DistributedError(
            f"{what}: the default process group is not initialized; call "
            f"fnx.distributed.init_process_group('mpi') first (and launch the script with "
            f"mpiexec -n N or python -m fnx.distributed.run --nproc N)")
    return _default


def is_initialized():
    """Whether ``init_process_group`` has been called (and not destroyed).

    >>> fnx.distributed.is_initialized()
    False
    """
    return _default is not None


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1,
                       store=None, group_name=""):
    """Join the job's process group (``torch.distributed.init_process_group``): the rank and
    world size come from the MPI launcher (``mpiexec -n N``); run without one, the world is
    this process alone. ``backend`` is ``"mpi"`` (NumPy arrays, over MPI) or ``"nccl"``
    (CuPy arrays over NCCL, NumPy arrays over MPI). ``timeout`` (seconds or a
    ``datetime.timedelta``, default 300 or ``$FNX_DIST_TIMEOUT``) bounds every wait.

    When the world has several ranks, an exception that reaches the top of the script calls
    ``MPI_Abort`` after printing its traceback and the rank's number, so the other ranks end
    too instead of waiting for it.

    >>> fnx.distributed.init_process_group("mpi")
    >>> fnx.distributed.get_rank(), fnx.distributed.get_world_size()
    (0, 1)
    >>> fnx.distributed.destroy_process_group()
    """
    global _default, _previous_excepthook, _exit_hook_registered
    if backend not in BACKENDS:
        raise DistributedError(f"init_process_group: unknown backend {backend!r}; fnx runs on "
                               f"{' or '.join(map(repr, BACKENDS))} (gloo's job is MPI's here)")
    if _default is not None:
        raise DistributedError("init_process_group: the default process group is already "
                               "initialized; call destroy_process_group() first")
    timeout = _seconds(timeout)
    group = ProcessGroup(backend, DEFAULT_TIMEOUT if timeout is None else timeout)
    for name, given, actual in (("world_size", world_size, group.size), ("rank", rank,
                                                                          group.rank)):
        if given not in (-1, None) and given != actual:
            raise DistributedError(f"init_process_group: {name}={given} but the MPI launcher "
                                   f"started this process with {name} {actual}")
    del init_method, store, group_name  # unused: MPI's launcher says who is who
    _default = group
    if group.size > 1:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _abort_on_exception
    if group.size > 1 and not _exit_hook_registered:
        atexit.register(_announce_leaving)  # runs before mpi4py's MPI_Finalize
        _exit_hook_registered = True
    _write_rank_table(group)


def destroy_process_group(group=None):
    """Leave the default process group (MPI itself stays initialized until the process exits,
    as mpi4py finalizes it then); ``init_process_group`` may be called again.

    >>> fnx.distributed.init_process_group("mpi")
    >>> fnx.distributed.destroy_process_group(); fnx.distributed.is_initialized()
    False
    """
    global _default, _previous_excepthook
    del group  # unused: only the default group exists
    if _default is None:
        return
    if _previous_excepthook is not None:
        sys.excepthook = _previous_excepthook
        _previous_excepthook = None
    _announce_leaving()
    _default.comm.Free()
    if _default._notices is not None:
        _default._notices.Free()
    _default = None


def _announce_leaving():
    """Tell every other rank that this one leaves the group: at ``destroy_process_group``, or
    at interpreter exit with the group still up (the script returned, or raised
    ``SystemExit``, which skips ``sys.excepthook``). A rank waiting for this one in a
    collective then raises a DistributedError naming it (``_check_exits``) instead of
    waiting out its timeout (a rank with fewer batches than the others, say)."""
    group = _default
    if group is None or group._notices is None:
        return
    mine = np.array([group.rank], np.int64)
    _sent_notices.append(mine)
    for peer in range(group.size):
        if peer != group.rank:
            group._notices.Isend(mine, dest=peer, tag=_EXIT_TAG).Free()


def _abort_on_exception(exc_type, exc, tb):
    group = _default
    (_previous_excepthook or sys.__excepthook__)(exc_type, exc, tb)
    if group is None:
        return
    sys.stderr.write(f"fnx.distributed: rank {group.rank} of {group.size} failed with "
                     f"{exc_type.__name__}: {exc}; aborting every rank of the job (MPI_Abort)\n")
    sys.stderr.flush()
    sys.stdout.flush()
    group.abort(1)


def _write_rank_table(group):
    """For ``python -m fnx.distributed.run``: rank 0 writes which pid is which rank, so the
    launcher can name the rank of a process that was killed."""
    path = os.environ.get("FNX_DIST_RANKS_FILE")
    if path and group.rank == 0:
        import json

        with open(path + ".tmp", "w") as f:
            json.dump([dataclasses.asdict(p) for p in group.peers], f)
        os.replace(path + ".tmp", path)
