"""The seed document's "Building Neural Networks" and "Training Neural Networks" sections,
ported with ``torch`` renamed to ``fnx``: the model classes run, a few training steps on small
synthetic data lower the loss, and the eager tape's gradients equal fnx.grad's.

The guide's code is kept as written (its CamelCase names included); only data loaders and
pretrained torchvision models are replaced by small synthetic stand-ins. Sequence layers (LSTM,
GRU, MultiheadAttention, Transformer) are exercised when fnx.nn has them."""

import math

import numpy as np
import pytest

import fnx
import fnx.nn as nn
import fnx.nn.functional as F
import fnx.optim as optim
from fnx.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR, ReduceLROnPlateau, StepLR


@pytest.fixture(autouse=True)
def _seeded():
    # the guide's models draw their initialisation from the global generator: seed it (and
    # restore it afterwards, for the tests that run next)
    seed, state = fnx.initial_seed(), fnx.get_rng_state()
    fnx.manual_seed(0)
    yield
    fnx.manual_seed(seed)
    fnx.set_rng_state(state)


def close(got, want, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=atol)


def needs(*names):
    missing = [n for n in names if not hasattr(nn, n)]
    if missing:
        pytest.skip(f"fnx.nn has no {', '.join(missing)} yet (sequence layers)")


# --- the guide's models, as written ------------------------------------------------------------


class SimpleNetwork(nn.Module):
    def __init__(self, InputSize, HiddenSize, OutputSize):
        super(SimpleNetwork, self).__init__()
        self.Fc1 = nn.Linear(InputSize, HiddenSize)
        self.Fc2 = nn.Linear(HiddenSize, OutputSize)

    def forward(self, x):
        x = F.relu(self.Fc1(x))
        x = self.Fc2(x)
        return x


class CNN(nn.Module):
    def __init__(self, NumClasses=10):
        super(CNN, self).__init__()

        # Convolutional layers
        self.Conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1)
        self.Bn1 = nn.BatchNorm2d(64)
        self.Conv2 = nn.Conv2d(64, 128, kernel_size=3, padding=1)
        self.Bn2 = nn.BatchNorm2d(128)
        self.Conv3 = nn.Conv2d(128, 256, kernel_size=3, padding=1)
        self.Bn3 = nn.BatchNorm2d(256)

        self.Pool = nn.MaxPool2d(2, 2)
        self.Dropout = nn.Dropout(0.5)

        # Fully connected layers
        self.Fc1 = nn.Linear(256 * 4 * 4, 512)
        self.Fc2 = nn.Linear(512, NumClasses)

    def forward(self, x):
        # Input: (batch, 3, 32, 32)
        x = self.Pool(F.relu(self.Bn1(self.Conv1(x))))  # (batch, 64, 16, 16)
        x = self.Pool(F.relu(self.Bn2(self.Conv2(x))))  # (batch, 128, 8, 8)
        x = self.Pool(F.relu(self.Bn3(self.Conv3(x))))  # (batch, 256, 4, 4)

        x = x.view(x.size(0), -1)  # Flatten
        x = self.Dropout(F.relu(self.Fc1(x)))
        x = self.Fc2(x)
        return x


class RNNClassifier(nn.Module):
    def __init__(self, VocabSize, EmbedDim, HiddenDim, NumClasses, NumLayers=2):
        super(RNNClassifier, self).__init__()

        self.Embedding = nn.Embedding(VocabSize, EmbedDim)
        self.Lstm = nn.LSTM(
            EmbedDim,
            HiddenDim,
            num_layers=NumLayers,
            batch_first=True,
            dropout=0.5,
            bidirectional=True
        )
        self.Fc = nn.Linear(HiddenDim * 2, NumClasses)  # *2 for bidirectional
        self.Dropout = nn.Dropout(0.5)

    def forward(self, x):
        # x shape: (batch, seq_len)
        embedded = self.Embedding(x)  # (batch, seq_len, embed_dim)

        # LSTM output
        lstm_out, (hidden, cell) = self.Lstm(embedded)

        # Use final hidden state from both directions
        hidden = fnx.cat((hidden[-2], hidden[-1]), dim=1)

        output = self.Dropout(hidden)
        output = self.Fc(output)
        return output


class TransformerClassifier(nn.Module):
    def __init__(self, VocabSize, EmbedDim, NumHeads, NumLayers, NumClasses, MaxSeqLen=512):
        super(TransformerClassifier, self).__init__()

        self.Embedding = nn.Embedding(VocabSize, EmbedDim)
        self.PositionalEncoding = self._create_positional_encoding(MaxSeqLen, EmbedDim)

        encoder_layer = nn.TransformerEncoderLayer(
            d_model=EmbedDim,
            nhead=NumHeads,
            dim_feedforward=EmbedDim * 4,
            dropout=0.1,
            batch_first=True
        )
        self.Transformer = nn.TransformerEncoder(encoder_layer, num_layers=NumLayers)

        self.Fc = nn.Linear(EmbedDim, NumClasses)
        self.Dropout = nn.Dropout(0.1)

    def _create_positional_encoding(self, MaxLen, Dim):
        pe = fnx.zeros(MaxLen, Dim)
        position = fnx.arange(0, MaxLen, dtype=fnx.float).unsqueeze(1)
        div_term = fnx.exp(fnx.arange(0, Dim, 2).float() * (-fnx.log(fnx.tensor(10000.0)) / Dim))

        pe[:, 0::2] = fnx.sin(position * div_term)
        pe[:, 1::2] = fnx.cos(position * div_term)
        return nn.Parameter(pe.unsqueeze(0), requires_grad=False)

    def forward(self, x):
        # x shape: (batch, seq_len)
        seq_len = x.size(1)

        embedded = self.Embedding(x)
        embedded = embedded + self.PositionalEncoding[:, :seq_len, :]
        embedded = self.Dropout(embedded)

        transformer_out = self.Transformer(embedded)

        # Global average pooling
        pooled = transformer_out.mean(dim=1)

        output = self.Fc(pooled)
        return output


class ResidualBlock(nn.Module):
    def __init__(self, InChannels, OutChannels, stride=1):
        super(ResidualBlock, self).__init__()

        self.Conv1 = nn.Conv2d(InChannels, OutChannels, kernel_size=3, stride=stride, padding=1,
                               bias=False)
        self.Bn1 = nn.BatchNorm2d(OutChannels)
        self.Conv2 = nn.Conv2d(OutChannels, OutChannels, kernel_size=3, stride=1, padding=1,
                               bias=False)
        self.Bn2 = nn.BatchNorm2d(OutChannels)

        # Shortcut connection
        self.Shortcut = nn.Sequential()
        if stride != 1 or InChannels != OutChannels:
            self.Shortcut = nn.Sequential(
                nn.Conv2d(InChannels, OutChannels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(OutChannels)
            )

    def forward(self, x):
        out = F.relu(self.Bn1(self.Conv1(x)))
        out = self.Bn2(self.Conv2(out))
        out += self.Shortcut(x)
        out = F.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, NumBlocks, NumClasses=10):
        super(ResNet, self).__init__()

        self.InChannels = 64
        self.Conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.Bn1 = nn.BatchNorm2d(64)

        self.Layer1 = self._make_layer(block, 64, NumBlocks[0], stride=1)
        self.Layer2 = self._make_layer(block, 128, NumBlocks[1], stride=2)
        self.Layer3 = self._make_layer(block, 256, NumBlocks[2], stride=2)
        self.Layer4 = self._make_layer(block, 512, NumBlocks[3], stride=2)

        self.AvgPool = nn.AdaptiveAvgPool2d((1, 1))
        self.Fc = nn.Linear(512, NumClasses)

    def _make_layer(self, block, OutChannels, NumBlocks, stride):
        strides = [stride] + [1] * (NumBlocks - 1)
        layers = []
        for stride in strides:
            layers.append(block(self.InChannels, OutChannels, stride))
            self.InChannels = OutChannels
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.Bn1(self.Conv1(x)))
        out = self.Layer1(out)
        out = self.Layer2(out)
        out = self.Layer3(out)
        out = self.Layer4(out)
        out = self.AvgPool(out)
        out = out.view(out.size(0), -1)
        out = self.Fc(out)
        return out


# --- helpers -----------------------------------------------------------------------------------


def tape_equals_grad(model, loss_fn, *inputs, seed=0):
    """Eager ``loss.backward()`` gradients equal ``fnx.grad``'s for ``model``'s parameters.

    Models with BatchNorm hold an int64 buffer (num_batches_tracked), a leaf fnx.grad does not
    differentiate, so the parameters are differentiated through functional_call. Both passes
    draw the same dropout masks (the global generator reseeded before each). Frozen
    parameters (requires_grad=False) are passed along with the buffers."""
    params = {k: p for k, p in model.named_parameters() if p.requires_grad}
    buffers = {k: p for k, p in model.named_parameters() if not p.requires_grad}
    buffers.update(model.named_buffers())

    def loss(p):
        return loss_fn(nn.functional_call(model, (p, buffers), inputs))

    fnx.manual_seed(seed)
    want = fnx.grad(loss)(params)
    model.zero_grad()
    fnx.manual_seed(seed)
    loss_fn(model(*inputs)).backward()
    for k, p in params.items():
        close(p.grad, want[k], rtol=1e-4, atol=1e-6)


def train(model, optimizer, criterion, batches, steps):
    losses = []
    for _ in range(steps):
        for data, target in batches:
            optimizer.zero_grad()
            output = model(data)
            loss = criterion(output, target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def eval_loss(model, criterion, data, target):
    """The loss without dropout (eval mode), so before/after comparisons are not noise."""
    model.eval()
    with fnx.no_grad():
        loss = criterion(model(data), target).item()
    model.train()
    return loss


def synthetic(n, shape, classes, seed):
    g = fnx.Generator().manual_seed(seed)
    return fnx.randn(n, *shape, generator=g), fnx.randint(0, classes, (n,), generator=g)


# --- nn.Module basics and the basic training loop ------------------------------------------------


def test_simple_network_and_the_basic_training_loop():
    model = SimpleNetwork(784, 128, 10)
    input_data = fnx.randn(32, 784)  # Batch size 32
    output = model(input_data)
    assert output.shape == (32, 10)
    assert tuple(output.shape) == (32, 10) and output.size(0) == 32

    device = fnx.device("cuda" if fnx.cuda.is_available() else "cpu")
    model = SimpleNetwork(784, 128, 10).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.001)
    train_loader = [synthetic(16, (784,), 10, seed) for seed in range(3)]

    tape_equals_grad(model, lambda out: criterion(out, train_loader[0][1]), train_loader[0][0])

    NumEpochs = 4
    epoch_losses = []
    for epoch in range(NumEpochs):
        model.train()  # Set to training mode
        running_loss = 0.0

        for batch_idx, (data, target) in enumerate(train_loader):
            # Move data to device
            data, target = data.to(device), target.to(device)

            # Zero gradients
            optimizer.zero_grad()

            # Forward pass
            output = model(data)
            loss = criterion(output, target)

            # Backward pass
            loss.backward()

            # Update weights
            optimizer.step()

            running_loss += loss.item()

        epoch_losses.append(running_loss / len(train_loader))
    assert epoch_losses[-1] < 0.5 * epoch_losses[0]

    def evaluate(model, data_loader, device):
        model.eval()  # Set to evaluation mode
        correct = 0
        total = 0
        total_loss = 0

        with fnx.no_grad():  # Disable gradient computation
            for data, target in data_loader:
                data, target = data.to(device), target.to(device)

                output = model(data)
                loss = criterion(output, target)
                total_loss += loss.item()

                # Get predictions
                _, predicted = fnx.max(output.data, 1)
                total += target.size(0)
                correct += (predicted == target).sum().item()

        accuracy = 100 * correct / total
        avg_loss = total_loss / len(data_loader)

        return accuracy, avg_loss

    accuracy, avg_loss = evaluate(model, train_loader, device)
    assert accuracy > 80 and not model.training  # memorized the synthetic batches
    assert math.isclose(avg_loss, epoch_losses[-1], rel_tol=0.5)


def test_layer_constructors_and_custom_init():
    linear = nn.Linear(in_features=100, out_features=50, bias=True)
    linear = nn.Linear(100, 50)
    nn.init.xavier_uniform_(linear.weight)
    nn.init.zeros_(linear.bias)
    assert float(linear.weight.abs().max()) <= math.sqrt(6 / 150)
    assert float(linear.bias.abs().max()) == 0.0

    conv2d = nn.Conv2d(
        in_channels=3,      # RGB input
        out_channels=64,    # Number of filters
        kernel_size=3,      # 3x3 kernel
        stride=1,
        padding=1
    )
    conv1d = nn.Conv1d(in_channels=256, out_channels=128, kernel_size=5)
    deconv = nn.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1)
    maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
    avgpool = nn.AvgPool2d(kernel_size=2, stride=2)
    adaptive = nn.AdaptiveAvgPool2d(output_size=(7, 7))
    batch_norm = nn.BatchNorm2d(num_features=64)
    layer_norm = nn.LayerNorm(normalized_shape=[128])
    instance_norm = nn.InstanceNorm2d(num_features=64)
    group_norm = nn.GroupNorm(num_groups=8, num_channels=64)
    dropout = nn.Dropout(p=0.5)
    dropout2d = nn.Dropout2d(p=0.5)
    alpha_dropout = nn.AlphaDropout(p=0.5)

    image = fnx.randn(2, 3, 16, 16)
    features = conv2d(image)
    assert features.shape == (2, 64, 16, 16)
    assert conv1d(fnx.randn(2, 256, 20)).shape == (2, 128, 16)
    assert deconv(features).shape == (2, 32, 32, 32)
    assert maxpool(features).shape == avgpool(features).shape == (2, 64, 8, 8)
    assert adaptive(features).shape == (2, 64, 7, 7)
    for norm in (batch_norm, instance_norm, group_norm, dropout, dropout2d, alpha_dropout):
        assert norm(features).shape == features.shape
    assert layer_norm(fnx.randn(4, 128)).shape == (4, 128)

    relu = nn.ReLU()
    output = F.relu(features)  # Functional API
    close(relu(features), output, 0, 0)
    leaky_relu = nn.LeakyReLU(negative_slope=0.01)
    gelu = nn.GELU()
    sigmoid = nn.Sigmoid()
    tanh = nn.Tanh()
    softmax = nn.Softmax(dim=-1)
    elu = nn.ELU(alpha=1.0)
    selu = nn.SELU()
    silu = nn.SiLU()
    x = fnx.randn(3, 5)
    for act in (leaky_relu, gelu, sigmoid, tanh, elu, selu, silu):
        assert act(x).shape == (3, 5)
    close(softmax(x).sum(-1), np.ones(3))


def test_sequence_layer_constructors():
    needs("LSTM", "GRU", "RNN", "MultiheadAttention", "TransformerEncoderLayer",
          "TransformerEncoder")
    lstm = nn.LSTM(
        input_size=256,
        hidden_size=512,
        num_layers=2,
        batch_first=True,
        dropout=0.5,
        bidirectional=False
    )
    gru = nn.GRU(input_size=256, hidden_size=512, num_layers=2, batch_first=True)
    rnn = nn.RNN(input_size=256, hidden_size=512, batch_first=True)
    attention = nn.MultiheadAttention(
        embed_dim=512,
        num_heads=8,
        dropout=0.1,
        batch_first=True
    )
    encoder_layer = nn.TransformerEncoderLayer(
        d_model=512,
        nhead=8,
        dim_feedforward=2048,
        dropout=0.1
    )
    encoder = nn.TransformerEncoder(encoder_layer, num_layers=6)
    for module in (lstm, gru, rnn, attention, encoder):
        assert sum(p.numel() for p in module.parameters()) > 0


# --- complex architectures ---------------------------------------------------------------------


def test_cnn_trains_and_its_tape_gradients_equal_fnx_grad():
    fnx.manual_seed(0)
    model = CNN(NumClasses=10)
    criterion = nn.CrossEntropyLoss()
    data, target = synthetic(4, (3, 32, 32), 10, seed=1)
    tape_equals_grad(model, lambda out: criterion(out, target), data)
    assert model(data).shape == (4, 10)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    losses = train(model, optimizer, criterion, [(data, target)], steps=4)
    assert losses[-1] < losses[0]
    # 3 forward calls in the checks: fnx.grad through functional_call (the buffers passed are
    # the module's own, updated in place as torch.func does), the eager tape, the shape check
    assert model.Bn1.num_batches_tracked.item() == 4 + 3
    model.eval()
    with fnx.no_grad():
        first = model(data)
        close(model(data), first, 0, 0)  # eval: running statistics, no dropout


def test_residual_block_and_resnet():
    fnx.manual_seed(1)
    block = ResidualBlock(8, 16, stride=2)
    assert [n for n, _ in block.named_children()] == ["Conv1", "Bn1", "Conv2", "Bn2",
                                                      "Shortcut"]
    x = fnx.randn(4, 8, 6, 6)
    assert block(x).shape == (4, 16, 3, 3)
    identity = ResidualBlock(8, 8)
    assert len(identity.Shortcut) == 0 and identity(x).shape == x.shape
    target = fnx.randn(4, 16, 3, 3)
    tape_equals_grad(block, lambda out: F.mse_loss(out, target), x)
    optimizer = optim.Adam(block.parameters(), lr=0.01)
    losses = train(block, optimizer, nn.MSELoss(), [(x, target)], steps=6)
    assert losses[-1] < losses[0]

    # the guide's ResNet18 is ResNet(ResidualBlock, [2, 2, 2, 2]); one block per stage keeps
    # the initialisation of its millions of parameters quick
    model = ResNet(ResidualBlock, [1, 1, 1, 1], NumClasses=10)
    assert [n for n, _ in model.named_children()] == [
        "Conv1", "Bn1", "Layer1", "Layer2", "Layer3", "Layer4", "AvgPool", "Fc"]
    assert "Layer2.0.Shortcut.1.running_var" in model.state_dict()
    total_params = sum(p.numel() for p in model.parameters())
    trainable_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert total_params == trainable_params == 4903242
    model.eval()
    with fnx.no_grad():
        assert model(fnx.randn(2, 3, 8, 8)).shape == (2, 10)

    # transfer learning: freeze everything, replace the classifier, train only it
    for param in model.parameters():
        param.requires_grad = False
    num_features = model.Fc.in_features
    model.Fc = nn.Linear(num_features, 3)
    optimizer = optim.Adam(model.Fc.parameters(), lr=0.001)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 512 * 3 + 3


def check_token_classifier(model):
    """A classifier of ``(batch, seq_len)`` token ids: shape, tape == grad, and training."""
    x = fnx.randint(0, 50, (4, 7))
    target = fnx.randint(0, 3, (4,))
    assert model(x).shape == (4, 3)
    tape_equals_grad(model, lambda out: F.cross_entropy(out, target), x)
    criterion = nn.CrossEntropyLoss()
    before = eval_loss(model, criterion, x, target)
    train(model, optim.Adam(model.parameters(), lr=0.01), criterion, [(x, target)], steps=8)
    assert eval_loss(model, criterion, x, target) < before


def test_rnn_classifier():
    needs("LSTM")
    check_token_classifier(RNNClassifier(VocabSize=50, EmbedDim=8, HiddenDim=6, NumClasses=3))


def test_transformer_classifier():
    needs("TransformerEncoderLayer", "TransformerEncoder")
    model = TransformerClassifier(VocabSize=50, EmbedDim=8, NumHeads=2, NumLayers=2,
                                  NumClasses=3, MaxSeqLen=16)
    assert not model.PositionalEncoding.requires_grad
    check_token_classifier(model)


def test_positional_encoding_of_the_transformer_classifier():
    # the guide's helper alone (it needs no transformer layer)
    pe = TransformerClassifier._create_positional_encoding(None, 10, 6)
    assert isinstance(pe, nn.Parameter) and pe.shape == (1, 10, 6) and not pe.requires_grad
    position = np.arange(10.0)[:, None]
    div_term = np.exp(np.arange(0, 6, 2) * (-math.log(10000.0) / 6))
    close(pe[0, :, 0::2], np.sin(position * div_term))
    close(pe[0, :, 1::2], np.cos(position * div_term))


# --- losses, optimizers, schedulers, clipping ----------------------------------------------------


def test_loss_functions():
    cross_entropy = nn.CrossEntropyLoss()  # For multi-class classification
    bce = nn.BCELoss()  # Binary cross-entropy
    bce_logits = nn.BCEWithLogitsLoss()  # BCE with sigmoid (more stable)
    nll = nn.NLLLoss()  # Negative log likelihood
    mse = nn.MSELoss()  # Mean squared error
    mae = nn.L1Loss()  # Mean absolute error
    smooth_l1 = nn.SmoothL1Loss()  # Huber loss
    huber = nn.HuberLoss()
    weights = fnx.tensor([1.0, 2.0, 3.0])  # Class weights
    weighted_ce = nn.CrossEntropyLoss(weight=weights)

    logits, labels = fnx.randn(6, 3), fnx.tensor([0, 1, 2, 2, 1, 0])
    probs, binary = fnx.rand(6, 3), (fnx.rand(6, 3) > 0.5).float()
    close(cross_entropy(logits, labels), nll(F.log_softmax(logits, dim=1), labels))
    close(bce_logits(logits, binary), bce(fnx.sigmoid(logits), binary))
    assert bce(probs, binary).item() > 0
    y = fnx.randn(6, 3)
    assert mse(logits, y).item() > 0 and mae(logits, y).item() > 0
    close(smooth_l1(logits, y), huber(logits, y))  # equal for beta = delta = 1
    w = np.array([1.0, 2.0, 3.0])[np.asarray(labels)]
    per = -np.asarray(F.log_softmax(logits, dim=1))[np.arange(6), np.asarray(labels)]
    close(weighted_ce(logits, labels), (w * per).sum() / w.sum())


class ConvFc(nn.Module):
    """A model with the attributes the guide's per-parameter-options example refers to."""

    def __init__(self):
        super().__init__()
        self.conv_layers = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                                         nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc_layers = nn.Sequential(nn.Linear(4, 3))

    def forward(self, x):
        return self.fc_layers(self.conv_layers(x))


def test_optimizers_and_schedulers():
    model = ConvFc()
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    optimizer = optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999), weight_decay=1e-4)
    optimizer = optim.AdamW(model.parameters(), lr=0.001, weight_decay=0.01)
    optimizer = optim.RMSprop(model.parameters(), lr=0.001, alpha=0.99)
    optimizer = optim.Adagrad(model.parameters(), lr=0.01)
    optimizer = optim.Adadelta(model.parameters(), lr=1.0, rho=0.9)
    optimizer = optim.SGD([
        {'params': model.conv_layers.parameters(), 'lr': 0.01},
        {'params': model.fc_layers.parameters(), 'lr': 0.001}
    ], momentum=0.9)
    assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.001]

    train_loader = [synthetic(8, (1, 5, 5), 3, seed) for seed in range(2)]
    NumEpochs = 3
    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
    scheduler = ReduceLROnPlateau(optimizer, mode='min', factor=0.1, patience=10, verbose=True)
    scheduler = CosineAnnealingLR(optimizer, T_max=100, eta_min=0)
    scheduler = fnx.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.95)
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scheduler = OneCycleLR(optimizer, max_lr=0.01, steps_per_epoch=len(train_loader),
                           epochs=NumEpochs)
    criterion = nn.CrossEntropyLoss()
    lrs = []
    for epoch in range(NumEpochs):
        for data, target in train_loader:
            optimizer.zero_grad()
            criterion(model(data), target).backward()
            optimizer.step()
            scheduler.step()  # For OneCycleLR (per batch)
            lrs.append(scheduler.get_last_lr()[0])
    assert max(lrs) == pytest.approx(0.01, rel=0.05) and lrs[-1] < lrs[2]


def test_gradient_clipping_and_accumulation():
    model = SimpleNetwork(10, 16, 3)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    train_loader = [synthetic(8, (10,), 3, seed) for seed in range(4)]

    fnx.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)  # no gradients yet: no-op
    fnx.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)
    for data, target in train_loader:
        optimizer.zero_grad()
        output = model(data)
        loss = criterion(output, target)
        loss.backward()

        # Clip gradients before optimizer step
        fnx.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        total = fnx.nn.utils.get_total_norm([p.grad for p in model.parameters()])
        assert total.item() <= 1.0 + 1e-5

        optimizer.step()

    # gradient accumulation: 4 backward passes of loss / 4 equal one pass over all of it
    accumulation_steps = 4
    optimizer.zero_grad()
    for i, (data, target) in enumerate(train_loader):
        output = model(data)
        loss = criterion(output, target) / accumulation_steps
        loss.backward()
    accumulated = {k: np.asarray(p.grad).copy() for k, p in model.named_parameters()}
    optimizer.zero_grad()
    all_data = fnx.cat([d for d, _ in train_loader])
    all_target = fnx.cat([t for _, t in train_loader])
    criterion(model(all_data), all_target).backward()
    for k, p in model.named_parameters():
        close(p.grad, accumulated[k], rtol=1e-4, atol=1e-6)

    # Check 1 of "Model Not Learning": gradients are flowing
    for name, param in model.named_parameters():
        if param.grad is not None:
            assert param.grad.norm().item() > 0


def test_knowledge_distillation_and_checkpoint_round_trip():
    def distillation_loss(student_logits, teacher_logits, labels, temperature=3.0, alpha=0.5):
        # Soft targets from teacher
        soft_targets = F.softmax(teacher_logits / temperature, dim=1)
        soft_student = F.log_softmax(student_logits / temperature, dim=1)

        # KL divergence loss
        distillation_loss = F.kl_div(soft_student, soft_targets,
                                     reduction='batchmean') * (temperature ** 2)

        # Student loss on hard labels
        student_loss = F.cross_entropy(student_logits, labels)

        # Combined loss
        return alpha * distillation_loss + (1 - alpha) * student_loss

    fnx.manual_seed(2)
    teacher_model, student_model = SimpleNetwork(6, 32, 4), SimpleNetwork(6, 4, 4)
    optimizer = optim.Adam(student_model.parameters(), lr=0.01)
    train_loader = [synthetic(16, (6,), 4, seed) for seed in range(2)]
    teacher_model.eval()
    student_model.train()
    losses = []
    for _ in range(8):
        for data, labels in train_loader:
            optimizer.zero_grad()

            with fnx.no_grad():
                teacher_logits = teacher_model(data)

            student_logits = student_model(data)
            loss = distillation_loss(student_logits, teacher_logits, labels)

            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert losses[-2] < losses[0] and losses[-1] < losses[1]  # per batch
    assert all(p.grad is None for p in teacher_model.parameters())

    # "Save model state dict (recommended)" without torch.save: the state dict round trip
    checkpoint = {'model_state_dict': student_model.state_dict(),
                  'optimizer_state_dict': optimizer.state_dict()}
    model = SimpleNetwork(6, 4, 4)
    model.load_state_dict(checkpoint['model_state_dict'])
    model.eval()
    close(model(train_loader[0][0]), student_model(train_loader[0][0]), 0, 0)
    total_params = sum(p.numel() for p in model.parameters())
    assert total_params == 6 * 4 + 4 + 4 * 4 + 4
