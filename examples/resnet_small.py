"""The guide's ResidualBlock/ResNet at small width classifies the 8x8 digits.

The model is the guide's ``ResNet`` built from its ``ResidualBlock`` with ``torch`` renamed to
``fnx``: a 3x3 stem, four stages of residual blocks (two 3x3 conv/BatchNorm layers plus a
shortcut; a 1x1 conv/BatchNorm projection where the stride or width changes) with strides
1/2/2/2, global average pooling and a linear head. The guide's widths are 64/128/256/512 with
two blocks per stage (ResNet-18) on 3x32x32 images; here the widths are ``--width`` times
1/2/4/8 (16/32/64/128 by default) and ``--blocks`` blocks per stage (one by default). The
digits are 1x8x8, and the strides 1/2/2/2 take an 8x8 image to 8/4/2/1 pixels per side, so it
needs neither padding nor upsampling: the last stage sees 1x1 maps, as a ResNet's last stage
sees 7x7 or 4x4 ones on larger images, and ``AdaptiveAvgPool2d((1, 1))`` works for any size.

What it shows:

* the residual block's ``out += self.Shortcut(x)`` (an in-place add on the tape; under
  ``fnx.compile`` it rebinds a traced value) and an empty ``nn.Sequential()`` as the identity
  shortcut, unchanged from the guide;
* the whole training step (forward, backward through every BatchNorm, SGD with momentum and
  weight decay, the running statistics) compiled by ``fnx.compile``, with ``OneCycleLR``
  stepped per batch inside the compiled step; ``--eager`` runs it uncompiled;
* ``fnx.train.evaluate`` for the test accuracy (``model.eval()``, ``fnx.no_grad()``).

Run: ``python examples/resnet_small.py`` (about 15 s on 2 CPU cores once the kernels are in
the on-disk cache). The last line is ``test accuracy: X``.
"""

import argparse
import time

import fnx
import fnx.nn as nn
import fnx.nn.functional as F
from fnx.data import DataLoader, Subset


class ResidualBlock(nn.Module):
    def __init__(self, InChannels, OutChannels, stride=1):
        super().__init__()

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
                nn.BatchNorm2d(OutChannels),
            )

    def forward(self, x):
        out = F.relu(self.Bn1(self.Conv1(x)))
        out = self.Bn2(self.Conv2(out))
        out += self.Shortcut(x)
        out = F.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, NumBlocks, NumClasses=10, InChannels=1, Width=64):
        super().__init__()

        self.InChannels = Width
        self.Conv1 = nn.Conv2d(InChannels, Width, kernel_size=3, stride=1, padding=1, bias=False)
        self.Bn1 = nn.BatchNorm2d(Width)

        self.Layer1 = self._make_layer(block, Width, NumBlocks[0], stride=1)
        self.Layer2 = self._make_layer(block, 2 * Width, NumBlocks[1], stride=2)
        self.Layer3 = self._make_layer(block, 4 * Width, NumBlocks[2], stride=2)
        self.Layer4 = self._make_layer(block, 8 * Width, NumBlocks[3], stride=2)

        self.AvgPool = nn.AdaptiveAvgPool2d((1, 1))
        self.Fc = nn.Linear(8 * Width, NumClasses)

    def _make_layer(self, block, OutChannels, NumBlocks, stride):
        strides = [stride] + [1] * (NumBlocks - 1)
        layers = []
        for stride in strides:
            layers.append(block(self.InChannels, OutChannels, stride))
            self.InChannels = OutChannels
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.Bn1(self.Conv1(x)))  # (batch, W, 8, 8)
        out = self.Layer1(out)  # (batch, W, 8, 8)
        out = self.Layer2(out)  # (batch, 2W, 4, 4)
        out = self.Layer3(out)  # (batch, 4W, 2, 2)
        out = self.Layer4(out)  # (batch, 8W, 1, 1)
        out = self.AvgPool(out)
        out = out.view(out.size(0), -1)
        out = self.Fc(out)
        return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1, help="OneCycleLR's peak")
    parser.add_argument("--width", type=int, default=16, help="channels of the first stage")
    parser.add_argument("--blocks", type=int, default=1, help="residual blocks per stage")
    parser.add_argument("--train-size", type=int, default=None,
                        help="train on the first N training images (default: all 1438)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eager", action="store_true", help="run the step uncompiled")
    args = parser.parse_args(argv)

    fnx.manual_seed(args.seed)  # initialisation and the loader's shuffling
    train_set, test_set = fnx.datasets.digits(train=True), fnx.datasets.digits(train=False)
    if args.train_size is not None:
        train_set = Subset(train_set, range(args.train_size))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              drop_last=True)
    test_loader = DataLoader(test_set, batch_size=512)

    model = ResNet(ResidualBlock, [args.blocks] * 4, NumClasses=10, Width=args.width)
    criterion = nn.CrossEntropyLoss()
    optimizer = fnx.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = fnx.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=len(train_loader))
    print(f"ResNet with {args.blocks} block(s) per stage, widths "
          f"{[args.width * 2 ** i for i in range(4)]}: "
          f"{sum(p.numel() for p in model.parameters())} parameters; "
          f"{len(train_set)} training and {len(test_set)} test images")

    def train_step(data, target):
        optimizer.zero_grad()
        loss = criterion(model(data), target)
        loss.backward()
        optimizer.step()
        scheduler.step()  # OneCycleLR steps per batch
        return loss

    step = train_step if args.eager else fnx.compile(train_step)
    accuracy = fnx.train.Accuracy()

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        tic, running_loss = time.perf_counter(), 0.0
        for data, target in train_loader:
            running_loss += step(data, target).item()
        test = fnx.train.evaluate(model, test_loader, metrics={"acc": accuracy})
        print(f"epoch {epoch}: train loss {running_loss / len(train_loader):.4f}, "
              f"test accuracy {test['acc']:.4f} ({time.perf_counter() - tic:.1f} s)")
    print(f"{'eager' if args.eager else 'compiled'} training took "
          f"{time.perf_counter() - start:.1f} s")
    print(f"test accuracy: {test['acc']:.4f}")


if __name__ == "__main__":
    main()
