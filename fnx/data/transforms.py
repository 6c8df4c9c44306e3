"""Image transforms with torchvision.transforms' semantics, computed on the host with NumPy.

Two image forms, as torchvision's tensors and PIL images:

* fnx arrays are ``(C, H, W)`` images (or ``(H, W)``), and ``(N, C, H, W)`` batches;
* NumPy arrays (and anything ``np.asarray`` turns into one, such as a PIL image) are
  ``(H, W, C)`` images (or ``(H, W)``), and ``(N, H, W, C)`` batches.

A transform returns the form it was given (geometric transforms keep the dtype; uint8 results
are rounded or truncated as torchvision's tensor code does). ``ToTensor`` turns a NumPy image
into an fnx ``(C, H, W)`` float array in ``[0, 1]``. On a batch, random transforms draw their
parameters for each sample. The randomness comes from ``generator`` (an ``fnx.Generator``)
or, by default, from fnx's global generator, so ``fnx.manual_seed`` makes augmentation
reproducible; inside a DataLoader it comes from a stream seeded per batch (see
``fnx.data.dataloader``). Transforms run eagerly on the host: they are not traceable by jit,
grad or vmap (Normalize, written in fnx operations, is).

>>> from fnx.data import transforms as T
>>> image = np.zeros((8, 8, 3), dtype=np.uint8)            # an HWC image, as PIL gives
>>> pipeline = T.Compose([T.RandomCrop(8, padding=2), T.RandomHorizontalFlip(),
...                       T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
>>> out = pipeline(image)
>>> out.shape, out.dtype, out.min().item()
((3, 8, 8), dtype('float32'), -1.0)
"""

import enum
import functools
import math
import numbers

import numpy as np

from ._random import host_stream

__all__ = ["CenterCrop", "ColorJitter", "Compose", "InterpolationMode", "Normalize",
           "RandomAffine", "RandomCrop", "RandomErasing", "RandomHorizontalFlip",
           "RandomResizedCrop", "RandomRotation", "RandomVerticalFlip", "Resize", "ToArray",
           "ToTensor"]


class InterpolationMode(str, enum.Enum):
    """Interpolation for Resize, RandomResizedCrop, RandomRotation and RandomAffine (also
    given as the strings ``"nearest"`` and ``"bilinear"``), as torchvision's
    ``InterpolationMode``.

    >>> T = fnx.data.transforms
    >>> T.Resize(4, interpolation=T.InterpolationMode.NEAREST).interpolation
    <InterpolationMode.NEAREST: 'nearest'>
    """

    NEAREST = "nearest"
    BILINEAR = "bilinear"


def _interpolation(mode, owner):
    try:
        return InterpolationMode(mode)
    except ValueError:
        raise ValueError(f"{owner}: interpolation {mode!r} is not supported; use 'bilinear' or "
                         f"'nearest'") from None


# --- image forms ------------------------------------------------------------------------------


def _is_fnx(img):
    from ..numpy._core import is_array

    return is_array(img)


def _to_batch(img, owner):
    """``(x, restore)``: the image(s) as an ``(N, C, H, W)`` NumPy array, and the function that
    turns a result of that layout back into the form (and device) ``img`` came in."""
    if _is_fnx(img):
        x = img.numpy()
        lead = {2: (1, 1), 3: (1,), 4: ()}.get(x.ndim)
        if lead is None:
            raise ValueError(f"{owner}: expected an fnx image of shape (C, H, W) or (H, W), or "
                             f"a batch (N, C, H, W); got shape {x.shape}")
        device = img.device

        def restore(out):
            from .. import numpy as fnp

            out = fnp.asarray(np.ascontiguousarray(out.reshape(out.shape[len(lead):])))
            return out if device.type == "cpu" else out.to(device)

        return x.reshape(lead + x.shape), restore
    x = np.asarray(img)
    if x.ndim == 2:
        return x[None, None], lambda out: np.ascontiguousarray(out[0, 0])
    if x.ndim == 3:
        return x.transpose(2, 0, 1)[None], lambda out: np.ascontiguousarray(
            out[0].transpose(1, 2, 0))
    if x.ndim == 4:
        return x.transpose(0, 3, 1, 2), lambda out: np.ascontiguousarray(
            out.transpose(0, 2, 3, 1))
    raise ValueError(f"{owner}: expected a NumPy image of shape (H, W, C) or (H, W), or a batch "
                     f"(N, H, W, C); got shape {x.shape}")


def _cast_like(out, dtype):
    """A float result in ``dtype``: integer images are rounded and clipped to their range."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        out = np.clip(np.round(out), info.min, info.max)
    return out.astype(dtype, copy=False)


def _work_dtype(dtype):
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float32)


def _pair(size, owner):
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        return size * 2
    if len(size) != 2:
        raise ValueError(f"{owner}: size should be an int or a sequence (h, w), got {size}")
    return size


def _repr(obj, **fields):
    args = ", ".join(f"{k}={v!r}" for k, v in fields.items())
    return f"{type(obj).__name__}({args})"


class Compose:
    """Apply ``transforms`` in order.

    >>> T = fnx.data.transforms
    >>> T.Compose([T.ToTensor(), T.Normalize([0.5], [0.25])])(np.full((2, 2), 255, np.uint8))
    Array([[[2., 2.],
            [2., 2.]]], dtype=float32)
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        lines = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({lines}\n)"


class ToTensor:
    """A NumPy ``(H, W, C)`` image (or ``(H, W)``, or a PIL image) to an fnx ``(C, H, W)``
    array; ``(N, H, W, C)`` batches to ``(N, C, H, W)``. uint8 images are scaled to float32
    in ``[0, 1]`` (the default float dtype); other dtypes keep their values and dtype, as
    torchvision. ``ToArray`` is the same transform.

    >>> out = fnx.data.transforms.ToTensor()(np.full((2, 3, 1), 51, np.uint8))
    >>> out.shape, out.dtype, round(out[0, 0, 0].item(), 3)
    ((1, 2, 3), dtype('float32'), 0.2)
    """

    def __call__(self, pic):
        from .. import numpy as fnp
        from ..core.dtypes import default_float

        if _is_fnx(pic):
            raise TypeError("ToTensor: expected a NumPy (H, W, C) image or a PIL image, got an "
                            "fnx array (already (C, H, W)); drop ToTensor for arrays")
        x = np.asarray(pic)
        if x.ndim == 2:
            x = x[:, :, None]
        if x.ndim == 3:
            x = x.transpose(2, 0, 1)
        elif x.ndim == 4:
            x = x.transpose(0, 3, 1, 2)
        else:
            raise ValueError(f"ToTensor: expected an image of shape (H, W, C) or (H, W), or a "
                             f"batch (N, H, W, C); got shape {x.shape}")
        if x.dtype == np.uint8:
            x = x.astype(default_float()) / default_float().type(255)
        return fnp.asarray(np.ascontiguousarray(x))

    def __repr__(self):
        return f"{type(self).__name__}()"


ToArray = ToTensor


class Normalize:
    """``(x - mean) / std`` per channel of a float fnx ``(..., C, H, W)`` array (a batch
    too). Written in fnx operations, so it stays on the array's device and is differentiable.
    ``mean`` and ``std`` hold ``C`` values or one; any other count is an error, as in
    torchvision (3-channel statistics never turn a gray image into three channels).

    >>> x = fnx.ones(2, 1, 1)
    >>> fnx.data.transforms.Normalize([0.5, 1.0], [0.5, 2.0])(x).flatten().tolist()
    [1.0, 0.0]
    """

    def __init__(self, mean, std, inplace=False):
        self.mean = list(np.asarray(mean, dtype=np.float64).reshape(-1))
        self.std = list(np.asarray(std, dtype=np.float64).reshape(-1))
        self.inplace = inplace

    def __call__(self, tensor):
        from .. import numpy as fnp

        if not _is_fnx(tensor):
            raise TypeError(f"Normalize: expected an fnx array, got {type(tensor).__name__}; "
                            f"apply ToTensor first")
        if tensor.dtype.kind != "f":
            raise TypeError(f"Normalize: input should be a float array, got dtype "
                            f"{tensor.dtype}; apply ToTensor (or .float()) first")
        if tensor.ndim < 3:
            raise ValueError(f"Normalize: expected an image of size (..., C, H, W), got shape "
                             f"{tuple(tensor.shape)}")
        channels = tensor.shape[-3]
        if {len(self.mean), len(self.std)} - {1, channels}:
            # broadcasting would silently turn a gray image into a 3-channel one (torchvision
            # raises here too, as its in-place subtraction cannot grow the image)
            raise ValueError(
                f"Normalize: mean ({len(self.mean)} values) and std ({len(self.std)} values) "
                f"do not match the {channels} channel(s) of the image of shape "
                f"{tuple(tensor.shape)} (channels are axis -3); give one value per channel or "
                f"one for all, e.g. Normalize([0.5], [0.5]) for a gray image")
        std = np.asarray(self.std, dtype=tensor.dtype)
        if (std == 0).any():
            raise ValueError(f"Normalize: std evaluated to zero after conversion to "
                             f"{tensor.dtype}, leading to division by zero")
        mean = fnp.asarray(np.asarray(self.mean, dtype=tensor.dtype).reshape(-1, 1, 1))
        std = fnp.asarray(std.reshape(-1, 1, 1))
        if tensor.device.type != "cpu":
            mean, std = mean.to(tensor.device), std.to(tensor.device)
        if self.inplace:
            return tensor.sub_(mean).div_(std)
        return (tensor - mean) / std

    def __repr__(self):
        return _repr(self, mean=self.mean, std=self.std)


class _RandomTransform:
    """Base of the random transforms: ``_apply(x, rng)`` on an ``(N, C, H, W)`` NumPy batch,
    drawing each sample's parameters from ``rng``."""

    generator = None

    def __call__(self, img):
        x, restore = _to_batch(img, type(self).__name__)
        out = self._apply(x, host_stream(self.generator))
        return img if out is x else restore(out)


class _RandomFlip(_RandomTransform):
    axis = None  # -1: horizontal, -2: vertical

    def __init__(self, p=0.5, *, generator=None):
        self.p = p
        self.generator = generator

    def _apply(self, x, rng):
        flip = rng.random(x.shape[0]) < self.p
        if not flip.any():
            return x
        out = x.copy()
        out[flip] = np.flip(x[flip], axis=self.axis)
        return out

    def __repr__(self):
        return _repr(self, p=self.p)


class RandomHorizontalFlip(_RandomFlip):
    """Mirror left-right with probability ``p`` (each sample of a batch on its own draw).

    >>> fnx.data.transforms.RandomHorizontalFlip(p=1.0)(fnx.tensor([[[1, 2, 3]]])).tolist()
    [[[3, 2, 1]]]
    """

    axis = -1


class RandomVerticalFlip(_RandomFlip):
    """Mirror top-bottom with probability ``p`` (each sample of a batch on its own draw).

    >>> fnx.data.transforms.RandomVerticalFlip(p=1.0)(fnx.tensor([[[1], [2]]])).tolist()
    [[[2], [1]]]
    """

    axis = -2


def _padding_ltrb(padding, owner):
    if isinstance(padding, numbers.Integral):
        return (int(padding),) * 4
    padding = tuple(int(p) for p in padding)
    if len(padding) == 1:
        return padding * 4
    if len(padding) == 2:  # (left/right, top/bottom)
        return padding * 2
    if len(padding) == 4:
        return padding
    raise ValueError(f"{owner}: padding must be an int or a sequence of 1, 2 or 4 ints, got "
                     f"{padding}")


_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect",
              "symmetric": "symmetric"}


def _pad(x, ltrb, fill, mode, owner):
    if mode not in _PAD_MODES:
        raise ValueError(f"{owner}: padding_mode must be one of {sorted(_PAD_MODES)}, got "
                         f"{mode!r}")
    left, top, right, bottom = ltrb
    if not any(ltrb):
        return x
    widths = ((0, 0), (0, 0), (top, bottom), (left, right))
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=fill)
    return np.pad(x, widths, mode=_PAD_MODES[mode])


class RandomCrop(_RandomTransform):
    """A random ``size`` crop (an int for a square), after ``padding`` (an int, ``(left/right,
    top/bottom)`` or ``(left, top, right, bottom)``) with ``fill`` or ``padding_mode``
    (``"constant"``, ``"edge"``, ``"reflect"``, ``"symmetric"``); ``pad_if_needed`` pads a
    side shorter than the crop by the difference on both ends, as torchvision.

    >>> T = fnx.data.transforms
    >>> img = fnx.ones(1, 4, 4)
    >>> T.RandomCrop(4, padding=2)(img).shape  # a 4x4 window of the zero-padded 8x8 image
    (1, 4, 4)
    >>> T.RandomCrop(6, padding=1)(img).sum().item()  # all of the padded 6x6 image
    16.0
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0,
                 padding_mode="constant", *, generator=None):
        self.size = _pair(size, "RandomCrop")
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode
        self.generator = generator

    def _apply(self, x, rng):
        th, tw = self.size
        if self.padding is not None:
            x = _pad(x, _padding_ltrb(self.padding, "RandomCrop"), self.fill,
                     self.padding_mode, "RandomCrop")
        h, w = x.shape[-2:]
        if self.pad_if_needed and (h < th or w < tw):
            dw, dh = max(tw - w, 0), max(th - h, 0)
            x = _pad(x, (dw, dh, dw, dh), self.fill, self.padding_mode, "RandomCrop")
            h, w = x.shape[-2:]
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: required crop size {(th, tw)} is larger than input "
                             f"image size {(h, w)}; pass padding or pad_if_needed=True")
        tops = rng.integers(0, h - th + 1, x.shape[0])
        lefts = rng.integers(0, w - tw + 1, x.shape[0])
        return np.stack([s[:, i:i + th, j:j + tw] for s, i, j in zip(x, tops, lefts,
                                                                     strict=True)])

    def __repr__(self):
        return _repr(self, size=self.size, padding=self.padding)


class CenterCrop:
    """The central ``size`` crop (padded with zeros first where the image is smaller), as
    torchvision.

    >>> fnx.data.transforms.CenterCrop(2)(fnx.arange(16).reshape(1, 4, 4)).tolist()
    [[[5, 6], [9, 10]]]
    """

    def __init__(self, size):
        self.size = _pair(size, "CenterCrop")

    def __call__(self, img):
        x, restore = _to_batch(img, "CenterCrop")
        th, tw = self.size
        h, w = x.shape[-2:]
        if th > h or tw > w:
            ltrb = ((tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0,
                    (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0)
            x = _pad(x, ltrb, 0, "constant", "CenterCrop")
            h, w = x.shape[-2:]
        top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
        return restore(x[..., top:top + th, left:left + tw])

    def __repr__(self):
        return _repr(self, size=self.size)


# --- resampling ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _resize_matrix(n_in, n_out, mode, antialias):
    """The ``(n_out, n_in)`` weights of resizing one axis: output ``i`` is
    ``sum_j w[i, j] * input[j]``. Nearest is PyTorch's ``interpolate(mode="nearest")``
    (source ``floor(i * n_in / n_out)`` in float32, as PyTorch); bilinear is
    ``interpolate(mode="bilinear", align_corners=False)``, whose triangle filter with
    antialias widens to the scale when shrinking (PIL's and torchvision's antialias)."""
    scale = n_in / n_out
    if mode == InterpolationMode.NEAREST:
        src = np.floor(np.arange(n_out, dtype=np.float32) * np.float32(scale)).astype(np.int64)
        w = np.zeros((n_out, n_in))
        w[np.arange(n_out), np.minimum(src, n_in - 1)] = 1.0
        return w
    support = scale if antialias and scale > 1.0 else 1.0
    centers = scale * (np.arange(n_out) + 0.5)
    w = np.maximum(1.0 - np.abs(np.arange(n_in) + 0.5 - centers[:, None]) / support, 0.0)
    return w / w.sum(axis=1, keepdims=True)


def _resize(x, size, mode, antialias):
    """Resize the last two axes of ``x`` to ``size`` = (h, w)."""
    (h, w), (oh, ow) = x.shape[-2:], size
    dtype = _work_dtype(x.dtype)
    rows = _resize_matrix(h, oh, mode, antialias).astype(dtype)
    cols = _resize_matrix(w, ow, mode, antialias).astype(dtype)
    return _cast_like(rows @ x.astype(dtype, copy=False) @ cols.T, x.dtype)


def _output_size(h, w, size, max_size):
    """torchvision's Resize size rule: an int matches the shorter side, keeping the aspect
    ratio (the longer side truncated), at most ``max_size``; a pair is (h, w)."""
    if isinstance(size, numbers.Integral) or len(size) == 1:
        short = int(size if isinstance(size, numbers.Integral) else size[0])
        (s, lg) = (h, w) if h <= w else (w, h)
        new_short, new_long = short, int(short * lg / s)
        if max_size is not None and new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
        return (new_short, new_long) if h <= w else (new_long, new_short)
    if max_size is not None:
        raise ValueError("Resize: max_size is only supported when size is an int (the "
                         "shorter side)")
    return _pair(size, "Resize")


class Resize:
    """Resize to ``size``: an int sets the shorter side (keeping the aspect ratio, the
    longer side at most ``max_size``), ``(h, w)`` sets both. ``interpolation`` is
    ``"bilinear"`` (default; with ``antialias`` when shrinking, as torchvision) or
    ``"nearest"``.

    >>> x = fnx.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    >>> fnx.data.transforms.Resize((1, 1))(x).tolist()
    [[[1.5]]]
    >>> fnx.data.transforms.Resize(4, interpolation="nearest")(x).shape
    (1, 4, 4)
    """

    def __init__(self, size, interpolation="bilinear", max_size=None, antialias=True):
        self.size = size
        self.interpolation = _interpolation(interpolation, "Resize")
        self.max_size = max_size
        self.antialias = antialias

    def __call__(self, img):
        x, restore = _to_batch(img, "Resize")
        size = _output_size(*x.shape[-2:], self.size, self.max_size)
        return restore(_resize(x, size, self.interpolation, self.antialias))

    def __repr__(self):
        return _repr(self, size=self.size, interpolation=self.interpolation.value)


class RandomResizedCrop(_RandomTransform):
    """A random crop covering a ``scale`` fraction of the area with aspect ratio in ``ratio``
    (log-uniform), resized to ``size``, as torchvision (ten tries, then a central crop).

    >>> fnx.data.transforms.RandomResizedCrop(4)(fnx.ones(3, 10, 10)).shape
    (3, 4, 4)
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation="bilinear", antialias=True, *, generator=None):
        self.size = _pair(size, "RandomResizedCrop")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"RandomResizedCrop: scale and ratio should be of kind (min, max), "
                             f"got scale={scale}, ratio={ratio}")
        self.scale = scale
        self.ratio = ratio
        self.interpolation = _interpolation(interpolation, "RandomResizedCrop")
        self.antialias = antialias
        self.generator = generator

    def _box(self, h, w, rng):
        area = h * w
        log_ratio = np.log(self.ratio)
        for _ in range(10):
            target_area = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            cw = int(round(math.sqrt(target_area * aspect)))
            ch = int(round(math.sqrt(target_area / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        in_ratio = w / h
        if in_ratio < min(self.ratio):
            cw, ch = w, int(round(w / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            ch, cw = h, int(round(h * max(self.ratio)))
        else:
            ch, cw = h, w
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def _apply(self, x, rng):
        h, w = x.shape[-2:]
        out = []
        for sample in x:
            i, j, ch, cw = self._box(h, w, rng)
            out.append(_resize(sample[:, i:i + ch, j:j + cw], self.size, self.interpolation,
                               self.antialias))
        return np.stack(out)

    def __repr__(self):
        return _repr(self, size=self.size, scale=self.scale, ratio=self.ratio)


def _inverse_affine_matrix(center, angle, translate, scale, shear):
    """torchvision's ``_get_inverse_affine_matrix``: the ``(2, 3)`` map from output to source
    pixel coordinates (both relative to the image center) of ``T * C * RSS * C^-1``, where
    ``T`` translates by ``translate``, ``C`` moves the origin to ``center`` and
    ``RSS = R(angle) * S(scale) * SHy(shear_y) * SHx(shear_x)`` (degrees; a positive angle
    turns the image clockwise on screen, as the y axis points down)."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    inverse = np.array([[d, -b], [-c, a]]) / scale  # det(RSS without scale) is 1
    center = np.asarray(center, dtype=np.float64)
    offset = inverse @ (-center - np.asarray(translate, dtype=np.float64)) + center
    return np.column_stack([inverse, offset])


def _centered(center, h, w):
    """A ``center`` in pixel coordinates (x, y) relative to the image center (None: 0, 0)."""
    return (0.0, 0.0) if center is None else (center[0] - w * 0.5, center[1] - h * 0.5)


def _warp(img, matrix, mode, fill, owner):
    """One ``(C, H, W)`` image resampled through the inverse affine ``matrix``, as
    torchvision's tensor ``affine``/``rotate``: sampled as ``grid_sample(align_corners=False)``
    with zero padding, then ``fill`` (a number, or one per channel) blended in by the sampled
    coverage of the image."""
    c, h, w = img.shape
    fill = np.asarray(fill, dtype=_work_dtype(img.dtype)).reshape(-1, 1, 1)
    if len(fill) not in (1, c):
        raise ValueError(f"{owner}: fill has {len(fill)} values; give one, or one per channel "
                         f"({c})")
    # output pixel centers, relative to the image center
    y, x = np.meshgrid(np.arange(h) + 0.5 - h * 0.5, np.arange(w) + 0.5 - w * 0.5,
                       indexing="ij")
    (m00, m01, m02), (m10, m11, m12) = matrix
    px = m00 * x + m01 * y + m02 + w * 0.5 - 0.5  # source pixel coordinates
    py = m10 * x + m11 * y + m12 + h * 0.5 - 0.5
    dtype = _work_dtype(img.dtype)
    src = img.astype(dtype, copy=False)
    if mode == InterpolationMode.NEAREST:
        corners = [(np.rint(px).astype(np.int64), np.rint(py).astype(np.int64), 1.0)]
    else:
        x0, y0 = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
        fx, fy = px - x0, py - y0
        corners = [(x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                   (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)]
    out = np.zeros((c, h, w), dtype)
    coverage = np.zeros((h, w), dtype)
    for xi, yi, weight in corners:
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        weight = (weight * inside).astype(dtype)
        out += src[:, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)] * weight
        coverage += weight
    if mode == InterpolationMode.NEAREST:
        out = np.where(coverage < 0.5, fill, out)
    else:
        out = out * coverage + (1 - coverage) * fill
    return _cast_like(out, img.dtype)


def _rotate(img, angle, mode, center, fill):
    """One ``(C, H, W)`` image rotated counter-clockwise by ``angle`` degrees about
    ``center`` (pixel coordinates; the image center if None), as torchvision's ``rotate``
    (an affine map of the opposite angle)."""
    matrix = _inverse_affine_matrix(_centered(center, *img.shape[1:]), -angle, (0.0, 0.0),
                                    1.0, (0.0, 0.0))
    return _warp(img, matrix, mode, fill, "RandomRotation")


_ANGLE_SIZES = {2: "a (min, max) pair", 4: "an (x_min, x_max, y_min, y_max) quadruple"}


def _angle_range(value, name, owner, sizes=(2,)):
    """torchvision's ``_setup_angle``: a number ``d >= 0`` means ``(-d, d)``; else a sequence
    of one of the lengths ``sizes``."""
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"{owner}: if {name} is a single number, it must be positive, "
                             f"got {value}")
        return (-float(value), float(value))
    angles = tuple(float(v) for v in value)
    if len(angles) not in sizes:
        shapes = " or ".join(_ANGLE_SIZES[n] for n in sizes)
        raise ValueError(f"{owner}: {name} should be a number or {shapes}, got {value}")
    return angles


class RandomRotation(_RandomTransform):
    """Rotate counter-clockwise by an angle drawn uniformly from ``degrees`` (a number ``d``
    means ``(-d, d)``) about ``center`` (the image center if None), as torchvision: the
    output keeps the input's size, pixels from outside the image take ``fill`` (a number,
    or one per channel), and ``interpolation`` is ``"nearest"`` (the default) or
    ``"bilinear"``.

    >>> img = fnx.tensor([[[1, 2], [3, 4]]])
    >>> fnx.data.transforms.RandomRotation((90, 90))(img).tolist()
    [[[2, 4], [1, 3]]]
    """

    def __init__(self, degrees, interpolation="nearest", expand=False, center=None, fill=0,
                 *, generator=None):
        self.degrees = _angle_range(degrees, "degrees", "RandomRotation")
        if expand:
            raise ValueError("RandomRotation: expand=True is not supported (rotated samples "
                             "of a batch would differ in size); crop or resize afterwards")
        self.interpolation = _interpolation(interpolation, "RandomRotation")
        self.expand = expand
        self.center = center
        self.fill = fill
        self.generator = generator

    def _apply(self, x, rng):
        angles = rng.uniform(*self.degrees, size=x.shape[0])
        return np.stack([_rotate(s, a, self.interpolation, self.center, self.fill)
                         for s, a in zip(x, angles, strict=True)])

    def __repr__(self):
        return _repr(self, degrees=self.degrees, interpolation=self.interpolation.value)


class RandomAffine(_RandomTransform):
    """A random affine map about the image center, keeping the image's size, as
    torchvision: a rotation by an angle drawn from ``degrees`` (clockwise; a number ``d``
    means ``(-d, d)``), a shift of whole pixels up to ``translate = (a, b)`` times the width
    and the height, a zoom drawn from ``scale = (min, max)``, and a shear by angles drawn
    from ``shear`` (a number ``s``: ``(-s, s)`` along x; ``(min, max)`` along x; ``(x_min,
    x_max, y_min, y_max)`` along both). ``center`` (pixel ``(x, y)``) moves the fixed point;
    pixels from outside the image take ``fill`` (a number, or one per channel);
    ``interpolation`` is ``"nearest"`` (the default) or ``"bilinear"``. Each sample of a batch
    draws its own parameters, in torchvision's order: angle, shift, zoom, shear.

    >>> T = fnx.data.transforms
    >>> img = fnx.arange(16.0).reshape(1, 4, 4)
    >>> T.RandomAffine(degrees=0, scale=(2.0, 2.0))(img)[0].tolist()  # the central 2x2, zoomed
    [[5.0, 5.0, 6.0, 6.0], [5.0, 5.0, 6.0, 6.0], [9.0, 9.0, 10.0, 10.0], [9.0, 9.0, 10.0, 10.0]]
    >>> T.RandomAffine(degrees=(90, 90))(fnx.tensor([[[1, 2], [3, 4]]])).tolist()  # clockwise
    [[[3, 1], [4, 2]]]
    """

    def __init__(self, degrees, translate=None, scale=None, shear=None,
                 interpolation="nearest", fill=0, center=None, *, generator=None):
        self.degrees = _angle_range(degrees, "degrees", "RandomAffine")
        if translate is not None:
            translate = tuple(float(t) for t in translate)
            if len(translate) != 2 or not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError(f"RandomAffine: translate should be a pair of fractions of the "
                                 f"width and height, between 0 and 1; got {translate}")
        if scale is not None:
            scale = tuple(float(s) for s in scale)
            if len(scale) != 2 or not 0.0 < scale[0] <= scale[1]:
                raise ValueError(f"RandomAffine: scale should be a positive (min, max) pair, got "
                                 f"{scale}")
        self.translate = translate
        self.scale = scale
        self.shear = None if shear is None else _angle_range(shear, "shear", "RandomAffine",
                                                             sizes=(2, 4))
        self.interpolation = _interpolation(interpolation, "RandomAffine")
        self.fill = fill
        self.center = center
        self.generator = generator

    def _params(self, h, w, rng):
        """torchvision's ``RandomAffine.get_params``, drawing in its order."""
        angle = rng.uniform(*self.degrees)
        shift = (0, 0)
        if self.translate is not None:
            max_dx, max_dy = self.translate[0] * w, self.translate[1] * h
            shift = (round(rng.uniform(-max_dx, max_dx)), round(rng.uniform(-max_dy, max_dy)))
        zoom = 1.0 if self.scale is None else rng.uniform(*self.scale)
        shear = [0.0, 0.0]
        if self.shear is not None:
            shear[0] = rng.uniform(*self.shear[:2])
            if len(self.shear) == 4:
                shear[1] = rng.uniform(*self.shear[2:])
        return angle, shift, zoom, shear

    def _apply(self, x, rng):
        h, w = x.shape[-2:]
        center = _centered(self.center, h, w)
        return np.stack([
            _warp(sample, _inverse_affine_matrix(center, *self._params(h, w, rng)),
                  self.interpolation, self.fill, "RandomAffine") for sample in x])

    def __repr__(self):
        return _repr(self, degrees=self.degrees, translate=self.translate, scale=self.scale,
                     shear=self.shear, interpolation=self.interpolation.value)


# --- erasing ------------------------------------------------------------------------------------


class RandomErasing(_RandomTransform):
    """With probability ``p``, erase a random rectangle of an fnx ``(C, H, W)`` image (after
    ``ToTensor`` and ``Normalize``, as torchvision), or of each image of an ``(N, C, H, W)``
    batch on its own draw. The rectangle covers a fraction of the area drawn from ``scale``,
    with an aspect ratio (height / width) drawn log-uniformly from ``ratio``, and takes
    ``value``: a number, one number per channel, or ``"random"`` (standard normal noise per
    pixel). When ten draws give no rectangle that fits, the image stays as it is.
    ``inplace=True`` writes the result into the given array.

    >>> x = fnx.ones(1, 4, 4)
    >>> out = fnx.data.transforms.RandomErasing(p=1.0, scale=(0.25, 0.25), ratio=(1, 1))(x)
    >>> out.sum().item()  # a 2x2 square of the 4x4 image set to 0
    12.0
    """

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False,
                 *, generator=None):
        if isinstance(value, str) and value != "random":
            raise ValueError(f"RandomErasing: a str value should be 'random', got {value!r}")
        if not (isinstance(value, (numbers.Number, str)) or np.ndim(value) == 1):
            raise TypeError(f"RandomErasing: value should be a number, a sequence of numbers or "
                            f"'random', got {value!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomErasing: the probability p should be between 0 and 1, got "
                             f"{p}")
        if not 0.0 <= scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"RandomErasing: scale should be a (min, max) pair between 0 and 1, "
                             f"got {scale}")
        if not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(f"RandomErasing: ratio should be a positive (min, max) pair, got "
                             f"{ratio}")
        self.p = p
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.value = value
        self.inplace = inplace
        self.generator = generator

    def __call__(self, img):
        if not _is_fnx(img):
            raise TypeError(f"RandomErasing: expected an fnx (C, H, W) array, got "
                            f"{type(img).__name__}; apply ToTensor first, as in torchvision")
        out = super().__call__(img)
        return img.copy_(out) if self.inplace and out is not img else out

    def _fill(self, c, dtype):
        """The erasing value as a ``(C or 1, 1, 1)`` array, or None for noise."""
        if isinstance(self.value, str):
            return None
        value = np.asarray(self.value, dtype=_work_dtype(dtype)).reshape(-1, 1, 1)
        if len(value) not in (1, c):
            raise ValueError(f"RandomErasing: value has {len(value)} numbers; give one, or one "
                             f"per channel ({c})")
        return value

    def _box(self, c, h, w, fill, rng):
        """torchvision's ``RandomErasing.get_params``, drawing in its order; None when no
        rectangle fits in ten draws."""
        log_ratio = np.log(self.ratio)
        for _ in range(10):
            area = h * w * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            eh, ew = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if not (eh < h and ew < w):
                continue
            value = rng.standard_normal((c, eh, ew), dtype=np.float32) if fill is None else fill
            top, left = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
            return top, left, eh, ew, value
        return None

    def _apply(self, x, rng):
        c, h, w = x.shape[1:]
        fill = self._fill(c, x.dtype)
        out = x
        for n in range(len(x)):
            if rng.random() >= self.p:
                continue
            box = self._box(c, h, w, fill, rng)
            if box is None:
                continue
            i, j, eh, ew, value = box
            if out is x:
                out = x.copy()
            out[n, :, i:i + eh, j:j + ew] = _cast_like(
                np.broadcast_to(value, (c, eh, ew)).astype(_work_dtype(x.dtype)), x.dtype)
        return out

    def __repr__(self):
        return _repr(self, p=self.p, scale=self.scale, ratio=self.ratio, value=self.value)


# --- color --------------------------------------------------------------------------------------


def _bound(dtype):
    return 1.0 if np.issubdtype(dtype, np.floating) else float(np.iinfo(dtype).max)


def _blend(img, other, ratio):
    """torchvision's ``_blend``: ``ratio * img + (1 - ratio) * other`` clamped to the image
    range, then converted back to the image dtype (integers truncate)."""
    work = img.astype(_work_dtype(img.dtype), copy=False)
    out = np.clip(ratio * work + (1.0 - ratio) * other, 0, _bound(img.dtype))
    return out.astype(img.dtype)


def _grayscale(img):
    """``(1, H, W)`` luma of a ``(3, H, W)`` image, in its dtype (integers truncate)."""
    r, g, b = img.astype(_work_dtype(img.dtype), copy=False)
    return (0.2989 * r + 0.587 * g + 0.114 * b)[None].astype(img.dtype)


def _rgb_to_hsv(img):
    r, g, b = img
    maxc, minc = img.max(axis=0), img.min(axis=0)
    flat = maxc == minc
    spread = maxc - minc
    s = spread / np.where(flat, 1.0, maxc)
    divisor = np.where(flat, 1.0, spread)
    rc, gc, bc = (maxc - r) / divisor, (maxc - g) / divisor, (maxc - b) / divisor
    h = ((maxc == r) * (bc - gc) + ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
         + ((maxc != g) & (maxc != r)) * (4.0 + gc - rc))
    return np.stack([np.fmod(h / 6.0 + 1.0, 1.0), s, maxc])


def _hsv_to_rgb(img):
    h, s, v = img
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    sector = i.astype(np.int64) % 6
    p = np.clip(v * (1.0 - s), 0.0, 1.0)
    q = np.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = np.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    table = np.stack([np.stack(c) for c in ((v, q, p, p, t, v), (t, v, v, q, p, p),
                                            (p, p, t, v, v, q))])  # (rgb, sector, H, W)
    return np.take_along_axis(table, sector[None, None], axis=1)[:, 0]


def _adjust_hue(img, hue):
    if np.issubdtype(img.dtype, np.floating):
        x = img
    else:
        x = img.astype(np.float32) / _bound(img.dtype)
    hsv = _rgb_to_hsv(x)
    hsv[0] = np.mod(hsv[0] + hue, 1.0)
    out = _hsv_to_rgb(hsv)
    if np.issubdtype(img.dtype, np.floating):
        return out.astype(img.dtype)
    # torchvision's convert_image_dtype from float: scale by (max + 1 - eps), truncate
    return (out * (_bound(img.dtype) + 1.0 - 1e-3)).astype(img.dtype)


def _jitter_range(value, name, center, bound, clip_first_on_zero=True):
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"ColorJitter: if {name} is a single number, it must be "
                             f"non-negative, got {value}")
        value = [center - float(value), center + float(value)]
        if clip_first_on_zero:
            value[0] = max(value[0], 0.0)
    elif len(value) == 2:
        value = [float(value[0]), float(value[1])]
    else:
        raise ValueError(f"ColorJitter: {name} should be a single number or a (min, max) "
                         f"pair, got {value}")
    if not bound[0] <= value[0] <= value[1] <= bound[1]:
        raise ValueError(f"ColorJitter: {name} values should be between {bound}, got {value}")
    return None if value[0] == value[1] == center else tuple(value)


class ColorJitter(_RandomTransform):
    """Random brightness, contrast, saturation and hue, as torchvision: a factor ``b`` means
    ``[max(0, 1 - b), 1 + b]`` (hue ``h``: a shift in ``[-h, h]``, ``h <= 0.5``), a pair is
    ``(min, max)``; the four adjustments run in a random order. Brightness scales the image,
    contrast blends it with its mean gray level, saturation with its grayscale; results are
    clamped to ``[0, 1]`` (``[0, 255]`` for uint8). Saturation and hue need RGB images.

    >>> x = fnx.full((3, 2, 2), 0.5)
    >>> out = fnx.data.transforms.ColorJitter(brightness=(2.0, 2.0))(x)
    >>> out.max().item()
    1.0
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0, *, generator=None):
        self.brightness = _jitter_range(brightness, "brightness", 1.0, (0, float("inf")))
        self.contrast = _jitter_range(contrast, "contrast", 1.0, (0, float("inf")))
        self.saturation = _jitter_range(saturation, "saturation", 1.0, (0, float("inf")))
        self.hue = _jitter_range(hue, "hue", 0.0, (-0.5, 0.5), clip_first_on_zero=False)
        self.generator = generator

    def _adjust(self, img, which, factor):
        c = img.shape[0]
        if c not in (1, 3):
            raise ValueError(f"ColorJitter: expected 1 or 3 channels, got {c}")
        if which == 0:
            return _blend(img, 0.0, factor)
        if which == 1:
            gray = _grayscale(img) if c == 3 else img
            return _blend(img, gray.astype(_work_dtype(img.dtype)).mean(), factor)
        if c == 1:  # saturation and hue leave a gray image alone, as torchvision
            return img
        if which == 2:
            return _blend(img, _grayscale(img).astype(_work_dtype(img.dtype)), factor)
        return _adjust_hue(img, factor)

    def _apply(self, x, rng):
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        out = []
        for sample in x:
            order = rng.permutation(4)
            factors = [None if r is None else rng.uniform(*r) for r in ranges]
            for which in order:
                if factors[which] is not None:
                    sample = self._adjust(sample, which, factors[which])
            out.append(sample)
        return np.stack(out)

    def __repr__(self):
        return _repr(self, brightness=self.brightness, contrast=self.contrast,
                     saturation=self.saturation, hue=self.hue)
