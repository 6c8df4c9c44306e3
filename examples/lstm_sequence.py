"""An LSTM sequence classifier (the guide's ``RNNClassifier``) learns token order.

The task, generated below: each sequence of ``--seq-len`` tokens holds exactly one ``A`` and one
``B`` at random positions, the other positions are random filler tokens, and the label says
whether ``A`` comes before ``B``. Every sequence contains the same special tokens and its filler
is drawn independently of the label, so the multiset of tokens says nothing about the label:
a model that ignores order (a bag of words, mean-pooled embeddings) is at chance, 50%. Beating
50% needs the order of the sequence, which the bidirectional LSTM reads step by step.

What it shows, as PyTorch code with ``torch`` renamed to ``fnx``:

* ``nn.Embedding`` -> ``nn.LSTM(num_layers=2, bidirectional=True, dropout=0.5,
  batch_first=True)`` -> the final hidden states of both directions -> ``nn.Linear``;
* the guide's training step (``optimizer.zero_grad()``, forward, ``loss.backward()``,
  ``optimizer.step()``) over a shuffling ``DataLoader``, compiled whole by ``fnx.compile``
  into one program that updates the weights, Adam's moments and the dropout generator in
  place (``--eager`` runs the same function uncompiled, on the eager tape);
* evaluation with ``fnx.train.evaluate`` (``model.eval()`` and ``fnx.no_grad()``).

Run: ``python examples/lstm_sequence.py`` (under a minute on 2 CPU cores; the first run also
compiles kernels into the on-disk cache). The last line is ``test accuracy: X``.
"""

import argparse
import time

import numpy as np

import fnx
import fnx.nn as nn
from fnx.data import DataLoader, TensorDataset

A, B = 0, 1  # the two special tokens; filler tokens are 2 .. vocab-1


class RNNClassifier(nn.Module):
    """The guide's LSTM classifier: embedding, a bidirectional LSTM, and a linear head on the
    last layer's final hidden states of both directions."""

    def __init__(self, VocabSize, EmbedDim, HiddenDim, NumClasses, NumLayers=2):
        super().__init__()
        self.Embedding = nn.Embedding(VocabSize, EmbedDim)
        self.Lstm = nn.LSTM(
            EmbedDim,
            HiddenDim,
            num_layers=NumLayers,
            batch_first=True,
            dropout=0.5,
            bidirectional=True,
        )
        self.Fc = nn.Linear(HiddenDim * 2, NumClasses)  # *2 for bidirectional
        self.Dropout = nn.Dropout(0.5)

    def forward(self, x):
        # x: (batch, seq_len) token ids
        embedded = self.Embedding(x)  # (batch, seq_len, embed_dim)
        lstm_out, (hidden, cell) = self.Lstm(embedded)
        # hidden: (num_layers * 2, batch, hidden_dim); the last two rows are the top layer's
        # forward and backward directions
        hidden = fnx.cat((hidden[-2], hidden[-1]), dim=1)
        return self.Fc(self.Dropout(hidden))


def make_dataset(n, seq_len, vocab, rng):
    """``n`` sequences with one A and one B each; label 1 when A comes first."""
    x = rng.integers(2, vocab, size=(n, seq_len))
    labels = rng.integers(0, 2, size=n)
    # two distinct positions per row: the earlier one gets A when the label is 1
    first = rng.integers(0, seq_len, size=n)
    second = (first + rng.integers(1, seq_len, size=n)) % seq_len
    early, late = np.minimum(first, second), np.maximum(first, second)
    rows = np.arange(n)
    x[rows, np.where(labels == 1, early, late)] = A
    x[rows, np.where(labels == 1, late, early)] = B
    return fnx.tensor(x), fnx.tensor(labels)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-size", type=int, default=4096)
    parser.add_argument("--test-size", type=int, default=1024)
    parser.add_argument("--seq-len", type=int, default=24)
    parser.add_argument("--vocab", type=int, default=12, help="including the tokens A and B")
    parser.add_argument("--embed-dim", type=int, default=16)
    parser.add_argument("--hidden-dim", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--eager", action="store_true",
                        help="run the training step eagerly instead of compiling it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    fnx.manual_seed(args.seed)  # parameter initialisation, dropout and shuffling
    rng = np.random.default_rng(args.seed)
    train_set = TensorDataset(*make_dataset(args.train_size, args.seq_len, args.vocab, rng))
    test_set = TensorDataset(*make_dataset(args.test_size, args.seq_len, args.vocab, rng))
    # drop_last: every batch has one shape, so a short last batch does not re-trace the step
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              drop_last=True)
    test_loader = DataLoader(test_set, batch_size=1024)

    model = RNNClassifier(args.vocab, args.embed_dim, args.hidden_dim, 2, args.layers)
    criterion = nn.CrossEntropyLoss()
    optimizer = fnx.optim.Adam(model.parameters(), lr=args.lr)
    print(model)
    print(f"{sum(p.numel() for p in model.parameters())} parameters; "
          f"{args.train_size} training sequences of length {args.seq_len}")
    print("chance level: 0.500 (every sequence has the same tokens A and B; only their "
          "order decides the label)")

    def train_step(inputs, labels):
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        return loss

    step = train_step if args.eager else fnx.compile(train_step)

    def test_accuracy():
        metrics = {"accuracy": fnx.train.Accuracy()}
        return fnx.train.evaluate(model, test_loader, metrics=metrics)["accuracy"]

    for epoch in range(1, args.epochs + 1):
        model.train()
        start, losses = time.perf_counter(), []
        for inputs, labels in train_loader:
            losses.append(step(inputs, labels))
        train_loss = sum(loss.item() for loss in losses) / len(losses)
        print(f"epoch {epoch}: train loss {train_loss:.4f}, test accuracy "
              f"{test_accuracy():.3f} ({time.perf_counter() - start:.1f} s)")

    print(f"test accuracy: {test_accuracy():.3f}")


if __name__ == "__main__":
    main()
