"""Transfer learning (the guide's fine-tuning recipe): pretrain on digits 0-4, fine-tune on 5-9.

The guide's recipe with ``torch`` renamed to ``fnx`` and a small CNN in place of a
torchvision ResNet-50 (its parameter names follow ResNet's: ``conv1``, ``bn1``, ``layer1``,
``layer2``, ``fc``):

1. pretrain the CNN on the digits 0-4 (a 5-way head), the training step compiled by
   ``fnx.compile``;
2. ``fnx.save(model.state_dict(), path)`` (a safetensors file), then build a fresh model and
   ``model.load_state_dict(fnx.load(path))``, checking that every array came back bit for bit;
3. freeze the early layers: every parameter whose name holds neither ``layer2`` nor ``fc``
   gets ``requires_grad_(False)``;
4. replace the classifier: ``model.fc = nn.Linear(num_features, 5)`` for the digits 5-9;
5. one optimizer with two parameter groups, ``layer2`` at ``--lr-layer2`` and the new ``fc`` at
   ``--lr-fc`` (the guide's ``optim.Adam([{'params': ..., 'lr': ...}, ...])``);
6. fine-tune on ``--finetune-size`` labelled images of 5-9 (50 by default: 10 a class, the
   small-data case transfer learning is for), the step compiled again;
7. check that the frozen parameters did not change (asserted) and that they received no
   gradient, then report the test accuracy on the 5-9 test images.

For comparison the same network is trained from scratch (every layer trainable, the same
images, epochs and batches). The frozen layers' BatchNorm running statistics still adapt to
the new digits, as in PyTorch (only parameters are frozen; call ``.eval()`` on those layers
to keep their statistics too).

What it finds: features learned on 0-4 are about as good a start for 5-9 as random ones
here. With 50 labelled images the fine-tuned model reaches 87.2% / 82.1% / 82.1% (seeds
0 / 1 / 2) and the model trained from scratch 84.9% / 87.2% / 86.0%. Pretraining for 3
epochs, other learning rates, 25 or 100 images, or frozen BatchNorm statistics did not change
that picture: a fresh network learns these 8x8 digits from few examples, and the frozen
layers were fitted to other digits.

Run: ``python examples/fine_tune.py`` (about 10 s on 2 CPU cores once the kernels are in the
on-disk cache). The last line is ``fine-tuned test accuracy: X``.
"""

import argparse
import os
import tempfile
import time

import numpy as np

import fnx
import fnx.nn as nn
import fnx.nn.functional as F
from fnx.data import DataLoader, TensorDataset


class Net(nn.Module):
    """A small CNN with ResNet's parameter names: conv1/bn1, two conv blocks, fc."""

    def __init__(self, NumClasses=5, Width=32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, Width, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(Width)
        self.layer1 = nn.Sequential(
            nn.Conv2d(Width, Width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(Width), nn.ReLU(), nn.MaxPool2d(2))  # 8x8 -> 4x4
        self.layer2 = nn.Sequential(
            nn.Conv2d(Width, 2 * Width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(2 * Width), nn.ReLU(), nn.MaxPool2d(2))  # 4x4 -> 2x2
        self.fc = nn.Linear(2 * Width * 2 * 2, NumClasses)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer2(self.layer1(out))
        return self.fc(out.flatten(1))


def digits_between(low, high, train):
    """The digits ``low``..``high`` as a TensorDataset with labels shifted to start at 0."""
    images, labels = fnx.datasets.digits(train=train).tensors
    keep = np.nonzero((labels.numpy() >= low) & (labels.numpy() <= high))[0]
    return TensorDataset(images[keep], labels[keep] - low)


def first_per_class(dataset, per_class):
    """The first ``per_class`` samples of every class (a small labelled set)."""
    images, labels = dataset.tensors
    y = labels.numpy()
    keep = np.sort(np.concatenate([np.nonzero(y == c)[0][:per_class] for c in np.unique(y)]))
    return TensorDataset(images[keep], labels[keep])


def train(model, optimizer, dataset, epochs, seed, eager):
    """``epochs`` epochs of shuffled batches (the order fixed by ``seed``) through the
    guide's step, compiled unless ``eager``; returns the last epoch's mean loss."""
    loader = DataLoader(dataset, batch_size=min(64, len(dataset)), shuffle=True,
                        drop_last=True, generator=fnx.Generator().manual_seed(seed))

    def train_step(data, target):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
        return loss

    step = train_step if eager else fnx.compile(train_step)
    model.train()
    mean_loss = float("nan")
    for _ in range(epochs):
        mean_loss = sum(step(data, target).item() for data, target in loader) / len(loader)
    return mean_loss


def accuracy(model, dataset):
    loader = DataLoader(dataset, batch_size=512)
    return fnx.train.evaluate(model, loader, metrics={"acc": fnx.train.Accuracy()})["acc"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--finetune-epochs", type=int, default=30)
    parser.add_argument("--finetune-size", type=int, default=50,
                        help="labelled images of 5-9 to fine-tune on (a multiple of 5)")
    parser.add_argument("--lr-layer2", type=float, default=1e-3)
    parser.add_argument("--lr-fc", type=float, default=1e-2)
    parser.add_argument("--checkpoint", default=None,
                        help="where to save the pretrained weights (default: a temporary file)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eager", action="store_true", help="run the steps uncompiled")
    args = parser.parse_args(argv)

    fnx.manual_seed(args.seed)
    start = time.perf_counter()

    # 1. pretrain on 0-4
    source_train, source_test = digits_between(0, 4, True), digits_between(0, 4, False)
    model = Net(NumClasses=5)
    loss = train(model, fnx.optim.Adam(model.parameters(), lr=3e-3), source_train,
                 args.pretrain_epochs, args.seed, args.eager)
    print(f"pretrained on digits 0-4 ({len(source_train)} images): loss {loss:.4f}, test "
          f"accuracy {accuracy(model, source_test):.4f}")

    # 2. save, and load into a fresh model
    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint or os.path.join(tmp, "pretrained.safetensors")
        fnx.save(model.state_dict(), path)
        model = Net(NumClasses=5)
        model.load_state_dict(fnx.load(path))
        saved = fnx.load(path)
    assert all(np.array_equal(saved[k].numpy(), v.numpy())
               for k, v in model.state_dict().items()), "the loaded weights differ"
    print(f"saved and reloaded {len(saved)} arrays ({os.path.basename(path)})")

    # 3. freeze early layers
    for name, param in model.named_parameters():
        if "layer2" not in name and "fc" not in name:
            param.requires_grad_(False)
    frozen = {name: p.numpy().copy() for name, p in model.named_parameters()
              if not p.requires_grad}

    # 4. replace the classifier
    num_features = model.fc.in_features
    model.fc = nn.Linear(num_features, 5)

    # 5. different learning rates for different parts
    optimizer = fnx.optim.Adam([
        {"params": model.layer2.parameters(), "lr": args.lr_layer2},
        {"params": model.fc.parameters(), "lr": args.lr_fc},
    ])
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"frozen: {', '.join(frozen)}; trainable: {trainable} of "
          f"{sum(p.numel() for p in model.parameters())} parameters in groups with lr "
          f"{[group['lr'] for group in optimizer.param_groups]}")

    # 6. fine-tune on a few labelled images of 5-9
    target_train = first_per_class(digits_between(5, 9, True), args.finetune_size // 5)
    target_test = digits_between(5, 9, False)
    loss = train(model, optimizer, target_train, args.finetune_epochs, args.seed + 1,
                 args.eager)
    fine_tuned = accuracy(model, target_test)

    # 7. the frozen layers did not move and got no gradient
    for name, p in model.named_parameters():
        if name in frozen:
            assert np.array_equal(p.numpy(), frozen[name]), f"frozen {name} changed"
            assert p.grad is None, f"frozen {name} received a gradient"
    print(f"frozen parameters unchanged: {len(frozen)} arrays checked")

    # the same network from scratch on the same images
    fnx.manual_seed(args.seed)
    scratch = Net(NumClasses=5)
    train(scratch, fnx.optim.Adam(scratch.parameters(), lr=3e-3), target_train,
          args.finetune_epochs, args.seed + 1, args.eager)
    print(f"{'eager' if args.eager else 'compiled'}: {time.perf_counter() - start:.1f} s")
    print(f"from scratch on the same {len(target_train)} images of 5-9: test accuracy "
          f"{accuracy(scratch, target_test):.4f}")
    print(f"fine-tuned test accuracy: {fine_tuned:.4f}")


if __name__ == "__main__":
    main()
