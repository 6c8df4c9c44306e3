"""``fnx.optim``: optimizers, two ways.

* The functional core (optax style): gradient transformations ``init(params) -> state`` /
  ``update(updates, state, params) -> (updates, state)`` composed with ``chain``, the
  aliases ``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``adagrad``, ``adadelta``,
  ``apply_updates`` and the schedules in ``fnx.optim.schedules``; pure, jittable,
  vmappable.
* The PyTorch-style classes ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``,
  ``Adadelta`` (``param_groups``, ``step()``, ``zero_grad()``, ``state_dict()``), which run
  the same transformations, and the schedulers in ``fnx.optim.lr_scheduler``.

>>> import fnx
>>> from fnx import optim
>>> loss = lambda w: ((w - 3.0) ** 2).sum()
>>> w = fnp.zeros(2)
>>> tx = optim.adam(0.1)
>>> state = tx.init(w)
>>> for _ in range(100):
...     updates, state = tx.update(fnx.grad(loss)(w), state, w)
...     w = optim.apply_updates(w, updates)
>>> [round(v, 1) for v in w.tolist()]
[3.0, 3.0]
"""

from . import lr_scheduler, schedules  # noqa: F401
from ._adagrad import Adadelta, Adagrad
from ._adam import Adam, AdamW
from .alias import adadelta, adagrad, adam, adamw, rmsprop, sgd
from .optimizer import Optimizer, required
from ._rmsprop import RMSprop
from ._sgd import SGD
from .transforms import (AddDecayedWeightsState, ClipByGlobalNormState, ClipState, EmptyState,
                         GradientTransformation, ScaleByAdaDeltaState, ScaleByAdamState,
                         ScaleByAmsgradState, ScaleByRmsState, ScaleByRssState,
                         ScaleByRStdDevState, ScaleByScheduleState, ScaleState, TraceState,
                         add_decayed_weights, apply_updates, chain, clip, clip_by_global_norm,
                         global_norm, identity, scale, scale_by_adadelta, scale_by_adagrad,
                         scale_by_adam, scale_by_amsgrad, scale_by_learning_rate, scale_by_rms,
                         scale_by_rss, scale_by_schedule, scale_by_stddev, trace)
from .schedules import (constant_schedule, cosine_decay_schedule, exponential_decay,  # noqa: F401
                        join_schedules, linear_schedule, piecewise_constant_schedule,
                        polynomial_schedule, warmup_cosine_decay_schedule)

__all__ = [
    "Optimizer", "required", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta",
    "lr_scheduler", "schedules",
    "sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta",
    "GradientTransformation", "EmptyState", "ScaleState", "ScaleByScheduleState",
    "ScaleByAdamState", "ScaleByAmsgradState", "ScaleByRmsState", "ScaleByRStdDevState",
    "ScaleByRssState", "ScaleByAdaDeltaState", "TraceState", "AddDecayedWeightsState",
    "ClipState", "ClipByGlobalNormState",
    "identity", "chain", "scale", "scale_by_schedule", "scale_by_learning_rate",
    "scale_by_adam", "scale_by_amsgrad", "scale_by_rms", "scale_by_stddev", "scale_by_rss",
    "scale_by_adagrad", "scale_by_adadelta", "trace", "add_decayed_weights", "clip",
    "clip_by_global_norm", "global_norm", "apply_updates",
    "constant_schedule", "linear_schedule", "polynomial_schedule", "exponential_decay",
    "cosine_decay_schedule", "warmup_cosine_decay_schedule", "piecewise_constant_schedule",
    "join_schedules",
]
