"""Tests of wsl_jax.localization against NumPy oracles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wsl_jax.localization import (
    boxes_to_pixels,
    class_maps_to_heatmaps,
    normalize_heatmaps,
    segmentation_from_heatmaps,
)


# --- oracles ---
def _resize_axis_np(x, out, axis):
    """Half-pixel-centre linear interpolation along one axis, edge values outside (PyTorch
    ``align_corners=False``)."""
    n = x.shape[axis]
    src = (np.arange(out) + 0.5) * n / out - 0.5
    src = np.clip(src, 0, n - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = src - lo
    shape = [1] * x.ndim
    shape[axis] = out
    w = w.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - w) + np.take(x, hi, axis=axis) * w


def _bilinear_np(maps, size):
    return _resize_axis_np(_resize_axis_np(maps.astype(np.float64), size[0], 1), size[1], 2)


def _normalize_np(x):
    out = np.zeros_like(x, dtype=np.float64)
    for b in range(x.shape[0]):
        for c in range(x.shape[3]):
            plane = x[b, :, :, c]
            lo, hi = plane.min(), plane.max()
            if hi > lo:
                out[b, :, :, c] = (plane - lo) / (hi - lo)
    return out


def _segment_np(heat, class_mask, thr):
    B, H, W, C = heat.shape
    out = np.zeros((B, H, W), np.int32)
    for b in range(B):
        for i in range(H):
            for j in range(W):
                best, arg = -np.inf, -1
                for c in range(C):
                    if class_mask is not None and not class_mask[b, c]:
                        continue
                    if heat[b, i, j, c] > best:
                        best, arg = heat[b, i, j, c], c
                if arg >= 0 and (thr is None or best >= thr):
                    out[b, i, j] = arg + 1
    return out


# --- heat maps ---
@pytest.mark.parametrize("size", [(12, 16), (7, 5), (3, 3), (2, 9)])
def test_bilinear_matches_half_pixel_oracle(size):
    maps = np.random.default_rng(0).normal(size=(2, 3, 4, 2)).astype(np.float32)
    got = class_maps_to_heatmaps(maps, size, normalize=False)
    assert got.shape == (2, *size, 2)
    np.testing.assert_allclose(got, _bilinear_np(maps, size), rtol=1e-5, atol=1e-5)


def test_known_upsampling_values():
    # 2 -> 4: output centres at 0.5, 1.5, 2.5, 3.5 sample input coords -0.25, 0.25, 0.75, 1.25.
    m = jnp.array([0.0, 8.0]).reshape(1, 1, 2, 1)
    got = class_maps_to_heatmaps(m, (1, 4), normalize=False)[0, 0, :, 0]
    np.testing.assert_allclose(got, [0.0, 2.0, 6.0, 8.0])


def test_normalized_heatmaps_match_oracle_and_constant_is_zero():
    maps = np.random.default_rng(1).normal(size=(2, 4, 4, 3)).astype(np.float32)
    maps[1, :, :, 2] = 3.0  # constant map
    got = np.asarray(class_maps_to_heatmaps(maps, 8))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, _normalize_np(_bilinear_np(maps, (8, 8))), atol=1e-5)
    np.testing.assert_array_equal(got[1, :, :, 2], 0.0)
    assert got.min() >= 0.0 and got.max() <= 1.0
    np.testing.assert_allclose(got[0].max(axis=(0, 1)), 1.0)


@pytest.mark.parametrize("method", ["nearest", "bicubic"])
def test_other_methods_stay_in_unit_range(method):
    maps = np.random.default_rng(2).normal(size=(1, 3, 3, 2)).astype(np.float32)
    got = np.asarray(class_maps_to_heatmaps(maps, (9, 9), method=method))
    assert got.min() >= 0.0 and got.max() <= 1.0 + 1e-6
    if method == "nearest":  # 3 -> 9: each input pixel becomes a 3x3 block
        np.testing.assert_allclose(got, _normalize_np(maps.repeat(3, 1).repeat(3, 2)), atol=1e-6)


def test_same_size_is_identity_and_int_input():
    maps = np.arange(12, dtype=np.int32).reshape(1, 2, 3, 2)
    got = class_maps_to_heatmaps(maps, (2, 3), normalize=False)
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(got, maps)


def test_heatmaps_jit_equals_eager():
    maps = np.random.default_rng(3).normal(size=(2, 5, 5, 3)).astype(np.float32)
    f = jax.jit(class_maps_to_heatmaps, static_argnames=("image_size", "normalize", "method"))
    np.testing.assert_allclose(f(maps, (20, 15)), class_maps_to_heatmaps(maps, (20, 15)), atol=1e-6)


@pytest.mark.parametrize(
    "maps, size, match",
    [
        (np.zeros((4, 4, 2)), 8, "maps"),
        (np.zeros((1, 0, 4, 2)), 8, "maps"),
        (np.zeros((1, 4, 0, 2)), 8, "maps"),
        (np.zeros((1, 4, 4, 2)), (0, 8), "image_size"),
        (np.zeros((1, 4, 4, 2)), (8, 8, 3), "image_size"),
        (np.zeros((1, 4, 4, 2)), 8.0, "image_size"),
    ],
)
def test_heatmaps_bad_inputs(maps, size, match):
    with pytest.raises(ValueError, match=match):
        class_maps_to_heatmaps(maps, size)


def test_bad_method():
    with pytest.raises(ValueError, match="method"):
        class_maps_to_heatmaps(np.zeros((1, 2, 2, 1)), 4, method="area")


def test_normalize_rejects_3d():
    with pytest.raises(ValueError, match="heatmaps"):
        normalize_heatmaps(np.zeros((4, 4, 2)))


# --- masks ---
@pytest.mark.parametrize("thr", [0.5, 0.0, None, 0.9])
@pytest.mark.parametrize("use_mask", [False, True])
def test_segmentation_matches_oracle(thr, use_mask):
    rng = np.random.default_rng(4)
    heat = rng.uniform(size=(3, 5, 6, 4)).astype(np.float32)
    heat[0, 0, 0, :] = 0.7  # a tie: lowest class wins
    class_mask = rng.uniform(size=(3, 4)) < 0.5 if use_mask else None
    if use_mask:
        class_mask[2] = False  # no class allowed: all background
    got = segmentation_from_heatmaps(heat, class_mask=class_mask, background_threshold=thr)
    assert got.dtype == jnp.int32
    np.testing.assert_array_equal(got, _segment_np(heat, class_mask, thr))
    if use_mask:
        np.testing.assert_array_equal(got[2], 0)


def test_segmentation_known_answer():
    heat = np.zeros((1, 2, 2, 2), np.float32)
    heat[0, 0, 0] = [0.9, 0.1]  # class 0 -> label 1
    heat[0, 0, 1] = [0.2, 0.6]  # class 1 -> label 2
    heat[0, 1, 0] = [0.3, 0.4]  # below 0.5 -> background
    heat[0, 1, 1] = [0.5, 0.5]  # tie at the threshold: kept (>=), lowest class
    np.testing.assert_array_equal(segmentation_from_heatmaps(heat), [[[1, 2], [0, 1]]])


def test_segmentation_jit_equals_eager():
    heat = np.random.default_rng(5).uniform(size=(2, 4, 4, 3)).astype(np.float32)
    cm = np.array([[1, 0, 1], [0, 1, 1]])
    f = jax.jit(lambda h, m, t: segmentation_from_heatmaps(h, class_mask=m, background_threshold=t))
    np.testing.assert_array_equal(
        f(heat, cm, 0.4), segmentation_from_heatmaps(heat, class_mask=cm, background_threshold=0.4)
    )


def test_segmentation_bad_inputs():
    with pytest.raises(ValueError, match="heatmaps"):
        segmentation_from_heatmaps(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="heatmaps"):
        segmentation_from_heatmaps(np.zeros((1, 0, 4, 2)))
    with pytest.raises(ValueError, match=r"class_mask.*\(1, 2\)"):
        segmentation_from_heatmaps(np.zeros((1, 4, 4, 2)), class_mask=np.ones((1, 3)))


# --- boxes ---
def test_boxes_to_pixels():
    boxes = np.array([[[0.0, 0.5, 1.0, 0.75]], [[0.1, 0.2, 0.3, 0.4]]])
    got = boxes_to_pixels(boxes, (10, 20))
    np.testing.assert_allclose(got, boxes * np.array([10, 20, 10, 20]), rtol=1e-6)
    np.testing.assert_allclose(boxes_to_pixels(boxes, 10), boxes * 10, rtol=1e-6)
    with pytest.raises(ValueError, match="boxes"):
        boxes_to_pixels(np.zeros((2, 3)), 10)
