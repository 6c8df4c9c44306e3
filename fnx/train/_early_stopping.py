"""Early stopping on a validation metric, keeping a copy of the best weights."""

import math

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Stop training when a monitored metric has not improved for ``patience`` checks.

    An improvement is a value below ``best - min_delta`` (``mode='min'``, e.g. a loss) or
    above ``best + min_delta`` (``mode='max'``, e.g. an accuracy); a NaN never improves.
    :meth:`step` returns ``True`` once ``patience`` checks in a row brought no improvement.
    With ``restore_best_weights=True`` each improvement stores a copy of the model's
    ``state_dict`` (new buffers, so the optimizer's later in-place updates do not reach it),
    and the model gets those weights back when ``step`` says stop; call :meth:`restore`
    yourself when the loop ends without stopping.

    >>> model = fnx.nn.Linear(2, 1)
    >>> stopper = fnx.train.EarlyStopping(patience=2)
    >>> [stopper.step(loss, model) for loss in [1.0, 0.5, 0.6, 0.55]]
    [False, False, False, True]
    >>> stopper.best, stopper.best_step
    (0.5, 1)
    """

    def __init__(self, patience=5, min_delta=0.0, mode="min", restore_best_weights=True):
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be a positive int, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r} (the "
                             f"direction comes from mode={mode!r})")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode = mode
        self.restore_best_weights = restore_best_weights
        self.best = None  # the best metric so far (a float)
        self.best_step = None  # the index of the step() call that produced it
        self.num_bad_steps = 0  # checks since the last improvement
        self.steps = 0
        self.should_stop = False
        self.best_state = None  # the copied state_dict at the best metric

    def _improves(self, value):
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, metric, model=None):
        """Record this check's ``metric`` (a number or 0-d array: reading it syncs) and return
        whether to stop. ``model`` is needed with ``restore_best_weights``."""
        if self.restore_best_weights and model is None:
            raise ValueError("EarlyStopping.step: pass the model (step(metric, model)) so the "
                             "best weights can be kept, or use restore_best_weights=False")
        value = float(metric)
        if self._improves(value):
            self.best, self.best_step, self.num_bad_steps = value, self.steps, 0
            if self.restore_best_weights:
                self.best_state = {name: array.detach().clone()
                                   for name, array in model.state_dict().items()}
        else:
            self.num_bad_steps += 1
        self.steps += 1
        self.should_stop = self.num_bad_steps >= self.patience
        if self.should_stop and self.restore_best_weights and self.best_state is not None:
            self.restore(model)
        return self.should_stop

    __call__ = step

    def restore(self, model):
        """Load the best weights seen into ``model`` (in place: an optimizer over its
        parameters keeps working)."""
        if self.best_state is None:
            raise RuntimeError(
                "EarlyStopping.restore: no best weights stored: "
                + ("restore_best_weights=False" if not self.restore_best_weights
                   else "step(metric, model) has not recorded a non-NaN metric yet"))
        model.load_state_dict(self.best_state)
        return model

    def state_dict(self):
        """The stopper's state (numbers and the best weights' arrays), for ``fnx.save``."""
        return {"best": self.best, "best_step": self.best_step, "steps": self.steps,
                "num_bad_steps": self.num_bad_steps, "best_state": self.best_state}

    def load_state_dict(self, state):
        """Resume from :meth:`state_dict`'s output."""
        self.best, self.best_step = state["best"], state["best_step"]
        self.steps, self.num_bad_steps = state["steps"], state["num_bad_steps"]
        self.best_state = None if state["best_state"] is None else dict(state["best_state"])
        self.should_stop = self.num_bad_steps >= self.patience

    def __repr__(self):
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
                f"mode={self.mode!r}, best={self.best}, num_bad_steps={self.num_bad_steps})")
