"""The cluttered-digit generator, the cluttered_digits / cluttered_mnist builders and the IDX reader."""
import dataclasses
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from wsl_jax.data import clutter
from wsl_jax.data.cluttered_digits import ClutteredDigits, load_sklearn_digits
from wsl_jax.data.cluttered_mnist import MNIST_DIR_ENV, ClutteredMnist, resolve_mnist_dir
from wsl_jax.data.idx import load_mnist, read_idx

SPLITS = ("train", "validation", "test")
REAL_MNIST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds_digits")
    ClutteredDigits(config="tiny", data_dir=str(data_dir)).download_and_prepare(file_format="array_record")
    return data_dir


def _read_all(name, data_dir, split):
    source = tfds.data_source(name, split=split, data_dir=str(data_dir))
    return sorted((source[i] for i in range(len(source))), key=lambda e: e["index"])


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return {split: _read_all("cluttered_digits/tiny", tiny_dir, split) for split in SPLITS}


def _pixel_boxes(example, size):
    return [tuple(int(round(v * size)) for v in box) for box in example["boxes"]]


def test_splits_sizes_and_shapes(tiny):
    for split in SPLITS:
        examples = tiny[split]
        assert [e["index"] for e in examples] == list(range(20))
        for e in examples:
            assert e["image"].shape == (32, 32, 1) and e["image"].dtype == np.uint8
            assert e["mask"].shape == (32, 32, 1) and e["labels"].shape == (10,)
            k = len(e["boxes"])
            assert 1 <= k <= 3 and len(e["label_per_box"]) == len(e["source_index"]) == k


def test_labels_match_the_placed_digits(tiny):
    digits = load_sklearn_digits()
    for split in SPLITS:
        for e in tiny[split]:
            per_box = np.asarray(e["label_per_box"])
            # the stored class of each box is the true class of its source digit
            np.testing.assert_array_equal(digits.labels[np.asarray(e["source_index"])], per_box)
            expected = np.zeros(10, np.uint8)
            expected[per_box] = 1
            np.testing.assert_array_equal(e["labels"], expected)


def test_boxes_inside_canvas_and_disjoint(tiny):
    for split in SPLITS:
        for e in tiny[split]:
            boxes = np.asarray(e["boxes"])
            assert boxes.min() >= 0 and boxes.max() <= 1
            assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
            px = _pixel_boxes(e, 32)
            for i in range(len(px)):
                for j in range(i + 1, len(px)):
                    a, b = px[i], px[j]
                    overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
                    assert not overlap, (split, e["index"], a, b)


def test_mask_agrees_with_labels_and_boxes(tiny):
    clutter_outside_boxes = 0
    for split in SPLITS:
        for e in tiny[split]:
            mask, image = e["mask"][..., 0], e["image"][..., 0]
            classes = set(np.unique(mask).tolist()) - {0, clutter.VOID}
            assert {c - 1 for c in classes} == set(np.flatnonzero(e["labels"]).tolist())
            inside = np.zeros_like(mask, bool)
            for (y0, x0, y1, x1), c in zip(_pixel_boxes(e, 32), e["label_per_box"]):
                region = mask[y0:y1, x0:x1]
                assert set(np.unique(region).tolist()) <= {0, c + 1, clutter.VOID}
                assert (region == c + 1).any()  # every digit has labelled ink
                inside[y0:y1, x0:x1] = True
            assert not mask[~inside].any()  # labels only within boxes, clutter is background
            clutter_outside_boxes += int((image[~inside] > 0).any())
            # labelled ink is bright, void is faint
            assert (image[(mask > 0) & (mask < clutter.VOID)] >= clutter.INK_THRESHOLD).all()
    assert clutter_outside_boxes >= 30  # most canvases hold visible distractors


def test_clutter_comes_from_other_digits_of_the_same_pool(tiny):
    pools = clutter.split_pool_indices(load_sklearn_digits().labels,
                                       dict(zip(SPLITS, (0.6, 0.15, 0.25))), seed=0)
    used = {}
    for split in SPLITS:
        used[split] = set()
        for e in tiny[split]:
            labelled, fragments = set(map(int, e["source_index"])), set(map(int, e["fragment_source_index"]))
            assert not labelled & fragments
            used[split] |= labelled | fragments
        assert used[split] <= set(pools[split].tolist())
    for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
        assert not used[a] & used[b]


def test_source_pools_disjoint_stratified_and_complete():
    labels = load_sklearn_digits().labels
    pools = clutter.split_pool_indices(labels, dict(zip(SPLITS, (0.6, 0.15, 0.25))), seed=0)
    together = np.concatenate([pools[s] for s in SPLITS])
    assert len(together) == len(set(together.tolist())) == 1797
    for split, fraction in zip(SPLITS, (0.6, 0.15, 0.25)):
        counts = np.bincount(labels[pools[split]], minlength=10)
        np.testing.assert_allclose(counts / np.bincount(labels), fraction, atol=0.02)


def test_building_twice_is_identical_and_matches_the_generator(tiny, tmp_path):
    config = dataclasses.replace(ClutteredDigits.builder_configs["tiny"], name="tiny_again")
    ClutteredDigits(config=config, data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")
    again = {s: _read_all("cluttered_digits/tiny_again", tmp_path, s) for s in SPLITS}
    for split in SPLITS:
        for a, b in zip(tiny[split], again[split]):
            for key in ("image", "mask", "labels", "boxes", "label_per_box", "source_index",
                        "fragment_source_index"):
                np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))
    # the stored arrays are exactly the generator's output for (seed, split, index)
    pools = ClutteredDigits(config="tiny", data_dir=str(tmp_path)).digit_pools()
    spec = config.canvas_spec()
    for e in tiny["validation"][:5]:
        fresh = clutter.compose_canvas(pools["validation"], spec, clutter.example_rng(0, "validation", e["index"]))
        np.testing.assert_array_equal(fresh["image"], e["image"])
        np.testing.assert_array_equal(fresh["mask"], e["mask"])
        np.testing.assert_allclose(fresh["boxes"], np.asarray(e["boxes"]), atol=1e-6)
    other = clutter.compose_canvas(pools["validation"], spec, clutter.example_rng(1, "validation", 0))
    assert not np.array_equal(other["image"], tiny["validation"][0]["image"])


def test_canvas_spec_rejects_impossible_layouts():
    with pytest.raises(ValueError, match="cannot fit"):
        clutter.CanvasSpec(canvas_size=32, max_digits=3, digit_size=(20, 24))
    with pytest.raises(ValueError, match="digit_size"):
        clutter.CanvasSpec(canvas_size=32, digit_size=(8, 40))
    with pytest.raises(ValueError, match="unknown split"):
        clutter.example_rng(0, "dev", 0)


def test_crowded_canvas_still_places_every_digit():
    pool = clutter.DigitPool(np.full((30, 8, 8), 255, np.uint8), np.arange(30) % 10)
    spec = clutter.CanvasSpec(canvas_size=24, min_digits=4, max_digits=4, digit_size=(10, 12), gap=1)
    for i in range(20):
        e = clutter.compose_canvas(pool, spec, clutter.example_rng(0, "train", i))
        assert len(e["boxes"]) == 4
        px = np.round(e["boxes"] * 24).astype(int)
        for a in range(4):
            for b in range(a + 1, 4):
                assert not (px[a, 0] < px[b, 2] and px[b, 0] < px[a, 2]
                            and px[a, 1] < px[b, 3] and px[b, 1] < px[a, 3])


def test_fragments_never_cover_digits_nor_reuse_them():
    # constant digits: digit i is filled with 20 * (i + 1), so any foreign pixel inside a box shows up
    pool = clutter.DigitPool(np.repeat(20 * np.arange(1, 13, dtype=np.uint8), 64).reshape(12, 8, 8),
                             np.arange(12) % 10, ids=np.arange(100, 112))
    spec = clutter.CanvasSpec(canvas_size=32, min_digits=3, max_digits=3, digit_size=(8, 10),
                              num_fragments=(12, 12), fragment_size=(3, 6))
    for i in range(20):
        e = clutter.compose_canvas(pool, spec, clutter.example_rng(3, "test", i))
        assert not set(e["fragment_source_index"].tolist()) & set(e["source_index"].tolist())
        assert len(e["fragment_source_index"]) > 0
        image = e["image"][..., 0]
        for (y0, x0, y1, x1), sid in zip(np.round(e["boxes"] * 32).astype(int), e["source_index"]):
            assert (image[y0:y1, x0:x1] == 20 * (sid - 99)).all()


# ---------------------------------------------------------------- IDX files and cluttered_mnist


def _write_idx(path, array, magic_type):
    header = struct.pack(">HBB", 0, magic_type, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(array.dtype.newbyteorder(">")).tobytes())


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory):
    """Tiny MNIST look-alike in the real IDX format: 60 train and 12 test images of digit strokes."""
    directory = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    sets = {}
    for prefix, n in (("train", 60), ("t10k", 12)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = np.zeros((n, 28, 28), np.uint8)
        for i in range(n):  # a bar whose position encodes the label, plus noise
            images[i, 4:24, 4 + 2 * labels[i]:7 + 2 * labels[i]] = 255
            images[i] = np.maximum(images[i], rng.integers(0, 40, (28, 28)).astype(np.uint8))
        _write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images, 0x08)
        _write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels, 0x08)
        sets[prefix] = (images, labels)
    return directory, sets


def test_read_idx_exact_format(small_mnist):
    directory, sets = small_mnist
    path = directory / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as f:
        assert struct.unpack(">I", f.read(4))[0] == 2051
    with gzip.open(directory / "train-labels-idx1-ubyte.gz", "rb") as f:
        assert struct.unpack(">I", f.read(4))[0] == 2049
    np.testing.assert_array_equal(read_idx(path), sets["train"][0])
    images, labels = load_mnist(directory, "test")
    np.testing.assert_array_equal(images, sets["t10k"][0])
    np.testing.assert_array_equal(labels, sets["t10k"][1])


def test_read_idx_other_types_and_uncompressed(tmp_path):
    values = np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 1000
    raw = struct.pack(">HBB", 0, 0x0C, 2) + struct.pack(">2I", 3, 4) + values.astype(">i4").tobytes()
    (tmp_path / "x.idx").write_bytes(raw)
    out = read_idx(tmp_path / "x.idx")
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, values)


def test_read_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.idx"):
        read_idx(tmp_path / "nope.idx")
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad.idx")
    (tmp_path / "short.idx").write_bytes(struct.pack(">HBBI", 0, 8, 1, 10) + b"\x00" * 9)
    with pytest.raises(ValueError, match="expected 10 data bytes"):
        read_idx(tmp_path / "short.idx")
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        load_mnist(tmp_path / "missing_dir")


def test_cluttered_mnist_from_idx_files(small_mnist, tmp_path):
    directory, sets = small_mnist
    builder = ClutteredMnist(config="tiny", data_dir=str(tmp_path), mnist_dir=str(directory))
    builder.download_and_prepare(file_format="array_record")
    for split, (lo, hi), (images, labels) in (("train", (0, 50), sets["train"]),
                                              ("validation", (50, 60), sets["train"]),
                                              ("test", (0, 12), sets["t10k"])):
        source = builder.as_data_source(split=split)
        assert len(source) == 20
        for i in range(len(source)):
            e = source[i]
            ids = np.asarray(e["source_index"] + e["fragment_source_index"])
            assert ((lo <= ids) & (ids < hi)).all(), (split, ids)
            np.testing.assert_array_equal(labels[np.asarray(e["source_index"])], e["label_per_box"])
            assert e["image"].shape == (32, 32, 1)


def test_cluttered_mnist_missing_directory(tmp_path):
    builder = ClutteredMnist(config="tiny", data_dir=str(tmp_path / "out"), mnist_dir=str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="none"):
        builder.download_and_prepare(file_format="array_record")


def test_mnist_dir_resolution(monkeypatch):
    monkeypatch.delenv(MNIST_DIR_ENV, raising=False)
    with pytest.raises(ValueError, match=f"mnist_dir=.*source_dir.*\\${MNIST_DIR_ENV}"):
        resolve_mnist_dir()
    assert resolve_mnist_dir(None, "/from/config") == Path("/from/config")
    monkeypatch.setenv(MNIST_DIR_ENV, "/from/env")
    assert resolve_mnist_dir() == Path("/from/env")
    assert resolve_mnist_dir("/arg", "/from/config") == Path("/arg")


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason=f"real MNIST not available at {REAL_MNIST}")
def test_real_mnist_files(tmp_path):
    images, labels = load_mnist(REAL_MNIST, "test")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the official t10k order
    assert np.bincount(labels).min() > 850 and images.max() == 255
    train_images, train_labels = load_mnist(REAL_MNIST, "train")
    assert train_images.shape == (60000, 28, 28) and train_labels[:5].tolist() == [5, 0, 4, 1, 9]
    pools = ClutteredMnist(config="tiny", data_dir=str(tmp_path), mnist_dir=str(REAL_MNIST)).digit_pools()
    assert [len(pools[s]) for s in SPLITS] == [50000, 10000, 10000]
    spec = ClutteredMnist.builder_configs["default"].canvas_spec()
    e = clutter.compose_canvas(pools["validation"], spec, clutter.example_rng(0, "validation", 0))
    assert e["image"].shape == (64, 64, 1)
    assert (50000 <= e["source_index"]).all()
    np.testing.assert_array_equal(train_labels[e["source_index"]], e["label_per_box"])
