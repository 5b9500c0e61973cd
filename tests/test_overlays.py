"""Tests of wsl_jax.overlays.save_overlay: a valid PNG of the documented size; clear errors."""

import numpy as np
import pytest
from PIL import Image

from wsl_jax.overlays import save_overlay, voc_palette


def _case(h=24, w=32, c=3):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    heat = rng.uniform(size=(h, w, c)).astype(np.float32)
    mask = rng.integers(0, c + 1, size=(h, w))
    mask[0, :] = 255
    return image, heat, mask


def _size(n_panels, panel_size=1.0, dpi=60):
    return round(dpi * panel_size * n_panels), round(dpi * (panel_size + 0.4))


def test_png_with_expected_size(tmp_path):
    image, heat, mask = _case()
    path = tmp_path / "o.png"
    out = save_overlay(
        path,
        image,
        heat,
        np.array([1, 0, 1]),
        mask=mask,
        class_names=["cat", "dog", "car"],
        panel_size=1.0,
        dpi=60,
    )
    assert out == path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == _size(1 + 2 + 1)
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.std() > 10  # not a blank canvas


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(1).uniform(size=(24, 32)),  # grayscale float
        np.random.default_rng(1).normal(size=(24, 32, 3)),  # normalised network input
        np.random.default_rng(1).integers(0, 256, (24, 32, 1)).astype(np.uint8),
    ],
)
def test_image_formats_all_classes_no_mask(tmp_path, image):
    _, heat, _ = _case()
    path = tmp_path / "o.png"
    save_overlay(str(path), image, heat * 5 - 2, labels=None, panel_size=1.0, dpi=60)
    with Image.open(path) as im:
        assert im.size == _size(1 + 3)


def test_no_present_class_shows_image_and_mask(tmp_path):
    image, heat, mask = _case()
    save_overlay(tmp_path / "o.png", image, heat, np.zeros(3), mask=mask, panel_size=1.0, dpi=60)
    with Image.open(tmp_path / "o.png") as im:
        assert im.size == _size(2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mask": np.zeros((24, 31), int)}, r"mask.*\(24, 32\)"),
        ({"mask": np.full((24, 32), 4)}, "mask"),
        ({"mask": np.zeros((24, 32))}, "mask"),
        ({"heatmaps": np.zeros((12, 16, 3))}, r"heatmaps.*\(24, 32, C\)"),
        ({"heatmaps": np.zeros((1, 24, 32, 3))}, "heatmaps"),
        ({"labels": np.ones(4)}, r"labels.*\(3,\)"),
        ({"image": np.zeros((0, 32, 3))}, "image"),
        ({"image": np.zeros((24, 32, 2))}, "image"),
        ({"class_names": ["a"]}, "class_names"),
    ],
)
def test_bad_inputs(tmp_path, kwargs, match):
    image, heat, _ = _case()
    args = {"image": image, "heatmaps": heat, "labels": np.ones(3)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        save_overlay(tmp_path / "o.png", **args)
    assert not (tmp_path / "o.png").exists()


def test_voc_palette_known_colours():
    p = voc_palette()
    assert p.shape == (256, 3) and p.dtype == np.uint8
    np.testing.assert_array_equal(
        p[[0, 1, 2, 3, 4, 15, 20]],
        [
            [0, 0, 0],
            [128, 0, 0],
            [0, 128, 0],
            [128, 128, 0],
            [0, 0, 128],
            [192, 128, 128],
            [0, 64, 128],
        ],
    )
    assert len({tuple(c) for c in p[:21]}) == 21
