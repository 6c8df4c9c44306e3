"""``fnx.nn.utils``: gradient clipping and parameter/vector conversion (``torch.nn.utils``).

>>> lin = fnx.nn.Linear(3, 2)
>>> fnx.nn.utils.parameters_to_vector(lin.parameters()).shape
(8,)
"""

from . import clip_grad, convert_parameters
from . import rnn
from .clip_grad import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm
from .convert_parameters import parameters_to_vector, vector_to_parameters

__all__ = ["clip_grad", "convert_parameters", "clip_grad_norm_", "clip_grad_value_",
           "clip_grads_with_norm_", "get_total_norm", "parameters_to_vector",
           "vector_to_parameters"]
__all__ += ["rnn"]
