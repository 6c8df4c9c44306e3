"""fnx.data.transforms against hand-computed NumPy references (torchvision's semantics), on
single images and on batches, and their seeded determinism."""

import numpy as np
import pytest

import fnx
from fnx.data import transforms as T

R = np.random.default_rng(0)


def chw(c=3, h=5, w=7, dtype=np.float32):
    return R.random((c, h, w)).astype(dtype)


def arr(x):
    return fnx.asarray(x)


# --- ToTensor / Normalize ------------------------------------------------------------------------


def test_to_tensor_scales_uint8_hwc_to_chw_float():
    img = R.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    out = T.ToTensor()(img)
    assert isinstance(out, fnx.Array) and out.shape == (3, 4, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), img.transpose(2, 0, 1) / np.float32(255), rtol=1e-7)
    gray = T.ToArray()(img[:, :, 0])
    assert gray.shape == (1, 4, 5)
    batch = T.ToTensor()(np.stack([img, img]))
    assert batch.shape == (2, 3, 4, 5)
    # other dtypes keep their values and dtype, as torchvision
    f64 = R.random((2, 2, 3))
    out = T.ToTensor()(f64)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.numpy(), f64.transpose(2, 0, 1))
    with pytest.raises(TypeError, match="ToTensor: expected a NumPy .* got an fnx array"):
        T.ToTensor()(fnx.zeros(3, 2, 2))


def test_normalize_matches_numpy_on_images_and_batches():
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]
    ref_shape = np.asarray(mean)[:, None, None], np.asarray(std)[:, None, None]
    for x in (chw(), R.random((4, 3, 5, 7)).astype(np.float32)):
        out = T.Normalize(mean, std)(arr(x))
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.numpy(), (x - ref_shape[0]) / ref_shape[1], rtol=1e-6,
                                   atol=1e-6)
    x = arr(chw())
    same = T.Normalize(mean, std, inplace=True)(x)
    assert same is x
    with pytest.raises(TypeError, match="input should be a float array, got dtype uint8"):
        T.Normalize(mean, std)(fnx.zeros(3, 2, 2, dtype=fnx.uint8))
    with pytest.raises(ValueError, match="std evaluated to zero"):
        T.Normalize([0.0], [0.0])(fnx.zeros(1, 2, 2))
    with pytest.raises(TypeError, match="apply ToTensor first"):
        T.Normalize([0.0], [1.0])(np.zeros((2, 2, 1), np.float32))


def test_normalize_needs_one_value_per_channel_or_one_for_all():
    gray = chw(1, 4, 4)
    imagenet = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    # broadcasting used to return (3, 4, 4) and (8, 3, 4, 4): torchvision raises
    with pytest.raises(ValueError, match=r"mean \(3 values\) and std \(3 values\) do not "
                                         r"match the 1 channel\(s\) of the image of shape "
                                         r"\(1, 4, 4\).*Normalize\(\[0.5\], \[0.5\]\)"):
        imagenet(arr(gray))
    with pytest.raises(ValueError, match=r"shape \(8, 1, 4, 4\)"):
        T.Normalize([0.5] * 3, [0.5] * 3)(fnx.rand(8, 1, 4, 4))
    with pytest.raises(ValueError, match=r"std \(2 values\)"):
        T.Normalize([0.5], [0.5, 0.5])(arr(chw(3)))
    # one value for all channels broadcasts, as torchvision
    x = chw(3)
    np.testing.assert_allclose(T.Normalize([0.5], [0.25])(arr(x)).numpy(), (x - 0.5) / 0.25,
                               rtol=1e-6)


def test_normalize_is_differentiable():
    x = fnx.ones(2, 1, 1, requires_grad=True)
    T.Normalize([0.0, 0.0], [2.0, 4.0])(x).sum().backward()
    assert x.grad.flatten().tolist() == [0.5, 0.25]


# --- flips and crops -----------------------------------------------------------------------------


def test_flips_match_numpy():
    x = chw()
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(arr(x)).numpy(), x[:, :, ::-1])
    np.testing.assert_array_equal(T.RandomVerticalFlip(1.0)(arr(x)).numpy(), x[:, ::-1, :])
    image = arr(x)
    assert T.RandomHorizontalFlip(0.0)(image) is image
    hwc = R.integers(0, 256, (5, 7, 3), dtype=np.uint8)  # NumPy images are HWC
    out = T.RandomHorizontalFlip(1.0)(hwc)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, hwc[:, ::-1, :])


def test_random_flip_on_a_batch_draws_per_sample():
    x = np.repeat(chw()[None], 64, axis=0)
    out = T.RandomHorizontalFlip()(arr(x)).numpy()
    flipped = [np.array_equal(o, s[:, :, ::-1]) for o, s in zip(out, x, strict=True)]
    kept = [np.array_equal(o, s) for o, s in zip(out, x, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 16 < sum(flipped) < 48


def crop_offsets(out, padded):
    """The (top, left) offsets at which ``out`` is a window of ``padded``."""
    th, tw = out.shape[-2:]
    h, w = padded.shape[-2:]
    return [(i, j) for i in range(h - th + 1) for j in range(w - tw + 1)
            if np.array_equal(padded[..., i:i + th, j:j + tw], out)]


def test_random_crop_with_padding_is_a_window_of_the_padded_image():
    x = chw(2, 6, 6) + 1  # no zeros, so padding is visible
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    offsets = set()
    for _ in range(20):
        out = T.RandomCrop(6, padding=2)(arr(x)).numpy()
        found = crop_offsets(out, padded)
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 3
    # (left/right, top/bottom) and (left, top, right, bottom) paddings, other fills and modes
    out = T.RandomCrop((8, 10), padding=(2, 1), fill=-1)(arr(x)).numpy()
    np.testing.assert_array_equal(out, np.pad(x, ((0, 0), (1, 1), (2, 2)), constant_values=-1))
    out = T.RandomCrop((7, 9), padding=(1, 0, 2, 1), padding_mode="reflect")(arr(x)).numpy()
    np.testing.assert_array_equal(out, np.pad(x, ((0, 0), (0, 1), (1, 2)), mode="reflect"))


def test_random_crop_pad_if_needed_and_errors():
    x = chw(1, 3, 5)
    out = T.RandomCrop((5, 5), pad_if_needed=True)(arr(x)).numpy()
    # the short side (3) is padded by the difference (2) on both ends, as torchvision
    assert crop_offsets(out, np.pad(x, ((0, 0), (2, 2), (0, 0))))
    with pytest.raises(ValueError, match=r"crop size \(5, 5\) is larger than input image size"):
        T.RandomCrop(5)(arr(x))
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        T.RandomCrop(3, padding=1, padding_mode="wrap")(arr(x))


def test_random_crop_on_a_batch_crops_each_sample_differently():
    x = np.repeat(chw(1, 8, 8)[None], 32, axis=0)
    padded = np.pad(x[0], ((0, 0), (3, 3), (3, 3)))
    out = T.RandomCrop(8, padding=3)(arr(x)).numpy()
    offsets = {crop_offsets(o, padded)[0] for o in out}
    assert len(offsets) > 5
    nhwc = np.repeat(R.integers(0, 256, (6, 6, 3), dtype=np.uint8)[None], 4, axis=0)
    out = T.RandomCrop(4)(nhwc)
    assert out.shape == (4, 4, 4, 3) and out.dtype == np.uint8


def test_center_crop_matches_torchvision_rounding_and_padding():
    x = np.arange(30.0).reshape(1, 5, 6)
    # top = round((5 - 2) / 2) = 2 (half to even), left = round((6 - 3) / 2) = 2
    np.testing.assert_array_equal(T.CenterCrop((2, 3))(arr(x)).numpy(), x[:, 2:4, 2:5])
    out = T.CenterCrop((7, 6))(arr(x)).numpy()  # larger: zero padding, 1 above, 1 below
    np.testing.assert_array_equal(out, np.pad(x, ((0, 0), (1, 1), (0, 0))))


# --- resizing -------------------------------------------------------------------------------------


def test_resize_bilinear_upsampling_hand_derived():
    # align_corners=False: output i samples input (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75,
    # 1.25, clamped to [0, 1]; per axis the weights are [1, 0], [.75, .25], [.25, .75], [0, 1]
    x = np.array([[[0.0, 1.0], [2.0, 3.0]]], np.float32)
    expected = [[0.0, 0.25, 0.75, 1.0], [0.5, 0.75, 1.25, 1.5],
                [1.5, 1.75, 2.25, 2.5], [2.0, 2.25, 2.75, 3.0]]
    np.testing.assert_allclose(T.Resize((4, 4))(arr(x)).numpy()[0], expected)


def test_resize_downsampling_with_and_without_antialias():
    x = arr(np.array([[[0.0, 1.0, 2.0, 3.0]]], np.float32))
    # without antialias: sources 0.5 and 2.5
    np.testing.assert_allclose(T.Resize((1, 2), antialias=False)(x).numpy(), [[[0.5, 2.5]]])
    # with antialias the triangle widens to the scale (2): weights (3, 3, 1, 0) / 7 and
    # (0, 1, 3, 3) / 7
    np.testing.assert_allclose(T.Resize((1, 2))(x).numpy(), [[[5 / 7, 16 / 7]]], rtol=1e-6)
    np.testing.assert_array_equal(T.Resize((1, 2), interpolation="nearest")(x).numpy(),
                                  [[[0.0, 2.0]]])
    np.testing.assert_array_equal(
        T.Resize((1, 8), interpolation=T.InterpolationMode.NEAREST)(x).numpy(),
        [[[0, 0, 1, 1, 2, 2, 3, 3]]])


def test_resize_sizes_and_dtypes():
    x = arr(np.zeros((1, 6, 12), np.float32))
    assert T.Resize(3)(x).shape == (1, 3, 6)  # the shorter side, aspect ratio kept
    assert T.Resize(4)(arr(np.zeros((2, 1, 10, 7), np.float32))).shape == (2, 1, 5, 4)
    assert T.Resize(3, max_size=5)(x).shape == (1, 2, 5)
    img = np.full((4, 4, 3), 200, np.uint8)
    img[0, 0] = 7
    out = T.Resize((2, 2))(img)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    # antialiased weights (3, 3, 1, 0) / 7 along each axis, then rounded to uint8
    w = np.array([3.0, 3.0, 1.0, 0.0]) / 7
    corner = w @ img[:, :, 0].astype(float) @ w
    assert out[0, 0, 0] == np.round(corner) and out[1, 1, 0] == 200
    with pytest.raises(ValueError, match="interpolation 'bicubic' is not supported"):
        T.Resize(3, interpolation="bicubic")


def test_resize_matches_torch_interpolate():
    torch = pytest.importorskip("torch")
    x = R.random((2, 3, 13, 9)).astype(np.float32)
    for size in [(5, 4), (20, 17), (13, 3)]:
        for antialias in (True, False):
            ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=size,
                                                  mode="bilinear", antialias=antialias)
            got = T.Resize(size, antialias=antialias)(arr(x)).numpy()
            np.testing.assert_allclose(got, ref.numpy(), atol=1e-5)
        ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="nearest")
        np.testing.assert_array_equal(T.Resize(size, interpolation="nearest")(arr(x)).numpy(),
                                      ref.numpy())


def test_random_resized_crop():
    x = chw(3, 10, 10)
    # the full square image at ratio 1 is just a resize
    full = T.RandomResizedCrop(4, scale=(1.0, 1.0), ratio=(1.0, 1.0))(arr(x)).numpy()
    np.testing.assert_allclose(full, T.Resize((4, 4))(arr(x)).numpy())
    batch = T.RandomResizedCrop((3, 5))(arr(np.repeat(x[None], 8, axis=0))).numpy()
    assert batch.shape == (8, 3, 3, 5)
    assert len({b.tobytes() for b in batch}) > 1
    with pytest.raises(ValueError, match="should be of kind"):
        T.RandomResizedCrop(4, scale=(1.0, 0.5))


# --- rotation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_rotation_by_right_angles_matches_numpy(interpolation):
    x = chw(2, 6, 6)
    rot90 = T.RandomRotation((90, 90), interpolation=interpolation)(arr(x)).numpy()
    np.testing.assert_allclose(rot90, np.rot90(x, 1, axes=(1, 2)), atol=1e-6)  # counter-clockwise
    rot180 = T.RandomRotation((180, 180), interpolation=interpolation)(arr(x)).numpy()
    np.testing.assert_allclose(rot180, x[:, ::-1, ::-1], atol=1e-6)
    same = T.RandomRotation(0, interpolation=interpolation)(arr(x)).numpy()
    np.testing.assert_allclose(same, x, atol=1e-6)


def test_rotation_fills_uncovered_pixels_and_draws_per_sample():
    x = np.ones((1, 9, 9), np.float32)
    out = T.RandomRotation((45, 45), fill=0.25)(arr(x)).numpy()[0]
    assert out[0, 0] == out[-1, -1] == 0.25 and out[4, 4] == 1.0
    img = np.zeros((7, 7, 1), np.uint8)
    img[3, :] = 255  # a horizontal bar; HWC uint8 stays HWC uint8
    vertical = T.RandomRotation((90, 90))(img)
    assert vertical.dtype == np.uint8 and (vertical[:, 3, 0] == 255).all()
    assert vertical.sum() == 255 * 7
    batch = np.repeat(chw(1, 8, 8)[None], 6, axis=0)
    batch = T.RandomRotation(30, interpolation="bilinear")(arr(batch)).numpy()
    assert len({b.tobytes() for b in batch}) == 6
    with pytest.raises(ValueError, match="must be positive"):
        T.RandomRotation(-3)
    with pytest.raises(ValueError, match="expand=True is not supported"):
        T.RandomRotation(3, expand=True)


# --- affine -------------------------------------------------------------------------------------


def affine_reference(img, angle, shift, zoom, shear, center=None, fill=0.0, mode="bilinear"):
    """torchvision's affine, pixel by pixel from its definition: the forward map
    ``T * C * R(angle) * S(zoom) * SHy(shear_y) * SHx(shear_x) * C^-1`` with R a clockwise
    rotation on screen (y down), SHx = [[1, -tan], [0, 1]], SHy = [[1, 0], [-tan, 1]],
    inverted with np.linalg.inv; pixel centers at j + 0.5; grid_sample(align_corners=False)
    with zeros outside, then ``fill`` blended in by coverage."""
    c, h, w = img.shape
    a, sx, sy = np.radians(angle), np.radians(shear[0]), np.radians(shear[1])
    rotate = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    forward = zoom * rotate @ np.array([[1, 0], [-np.tan(sy), 1]]) @ np.array(
        [[1, -np.tan(sx)], [0, 1]])
    inverse = np.linalg.inv(forward)
    cx, cy = (w / 2, h / 2) if center is None else center
    out = np.empty((c, h, w))
    for i in range(h):
        for j in range(w):
            u, v = inverse @ (np.array([j + 0.5, i + 0.5]) - (cx, cy) - shift) + (cx, cy) - 0.5
            if mode == "nearest":
                taps = [(int(np.rint(v)), int(np.rint(u)), 1.0)]
            else:
                u0, v0 = int(np.floor(u)), int(np.floor(v))
                fu, fv = u - u0, v - v0
                taps = [(v0, u0, (1 - fu) * (1 - fv)), (v0, u0 + 1, fu * (1 - fv)),
                        (v0 + 1, u0, (1 - fu) * fv), (v0 + 1, u0 + 1, fu * fv)]
            value, coverage = np.zeros(c), 0.0
            for row, col, weight in taps:
                if 0 <= row < h and 0 <= col < w:
                    value += weight * img[:, row, col]
                    coverage += weight
            if mode == "nearest":
                out[:, i, j] = value if coverage >= 0.5 else fill
            else:
                out[:, i, j] = value * coverage + (1 - coverage) * fill
    return out


def replay(seed):
    """The NumPy stream a transform given ``fnx.Generator().manual_seed(seed)`` draws from."""
    from fnx.data._random import numpy_rng

    return numpy_rng(fnx.Generator().manual_seed(seed))


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_affine_right_angles_zoom_and_shear_hand_derived(interpolation):
    x = chw(2, 6, 6)
    clockwise = T.RandomAffine((90, 90), interpolation=interpolation)(arr(x)).numpy()
    np.testing.assert_allclose(clockwise, np.rot90(x, -1, axes=(1, 2)), atol=1e-6)
    counter = T.RandomAffine((-90, -90), interpolation=interpolation)(arr(x)).numpy()
    np.testing.assert_allclose(counter, np.rot90(x, 1, axes=(1, 2)), atol=1e-6)
    # RandomRotation turns the other way, as torchvision's rotate and affine do
    np.testing.assert_allclose(
        T.RandomAffine((30, 30), interpolation=interpolation)(arr(x)).numpy(),
        T.RandomRotation((-30, -30), interpolation=interpolation)(arr(x)).numpy(), atol=1e-6)
    # zoom 2 about the center of a 4x4 image: output pixel j samples source 0.75, 1.25,
    # 1.75, 2.25 (exact for nearest), i.e. rows and columns 1, 1, 2, 2
    small = chw(2, 4, 4)
    zoomed = T.RandomAffine(0, scale=(2, 2), interpolation="nearest")(arr(small)).numpy()
    np.testing.assert_array_equal(zoomed, small[:, [1, 1, 2, 2]][:, :, [1, 1, 2, 2]])
    # a 45 degree shear along x on a 5x5 image: row i (at y = i - 2 from the center) reads
    # columns j + (i - 2); along y, column j reads rows i + (j - 2); outside is fill
    odd = chw(2, 5, 5)
    expected_x, expected_y = np.full_like(odd, 0.5), np.full_like(odd, 0.5)
    for i in range(5):
        for j in range(5):
            if 0 <= j + i - 2 < 5:
                expected_x[:, i, j] = odd[:, i, j + i - 2]
                expected_y[:, j, i] = odd[:, j + i - 2, i]
    shear_x = T.RandomAffine(0, shear=(45, 45), interpolation=interpolation, fill=0.5)
    np.testing.assert_allclose(shear_x(arr(odd)).numpy(), expected_x, atol=1e-5)
    shear_y = T.RandomAffine(0, shear=(0, 0, 45, 45), interpolation=interpolation, fill=0.5)
    np.testing.assert_allclose(shear_y(arr(odd)).numpy(), expected_y, atol=1e-5)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_affine_draws_torchvisions_parameters_and_matches_the_pixel_reference(interpolation):
    x = chw(3, 7, 9).astype(np.float64)
    kwargs = dict(degrees=(-40, 40), translate=(0.2, 0.3), scale=(0.7, 1.3),
                  shear=(-10, 10, -20, 20), center=(3.0, 2.5), fill=0.25)
    t = T.RandomAffine(**kwargs, interpolation=interpolation,
                       generator=fnx.Generator().manual_seed(7))
    batch = t(arr(np.stack([x] * 3))).numpy()
    rng = replay(7)
    for out in batch:  # per sample, in torchvision's order: angle, shift (whole pixels), ...
        angle = rng.uniform(-40, 40)
        shift = (round(rng.uniform(-0.2 * 9, 0.2 * 9)), round(rng.uniform(-0.3 * 7, 0.3 * 7)))
        zoom = rng.uniform(0.7, 1.3)
        shear = (rng.uniform(-10, 10), rng.uniform(-20, 20))
        ref = affine_reference(x, angle, shift, zoom, shear, (3.0, 2.5), 0.25, interpolation)
        np.testing.assert_allclose(out, ref, atol=1e-9)
    assert len({b.tobytes() for b in batch}) == 3


def test_affine_translation_shifts_by_whole_pixels_and_keeps_dtype_and_form():
    img = R.integers(1, 256, (8, 8, 3), dtype=np.uint8)  # HWC uint8 stays HWC uint8
    outs = [T.RandomAffine(0, translate=(0.25, 0.5))(img) for _ in range(12)]
    shifts = set()
    for out in outs:
        assert out.dtype == np.uint8 and out.shape == img.shape
        found = [(dx, dy) for dx in range(-2, 3) for dy in range(-4, 5)
                 if np.array_equal(out, np.roll(np.pad(img, ((4, 4), (2, 2), (0, 0))),
                                                (dy, dx), axis=(0, 1))[4:-4, 2:-2])]
        assert len(found) == 1, "not a whole-pixel shift within translate * size"
        shifts |= set(found)
    assert len(shifts) > 1
    fill = T.RandomAffine((45, 45), fill=[0.1, 0.2, 0.3])(arr(np.ones((3, 9, 9), np.float32)))
    np.testing.assert_allclose(fill.numpy()[:, 0, 0], [0.1, 0.2, 0.3])


def test_affine_argument_errors():
    with pytest.raises(ValueError, match="RandomAffine: if degrees is a single number, it must "
                                         "be positive"):
        T.RandomAffine(-5)
    with pytest.raises(ValueError, match=r"translate should be a pair of fractions .* got "
                                         r"\(0.5, 1.5\)"):
        T.RandomAffine(0, translate=(0.5, 1.5))
    with pytest.raises(ValueError, match="scale should be a positive"):
        T.RandomAffine(0, scale=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"shear should be a number or a \(min, max\) pair or "
                                         r"an \(x_min, x_max, y_min, y_max\) quadruple"):
        T.RandomAffine(0, shear=(1, 2, 3))
    with pytest.raises(ValueError, match=r"interpolation 'bicubic' is not supported"):
        T.RandomAffine(0, interpolation="bicubic")
    with pytest.raises(ValueError, match=r"RandomAffine: fill has 2 values; give one, or one "
                                         r"per channel \(3\)"):
        T.RandomAffine(0, fill=[0, 1])(fnx.zeros(3, 4, 4))
    assert T.RandomAffine(10, shear=5).shear == (-5.0, 5.0)


# --- erasing ------------------------------------------------------------------------------------


def erasing_reference(x, seed, p, scale, ratio, value):
    """torchvision's RandomErasing per sample, from its get_params, on the replayed stream."""
    out = x.copy()
    rng = replay(seed)
    _, c, h, w = x.shape
    for n in range(len(x)):
        if not rng.random() < p:
            continue
        for _ in range(10):
            area = h * w * rng.uniform(*scale)
            aspect = np.exp(rng.uniform(*np.log(ratio)))
            eh, ew = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
            if eh < h and ew < w:
                v = rng.standard_normal((c, eh, ew), dtype=np.float32) if value == "random" else (
                    np.reshape(value, (-1, 1, 1)))
                i, j = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
                out[n, :, i:i + eh, j:j + ew] = v
                break
    return out


@pytest.mark.parametrize("value", [0, [0.5, -1.0, 2.0], "random"])
def test_random_erasing_matches_torchvisions_draws(value):
    x = R.random((12, 3, 10, 12)).astype(np.float32)
    kwargs = dict(p=0.6, scale=(0.05, 0.4), ratio=(0.3, 3.3), value=value)
    out = T.RandomErasing(**kwargs, generator=fnx.Generator().manual_seed(3))(arr(x)).numpy()
    np.testing.assert_array_equal(out, erasing_reference(x, 3, **kwargs))
    changed = (out != x).any(axis=1)
    assert 0 < changed.any(axis=(1, 2)).sum() < len(x)  # p=0.6 per sample: some kept
    for mask in changed:  # the changed pixels of a sample fill one rectangle
        rows, cols = np.nonzero(mask)
        assert len(rows) == 0 or mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()


def test_random_erasing_hand_derived_and_errors():
    x = fnx.ones(1, 4, 4)
    out = T.RandomErasing(p=1.0, scale=(0.25, 0.25), ratio=(1, 1))(x).numpy()[0]
    rows, cols = np.nonzero(out == 0)  # area 4 at ratio 1: a 2x2 square
    assert len(rows) == 4 and np.ptp(rows) == 1 and np.ptp(cols) == 1
    assert T.RandomErasing(p=0.0)(x) is x
    # no rectangle fits (area 1 of a 4x4 image has 4 >= 4 rows): left as it is
    assert T.RandomErasing(p=1.0, scale=(1.0, 1.0))(x) is x
    image = fnx.ones(3, 6, 6)
    same = T.RandomErasing(p=1.0, value=[0.0, 0.5, 1.0], inplace=True)(image)
    assert same is image and image.numpy().min() == 0.0
    with pytest.raises(TypeError, match=r"expected an fnx \(C, H, W\) array, got ndarray; "
                                        r"apply ToTensor first"):
        T.RandomErasing()(np.ones((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="a str value should be 'random'"):
        T.RandomErasing(value="noise")
    with pytest.raises(ValueError, match=r"value has 2 numbers; give one, or one per channel "
                                         r"\(3\)"):
        T.RandomErasing(p=1.0, value=[1, 2])(fnx.ones(3, 8, 8))
    with pytest.raises(ValueError, match="scale should be a"):
        T.RandomErasing(scale=(0.5, 1.5))
    with pytest.raises(ValueError, match="probability p should be between 0 and 1"):
        T.RandomErasing(p=1.5)
    with pytest.raises(ValueError, match="ratio should be a positive"):
        T.RandomErasing(ratio=(0.0, 1.0))


# --- color ----------------------------------------------------------------------------------------


def gray(x):
    return 0.2989 * x[0] + 0.587 * x[1] + 0.114 * x[2]


def test_color_jitter_adjustments_match_torchvision_formulas():
    x = chw(3, 4, 4)
    out = T.ColorJitter(brightness=(1.5, 1.5))(arr(x)).numpy()
    np.testing.assert_allclose(out, np.clip(1.5 * x, 0, 1), rtol=1e-6)
    out = T.ColorJitter(contrast=(0.3, 0.3))(arr(x)).numpy()
    np.testing.assert_allclose(out, np.clip(0.3 * x + 0.7 * gray(x).mean(), 0, 1), rtol=1e-5)
    out = T.ColorJitter(saturation=(0.0, 0.0))(arr(x)).numpy()
    np.testing.assert_allclose(out, np.broadcast_to(gray(x), x.shape), rtol=1e-5)
    # hue: shifting pure red by half a turn gives cyan; a zero shift changes nothing
    red = np.zeros((3, 2, 2), np.float32)
    red[0] = 1.0
    cyan = T.ColorJitter(hue=(0.5, 0.5))(arr(red)).numpy()
    np.testing.assert_allclose(cyan, 1.0 - red, atol=1e-6)
    np.testing.assert_allclose(T.ColorJitter(hue=(0.0, 0.0))(arr(x)).numpy(), x, atol=1e-6)


def test_color_jitter_on_uint8_truncates_and_gray_images():
    img = np.full((2, 2, 3), 101, np.uint8)
    out = T.ColorJitter(brightness=(1.5, 1.5))(img)
    assert out.dtype == np.uint8 and (out == 151).all()  # 151.5 truncated, as torchvision
    x = chw(1, 3, 3)
    out = T.ColorJitter(contrast=(2.0, 2.0), saturation=0.5, hue=0.2)(arr(x)).numpy()
    np.testing.assert_allclose(out, np.clip(2.0 * x - x.mean(), 0, 1), rtol=1e-5)
    with pytest.raises(ValueError, match="hue values should be between"):
        T.ColorJitter(hue=0.7)
    with pytest.raises(ValueError, match="expected 1 or 3 channels, got 2"):
        T.ColorJitter(brightness=0.5)(fnx.zeros(2, 3, 3))


def test_color_jitter_factors_fall_in_range_per_sample():
    x = np.full((16, 3, 2, 2), 0.5, np.float32)
    out = T.ColorJitter(brightness=0.4)(arr(x)).numpy()
    factors = out[:, 0, 0, 0] / 0.5
    assert ((factors >= 0.6 - 1e-6) & (factors <= 1.4 + 1e-6)).all()
    assert len(set(factors.tolist())) == 16


# --- determinism and composition ----------------------------------------------------------------


def augment():
    return T.Compose([T.RandomResizedCrop(6, scale=(0.3, 1.0)), T.RandomHorizontalFlip(),
                      T.RandomRotation(20, interpolation="bilinear"),
                      T.RandomAffine(10, translate=(0.2, 0.2), scale=(0.9, 1.1), shear=5),
                      T.ColorJitter(0.3, 0.3, 0.3, 0.1), T.RandomErasing(value="random")])


def run(pipeline, images):
    return [pipeline(arr(im)).numpy() for im in images]


def test_seeded_determinism():
    images = R.random((5, 3, 9, 9)).astype(np.float32)
    fnx.manual_seed(0)
    a = run(augment(), images)
    fnx.manual_seed(0)
    b = run(augment(), images)
    fnx.manual_seed(1)
    c = run(augment(), images)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c, strict=True))
    # a given generator makes the transform independent of the global one
    t = T.RandomCrop(4, generator=fnx.Generator().manual_seed(5))
    first = t(arr(images[0])).numpy()
    t.generator = fnx.Generator().manual_seed(5)
    fnx.rand(3)
    np.testing.assert_array_equal(t(arr(images[0])).numpy(), first)


def test_transforms_draw_from_fnx_once_per_generator_state():
    # one fnx key per state of the generator, then a NumPy stream: per-sample calls stay cheap
    fnx.manual_seed(0)
    t = T.RandomHorizontalFlip()
    t(fnx.zeros(1, 2, 2))
    state = fnx.get_rng_state().tolist()
    for _ in range(20):
        t(fnx.zeros(1, 2, 2))
    assert fnx.get_rng_state().tolist() == state


def test_compose_on_a_numpy_image_pipeline():
    image = R.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    pipeline = T.Compose([T.Resize(8), T.CenterCrop(8), T.ToTensor(),
                          T.Normalize([0.5] * 3, [0.5] * 3)])
    out = pipeline(image)
    assert out.shape == (3, 8, 8) and out.dtype == np.float32
    assert -1.0 <= out.min().item() and out.max().item() <= 1.0
    assert "Resize(size=8" in repr(pipeline) and "Normalize(mean=" in repr(pipeline)
    with pytest.raises(ValueError, match=r"NumPy image of shape \(H, W, C\)"):
        T.RandomCrop(2)(np.zeros((1, 2, 3, 4, 5)))
