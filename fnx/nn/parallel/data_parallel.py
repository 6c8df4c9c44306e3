"""``DataParallel`` (``torch.nn.DataParallel``) on one process: fnx runs a model on the device
its arrays live on, so the wrapper calls the model; several GPUs are
``DistributedDataParallel``'s job (one process per GPU)."""

from ..module import Module

__all__ = ["DataParallel"]


class DataParallel(Module):
    """Accepts PyTorch's ``nn.DataParallel(model)`` recipe: runs ``module`` on its own
    device (parameters and ``state_dict`` keys under ``module.``, as PyTorch). For several
    devices or machines use ``fnx.nn.parallel.DistributedDataParallel``.

    >>> model = fnx.nn.DataParallel(fnx.nn.Linear(2, 1))
    >>> model(fnx.ones(3, 2)).shape, list(model.state_dict())
    ((3, 1), ['module.weight', 'module.bias'])
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        del device_ids, output_device, dim  # unused: one process runs on one device
        self.module = module

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)
