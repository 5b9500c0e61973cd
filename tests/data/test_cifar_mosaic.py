"""The cifar_mosaic builder: on a small CIFAR-layout tar made here, and on the real archive if present."""
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from wsl_jax.data import make_train_dataset, open_source, prepare_dataset
from wsl_jax.data.cifar_mosaic import (
    CIFAR10_CLASSES,
    CIFAR_ENV,
    CifarMosaic,
    MosaicConfig,
    read_cifar_archive,
    resolve_cifar_path,
)

SPLITS = ("train", "validation", "test")
REAL_CIFAR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10" / "cifar10-jpg.tar.gz"


def _jpeg(rng):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_cifar_tar(path, per_class=(4, 2), seed=0, prefix=""):
    """A CIFAR-layout tar.gz: ``per_class[0]`` train and ``per_class[1]`` test JPEGs per class."""
    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w:gz") as tar:
        for split, n in zip(("train", "test"), per_class):
            for cls in CIFAR10_CLASSES:
                for i in range(n):
                    data = _jpeg(rng)
                    info = tarfile.TarInfo(f"{prefix}{split}/{cls}/{i:04d}.jpg")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def fake_tar(tmp_path_factory):
    return make_cifar_tar(tmp_path_factory.mktemp("cifar") / "cifar10-jpg.tar.gz")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, fake_tar):
    data_dir = tmp_path_factory.mktemp("tfds_mosaic")
    prepare_dataset("cifar_mosaic/tiny", data_dir, cifar_path=str(fake_tar))
    out = {}
    for split in SPLITS:
        source = open_source("cifar_mosaic/tiny", split, data_dir, image_size=(64, 64))
        out[split] = sorted((source[i] for i in range(len(source))), key=lambda e: e["index"])
    return data_dir, out


def test_read_archive_orders_by_class_then_name(fake_tar):
    archive = read_cifar_archive(fake_tar)
    assert len(archive["train"]) == 40 and len(archive["test"]) == 20
    assert archive["train"].labels.tolist() == sorted(archive["train"].labels.tolist())
    assert archive["train"].names[:2] == ["train/airplane/0000.jpg", "train/airplane/0001.jpg"]
    assert archive["test"].decode(0).shape == (32, 32, 3)


def test_archive_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_cifar_archive(tmp_path / "missing.tar.gz")
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("train/unicorn/0000.jpg")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(ValueError, match="unknown class folder 'unicorn'"):
        read_cifar_archive(bad)


def test_leading_folder_is_tolerated(tmp_path):
    path = make_cifar_tar(tmp_path / "c.tar.gz", per_class=(1, 1), prefix="cifar10/")
    assert len(read_cifar_archive(path)["test"]) == 10


def test_path_resolution(monkeypatch):
    monkeypatch.delenv(CIFAR_ENV, raising=False)
    with pytest.raises(ValueError, match=f"cifar_path=.*cifar_path.*\\${CIFAR_ENV}"):
        resolve_cifar_path()
    monkeypatch.setenv(CIFAR_ENV, "/env/c.tar.gz")
    assert str(resolve_cifar_path()) == "/env/c.tar.gz"
    assert str(resolve_cifar_path(None, "/cfg.tar.gz")) == "/cfg.tar.gz"
    assert str(resolve_cifar_path("/arg.tar.gz", "/cfg.tar.gz")) == "/arg.tar.gz"


def test_bad_layout_is_rejected():
    with pytest.raises(ValueError, match="do not fit"):
        MosaicConfig(name="x", canvas_size=64, object_size=(16, 40), max_objects=4).grid_size()


def test_shapes_labels_and_boxes(tiny):
    _, data = tiny
    for split in SPLITS:
        assert [e["index"] for e in data[split]] == list(range(8))
        for e in data[split]:
            assert e["image"].shape == (64, 64, 3) and e["image"].dtype == np.uint8
            boxes = np.asarray(e["boxes"])
            k = len(boxes)
            assert 1 <= k <= 4 and len(e["label_per_box"]) == len(e["source_index"]) == k
            expected = np.zeros(10, np.uint8)
            expected[np.asarray(e["label_per_box"])] = 1
            np.testing.assert_array_equal(e["labels"], expected)
            px = np.round(boxes * 64).astype(int)
            sides = px[:, 2:] - px[:, :2]
            assert np.all(sides[:, 0] == sides[:, 1]) and sides.min() >= 16 and sides.max() <= 32
            for i in range(k):
                for j in range(i + 1, k):
                    a, b = px[i], px[j]
                    assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def test_tiles_are_the_labelled_source_images(tiny, fake_tar):
    _, data = tiny
    archive = read_cifar_archive(fake_tar)
    for split in SPLITS:
        images = archive["test" if split == "test" else "train"]
        for e in data[split]:
            for box, cls, src in zip(np.asarray(e["boxes"]), e["label_per_box"], e["source_index"]):
                assert images.labels[src] == cls
                y0, x0, y1, x1 = np.round(box * 64).astype(int)
                tile = Image.fromarray(images.decode(int(src))).resize((y1 - y0, y1 - y0), Image.BILINEAR)
                np.testing.assert_array_equal(e["image"][y0:y1, x0:x1], np.asarray(tile))
            # The mask is the class + 1 exactly over the tiles, background 0 elsewhere.
            expected = np.zeros((64, 64), np.uint8)
            for box, cls in zip(np.asarray(e["boxes"]), e["label_per_box"]):
                y0, x0, y1, x1 = np.round(box * 64).astype(int)
                expected[y0:y1, x0:x1] = cls + 1
            np.testing.assert_array_equal(e["mask"][..., 0], expected)


def test_train_and_validation_sources_are_disjoint(fake_tar):
    images, pools = CifarMosaic(config="tiny", cifar_path=str(fake_tar)).source_pools()
    assert not set(pools["train"].tolist()) & set(pools["validation"].tolist())
    assert len(pools["train"]) + len(pools["validation"]) == len(images["train"])
    # stratified: every class contributes to validation
    assert sorted(set(images["validation"].labels[pools["validation"]].tolist())) == list(range(10))


def test_generation_is_deterministic(tiny, fake_tar, tmp_path):
    _, data = tiny
    again = tmp_path / "again"
    prepare_dataset("cifar_mosaic/tiny", again, cifar_path=str(fake_tar))
    source = tfds.data_source("cifar_mosaic/tiny", split="test", data_dir=str(again))
    second = sorted((source[i] for i in range(len(source))), key=lambda e: e["index"])
    for a, b in zip(data["test"], second):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(np.asarray(a["boxes"]), np.asarray(b["boxes"]))


def test_feeds_the_train_pipeline(tiny):
    data_dir, _ = tiny
    source = open_source("cifar_mosaic/tiny", "train", data_dir)
    batch = next(iter(make_train_dataset(source, batch_size=4, seed=0, mean=(0.5,) * 3, std=(0.5,) * 3)))
    assert batch["image"].shape == (4, 64, 64, 3) and batch["labels"].shape == (4, 10)
    assert batch["boxes"].shape == (4, 4, 4)


def test_missing_archive_names_the_path(tmp_path):
    builder = CifarMosaic(config="tiny", data_dir=str(tmp_path), cifar_path=str(tmp_path / "nope.tar.gz"))
    with pytest.raises(FileNotFoundError, match="nope.tar.gz"):
        builder.download_and_prepare(file_format="array_record")


@pytest.mark.skipif(not REAL_CIFAR.is_file(), reason=f"real CIFAR-10 archive not found at {REAL_CIFAR}")
def test_real_archive_tiny_config(tmp_path):
    config = MosaicConfig(name="real_tiny", canvas_size=128, object_size=(32, 64),
                          num_train=4, num_validation=4, num_test=4)
    builder = CifarMosaic(config=config, data_dir=str(tmp_path), cifar_path=str(REAL_CIFAR))
    builder.download_and_prepare(file_format="array_record")
    archive_counts = {"train": 50000, "validation": 50000, "test": 10000}
    for split in SPLITS:
        source = builder.as_data_source(split=split)
        assert len(source) == 4
        for i in range(4):
            e = source[i]
            assert e["image"].shape == (128, 128, 3)
            assert 1 <= len(e["boxes"]) <= 4 and int(e["labels"].sum()) >= 1
            assert max(e["source_index"]) < archive_counts[split]
    _, pools = builder.source_pools()
    assert len(pools["train"]) == 45000 and len(pools["validation"]) == 5000
