"""What the data set readers share: finding the user's files, checking them against the
published MD5s, errors that say which files to put where, and torchvision's
``(image, label)`` sample contract."""

import gzip
import hashlib
import os
import zlib

from ..core.errors import DatasetError
from ..data.dataset import Dataset


class LabelledImages(Dataset):
    """Images in ``self.data`` (uint8, one per row) and int64 labels in ``self.targets``:
    sample ``i`` is ``(transform(data[i]), target_transform(int(targets[i])))``, as
    torchvision's data sets."""

    def __init__(self, root, train, transform, target_transform, download):
        del download  # unused: fnx reads local files only (accepted for PyTorch compatibility)
        self.root, self.train = root, train
        self.transform, self.target_transform = transform, target_transform

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        image, target = self.data[index], int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self):
        return (f"Dataset {type(self).__name__}\n    Number of datapoints: {len(self)}\n"
                f"    Root location: {self.root}\n    Split: "
                f"{'Train' if self.train else 'Test'}")


def find_files(dataset, root, wanted, subdirs, source):
    """``{name: path}`` for each of ``wanted`` (``{name: candidate file names}``), looked up
    in ``root`` and then ``root/<subdir>`` for each of ``subdirs``; a DatasetError listing
    every missing file, the directories searched and ``source`` (where to get them)."""
    root = os.path.expanduser(os.fspath(root))
    dirs = [root] + [os.path.join(root, sub) for sub in subdirs]
    found, missing = {}, []
    for name, candidates in wanted.items():
        path = next((os.path.join(d, c) for d in dirs for c in candidates
                     if os.path.isfile(os.path.join(d, c))), None)
        if path is None:
            missing.append(" or ".join(candidates))
        else:
            found[name] = path
    if missing:
        raise DatasetError(
            f"{dataset}: missing file(s) {', '.join(missing)}; looked in "
            f"{', '.join(dirs)}. {source} (fnx reads local files and downloads nothing)")
    return found


def md5_of(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5s(dataset, paths, published, source):
    """A DatasetError unless each of ``paths`` whose file name has a published MD5 (in the
    dict ``published``) has that MD5."""
    for path in paths:
        expected = published.get(os.path.basename(path))
        actual = None if expected is None else md5_of(path)
        if actual != expected:
            raise DatasetError(
                f"{dataset}: {path} has MD5 {actual}, the official file {expected}: it is "
                f"corrupted or not the official file. {source} Pass verify=False to read a "
                "file you made yourself in the same format.")


def read_maybe_gzipped(dataset, path):
    """The bytes of ``path``, decompressed when it is gzip (known by its magic bytes, not its
    name)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(f"{dataset}: {path} is a corrupted or truncated gzip file "
                           f"({err}); download it again") from err
