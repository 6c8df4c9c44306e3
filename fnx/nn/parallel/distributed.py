"""``DistributedDataParallel``: one model replica per rank, gradients averaged after
``backward()`` (``torch.nn.parallel.DistributedDataParallel``).

How the gradient averaging is wired to the eager tape: at construction every trainable
parameter gets a tensor hook (``register_hook``), and the parameters are split into buckets
(reverse registration order, the order gradients tend to be ready, up to ``bucket_cap_mb``
each, one dtype per bucket). During ``backward()`` the tape calls each parameter's hook with
its new gradient before accumulating it; the hook records what the parameter's ``.grad`` will
be, and as soon as the buckets before it are launched and a bucket is complete, its gradients
are concatenated and a non-blocking all-reduce starts (eagerly on the buffers through MPI; in a
compiled step the collective primitive is staged into the program at that point). Buckets are
launched in bucket order on every rank, so MPI sees the same collectives in the same order
everywhere. The hook of the last expected parameter waits for every bucket and writes the
averages into ``.grad``.
"""

import contextlib

import numpy as np

import fnx
import fnx.numpy as fnp
from fnx import distributed as dist
from fnx.core import state as host_state
from fnx.distributed import functional as dF
from fnx.distributed.process_group import DistributedError, default_group
from ..module import Module

__all__ = ["DistributedDataParallel"]

_UNFINISHED = (
    "DistributedDataParallel: expected to have finished reduction in the prior iteration "
    "before starting a new one: parameters {names} received no gradient in that backward "
    "pass. If some parameters are not used in the forward pass (branches, frozen heads), "
    "construct DistributedDataParallel with find_unused_parameters=True; make sure every "
    "forward output takes part in the loss.")


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over the default process group.

    At construction rank 0's parameters and buffers are broadcast to every rank (after
    checking that every rank has the same parameter names, shapes and dtypes). After each
    ``loss.backward()`` every parameter's ``.grad`` is the average over ranks (in buckets of
    ``bucket_cap_mb``, all-reduced while the rest of the gradients are accumulated).
    ``no_sync()`` skips the averaging (gradient accumulation: the next synchronized backward
    averages the accumulated gradients). ``find_unused_parameters=True`` lets a forward pass
    leave parameters unused. ``broadcast_buffers=True`` copies rank 0's buffers at every
    forward. Works inside ``fnx.compile``: the all-reduces become part of the step's program.

    >>> fnx.distributed.init_process_group("mpi")
    >>> model = fnx.nn.parallel.DistributedDataParallel(fnx.nn.Linear(3, 1))
    >>> model(fnx.ones(4, 3)).sum().backward()
    >>> model.module.weight.grad.tolist()     # averaged over the world (one rank here)
    [[4.0, 4.0, 4.0]]
    >>> fnx.distributed.destroy_process_group()
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0,
                 broadcast_buffers=True, process_group=None, bucket_cap_mb=25,
                 find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        del device_ids, output_device, dim, process_group, check_reduction  # unused
        del gradient_as_bucket_view, static_graph  # unused: no options of the CUDA reducer
        group = default_group("DistributedDataParallel")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        _check_same_model(group, module)
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._reducer = _Reducer(named, group, int(bucket_cap_mb * 2 ** 20))
        with fnx.no_grad():
            _broadcast_in_place([p for _, p in module.named_parameters()] +
                                [b for _, b in module.named_buffers() if b is not None])

    def forward(self, *inputs, **kwargs):
        reducer = self._reducer
        reducer.check_finished()
        if self.broadcast_buffers and reducer.group.size > 1:
            with fnx.no_grad():
                _broadcast_in_place([b for _, b in self.module.named_buffers()
                                     if b is not None])
        output = self.module(*inputs, **kwargs)
        # a compiled step contains the all-reduces or not: re-trace when that changes
        host_state.guard("DistributedDataParallel.require_backward_grad_sync",
                         self._sync_at_call)
        if self.require_backward_grad_sync and fnx.is_grad_enabled():
            reducer.arm(output if self.find_unused_parameters else None)
        return output

    @property
    def require_backward_grad_sync(self):
        """Whether the next backward averages gradients (False inside ``no_sync()``). Kept
        on the reducer: a compiled step guards it itself (``_sync_at_call``)."""
        return self._reducer.sync

    @require_backward_grad_sync.setter
    def require_backward_grad_sync(self, value):
        self._reducer.sync = bool(value)

    def _sync_at_call(self):
        """The sync flag as the compiled call found it: a ``no_sync()`` entered inside the
        step being traced does not count (the guard must not fail at every call)."""
        journal, before = self._reducer.entered_in
        if journal is not None and journal is host_state.active():
            return before
        return self.require_backward_grad_sync

    def __deepcopy__(self, memo):
        """A copy (an EMA model, say) averages its own gradients: its reducer is a new one
        whose hooks sit on the copied parameters, as PyTorch's rebuilds its reducer. The
        process group is shared, not copied (it holds the MPI communicator)."""
        reducer = self._reducer
        memo[id(reducer)] = None
        new = super().__deepcopy__(memo)
        named = [(n, p) for n, p in new.module.named_parameters() if p.requires_grad]
        new._reducer = _Reducer(named, reducer.group, reducer.cap_bytes)
        new._reducer.sync = reducer.sync
        return new

    @contextlib.contextmanager
    def no_sync(self):
        """Inside this context, backward passes accumulate local gradients without
        averaging; the first synchronized backward after it averages the sum.

        >>> fnx.distributed.init_process_group("mpi")
        >>> ddp = fnx.nn.parallel.DistributedDataParallel(fnx.nn.Linear(2, 1))
        >>> with ddp.no_sync():
        ...     ddp(fnx.ones(1, 2)).sum().backward()
        >>> ddp(fnx.ones(1, 2)).sum().backward(); ddp.module.bias.grad.tolist()
        [2.0]
        >>> fnx.distributed.destroy_process_group()
        """
        old = self.require_backward_grad_sync
        journal = host_state.active()
        if journal is not None and self._reducer.entered_in[0] is not journal:
            self._reducer.entered_in = (journal, old)
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old


def _check_same_model(group, module):
    """Every rank's parameters and buffers have rank 0's names, shapes and dtypes, and the
    same parameters are trainable (each rank averages the gradients of its own), or every
    rank raises the same error naming the first difference."""
    mine = [(kind if kind == "buffer" or a.requires_grad else "frozen parameter", n,
             tuple(a.shape), str(a.dtype))
            for kind, items in (("parameter", module.named_parameters()),
                                ("buffer", module.named_buffers()))
            for n, a in items if a is not None]
    everyone = [None] * group.size
    dist.all_gather_object(everyone, mine)  # a bounded wait (MPI's pickled one has none)
    for rank, theirs in enumerate(everyone):
        if theirs == everyone[0]:
            continue
        for ref, other in zip(everyone[0] + [None] * len(theirs), theirs + [None] * len(
                everyone[0])):
            if ref != other:
                break
        what = (lambda e: "nothing" if e is None else
                f"{e[0]} '{e[1]}' of shape {e[2]} and dtype {e[3]}")
        raise DistributedError(
            f"DistributedDataParallel: the models differ across ranks: rank 0 has "
            f"{what(ref)} where rank {rank} has {what(other)}; every rank must build the "
            f"same model before wrapping it")


def _flat_groups(arrays):
    """``arrays`` grouped by dtype: ``[(arrays, sizes)]``, so each group is one flat buffer."""
    groups = {}
    for a in arrays:
        groups.setdefault(str(a.dtype), []).append(a)
    return list(groups.values())


def _unflatten(flat, like):
    out, offset = [], 0
    for a in like:
        n = int(np.prod(a.shape, dtype=np.int64))
        out.append(flat[offset:offset + n].reshape(tuple(a.shape)))
        offset += n
    return out


def _broadcast_in_place(arrays):
    """Rank 0's values of ``arrays`` on every rank: one broadcast per dtype."""
    if not arrays or default_group("DistributedDataParallel").size == 1:
        return
    for same in _flat_groups(arrays):
        flat = dF.broadcast(fnp.concatenate([fnp.reshape(a, (-1,)) for a in same]), src=0)
        for a, value in zip(same, _unflatten(flat, same), strict=True):
            a.copy_(value)


class _Reducer:
    """The per-iteration bookkeeping of the gradient averaging (see the module docstring).
    Its own object, so a model's pytree structure holds no arrays or counters."""

    def __init__(self, named, group, cap_bytes):
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.group = group
        self.cap_bytes = cap_bytes
        self.buckets = []
        for i in reversed(range(len(self.params))):
            p = self.params[i]
            last = self.buckets[-1] if self.buckets else None
            if last is None or last["dtype"] != p.dtype or last["bytes"] >= cap_bytes:
                last = {"dtype": p.dtype, "bytes": 0, "members": []}
                self.buckets.append(last)
            last["members"].append(i)
            last["bytes"] += int(np.prod(p.shape, dtype=np.int64)) * p.dtype.itemsize
        self.buckets = [b["members"] for b in self.buckets]
        self.bucket_of = {i: k for k, b in enumerate(self.buckets) for i in b}
        self.armed = False
        self.started = False
        self.sync = True
        self.entered_in = (None, None)  # (journal, flag before) of a no_sync inside a trace
        for i, p in enumerate(self.params):
            p.register_hook(self._hook(i))

    def check_finished(self):
        if self.armed and self.started:
            missing = [self.names[i] for i in range(len(self.params)) if i not in self.totals]
            self.armed = False
            raise RuntimeError(_UNFINISHED.format(names=missing))

    def arm(self, output):
        """Expect a backward pass: every trainable parameter reports, or with
        ``find_unused_parameters`` those the output depends on (the others take part with
        their current gradient or zeros)."""
        self.armed, self.started = True, False
        self.totals, self.results = {}, []
        self.next_bucket = 0
        self.expected = set(range(len(self.params)))
        self.local_used = None
        if output is not None:
            used = _reachable_leaves(output)
            self.expected = {i for i, p in enumerate(self.params) if id(p._autograd) in used}
            self.local_used = [i in self.expected or p.grad is not None
                               for i, p in enumerate(self.params)]
            for i in set(range(len(self.params))) - self.expected:
                old = self.params[i].grad
                self.totals[i] = fnp.zeros(self.params[i].shape, self.params[i].dtype) \
                    if old is None else old
            if not self.expected:
                self.armed = False

    def _hook(self, i):
        def hook(g):
            if not self.armed or i not in self.expected or i in self.totals:
                return None
            self.started = True
            old = self.params[i].grad
            self.totals[i] = g if old is None else old + g
            self._launch_ready()
            if len(self.totals) < len(self.params):
                return None
            return self._finish(i)

        return hook

    def _launch_ready(self):
        while self.next_bucket < len(self.buckets) and all(
                i in self.totals for i in self.buckets[self.next_bucket]):
            members = self.buckets[self.next_bucket]
            flat = fnp.concatenate([fnp.reshape(self.totals[i], (-1,)) for i in members])
            self.results.append(dist.all_reduce(flat, op="mean", async_op=True))
            self.next_bucket += 1

    def _finish(self, current):
        """Wait for every bucket; write the averages into ``.grad`` (the current parameter's
        is returned to the tape, which stores it as its gradient)."""
        self.armed = False
        globally_used = None
        if self.local_used is not None:
            counts = dF.all_reduce(fnx.tensor(np.array(self.local_used, np.float32)), "sum")
            # in a compiled step the counts are not known while tracing: there every
            # parameter gets the average (zeros for one no rank used) instead of keeping None
            globally_used = np.asarray(counts) > 0 if type(counts) is fnx.Array else None
        mine = None
        for members, work in zip(self.buckets, self.results, strict=True):
            flat = work.wait()
            values = _unflatten(flat, [self.params[i] for i in members])
            for i, value in zip(members, values, strict=True):
                if globally_used is not None and not globally_used[i]:
                    continue
                if i == current:
                    mine = value
                    self.params[i].grad = None  # the tape stores ``mine`` as the gradient
                else:
                    self.params[i].grad = value
        return mine


def _reachable_leaves(output):
    """The ids of the autograd records of the leaves ``output`` (a pytree) depends on,
    walking the tape's nodes (``grad_fn`` and the records of their inputs)."""
    seen, leaves = set(), set()
    stack = [getattr(x, "_autograd", None) for x in fnx.tree.leaves(output)]
    while stack:
        meta = stack.pop()
        if meta is None or id(meta) in seen:
            continue
        seen.add(id(meta))
        if meta.grad_fn is None:
            leaves.add(id(meta))
        else:
            stack.extend(meta.grad_fn.in_metas)
    return leaves
