"""State-dict helpers of ``torch.nn.modules.utils`` (``fnx.nn.layers`` is fnx's
``torch.nn.modules``).

>>> from fnx.nn.layers.utils import consume_prefix_in_state_dict_if_present
>>> sd = fnx.nn.DataParallel(fnx.nn.Linear(2, 1)).state_dict()
>>> consume_prefix_in_state_dict_if_present(sd, "module.")
>>> list(sd)
['weight', 'bias']
"""

__all__ = ["consume_prefix_in_state_dict_if_present"]


def consume_prefix_in_state_dict_if_present(state_dict, prefix):
    """Strip ``prefix`` from the keys of ``state_dict`` that start with it, in place (PyTorch's
    function of the same name): a checkpoint saved from a ``DataParallel`` /
    ``DistributedDataParallel`` wrapper (keys ``module.weight``) then loads into the bare
    model. Keys without the prefix are kept as they are, and the order of the dict becomes the
    unprefixed keys followed by the stripped ones, as in PyTorch. A ``_metadata`` attribute
    (PyTorch's per-module version dict, present in state dicts that come from torch) is
    renamed the same way: its ``""`` entry is the wrapper's and stays, ``prefix`` without its
    dot names the wrapped model (it becomes ``""``).

    >>> import collections
    >>> from fnx.nn.layers.utils import consume_prefix_in_state_dict_if_present
    >>> sd = collections.OrderedDict([("module.0.weight", 1), ("module.0.bias", 2)])
    >>> consume_prefix_in_state_dict_if_present(sd, "module.")
    >>> list(sd.items())
    [('0.weight', 1), ('0.bias', 2)]
    """
    for key in list(state_dict):
        if key.startswith(prefix):
            state_dict[key[len(prefix):]] = state_dict.pop(key)
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is None:
        return
    for key in list(metadata):
        # "" is the wrapper's own entry: renaming the wrapped model's "module" to "" replaces it
        if key and (key == prefix.replace(".", "") or key.startswith(prefix)):
            metadata[key[len(prefix):]] = metadata.pop(key)
