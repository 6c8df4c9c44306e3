"""``fnx.nn``: neural-network building blocks with PyTorch's names (``torch.nn``).

``fnx.nn.Module`` and ``fnx.nn.Parameter`` carry PyTorch's stateful contract and are pytrees
(so ``fnx.grad``/``vmap``/``jit`` take modules); ``fnx.nn.functional`` holds the stateless
functions every layer calls (``import fnx.nn.functional as F``), ``fnx.nn.init`` the in-place
initializers.

>>> import fnx.nn.functional as F
>>> F.relu(fnx.tensor([-1.0, 2.0])).tolist()
[0.0, 2.0]
"""

from . import functional, init
from .containers import (Flatten, Identity, ModuleDict, ModuleList, ParameterDict,
                         ParameterList, Sequential, Unflatten)
from .module import CompiledModule, Module, Parameter, RemovableHandle, functional_call
from . import utils
from .layers.activation import (CELU, ELU, GELU, GLU, SELU, Hardsigmoid, Hardswish, Hardtanh,
                                LeakyReLU, LogSigmoid, LogSoftmax, Mish, PReLU, ReLU, ReLU6,
                                Sigmoid, SiLU, Softmax, Softmin, Softplus, Softsign, Tanh,
                                Threshold)
from .layers.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from .layers.dropout import AlphaDropout, Dropout, Dropout1d, Dropout2d
from .layers.linear import Bilinear, Linear
from .layers.normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm,
                                   InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm,
                                   RMSNorm)
from .layers.pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d,
                             AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d)
from .layers.sparse import Embedding, EmbeddingBag
from .layers.upsampling import (PixelShuffle, PixelUnshuffle, Upsample, UpsamplingBilinear2d,
                                UpsamplingNearest2d)
from .layers.attention import MultiheadAttention, NonDynamicallyQuantizableLinear
from .layers.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .layers.transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer,
                                 TransformerEncoder, TransformerEncoderLayer)
from .loss import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss,
                   HingeEmbeddingLoss, HuberLoss, KLDivLoss, L1Loss, MarginRankingLoss, MSELoss,
                   NLLLoss, PoissonNLLLoss, SmoothL1Loss, TripletMarginLoss)

__all__ = ["functional", "init", "Module", "Parameter", "RemovableHandle", "functional_call",
           "CompiledModule",
           "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
           "Identity", "Flatten", "Unflatten"]
# layers, losses and utils (fnx/nn/layers/, loss.py, utils/)
__all__ += [
    "utils", "Linear", "Bilinear", "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LayerNorm", "GroupNorm", "RMSNorm",
    "Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "Embedding", "EmbeddingBag",
    "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle",
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "GELU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "Softmin", "ELU", "SELU", "CELU", "SiLU", "Mish", "Softplus", "Softsign", "Hardtanh",
    "Hardswish", "Hardsigmoid", "Threshold", "GLU", "LogSigmoid",
    "L1Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss",
    "SmoothL1Loss", "HuberLoss", "KLDivLoss", "CosineEmbeddingLoss", "MarginRankingLoss",
    "TripletMarginLoss", "PoissonNLLLoss", "HingeEmbeddingLoss"]
# recurrent, attention and transformer layers (layers/rnn.py, attention.py, transformer.py)
__all__ += [
    "RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell",
    "MultiheadAttention", "NonDynamicallyQuantizableLinear", "TransformerEncoderLayer",
    "TransformerEncoder", "TransformerDecoderLayer", "TransformerDecoder", "Transformer"]
# data parallelism (fnx/nn/parallel/, layers/sync_batchnorm.py; docs/distributed.md)
from . import parallel  # noqa: E402
from .layers.sync_batchnorm import SyncBatchNorm  # noqa: E402
from .parallel import DataParallel  # noqa: E402

__all__ += ["parallel", "SyncBatchNorm", "DataParallel"]
