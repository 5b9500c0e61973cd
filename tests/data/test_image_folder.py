"""The labeled_image_folder builder on a <root>/<split>/<class>/ tree generated here."""
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from wsl_jax.data import make_eval_dataset, open_source, prepare_dataset
from wsl_jax.data.image_folder import LabeledImageFolder, load_image_file, scan_image_folder

CLASSES = ["bar", "kitchen", "library"]  # written in a non-sorted order below


def make_tree(root, per_class=2, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("test", 1)):
        for cls in ("library", "bar", "kitchen"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                h, w = int(rng.integers(20, 40)), int(rng.integers(20, 40))
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                if i % 2:
                    Image.fromarray(pixels).save(folder / f"{i:02d}.png")
                elif cls == "kitchen":  # a grayscale JPEG: converted to RGB
                    Image.fromarray(pixels[..., 0]).save(folder / f"{i:02d}.jpg", quality=95)
                else:
                    Image.fromarray(pixels).save(folder / f"{i:02d}.jpg", quality=95)
    (root / "train" / "bar" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("folder"))


def test_scan_sorts_classes_and_files(tree):
    classes, files = scan_image_folder(tree)
    assert classes == CLASSES and sorted(files) == ["test", "train"]
    assert [(p.parent.name, p.name, y) for p, y in files["train"]][:3] == [
        ("bar", "00.jpg", 0), ("bar", "01.png", 0), ("kitchen", "00.jpg", 1)]
    assert len(files["train"]) == 6 and len(files["test"]) == 3


def test_build_and_read_original_sizes(tree, tmp_path):
    prepare_dataset("labeled_image_folder", tmp_path, root=str(tree))
    source = open_source("labeled_image_folder", "train", tmp_path)  # no root needed to read
    builder = tfds.builder("labeled_image_folder", data_dir=str(tmp_path))
    assert builder.info.features["label"].names == CLASSES
    _, files = scan_image_folder(tree)
    examples = sorted((source[i] for i in range(len(source))), key=lambda e: e["index"])
    assert len(examples) == 6
    for e, (path, label) in zip(examples, files["train"]):
        assert e["label"] == label and e["labels"].tolist() == np.eye(3, dtype=np.uint8)[label].tolist()
        expected = np.asarray(Image.open(path).convert("RGB"))
        assert e["image"].shape == expected.shape
        if path.suffix == ".png":  # lossless: identical pixels
            np.testing.assert_array_equal(e["image"], expected)
        assert e["file_name"].decode() == f"{path.parent.name}/{path.name}"


def test_resized_images_batch(tree, tmp_path):
    prepare_dataset("labeled_image_folder", tmp_path, root=str(tree), image_size=(16, 24))
    source = open_source("labeled_image_folder", "test", tmp_path, image_size=(16, 24))
    batches = list(make_eval_dataset(source, batch_size=2, mean=(0.5,) * 3, std=(0.5,) * 3))
    assert batches[0]["image"].shape == (2, 16, 24, 3) and batches[0]["labels"].shape == (2, 3)
    assert sum(int(b["valid"].sum()) for b in batches) == 3


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        scan_image_folder(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        _ = LabeledImageFolder(data_dir=str(tmp_path / "d"), root=str(tmp_path / "nowhere")).info


def test_root_without_splits(tmp_path):
    with pytest.raises(ValueError, match="no split folders"):
        scan_image_folder(tmp_path)


def test_split_without_class_folders(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(ValueError, match=r"split folder .*train has no class folders"):
        scan_image_folder(tmp_path)


def test_class_without_images(tmp_path):
    (tmp_path / "train" / "bar").mkdir(parents=True)
    (tmp_path / "train" / "bar" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"class folder .*train/bar has no images"):
        scan_image_folder(tmp_path)


def test_corrupt_image_names_the_path(tmp_path):
    root = make_tree(tmp_path / "root", per_class=1)
    bad = root / "train" / "kitchen" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(ValueError, match=r"cannot decode image file .*kitchen/broken.jpg"):
        load_image_file(bad)
    with pytest.raises(ValueError, match="broken.jpg"):
        prepare_dataset("labeled_image_folder", tmp_path / "tfds", root=str(root))


def test_reading_unprepared_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not prepared"):
        _ = LabeledImageFolder(data_dir=str(tmp_path)).info
